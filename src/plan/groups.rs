//! Groups: which managed groups move to `$Latest`, and why the others stay.

use super::change::{CreateVersion, Prerequisite, UpdateGroup};
use super::image::Latest;
use super::{Decision, Notes};
use crate::model::{Group, GroupLaunch, LATEST, LaunchSource, State, Tag, TemplateRef};
use crate::warning::Warning;

/// The groups tagged `managed` on the template and not on `$Latest`, by
/// name. Each move needs `$Latest` safe once this run's create is over:
/// while `$Latest` is unsafe, only the version that replaces it makes it
/// so, and without such a version no group moves (an operator's rollback
/// to a numbered version stays).
pub fn moves(
    state: &State,
    managed: &Tag,
    latest: Latest,
    create: Option<&CreateVersion>,
) -> Decision<Vec<UpdateGroup>> {
    let mut groups: Vec<&Group> = state.managed_groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let needs = match (latest, create) {
        (Latest::Unsafe, None) => return Decision::made(Vec::new()),
        (Latest::Unsafe, Some(_)) => vec![Prerequisite::VersionCreated],
        (Latest::Safe, Some(_)) => vec![Prerequisite::LatestSafe],
        (Latest::Safe, None) => Vec::new(),
    };
    let mut notes = Notes::default();
    let moves = groups
        .into_iter()
        .filter_map(|group| notes.take(group_change(group, state, managed)))
        .map(|change| UpdateGroup {
            needs: needs.clone(),
            ..change
        })
        .collect();
    notes.finish(moves)
}

/// Warnings for managed groups on no managed template (tag mode), by name.
pub fn strays(groups: &[Group], managed: &Tag) -> Decision<()> {
    let mut strays: Vec<&Group> = groups.iter().collect();
    strays.sort_by(|a, b| a.name.cmp(&b.name));
    Decision::made(()).warn(
        strays
            .into_iter()
            .map(|group| match launch_of(group, managed) {
                Err(warning) => warning,
                Ok((spec, _)) => Warning::OtherTemplate {
                    group: group.name.clone(),
                    template: spec.template_label(),
                },
            }),
    )
}

/// The reference a group launches from and what an update would send, or
/// why the reconciler cannot move it.
fn launch_of<'g>(
    group: &'g Group,
    managed: &Tag,
) -> Result<(&'g TemplateRef, GroupLaunch), Warning> {
    Ok(match &group.launch {
        LaunchSource::Template(spec) => (spec, GroupLaunch::Plain(spec.at_latest())),
        LaunchSource::Mixed(mixed) => {
            if mixed.overrides.iter().any(|o| o.instance_requirements) {
                return Err(Warning::InstanceRequirements {
                    group: group.name.clone(),
                });
            }
            (&mixed.spec, GroupLaunch::Mixed(mixed.at_latest()))
        }
        LaunchSource::LaunchConfiguration(name) => {
            return Err(Warning::LaunchConfiguration {
                group: group.name.clone(),
                tag: managed.clone(),
                launch_configuration: name.clone(),
            });
        }
        LaunchSource::Unknown => {
            return Err(Warning::NoLaunchTemplate {
                group: group.name.clone(),
                tag: managed.clone(),
            });
        }
    })
}

fn group_change(group: &Group, state: &State, managed: &Tag) -> Decision<Option<UpdateGroup>> {
    let (spec, launch) = match launch_of(group, managed) {
        Ok(found) => found,
        Err(warning) => return Decision::made(None).warn([warning]),
    };
    if !spec.points_at(&state.template) {
        return Decision::made(None).warn([Warning::OtherTemplate {
            group: group.name.clone(),
            template: spec.template_label(),
        }]);
    }
    // A rolling group on this template is placed on a number by its rollout.
    if spec.is_latest() || (group.is_rolling() && matches!(launch, GroupLaunch::Plain(_))) {
        return Decision::made(None);
    }
    if group.being_deleted {
        return Decision::made(None).warn([Warning::GroupBeingDeleted {
            group: group.name.clone(),
        }]);
    }
    Decision::made(Some(UpdateGroup {
        group: group.name.clone(),
        template: spec.template_label(),
        from: spec.version_label(),
        to: LATEST.to_owned(),
        mixed_instances_policy: matches!(launch, GroupLaunch::Mixed(_)),
        reason: format!("tagged {managed} and not on {LATEST}"),
        launch,
        version: None,
        needs: Vec::new(),
    }))
}
