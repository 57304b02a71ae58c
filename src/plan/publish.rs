//! Publishing: the image of the template's default version, as this run
//! leaves it, goes to an SSM parameter (`IMAGE_PARAMETER`) that other stacks
//! read, only when the parameter is missing or holds another value.

use std::collections::BTreeMap;

use super::change::{CreateVersion, Prerequisite, PutImageParameter, SetDefaultVersion};
use super::{Decision, Observation, Plan, Read, VersionTarget};
use crate::model::{IMAGE_DATA_TYPE, ParameterRead, State};
use crate::policy::Policy;
use crate::warning::Warning;

/// SSM's answer to `aws:ec2:image` comes after `PutParameter` returns: "If
/// you submit an invalid AMI value, the PutParameter operation will return
/// success, but the asynchronous validation will fail and the parameter
/// will not be created or updated." So the write is planned from the read,
/// and a later run's read is what confirms it: a parameter that still
/// differs from a default that was already in place is written again, with
/// a warning.
pub fn image_parameter(
    state: &State,
    policy: &Policy,
    create: Option<&CreateVersion>,
    switch: Option<&SetDefaultVersion>,
) -> Decision<Option<PutImageParameter>> {
    let Some(pattern) = &policy.image_parameter else {
        return Decision::made(None);
    };
    let template = &state.template;
    let name = match pattern.name_for(&template.id, &template.name) {
        Ok(name) => name,
        Err(problem) => {
            return Decision::made(None).warn([Warning::BadImageParameter {
                template: template.id.clone(),
                problem,
            }]);
        }
    };
    let Some(published) = state.image_parameter.as_ref().filter(|p| p.name == name) else {
        return Decision::made(None).read(Read::ImageParameters);
    };
    let (image, needs) = default_image(state, create, switch);
    // A default taking its image from SSM (`resolve:ssm:`), or with none,
    // has no image id to publish.
    let Some(image) = image.filter(|i| i.starts_with("ami-")) else {
        return Decision::made(None);
    };
    let put = |from: Option<&str>, reason: String| PutImageParameter {
        template_id: template.id.clone(),
        parameter: name.clone(),
        from: from.map(str::to_owned),
        to: image.to_owned(),
        reason,
        overwrite: from.is_some(),
        needs: needs.clone(),
    };
    // The default was in place before this run: an earlier write did not
    // hold (SSM refused the image after answering), another writer changed
    // the parameter, or it is the first run that publishes.
    let differed = |value: Option<&String>| {
        switch.is_none().then(|| Warning::ImageParameterDiffered {
            template: template.id.clone(),
            parameter: name.clone(),
            value: value.cloned(),
            image: image.to_owned(),
        })
    };
    match &published.read {
        ParameterRead::Unread(error) => {
            Decision::made(None).warn([Warning::ImageParameterNotRead {
                template: template.id.clone(),
                parameter: name.clone(),
                error: error.clone(),
            }])
        }
        ParameterRead::Found {
            data_type, kind, ..
        } if data_type != IMAGE_DATA_TYPE || kind != "String" => {
            Decision::made(None).warn([Warning::ImageParameterNotImage {
                template: template.id.clone(),
                parameter: name.clone(),
                kind: kind.clone(),
                data_type: data_type.clone(),
            }])
        }
        ParameterRead::Found { value, .. } if value == image => Decision::made(None),
        ParameterRead::Found { value, .. } => Decision::made(Some(put(
            Some(value),
            format!("the default version's image is {image}, the parameter holds {value}"),
        )))
        .warn(differed(Some(value))),
        ParameterRead::Missing => Decision::made(Some(put(
            None,
            format!("the parameter does not exist; the default version's image is {image}"),
        )))
        .warn(differed(None)),
    }
}

/// The image of the default version once this run's switch succeeded, and
/// that switch as the prerequisite of publishing it.
fn default_image<'a>(
    state: &'a State,
    create: Option<&'a CreateVersion>,
    switch: Option<&SetDefaultVersion>,
) -> (Option<&'a str>, Vec<Prerequisite>) {
    let template = &state.template;
    match switch {
        Some(switch) => (
            match switch.to {
                VersionTarget::Created => create.map(|c| c.to_image.as_str()),
                VersionTarget::Number(n) => template.image_of(n),
            },
            vec![Prerequisite::DefaultSwitched],
        ),
        None => (template.image_of(template.default_version), Vec::new()),
    }
}

/// Templates whose parameter names coincide would overwrite each other's
/// image every run: none of them writes, and each is named in a warning.
/// Pure, like the rest of the planner.
pub fn shared_parameters(observations: &[Observation], plans: &mut [Plan]) {
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for observation in observations {
        if let Observation::Ready { state, policy } = observation
            && let Some(pattern) = &policy.image_parameter
            && let Ok(name) = pattern.name_for(&state.template.id, &state.template.name)
        {
            owners
                .entry(name)
                .or_default()
                .push(state.template.id.clone());
        }
    }
    for (parameter, templates) in owners.into_iter().filter(|(_, t)| t.len() > 1) {
        for plan in plans
            .iter_mut()
            .filter(|p| templates.contains(&p.template_id))
        {
            plan.changes.retain(|c| {
                !matches!(c, super::Change::PutImageParameter(put) if put.parameter == parameter)
            });
            // Nothing is written: no "written again" either.
            plan.warnings.retain(|w| {
                !matches!(w, Warning::ImageParameterDiffered { parameter: p, .. } if *p == parameter)
            });
            plan.warnings.push(Warning::ImageParameterShared {
                template: plan.template_id.clone(),
                parameter: parameter.clone(),
                templates: templates.join(", "),
            });
        }
    }
}
