//! The fleet as it runs: groups whose version's image is gone, and the
//! in-service instances still behind the template's default image.

use serde::Serialize;

use super::change::{CreateVersion, ImageSummary, SetDefaultVersion, UpdateGroup, VersionTarget};
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

/// The fleet's figures and the groups on a gone image, given what this
/// run changes: the instances are counted against the default image after
/// it, and a group it takes off a gone image is not named.
pub fn review(
    state: &State,
    create: Option<&CreateVersion>,
    switch: Option<&SetDefaultVersion>,
    moves: &[UpdateGroup],
) -> Decision<Fleet> {
    let template = &state.template;
    let default_image = match (create, switch.map(|s| s.to)) {
        (Some(create), _) => Some(create.to_image.as_str()),
        (None, Some(VersionTarget::Number(n))) => template.image_of(n),
        _ => template.image_of(template.default_version),
    };
    let mut notes = Notes::default();
    let fleet = notes.take(measure(state, default_image));
    let moved: Vec<String> = moves.iter().map(|m| m.group.clone()).collect();
    notes.take(gone_images(
        state,
        &Healing {
            creates: create.is_some(),
            switches: switch.is_some(),
            moved: &moved,
        },
    ));
    notes.finish(fleet)
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
        .flat_map(|g| g.in_service.iter().chain(&g.protected))
        .filter_map(|id| state.instance_images.get(id))
}

/// The fleet's figures, measured against `target`: the image of the
/// default version after this run. Asks for the instances' images, and for
/// the running images it does not know.
fn measure(state: &State, target: Option<&str>) -> Decision<Fleet> {
    let mut notes = Notes::default();
    let has_instances = state
        .managed_groups
        .iter()
        .filter(|g| g.launch_ref().is_some_and(|s| s.points_at(&state.template)))
        .any(|g| !g.in_service.is_empty() || !g.protected.is_empty());
    if !has_instances {
        return notes.finish(Fleet {
            instances_behind: Some(0),
            ..Fleet::default()
        });
    }
    notes.reads.push(Read::InstanceImages);
    // Not read yet, or the read failed: unknown, never "none behind".
    if state.instance_images.is_empty() {
        return notes.finish(Fleet::default());
    }
    let images: Vec<&String> = running(state).collect();
    if images.iter().any(|id| known(state, id).is_none()) && state.referenced_images.is_none() {
        notes.reads.push(Read::ReferencedImages);
    }
    // A default whose image is an SSM parameter names no image to count by.
    let target = target.filter(|t| !t.starts_with("resolve:ssm:"));
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

/// The images groups' versions of this template and its running
/// instances use that no read returned: what [`Read::ReferencedImages`]
/// reads (plain AMI ids only).
pub fn unknown_images(state: &State) -> Vec<String> {
    let versions = every_group(state, &state.managed_groups)
        .into_iter()
        .flat_map(|(group, _)| references(state, group))
        .filter_map(|(_, resolved)| resolved.ok().flatten());
    let mut ids: Vec<String> = versions
        .chain(state.instance_images.values().map(String::as_str))
        .filter(|id| id.starts_with("ami-") && known(state, id).is_none())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The groups, managed first then the others, by name, each with whether
/// it is managed.
fn every_group<'s>(state: &'s State, managed: &'s [Group]) -> Vec<(&'s Group, bool)> {
    let others = state.other_groups.iter().flatten();
    let mut groups: Vec<(&Group, bool)> = managed
        .iter()
        .map(|g| (g, true))
        .chain(others.map(|g| (g, false)))
        .collect();
    groups.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    groups
}

/// Each distinct version of this template the group names (a mixed
/// instances policy may name it several times), with what it resolves to.
fn references<'s>(state: &'s State, group: &Group) -> Vec<(String, Result<Option<&'s str>, ()>)> {
    let mut seen = Vec::new();
    for spec in group.template_refs() {
        let version = spec.version_label();
        if spec.points_at(&state.template) && !seen.iter().any(|(v, _)| v == &version) {
            let resolved = resolve(state, &version).map(|(_, image)| image);
            seen.push((version, resolved));
        }
    }
    seen
}

/// What this run does for a managed group on a version whose image is gone:
/// which versions it leaves behind.
struct Healing<'p> {
    /// `$Latest` gets a new version.
    creates: bool,
    /// The default moves.
    switches: bool,
    /// The groups this run moves.
    moved: &'p [String],
}

/// A warning for each group, managed or not, whose version of this
/// template resolves to an image that is deregistered, disabled or gone
/// (or to a version that is gone): it cannot launch. A group this run takes
/// off that version (a new `$Latest` or default, a managed group's move) is
/// not warned about. Asks for the images it does not know, once.
fn gone_images(state: &State, healing: &Healing) -> Decision<()> {
    let mut notes = Notes::default();
    for (group, is_managed) in every_group(state, &state.managed_groups) {
        for (version, resolved) in references(state, group) {
            // Any group on an alias follows this run's new version; a
            // managed one this run moves leaves its version.
            let healed = (is_managed && healing.moved.contains(&group.name))
                || (version == LATEST && healing.creates)
                || (version == DEFAULT && healing.switches);
            if healed {
                continue;
            }
            let warning = |image: Option<&str>, what: &str| Warning::GroupOnGoneImage {
                group: group.name.clone(),
                template: state.template.id.clone(),
                version: version.clone(),
                image: image.map(str::to_owned),
                state: what.to_owned(),
                managed: is_managed,
            };
            let image = match resolved {
                Err(()) => {
                    notes.warnings.push(warning(None, "missing"));
                    continue;
                }
                Ok(None) => continue,
                Ok(Some(image)) if image.starts_with("resolve:ssm:") => continue,
                Ok(Some(image)) => image,
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
