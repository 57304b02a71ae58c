//! The fleet as it runs: groups whose version's image is gone, and the
//! in-service instances still behind the template's default image.

use serde::Serialize;

use super::change::ImageSummary;
use super::reads::Read;
use super::{Decision, Notes};
use crate::model::{CurrentImage, DEFAULT, Group, Image, LATEST, State};
use crate::warning::Warning;

/// What the managed groups of a template run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fleet {
    /// In-service instances of the managed groups whose image is known.
    pub in_service: usize,
    /// Of those, the instances not on the default version's image after
    /// this run: what the tool exists to drive to zero. `None` when the
    /// instances' images could not be read.
    pub instances_behind: Option<usize>,
    /// The oldest image an in-service instance runs, when its creation
    /// date is known.
    pub oldest_running_image: Option<ImageSummary>,
}

/// Every image the state knows, by id: the backups, `$Latest`'s, and those
/// read by id for groups and instances.
fn known<'s>(state: &'s State, id: &str) -> Option<&'s Image> {
    let current = match &state.current_image {
        CurrentImage::Found(image) => Some(image),
        _ => None,
    };
    state
        .images
        .iter()
        .chain(current)
        .chain(state.referenced_images.iter().flatten())
        .find(|i| i.id == id)
}

/// The in-service instances of the managed groups on this template, with
/// their images when read.
fn running(state: &State) -> impl Iterator<Item = &String> {
    state
        .managed_groups
        .iter()
        .filter(|g| g.launch_ref().is_some_and(|s| s.points_at(&state.template)))
        .flat_map(|g| &g.in_service)
        .filter_map(|id| state.instance_images.get(id))
}

/// The fleet's figures, measured against `target`: the image of the
/// default version after this run. Asks for the instances' images, and for
/// the running images it does not know.
pub fn measure(state: &State, target: Option<&str>) -> Decision<Fleet> {
    let mut notes = Notes::default();
    let has_instances = state
        .managed_groups
        .iter()
        .filter(|g| g.launch_ref().is_some_and(|s| s.points_at(&state.template)))
        .any(|g| !g.in_service.is_empty());
    if !has_instances {
        return notes.finish(Fleet {
            instances_behind: Some(0),
            ..Fleet::default()
        });
    }
    notes.reads.push(Read::InstanceImages);
    if state.rollouts_unread || state.instance_images.is_empty() {
        return notes.finish(Fleet::default());
    }
    let images: Vec<&String> = running(state).collect();
    if images.iter().any(|id| known(state, id).is_none()) && state.referenced_images.is_none() {
        notes.reads.push(Read::ReferencedImages);
    }
    let oldest = images
        .iter()
        .filter_map(|id| known(state, id))
        .min_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)))
        .map(ImageSummary::from);
    notes.finish(Fleet {
        in_service: images.len(),
        instances_behind: target.map(|t| images.iter().filter(|i| i.as_str() != t).count()),
        oldest_running_image: oldest,
    })
}

/// What a reference's version names now: its number, and its image.
fn resolve<'s>(state: &'s State, version: &str) -> Result<(i64, Option<&'s str>), ()> {
    let template = &state.template;
    let number = match version {
        LATEST => template.latest().map(|v| v.number).ok_or(())?,
        DEFAULT => template.default_version,
        n => n.trim().parse().map_err(|_| ())?,
    };
    Ok((
        number,
        template
            .version(number)
            .map(|v| v.image_id.as_deref())
            .ok_or(())?,
    ))
}

/// A warning for each group, managed or not, whose version of this
/// template resolves to an image that is deregistered, disabled or gone
/// (or to a version that is gone): it cannot launch. Asks for the images it
/// does not know, once.
pub fn gone_images(state: &State, managed: &[Group]) -> Decision<()> {
    let mut notes = Notes::default();
    let others = state.other_groups.iter().flatten();
    let mut groups: Vec<(&Group, bool)> = managed
        .iter()
        .map(|g| (g, true))
        .chain(others.map(|g| (g, false)))
        .collect();
    groups.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (group, is_managed) in groups {
        for spec in group.template_refs() {
            if !spec.points_at(&state.template) {
                continue;
            }
            let version = spec.version_label();
            let warning = |image: Option<&str>, what: &str| Warning::GroupOnGoneImage {
                group: group.name.clone(),
                template: spec.template_label(),
                version: version.clone(),
                image: image.map(str::to_owned),
                state: what.to_owned(),
                managed: is_managed,
            };
            let image = match resolve(state, &version) {
                Err(()) => {
                    notes.warnings.push(warning(None, "missing"));
                    continue;
                }
                Ok((_, None)) => continue,
                Ok((_, Some(image))) if image.starts_with("resolve:ssm:") => continue,
                Ok((_, Some(image))) => image,
            };
            match known(state, image) {
                Some(found) if found.is_unusable() => {
                    notes.warnings.push(warning(Some(image), &found.state));
                }
                Some(_) => {}
                None if matches!(&state.current_image, CurrentImage::Missing(id) if id == image) => {
                    notes.warnings.push(warning(Some(image), "missing"));
                }
                None if state.referenced_images.is_some() => {
                    notes.warnings.push(warning(Some(image), "missing"));
                }
                None => notes.reads.push(Read::ReferencedImages),
            }
        }
    }
    notes.finish(())
}
