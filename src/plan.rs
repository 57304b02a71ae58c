//! The planner: a pure function from observed [`State`] to a [`Plan`].
//!
//! No clock, no I/O, no SDK type: every rule of the reconciler lives here and
//! is tested with plain data. An empty `changes` list means converged.
//! Imports only the model and the settings.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{
    BlockDevice, CurrentImage, DiscoveredTemplate, Group, GroupLaunch, Image, LATEST, LaunchSource,
    RollingPreferences, SKIP_TAG_KEY, State, Tag, Template, TemplateRef, group_tags,
};
use crate::settings::Settings;
use crate::warning::{Warning, join};

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
    pub warnings: Vec<Warning>,
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
    CreateVersion(CreateVersion),
    /// Make a version the default.
    SetDefaultVersion(SetDefaultVersion),
    /// Make a managed group use `$Latest`.
    UpdateGroup(UpdateGroup),
    /// Replace a rolling group's instances that run an older image.
    StartInstanceRefresh(StartInstanceRefresh),
    /// Delete old versions.
    DeleteVersions(DeleteVersions),
}

/// Create a version from `$Latest` with only `ImageId` changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateVersion {
    /// The template.
    pub template_id: String,
    /// The `$Latest` number the version is based on (`SourceVersion`).
    pub source_version: i64,
    /// The image `$Latest` has now.
    pub from_image: String,
    /// The new image.
    pub to_image: String,
    /// Why.
    pub reason: String,
    /// `VersionDescription` of the new version.
    pub version_description: String,
    /// `ClientToken`: the same source version and image give the same
    /// token, so retries and concurrent runs create one version.
    pub client_token: String,
    /// The source's block device mappings, sent as they are when one names
    /// a snapshot: EC2 drops snapshots a new version would otherwise inherit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<BlockDevice>,
}

/// Make a version the default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetDefaultVersion {
    /// The template.
    pub template_id: String,
    /// The current default.
    pub from: i64,
    /// The version to make default.
    pub to: VersionTarget,
    /// Why.
    pub reason: String,
}

/// Make a managed group use `$Latest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateGroup {
    /// `AutoScalingGroupName`.
    pub group: String,
    /// The template the group uses (id, else name).
    pub template: String,
    /// The version the group uses now.
    pub from: String,
    /// Always `$Latest`.
    pub to: String,
    /// True when the group uses a `MixedInstancesPolicy`.
    pub mixed_instances_policy: bool,
    /// Why.
    pub reason: String,
    /// What to send.
    #[serde(skip)]
    pub launch: GroupLaunch,
    /// `$Latest`'s image is unusable until the version this run creates
    /// exists: without it the group stays where it is.
    #[serde(skip)]
    pub relies_on_created: bool,
}

/// Start an instance refresh of a rolling group (`ami-reconciler:rollout=rolling`)
/// whose in-service instances do not all run `image`. The desired
/// configuration is the group's template at `$Latest`, so the group stays on
/// `$Latest` when the refresh succeeds; instances already on the image stay
/// (`SkipMatching`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartInstanceRefresh {
    /// `AutoScalingGroupName`.
    pub group: String,
    /// The template the group launches from, at `$Latest`.
    #[serde(skip)]
    pub template: TemplateRef,
    /// The image `$Latest` has after this run: what the refresh rolls out.
    pub image: String,
    /// In-service instances on another image, of `in_service`.
    pub outdated: usize,
    /// In-service instances.
    pub in_service: usize,
    /// How instances are replaced.
    #[serde(flatten)]
    pub preferences: RollingPreferences,
    /// Why.
    pub reason: String,
    /// The group's `ami-reconciler:rollout-image` before this run: restored
    /// if the start fails.
    #[serde(skip)]
    pub previous_rollout_image: Option<String>,
    /// The image is the version this run creates.
    #[serde(skip)]
    pub relies_on_created: bool,
    /// The group reaches `$Latest` by this run's update.
    #[serde(skip)]
    pub relies_on_update: bool,
}

/// Delete old versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteVersions {
    /// The template.
    pub template_id: String,
    /// Version numbers, ascending.
    pub versions: Vec<i64>,
    /// Why.
    pub reason: String,
    /// What the deletion relies on succeeding first.
    #[serde(skip)]
    pub relies_on: Reliance,
}

/// What a create achieved, judged from the number EC2 answered and the
/// versions read right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new version from the source: the one this run wanted.
    Fresh,
    /// Another version lies between the source and the created one: another
    /// writer made it after the source was read, so ours lacks its changes.
    Raced,
    /// The number does not exist: EC2 answered the `ClientToken` with a
    /// version made earlier and deleted since (an operator's rollback).
    Replayed,
}

impl CreateVersion {
    /// Judges the created number against the versions read after it
    /// (`None` when that read failed). EC2 never reuses a number, so a gap
    /// alone only means versions were deleted; without the read, a gap is
    /// taken for a race, the safe side.
    pub fn judge(&self, created: i64, existing: Option<&[i64]>) -> Created {
        match existing {
            Some(numbers) if !numbers.contains(&created) => Created::Replayed,
            Some(numbers)
                if numbers
                    .iter()
                    .any(|n| *n > self.source_version && *n < created) =>
            {
                Created::Raced
            }
            Some(_) => Created::Fresh,
            None if created == self.source_version + 1 => Created::Fresh,
            None => Created::Raced,
        }
    }
}

impl Change {
    /// The `action` name, as in the JSON report.
    pub fn action(&self) -> &'static str {
        match self {
            Change::CreateVersion(_) => "create_version",
            Change::SetDefaultVersion(_) => "set_default_version",
            Change::UpdateGroup(_) => "update_group",
            Change::StartInstanceRefresh(_) => "start_instance_refresh",
            Change::DeleteVersions(_) => "delete_versions",
        }
    }

    /// True when the change writes to the launch template (the writes the
    /// template's `ami-reconciler:managed` tag must allow).
    pub fn writes_template(&self) -> bool {
        matches!(
            self,
            Change::CreateVersion(_) | Change::SetDefaultVersion(_) | Change::DeleteVersions(_)
        )
    }

    /// What the change acts on: a template id or a group name.
    pub fn target(&self) -> &str {
        match self {
            Change::CreateVersion(c) => &c.template_id,
            Change::SetDefaultVersion(c) => &c.template_id,
            Change::DeleteVersions(c) => &c.template_id,
            Change::UpdateGroup(c) => &c.group,
            Change::StartInstanceRefresh(c) => &c.group,
        }
    }
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

/// What observe hands the planner: each managed template's state with its
/// settings, or why it is skipped, and the managed groups on no managed
/// template.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The templates, by id.
    pub templates: Vec<Observation>,
    /// Managed groups whose launch template is not managed (tag mode).
    pub stray_groups: Vec<Group>,
    /// The discovery tag, in tag mode.
    pub discovery_tag: Option<Tag>,
    /// What observe could not read and the run goes on without.
    pub warnings: Vec<Warning>,
}

/// One managed template as observed.
#[derive(Debug, Clone)]
// Few of these exist per run, each moved once: boxing `Ready` buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    /// Read in full: plan it with these settings.
    Ready {
        /// What was read.
        state: State,
        /// The run's settings with the template's own tags applied.
        settings: Settings,
    },
    /// Left alone, for the reason the warning gives.
    Skipped {
        /// The template.
        template: DiscoveredTemplate,
        /// Why.
        warning: Warning,
    },
}

/// The plans of one run: one per managed template, and the run's own warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// One plan per template, in the order observed.
    pub plans: Vec<Plan>,
    /// Warnings about no single template.
    pub warnings: Vec<Warning>,
}

impl RunPlan {
    /// True when no template has anything to do.
    pub fn is_converged(&self) -> bool {
        self.plans.iter().all(Plan::is_converged)
    }
}

/// The settings of each discovered template: the run's, with the template's
/// own tags applied. A template is skipped, with a warning, when a tag is
/// malformed or when several templates are managed and it has no lineage.
pub fn template_settings(
    discovered: &[DiscoveredTemplate],
    settings: &Settings,
) -> Vec<Result<Settings, Warning>> {
    discovered
        .iter()
        .map(|template| {
            let own =
                settings
                    .for_template(&template.tags)
                    .map_err(|err| Warning::BadTemplateTag {
                        template: template.id.clone(),
                        tag: err.setting().to_owned(),
                        problem: err.to_string(),
                    })?;
            if discovered.len() > 1 && own.image_tag.is_none() {
                return Err(Warning::NoLineage {
                    template: template.id.clone(),
                    templates: discovered.len(),
                });
            }
            Ok(own)
        })
        .collect()
}

/// Plans every observed template on its own; a skipped one gets a plan with
/// no change and its warning. Pure, like [`plan`].
pub fn plan_run(observed: &Observed, settings: &Settings) -> RunPlan {
    let plans = observed
        .templates
        .iter()
        .map(|observation| match observation {
            Observation::Ready { state, settings } => {
                let mut plan = plan(state, settings);
                plan.warnings.extend(write_tag_warning(
                    &state.template,
                    &plan.changes,
                    settings.write_tag(),
                ));
                plan
            }
            Observation::Skipped { template, warning } => Plan {
                template_id: template.id.clone(),
                template_name: template.name.clone(),
                newest_backup: None,
                changes: Vec::new(),
                warnings: vec![warning.clone()],
            },
        })
        .collect();
    let mut warnings = observed.warnings.clone();
    if let (Some(tag), true) = (&observed.discovery_tag, observed.templates.is_empty()) {
        warnings.push(Warning::NoTemplateTagged { tag: tag.clone() });
    }
    let mut strays: Vec<&Group> = observed.stray_groups.iter().collect();
    strays.sort_by(|a, b| a.name.cmp(&b.name));
    warnings.extend(
        strays
            .into_iter()
            .map(|group| match launch_of(group, settings) {
                Err(warning) => warning,
                Ok((spec, _)) => Warning::OtherTemplate {
                    group: group.name.clone(),
                    template: spec.template_label(),
                },
            }),
    );
    RunPlan { plans, warnings }
}

/// A warning when `changes` write to a template that is known to lack the
/// tag the deployed policies' write statements require.
pub fn write_tag_warning(template: &Template, changes: &[Change], tag: Tag) -> Option<Warning> {
    let writes = changes.iter().any(Change::writes_template);
    (writes && template.carries(&tag) == Some(false)).then(|| Warning::TemplateNotTaggedForWrites {
        template: template.id.clone(),
        tag,
    })
}

/// Computes the plan. Pure: the same state and settings always give the same plan.
pub fn plan(state: &State, settings: &Settings) -> Plan {
    let template = &state.template;
    let mut warnings = Vec::new();
    let mut changes = Vec::new();

    let rules = Eligibility::of(state, settings);
    let newest = newest_backup(&state.images, &rules);
    warnings.extend(held_back(&state.images, &rules, newest));
    let latest_number = template.latest().map_or(0, |v| v.number);

    let mut image = image_change(state, newest, &settings.marker, &mut warnings);
    let latest_unusable = image.as_ref().is_some_and(|c| c.latest_unusable);
    // A running refresh follows $Latest: a newer image now would replace
    // the instances it already replaced. Wait for it; a rollback (an
    // unusable image) goes through, and the refresh follows it.
    if let (Some(_), false, Some(newest), Some((group, refresh))) =
        (&image, latest_unusable, newest, running_refresh(state))
    {
        warnings.push(Warning::ImageWaitsForRollout {
            template: template.id.clone(),
            image: newest.id.clone(),
            group: group.to_owned(),
            refresh: refresh.map(str::to_owned),
        });
        image = None;
    }
    let create = image.map(|ImageChange { reason, .. }| {
        let to = newest.map(|i| i.id.clone()).unwrap_or_default();
        let block_devices = snapshot_mappings(template);
        if let Some(newest) = newest {
            warnings.extend(snapshot_overrides(&template.id, &block_devices, newest));
        }
        CreateVersion {
            block_devices,
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
    let create_image = create.as_ref().map(|c| c.to_image.clone());
    changes.extend(create.map(Change::CreateVersion));

    let switch = default_switch(template.default_version, latest_number, creates);
    let switches_default = switch.is_some();
    changes.extend(switch.map(|(to, reason)| {
        Change::SetDefaultVersion(SetDefaultVersion {
            template_id: template.id.clone(),
            from: template.default_version,
            to,
            reason,
        })
    }));

    let mut groups: Vec<&Group> = state.managed_groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut moving: BTreeSet<&str> = BTreeSet::new();
    for group in groups {
        match group_change(group, &state.template, settings) {
            Ok(Some(mut change)) => {
                change.relies_on_created = latest_unusable;
                moving.insert(&group.name);
                changes.push(Change::UpdateGroup(change));
            }
            Ok(None) => {}
            Err(warning) => warnings.push(warning),
        }
    }

    let target = rollout_image(state, settings, create_image.as_deref());
    for group in state.rolling_groups() {
        match rollout(group, state, target, moving.contains(group.name.as_str())) {
            Rollout::Nothing => {}
            Rollout::Warn(warning) => warnings.push(warning),
            Rollout::Start(mut change) => {
                change.relies_on_created = creates;
                changes.push(Change::StartInstanceRefresh(change));
            }
        }
    }

    let window = KeepWindow {
        keep: settings.keep_versions as usize,
        creates,
        switches_default,
    };
    match prune(state, &window, &moving) {
        Prune::Nothing => {}
        Prune::OtherGroupsNotRead(versions) => warnings.push(Warning::OtherGroupsNotRead {
            template: template.id.clone(),
            versions,
        }),
        Prune::Delete(change) => changes.push(Change::DeleteVersions(change)),
    }

    Plan {
        template_id: template.id.clone(),
        template_name: template.name.clone(),
        newest_backup: newest.map(ImageSummary::from),
        changes,
        warnings,
    }
}

/// The image a rollout converges instances to: the image `$Latest` has after
/// this run, when it is a backup the rules admit now (the soak time holds
/// for rollouts too). `None`: nothing is rolled out.
fn rollout_image<'s>(
    state: &'s State,
    settings: &Settings,
    created: Option<&'s str>,
) -> Option<&'s str> {
    if created.is_some() {
        return created;
    }
    match &state.current_image {
        CurrentImage::Found(image) if Eligibility::of(state, settings).admits(image) => {
            Some(&image.id)
        }
        _ => None,
    }
}

/// A rolling group of this template with a refresh that is not over, and
/// the refresh's id; the first by group name. When the refreshes could not
/// be read, the first rolling group, with no id: one may be running.
fn running_refresh(state: &State) -> Option<(&str, Option<&str>)> {
    if state.rollouts_unread {
        return state
            .rolling_groups()
            .first()
            .map(|g| (g.name.as_str(), None));
    }
    state.rolling_groups().into_iter().find_map(|g| {
        let active = state
            .refreshes
            .get(&g.name)?
            .iter()
            .find(|r| r.is_active())?;
        Some((g.name.as_str(), Some(active.id.as_str())))
    })
}

/// What a rolling group needs.
enum Rollout {
    Nothing,
    Warn(Warning),
    Start(StartInstanceRefresh),
}

/// The rolling groups whose instances do not all run the rollout image:
/// `observe` reads their refreshes, and only theirs.
pub fn refresh_candidates(state: &State, settings: &Settings) -> Vec<String> {
    let p = plan(state, settings);
    let created = p.changes.iter().find_map(|c| match c {
        Change::CreateVersion(c) => Some(c.to_image.as_str()),
        _ => None,
    });
    let Some(target) = rollout_image(state, settings, created) else {
        return Vec::new();
    };
    state
        .rolling_groups()
        .into_iter()
        .filter(|g| outdated(g, state, target) > 0)
        .map(|g| g.name.clone())
        .collect()
}

/// In-service instances known to run another image than `target`. An
/// instance whose image was not read (gone since the group was read) counts
/// for neither side.
fn outdated(group: &Group, state: &State, target: &str) -> usize {
    group
        .in_service
        .iter()
        .filter_map(|id| state.instance_images.get(id))
        .filter(|image| image.as_str() != target)
        .count()
}

fn rollout(group: &Group, state: &State, target: Option<&str>, moving: bool) -> Rollout {
    let Some(target) = target else {
        return Rollout::Nothing;
    };
    if group.being_deleted {
        return Rollout::Nothing;
    }
    let spec = match &group.launch {
        LaunchSource::Template(spec) if spec.points_at(&state.template) => spec,
        LaunchSource::Mixed(_) => {
            return Rollout::Warn(Warning::RolloutUnsupported {
                group: group.name.clone(),
            });
        }
        _ => return Rollout::Nothing,
    };
    // Only a group on $Latest (now, or by this run) follows the template.
    if !spec.is_latest() && !moving {
        return Rollout::Nothing;
    }
    let outdated = outdated(group, state, target);
    if outdated == 0 {
        return Rollout::Nothing;
    }
    let preferences = match RolloutPreferences::of(group) {
        Ok(p) => p,
        Err(warning) => return Rollout::Warn(warning),
    };
    let Some(refreshes) = state.refreshes.get(&group.name) else {
        // Not read: nothing is decided without the group's refreshes.
        return Rollout::Nothing;
    };
    if let Some(active) = refreshes.iter().find(|r| r.is_active()) {
        return Rollout::Warn(Warning::RolloutRunning {
            group: group.name.clone(),
            refresh: active.id.clone(),
            status: active.status.clone(),
            outdated,
        });
    }
    let recorded = group.tags.get(group_tags::ROLLOUT_IMAGE);
    if recorded.map(String::as_str) == Some(target) {
        // A refresh for this image was started and is over, yet instances
        // still run older images: never start it again (no loops).
        return Rollout::Warn(Warning::RolloutStopped {
            group: group.name.clone(),
            image: target.to_owned(),
            last_status: refreshes.first().map(|r| r.status.clone()),
            outdated,
        });
    }
    Rollout::Start(StartInstanceRefresh {
        group: group.name.clone(),
        template: spec.at_latest(),
        image: target.to_owned(),
        outdated,
        in_service: group.in_service.len(),
        reason: format!(
            "tagged {}={}: {outdated} of {} in-service instances run another image than {target}",
            group_tags::ROLLOUT,
            group_tags::ROLLING,
            group.in_service.len()
        ),
        preferences: RollingPreferences {
            min_healthy_percentage: preferences.min_healthy(group),
            max_healthy_percentage: preferences.max_healthy(group),
            checkpoint_percentages: preferences.checkpoints,
            checkpoint_delay_seconds: preferences.checkpoint_delay,
        },
        previous_rollout_image: recorded.cloned(),
        relies_on_created: false,
        relies_on_update: moving,
    })
}

/// A rolling group's refresh preferences, from its tags.
struct RolloutPreferences {
    min_healthy: Option<i32>,
    checkpoints: Vec<i32>,
    checkpoint_delay: Option<i64>,
}

impl RolloutPreferences {
    fn of(group: &Group) -> Result<Self, Warning> {
        let bad = |tag: &str, value: &str, expected: &str| Warning::BadRolloutTag {
            group: group.name.clone(),
            tag: tag.to_owned(),
            problem: format!("{tag} must be {expected}, got {value:?}"),
        };
        let min_healthy = match group.tags.get(group_tags::MIN_HEALTHY) {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=100).contains(n))
                    .ok_or_else(|| {
                        bad(group_tags::MIN_HEALTHY, raw, "a whole number from 0 to 100")
                    })?,
            ),
        };
        let checkpoints = match group.tags.get(group_tags::CHECKPOINTS) {
            None => Vec::new(),
            Some(raw) => {
                // The last must be 100: AWS calls a refresh Successful once
                // the last checkpoint's share is replaced, and a rollout that
                // stopped short would never be started again for its image.
                let expected = "ascending whole numbers from 1 to 100 ending with 100, comma-separated (e.g. 25,50,100)";
                let numbers: Option<Vec<i32>> = raw
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<i32>()
                            .ok()
                            .filter(|n| (1..=100).contains(n))
                    })
                    .collect();
                let numbers = numbers.ok_or_else(|| bad(group_tags::CHECKPOINTS, raw, expected))?;
                if numbers.windows(2).any(|w| w[1] <= w[0]) || numbers.last() != Some(&100) {
                    return Err(bad(group_tags::CHECKPOINTS, raw, expected));
                }
                numbers
            }
        };
        let checkpoint_delay = match group.tags.get(group_tags::CHECKPOINT_DELAY) {
            None => None,
            Some(raw) => {
                let expected = "a whole number with a unit s, m, h or d (e.g. 30m), at most 2d, with ami-reconciler:checkpoints";
                let seconds = crate::settings::parse_duration(raw)
                    .map(|d| d.num_seconds())
                    .filter(|s| *s <= MAX_CHECKPOINT_DELAY && !checkpoints.is_empty())
                    .ok_or_else(|| bad(group_tags::CHECKPOINT_DELAY, raw, expected))?;
                Some(seconds)
            }
        };
        Ok(RolloutPreferences {
            min_healthy,
            checkpoints,
            checkpoint_delay,
        })
    }

    /// A one-instance group keeps its instance until the new one is
    /// healthy: 100, whatever the tag says. Without the tag nothing is sent:
    /// AWS then applies the group's instance maintenance policy, else 90.
    fn min_healthy(&self, group: &Group) -> Option<i32> {
        if group.desired_capacity == 1 {
            Some(100)
        } else {
            self.min_healthy
        }
    }

    /// 200 for a one-instance group: launch before terminate. Otherwise
    /// not sent, so AWS terminates before it launches within MinHealthy.
    fn max_healthy(&self, group: &Group) -> Option<i32> {
        (group.desired_capacity == 1).then_some(200)
    }
}

/// `CheckpointDelay`'s upper bound in the API (seconds).
const MAX_CHECKPOINT_DELAY: i64 = 172_800;

/// True when the plan would delete versions if no group outside the managed
/// tag referenced any: the most a deletion could take. `observe` reads the
/// untagged groups only then, so a converged run stays at its call floor.
pub fn may_delete(state: &State, settings: &Settings) -> bool {
    let assume_none = State {
        other_groups: Some(Vec::new()),
        ..state.clone()
    };
    plan(&assume_none, settings)
        .changes
        .iter()
        .any(|c| matches!(c, Change::DeleteVersions(_)))
}

/// What makes an image a backup this template may launch from.
#[derive(Debug, Clone)]
pub struct Eligibility<'a> {
    /// Text the description contains (`AMI_DESCRIPTION_MARKER`).
    pub marker: &'a str,
    /// The tag every backup of this workload carries (`IMAGE_TAG`).
    pub lineage: Option<&'a Tag>,
    /// The architecture of the template's current image, when known.
    pub architecture: Option<&'a str>,
    /// How old a backup must be (`MIN_IMAGE_AGE`).
    pub min_age: chrono::Duration,
    /// When the state was read: the age is measured against it.
    pub observed_at: DateTime<Utc>,
}

impl<'a> Eligibility<'a> {
    /// The rules for this state and these settings.
    pub fn of(state: &'a State, settings: &'a Settings) -> Self {
        let architecture = match &state.current_image {
            CurrentImage::Found(image) => image.architecture.as_deref(),
            _ => None,
        };
        Eligibility {
            marker: &settings.marker,
            lineage: settings.image_tag.as_ref(),
            architecture,
            min_age: settings.min_image_age,
            observed_at: state.observed_at,
        }
    }

    /// A backup of this workload, whatever its architecture and age:
    /// owned, available, with the marker and the lineage tag, not skip-tagged.
    fn is_backup(&self, image: &Image) -> bool {
        image.owned_by_account
            && image.is_available()
            && image.description.contains(self.marker)
            && !image.skip_tagged
            && self.lineage.is_none_or(|tag| image.carries(tag))
    }

    fn same_architecture(&self, image: &Image) -> bool {
        match (self.architecture, image.architecture.as_deref()) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        }
    }

    fn soaked(&self, image: &Image) -> bool {
        self.min_age.is_zero() || self.usable_from(image) <= self.observed_at
    }

    fn usable_from(&self, image: &Image) -> DateTime<Utc> {
        image.created + self.min_age
    }

    /// True when the template may launch from this image now.
    pub fn admits(&self, image: &Image) -> bool {
        self.is_backup(image) && self.same_architecture(image) && self.soaked(image)
    }
}

/// Newest first by creation date; ties go to the higher id, so the choice
/// never depends on the order the API returned.
fn newer(a: &Image, b: &Image) -> std::cmp::Ordering {
    a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id))
}

/// The newest image the rules admit.
pub fn newest_backup<'a>(images: &'a [Image], rules: &Eligibility) -> Option<&'a Image> {
    images
        .iter()
        .filter(|i| rules.admits(i))
        .max_by(|a, b| newer(a, b))
}

/// Warnings for the backups newer than the chosen one that the rules keep
/// out for now: another architecture, or not soaked yet.
fn held_back(images: &[Image], rules: &Eligibility, chosen: Option<&Image>) -> Vec<Warning> {
    let mut newer_backups: Vec<&Image> = images
        .iter()
        .filter(|i| rules.is_backup(i))
        .filter(|i| chosen.is_none_or(|c| newer(i, c).is_gt()))
        .collect();
    newer_backups.sort_by(|a, b| newer(a, b));
    let mut warnings = Vec::new();
    let other: Vec<String> = newer_backups
        .iter()
        .filter(|i| !rules.same_architecture(i))
        .map(|i| i.id.clone())
        .collect();
    if let (false, Some(architecture)) = (other.is_empty(), rules.architecture) {
        warnings.push(Warning::OtherArchitecture {
            images: other,
            architecture: architecture.to_owned(),
        });
    }
    warnings.extend(
        newer_backups
            .iter()
            .filter(|i| rules.same_architecture(i) && !rules.soaked(i))
            .map(|i| Warning::Soaking {
                image: i.id.clone(),
                created: i.created,
                usable_from: rules.usable_from(i),
            }),
    );
    warnings
}

/// Why `$Latest` needs a new image.
struct ImageChange {
    reason: String,
    /// `$Latest`'s image is skip-tagged, gone or broken: groups must not
    /// follow `$Latest` until the new version exists.
    latest_unusable: bool,
}

/// Why `$Latest` needs a new image, or `None` (with a warning when relevant).
fn image_change(
    state: &State,
    newest: Option<&Image>,
    marker: &str,
    warnings: &mut Vec<Warning>,
) -> Option<ImageChange> {
    let template = &state.template.id;
    if let CurrentImage::FromSsm(parameter) = &state.current_image {
        warnings.push(Warning::ImageFromSsm {
            template: template.clone(),
            parameter: parameter.clone(),
        });
        return None;
    }
    let Some(newest) = newest else {
        warnings.push(Warning::NoBackup {
            marker: marker.to_owned(),
        });
        return None;
    };
    let refused = state
        .template
        .latest()
        .and_then(|v| v.description.as_deref())
        .and_then(refusal);
    if let Some(refused) = refused.filter(|r| r.image == newest.id) {
        warnings.push(Warning::VersionWarned {
            template: template.clone(),
            image: refused.image.to_owned(),
            version: refused.version,
            messages: refused.messages.to_owned(),
        });
        return None;
    }
    let unusable = |reason: String| {
        Some(ImageChange {
            reason,
            latest_unusable: true,
        })
    };
    match &state.current_image {
        CurrentImage::Found(current) if current.id == newest.id => None,
        CurrentImage::Found(current) if current.skip_tagged => unusable(format!(
            "{} is tagged {SKIP_TAG_KEY}=true; {} is the newest good backup ({})",
            current.id, newest.id, newest.created
        )),
        CurrentImage::Found(current) if current.is_unusable() => unusable(format!(
            "{} is {}; {} is the newest backup ({})",
            current.id, current.state, newest.id, newest.created
        )),
        CurrentImage::Found(current) if current.created < newest.created => Some(ImageChange {
            reason: format!(
                "newer backup: {} ({}) replaces {} ({})",
                newest.id, newest.created, current.id, current.created
            ),
            latest_unusable: false,
        }),
        CurrentImage::Found(current) => {
            warnings.push(Warning::NotMovingBackwards {
                template: template.clone(),
                current: current.id.clone(),
                current_created: current.created,
                newest: newest.id.clone(),
                newest_created: newest.created,
            });
            None
        }
        CurrentImage::Missing(id) => unusable(format!(
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

/// How a restore version's description begins: `$Latest` is a copy of the
/// version before one that EC2 created with a `Warning`.
const RESTORED_PREFIX: &str = "ami-reconciler: restored after EC2 warned about ";
/// EC2's limit on `VersionDescription`.
const MAX_DESCRIPTION: usize = 255;

/// The description of the version that restores `$Latest` after EC2 created
/// `warned` (with `image`) and answered with `messages`. It is the memory of
/// the refusal: while it describes `$Latest` and `image` is still the newest
/// backup, no run creates a version again ([`Warning::VersionWarned`]).
pub fn restore_description(image: &str, warned: i64, messages: &[String]) -> String {
    let text = format!(
        "{RESTORED_PREFIX}{image} in version {warned}: {}",
        messages.join("; ")
    );
    match text.char_indices().nth(MAX_DESCRIPTION) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

/// A refusal read back from a restore version's description.
struct Refusal<'a> {
    image: &'a str,
    version: i64,
    messages: &'a str,
}

fn refusal(description: &str) -> Option<Refusal<'_>> {
    let rest = description.strip_prefix(RESTORED_PREFIX)?;
    let (image, rest) = rest.split_once(" in version ")?;
    let (version, messages) = rest.split_once(": ")?;
    Some(Refusal {
        image,
        version: version.parse().ok()?,
        messages,
    })
}

/// `$Latest`'s block device mappings when any names a snapshot (they must
/// be sent, or the new version loses the snapshots); otherwise none.
fn snapshot_mappings(template: &Template) -> Vec<BlockDevice> {
    let devices = template
        .latest()
        .map(|v| v.block_devices.clone())
        .unwrap_or_default();
    if devices.iter().any(|d| d.snapshot_id().is_some()) {
        devices
    } else {
        Vec::new()
    }
}

/// A warning per device the template maps to a snapshot while the new image
/// maps it to another: the template's snapshot wins at launch.
fn snapshot_overrides(template: &str, devices: &[BlockDevice], image: &Image) -> Vec<Warning> {
    devices
        .iter()
        .filter_map(|d| {
            let device = d.device_name.as_deref()?;
            let ours = d.snapshot_id()?;
            let theirs = image.snapshots.get(device)?;
            (ours != theirs).then(|| Warning::SnapshotOverridesImage {
                template: template.to_owned(),
                device: device.to_owned(),
                template_snapshot: ours.to_owned(),
                image: image.id.clone(),
                image_snapshot: theirs.clone(),
            })
        })
        .collect()
}

/// The default follows the latest version: the one this run creates, else
/// the highest number.
fn default_switch(default: i64, latest: i64, creates: bool) -> Option<(VersionTarget, String)> {
    if creates {
        Some((
            VersionTarget::Created,
            "the default follows the new latest version".to_owned(),
        ))
    } else if default != latest {
        Some((
            VersionTarget::Number(latest),
            format!("the default ({default}) is not the latest version ({latest})"),
        ))
    } else {
        None
    }
}

/// The reference a group launches from and what an update would send, or
/// why the reconciler cannot move it.
fn launch_of<'g>(
    group: &'g Group,
    settings: &Settings,
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
                tag: settings.asg_tag.clone(),
                launch_configuration: name.clone(),
            });
        }
        LaunchSource::Unknown => {
            return Err(Warning::NoLaunchTemplate {
                group: group.name.clone(),
                tag: settings.asg_tag.clone(),
            });
        }
    })
}

fn group_change(
    group: &Group,
    template: &Template,
    settings: &Settings,
) -> Result<Option<UpdateGroup>, Warning> {
    let (spec, launch) = launch_of(group, settings)?;
    if !spec.points_at(template) {
        return Err(Warning::OtherTemplate {
            group: group.name.clone(),
            template: spec.template_label(),
        });
    }
    if spec.is_latest() {
        return Ok(None);
    }
    if group.being_deleted {
        return Err(Warning::GroupBeingDeleted {
            group: group.name.clone(),
        });
    }
    Ok(Some(UpdateGroup {
        group: group.name.clone(),
        template: spec.template_label(),
        from: spec.version_label(),
        to: LATEST.to_owned(),
        mixed_instances_policy: matches!(launch, GroupLaunch::Mixed(_)),
        reason: format!("tagged {} and not on {LATEST}", settings.asg_tag),
        launch,
        relies_on_created: false,
    }))
}

/// Which versions the newest-N window keeps, given what this run changes.
struct KeepWindow {
    /// `KEEP_VERSIONS`.
    keep: usize,
    /// The run creates a version, which counts towards the window.
    creates: bool,
    /// The run switches the default.
    switches_default: bool,
}

impl KeepWindow {
    /// Existing versions outside the window that are not the default after
    /// this run, ascending.
    fn outside(&self, template: &Template) -> Vec<i64> {
        let keep_existing = if self.creates {
            self.keep - 1
        } else {
            self.keep
        };
        // After a switch to the created version the old default becomes
        // deletable; without a switch the default stays protected.
        let default_after = match (self.switches_default, self.creates) {
            (false, _) => Some(template.default_version),
            (true, false) => template.latest().map(|v| v.number),
            (true, true) => None,
        };
        let mut numbers: Vec<i64> = template.versions.iter().map(|v| v.number).collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        let mut outside: Vec<i64> = numbers
            .into_iter()
            .skip(keep_existing)
            .filter(|n| Some(*n) != default_after)
            .collect();
        outside.sort_unstable();
        outside
    }
}

/// Versions referenced by number: `protected` stay; `released_by` are
/// pinned only by a managed group's top-level reference that this run moves
/// to `$Latest`, so they may go once that move succeeds.
#[derive(Default)]
struct Pins {
    protected: BTreeSet<i64>,
    released_by: BTreeMap<i64, Vec<String>>,
}

fn pins(state: &State, moving: &BTreeSet<&str>) -> Pins {
    let mut pins = Pins::default();
    let others = state.other_groups.iter().flatten().map(|g| (g, false));
    let managed = state
        .managed_groups
        .iter()
        .map(|g| (g, moving.contains(g.name.as_str())));
    for (group, is_moving) in managed.chain(others) {
        for (index, spec) in group.template_refs().into_iter().enumerate() {
            let Some(n) = spec
                .pinned_number()
                .filter(|_| spec.points_at(&state.template))
            else {
                continue;
            };
            if is_moving && index == 0 {
                pins.released_by
                    .entry(n)
                    .or_default()
                    .push(group.name.clone());
            } else {
                pins.protected.insert(n);
            }
        }
    }
    for names in pins.released_by.values_mut() {
        names.sort();
        names.dedup();
    }
    pins
}

enum Prune {
    Nothing,
    /// These could go, but untagged groups were not read.
    OtherGroupsNotRead(Vec<i64>),
    Delete(DeleteVersions),
}

fn prune(state: &State, window: &KeepWindow, moving: &BTreeSet<&str>) -> Prune {
    let template = &state.template;
    let mut candidates = window.outside(template);
    if candidates.is_empty() {
        return Prune::Nothing;
    }
    let Pins {
        protected,
        mut released_by,
    } = pins(state, moving);
    let pinned: Vec<i64> = candidates
        .iter()
        .copied()
        .filter(|n| protected.contains(n))
        .collect();
    candidates.retain(|n| !protected.contains(n));
    if candidates.is_empty() {
        return Prune::Nothing;
    }
    if state.other_groups.is_none() {
        return Prune::OtherGroupsNotRead(candidates);
    }
    released_by.retain(|n, _| candidates.contains(n));
    let previous_default = Some(template.default_version)
        .filter(|d| window.switches_default && candidates.contains(d));
    let keep = window.keep;
    Prune::Delete(DeleteVersions {
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
        relies_on: Reliance {
            created_version: window.creates,
            previous_default,
            released_by,
        },
    })
}
