//! The planner: a pure function from observed [`State`] to a [`Plan`].
//!
//! No clock, no I/O, no SDK type: every rule of the reconciler lives here and
//! is tested with plain data. An empty `changes` list means converged.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::autoscaling::MixedPolicy;
use crate::model::{CurrentImage, Group, Image, LATEST, LaunchSource, SKIP_TAG_KEY, State};
use crate::settings::Settings;

/// Most versions one `DeleteLaunchTemplateVersions` call accepts.
pub const MAX_DELETE_BATCH: usize = 200;

/// What one run intends to change, and what it noticed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The managed launch template.
    pub template_id: String,
    /// Its name.
    pub template_name: String,
    /// The newest eligible backup AMI, if any.
    pub newest_backup: Option<ImageSummary>,
    /// The changes, in the order they are applied. Empty when converged.
    pub changes: Vec<Change>,
    /// Things an operator should know that the reconciler will not change.
    pub warnings: Vec<String>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_converged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// An image as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// `ami-...`
    pub image_id: String,
    /// Its `CreationDate`.
    pub creation_date: chrono::DateTime<chrono::Utc>,
}

impl From<&Image> for ImageSummary {
    fn from(image: &Image) -> Self {
        ImageSummary {
            image_id: image.id.clone(),
            creation_date: image.created,
        }
    }
}

/// The version a default switch targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionTarget {
    /// The version created earlier in the same run (`"created"`).
    Created,
    /// An existing version number.
    #[serde(untagged)]
    Number(i64),
}

/// One change. Serialized with an `action` tag (see docs/report.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Create a version from `$Latest` with only `ImageId` changed.
    CreateVersion {
        /// The template.
        template_id: String,
        /// The `$Latest` number the version is based on (`SourceVersion`).
        source_version: i64,
        /// The image `$Latest` has now.
        from_image: String,
        /// The new image.
        to_image: String,
        /// Why.
        reason: String,
        /// `VersionDescription` of the new version.
        version_description: String,
        /// `ClientToken`: the same source version and image give the same
        /// token, so retries and concurrent runs create one version.
        client_token: String,
    },
    /// Make a version the default.
    SetDefaultVersion {
        /// The template.
        template_id: String,
        /// The current default.
        from: i64,
        /// The version to make default.
        to: VersionTarget,
        /// Why.
        reason: String,
    },
    /// Make a managed group use `$Latest`.
    UpdateGroup {
        /// `AutoScalingGroupName`.
        group: String,
        /// The template the group uses (id, else name).
        template: String,
        /// The version the group uses now.
        from: String,
        /// Always `$Latest`.
        to: String,
        /// True when the group uses a `MixedInstancesPolicy`.
        mixed_instances_policy: bool,
        /// Why.
        reason: String,
        /// What to send.
        #[serde(skip)]
        target: GroupTarget,
    },
    /// Delete old versions.
    DeleteVersions {
        /// The template.
        template_id: String,
        /// Version numbers, ascending.
        versions: Vec<i64>,
        /// Why.
        reason: String,
        /// What the deletion relies on succeeding first.
        #[serde(skip)]
        relies_on: Reliance,
    },
}

/// How a group update is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupTarget {
    /// `LaunchTemplate {LaunchTemplateId | LaunchTemplateName, Version: $Latest}`.
    Plain {
        /// The template id, sent alone when known (AWS rejects id and name together).
        template_id: Option<String>,
        /// The template name, sent only when the id is unknown.
        template_name: Option<String>,
    },
    /// The whole policy with its top-level version set to `$Latest`.
    Mixed(MixedPolicy),
}

/// What a planned deletion assumes: if one of these fails, the versions
/// that relied on it are not deleted in that run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reliance {
    /// The keep window counts the version this run creates.
    pub created_version: bool,
    /// This version is the default until the planned switch succeeds.
    pub previous_default: Option<i64>,
    /// Versions that only these groups reference, until they move to `$Latest`.
    pub released_by: BTreeMap<i64, Vec<String>>,
}

/// Computes the plan. Pure: the same state and settings always give the same plan.
pub fn plan(state: &State, settings: &Settings) -> Plan {
    let template = &state.template;
    let mut warnings = Vec::new();
    let mut changes = Vec::new();

    let newest = newest_backup(&state.images, &settings.marker);
    let latest_number = template.latest().map_or(0, |v| v.number);

    // 1. The image of $Latest.
    let create = image_change(state, newest, &settings.marker, &mut warnings).map(|reason| {
        let to = newest.map(|i| i.id.clone()).unwrap_or_default();
        Change::CreateVersion {
            template_id: template.id.clone(),
            source_version: latest_number,
            from_image: state.current_image.image_ref().to_owned(),
            version_description: version_description(newest),
            client_token: client_token(&template.id, latest_number, &to),
            to_image: to,
            reason,
        }
    });
    let creates = create.is_some();
    changes.extend(create);

    // 2. The default version follows the latest.
    let target = if creates {
        Some((
            VersionTarget::Created,
            "the default follows the new latest version".to_owned(),
        ))
    } else if template.default_version != latest_number {
        Some((
            VersionTarget::Number(latest_number),
            format!(
                "the default ({}) is not the latest version ({latest_number})",
                template.default_version
            ),
        ))
    } else {
        None
    };
    let switches_default = target.is_some();
    if let Some((to, reason)) = target {
        changes.push(Change::SetDefaultVersion {
            template_id: template.id.clone(),
            from: template.default_version,
            to,
            reason,
        });
    }

    // 3. Managed groups follow $Latest.
    let mut groups: Vec<&Group> = state.managed_groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut moving: BTreeSet<&str> = BTreeSet::new();
    for group in groups {
        match group_change(group, settings) {
            Ok(Some(change)) => {
                moving.insert(&group.name);
                changes.push(change);
            }
            Ok(None) => {}
            Err(warning) => warnings.push(warning),
        }
    }

    // 4. Prune.
    if let Some(change) = prune(
        state,
        settings,
        creates,
        switches_default,
        &moving,
        &mut warnings,
    ) {
        changes.push(change);
    }

    Plan {
        template_id: template.id.clone(),
        template_name: template.name.clone(),
        newest_backup: newest.map(ImageSummary::from),
        changes,
        warnings,
    }
}

/// True when an image qualifies as a backup to launch from.
pub fn is_eligible(image: &Image, marker: &str) -> bool {
    image.owned_by_account
        && image.is_available()
        && image.description.contains(marker)
        && !image.skip_tagged
}

/// The newest eligible image; ties on the creation date go to the higher id,
/// so the choice never depends on the order the API returned.
pub fn newest_backup<'a>(images: &'a [Image], marker: &str) -> Option<&'a Image> {
    images
        .iter()
        .filter(|i| is_eligible(i, marker))
        .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)))
}

/// Why `$Latest` needs a new image, or `None` (with a warning when relevant).
fn image_change(
    state: &State,
    newest: Option<&Image>,
    marker: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let template = &state.template.id;
    if let CurrentImage::FromSsm(param) = &state.current_image {
        warnings.push(format!(
            "launch template {template} $Latest takes its image from SSM ({param}); the image is left alone"
        ));
        return None;
    }
    let Some(newest) = newest else {
        warnings.push(format!(
            "no available AMI owned by this account has {marker:?} in its description (and no {SKIP_TAG_KEY}=true tag); the image is left alone"
        ));
        return None;
    };
    match &state.current_image {
        CurrentImage::Found(current) if current.id == newest.id => None,
        CurrentImage::Found(current) if current.skip_tagged => Some(format!(
            "{} is tagged {SKIP_TAG_KEY}=true; {} is the newest good backup ({})",
            current.id, newest.id, newest.created
        )),
        CurrentImage::Found(current) if current.is_unusable() => Some(format!(
            "{} is {}; {} is the newest backup ({})",
            current.id, current.state, newest.id, newest.created
        )),
        CurrentImage::Found(current) if current.created < newest.created => Some(format!(
            "newer backup: {} ({}) replaces {} ({})",
            newest.id, newest.created, current.id, current.created
        )),
        CurrentImage::Found(current) => {
            warnings.push(format!(
                "launch template {template} uses {} ({}), which is not older than the newest backup {} ({}); not moving backwards",
                current.id, current.created, newest.id, newest.created
            ));
            None
        }
        CurrentImage::Missing(id) => Some(format!(
            "{id} no longer exists; {} is the newest backup ({})",
            newest.id, newest.created
        )),
        CurrentImage::FromSsm(_) => None,
    }
}

fn version_description(newest: Option<&Image>) -> String {
    let Some(image) = newest else {
        return String::new();
    };
    // EC2 caps VersionDescription at 255 characters; ours stays far below.
    format!(
        "ami-reconciler: {} (backup created {})",
        image.id,
        image.created.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// A `ClientToken` (at most 64 ASCII characters) that names the template, the
/// source version and the image. The source version is part of it so that a
/// rollback to an image used before creates a new version instead of
/// returning the old one.
pub fn client_token(template_id: &str, source_version: i64, image_id: &str) -> String {
    let readable = format!("{template_id}-v{source_version}-{image_id}");
    if readable.len() <= 64 && readable.is_ascii() {
        return readable;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = readable.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("ami-reconciler-{hash:016x}")
}

fn group_change(group: &Group, settings: &Settings) -> Result<Option<Change>, String> {
    let (spec, target) = match &group.launch {
        LaunchSource::Template(spec) => (
            spec,
            GroupTarget::Plain {
                template_id: spec.id.clone(),
                template_name: if spec.id.is_some() {
                    None
                } else {
                    spec.name.clone()
                },
            },
        ),
        LaunchSource::Mixed { spec, policy, .. } => (spec, GroupTarget::Mixed(policy.clone())),
        LaunchSource::LaunchConfiguration(name) => {
            return Err(format!(
                "group {} is tagged {} but uses launch configuration {name}; skipped (migrate it to a launch template)",
                group.name, settings.asg_tag
            ));
        }
        LaunchSource::Unknown => {
            return Err(format!(
                "group {} is tagged {} but has no launch template; skipped",
                group.name, settings.asg_tag
            ));
        }
    };
    if spec.is_latest() {
        return Ok(None);
    }
    Ok(Some(Change::UpdateGroup {
        group: group.name.clone(),
        template: spec.template_label(),
        from: spec.version_label(),
        to: LATEST.to_owned(),
        mixed_instances_policy: matches!(target, GroupTarget::Mixed(_)),
        reason: format!("tagged {} and not on {LATEST}", settings.asg_tag),
        target,
    }))
}

fn prune(
    state: &State,
    settings: &Settings,
    creates: bool,
    switches_default: bool,
    moving: &BTreeSet<&str>,
    warnings: &mut Vec<String>,
) -> Option<Change> {
    let template = &state.template;
    let keep = settings.keep_versions as usize;
    // The version created in this run counts towards the window.
    let keep_existing = if creates { keep - 1 } else { keep };
    let mut numbers: Vec<i64> = template.versions.iter().map(|v| v.number).collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    let outside: Vec<i64> = numbers.into_iter().skip(keep_existing).collect();

    // After a switch to the created version the old default becomes deletable;
    // without a switch (or a switch to the latest) the default stays protected.
    let previous_default = switches_default.then_some(template.default_version);
    let new_default_number = match (switches_default, creates) {
        (false, _) => Some(template.default_version),
        (true, false) => template.latest().map(|v| v.number),
        // The new default is the created version, which is not in `outside`.
        (true, true) => None,
    };
    let mut candidates: Vec<i64> = outside
        .into_iter()
        .filter(|n| Some(*n) != new_default_number)
        .collect();
    if candidates.is_empty() {
        return None;
    }

    // References by number protect a version. A managed group's top-level
    // reference is released by its move to $Latest in this run. Untagged
    // groups are read only when the managed ones leave something to delete
    // (observe's may_delete), so their absence matters only then.
    let unread = Vec::new();
    let other_groups = state.other_groups.as_ref().unwrap_or(&unread);
    let mut protected: BTreeSet<i64> = BTreeSet::new();
    let mut released_by: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let managed = state
        .managed_groups
        .iter()
        .map(|g| (g, moving.contains(g.name.as_str())));
    let others = other_groups.iter().map(|g| (g, false));
    for (group, is_moving) in managed.chain(others) {
        for (index, spec) in group.template_refs().into_iter().enumerate() {
            if !spec.points_at(template) {
                continue;
            }
            let Some(n) = spec.pinned_number() else {
                continue;
            };
            if is_moving && index == 0 {
                released_by.entry(n).or_default().push(group.name.clone());
            } else {
                protected.insert(n);
            }
        }
    }
    let pinned: Vec<i64> = candidates
        .iter()
        .copied()
        .filter(|n| protected.contains(n))
        .collect();
    candidates.retain(|n| !protected.contains(n));
    if candidates.is_empty() {
        return None;
    }
    candidates.sort_unstable();
    if state.other_groups.is_none() {
        warnings.push(format!(
            "{} of {} could be pruned, but the groups outside the managed tag were not read; nothing pruned",
            versions_label(&candidates),
            template.id
        ));
        return None;
    }
    released_by.retain(|n, _| candidates.contains(n));
    for names in released_by.values_mut() {
        names.sort();
        names.dedup();
    }
    let relies_on = Reliance {
        created_version: creates,
        previous_default: previous_default.filter(|d| candidates.contains(d)),
        released_by,
    };
    Some(Change::DeleteVersions {
        template_id: template.id.clone(),
        reason: if pinned.is_empty() {
            format!("older than the newest {keep}; neither the default nor pinned by any group")
        } else {
            format!(
                "older than the newest {keep}; neither the default nor pinned by any group ({} kept: pinned by a group)",
                join(&pinned)
            )
        },
        versions: candidates,
        relies_on,
    })
}

fn join(numbers: &[i64]) -> String {
    numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `version 3` or `versions 1, 2`, for messages.
pub(crate) fn versions_label(numbers: &[i64]) -> String {
    match numbers {
        [one] => format!("version {one}"),
        _ => format!("versions {}", join(numbers)),
    }
}
