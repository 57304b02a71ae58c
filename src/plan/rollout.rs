//! Rollouts: instance refreshes of groups tagged
//! `ami-reconciler:rollout=rolling`, and the hold a running one puts on a
//! newer image.

use std::collections::BTreeMap;

use super::change::{
    CreateVersion, Prerequisite, QuarantineImage, SetDefaultVersion, StartInstanceRefresh,
    UpdateGroup, VersionTarget,
};
use super::image::{Eligibility, ImageChange, ImageChoice, Latest};
use super::reads::Read;
use super::{Decision, Notes};
use crate::model::{
    CurrentImage, Group, GroupLaunch, LaunchSource, MAX_TAG_VALUE_CHARS, OnFailure, Refresh,
    RollingPreferences, State, TemplateRef, group_tags,
};
use crate::policy::{Policy, parse_age};
use crate::warning::Warning;

/// `CheckpointDelay`'s upper bound in the API (seconds).
const MAX_CHECKPOINT_DELAY: i64 = 172_800;

/// One rollout at a time: while a refresh runs, a newer image waits, since
/// a new default now would start a second rollout over the instances the
/// first is replacing (the running one keeps its version by number). A
/// rollback (an unusable image) goes through.
pub fn hold(state: &State, choice: ImageChoice<'_>) -> Decision<Option<ImageChange>> {
    let ImageChoice {
        newest,
        change,
        latest,
    } = choice;
    let Some(change) = change else {
        return Decision::made(None);
    };
    let running = running_refresh(state);
    match (newest, running) {
        (Some(newest), Some((group, refresh))) if latest == Latest::Safe => Decision::made(None)
            .warn([Warning::ImageWaitsForRollout {
                template: state.template.id.clone(),
                image: newest.id.clone(),
                group: group.to_owned(),
                refresh: refresh.map(str::to_owned),
            }]),
        _ => Decision::made(Some(change)),
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

/// The version rolling groups converge on, by number: the default after
/// this run, when its image is a backup the rules admit now (the soak time
/// holds for rollouts too).
#[derive(Debug, Clone, Copy)]
pub struct Target<'s> {
    pub version: VersionTarget,
    pub image: &'s str,
}

impl Target<'_> {
    /// True when the group's version `number` is this target.
    fn is(&self, number: i64) -> bool {
        self.version == VersionTarget::Number(number)
    }

    fn label(&self) -> String {
        match self.version {
            VersionTarget::Number(n) => n.to_string(),
            VersionTarget::Created => "created".to_owned(),
        }
    }
}

/// The target of this run's rollouts; `None`: nothing is rolled out.
pub fn target<'s>(
    state: &'s State,
    policy: &Policy,
    create: Option<&'s CreateVersion>,
    switch: Option<&SetDefaultVersion>,
) -> Option<Target<'s>> {
    if let Some(create) = create {
        return Some(Target {
            version: VersionTarget::Created,
            image: &create.to_image,
        });
    }
    let number = match switch.map(|s| s.to) {
        Some(VersionTarget::Number(n)) => n,
        Some(VersionTarget::Created) => return None,
        None => state.template.default_version,
    };
    let image_id = state.template.image_of(number)?;
    let current = match &state.current_image {
        CurrentImage::Found(image) => Some(image),
        _ => None,
    };
    let image = state
        .images
        .iter()
        .chain(current)
        .find(|i| i.id == image_id)?;
    Eligibility::of(state, policy)
        .admits(image)
        .then_some(Target {
            version: VersionTarget::Number(number),
            image: &image.id,
        })
}

/// A rolling group's launch template reference, when it names this
/// template directly (not through a mixed instances policy) and the group
/// is not being deleted: the groups rollouts place and refresh.
fn placed<'g>(group: &'g Group, state: &State) -> Option<&'g TemplateRef> {
    match &group.launch {
        LaunchSource::Template(spec) if spec.points_at(&state.template) && !group.being_deleted => {
            Some(spec)
        }
        _ => None,
    }
}

/// The version a group's in-service instances run, to pin it to before
/// its rollout: among the instances not on the target's image (all of
/// them without a target), the image most run; the default when it carries
/// that image, else the newest version with it, never the target's number
/// (a refresh to the version the group is on may replace nothing). The
/// default when none is known.
fn instances_version(group: &Group, state: &State, target: Option<Target>) -> i64 {
    let template = &state.template;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for image in group
        .in_service
        .iter()
        .filter_map(|id| state.instance_images.get(id))
        .filter(|image| target.is_none_or(|t| image.as_str() != t.image))
    {
        *counts.entry(image.as_str()).or_default() += 1;
    }
    // Most instances first; among equals, the smallest id, so that the
    // choice never depends on the order the API returned.
    let Some((most, _)) = counts
        .into_iter()
        .max_by(|(a, n), (b, m)| n.cmp(m).then_with(|| b.cmp(a)))
    else {
        return template.default_version;
    };
    let allowed = |n: i64| target.is_none_or(|t| !t.is(n));
    if template.image_of(template.default_version) == Some(most)
        && allowed(template.default_version)
    {
        return template.default_version;
    }
    template
        .versions
        .iter()
        .filter(|v| v.image_id.as_deref() == Some(most) && allowed(v.number))
        .map(|v| v.number)
        .max()
        .unwrap_or(template.default_version)
}

/// What the group's refreshes say about changing its launch template now.
enum Refreshes<'s> {
    /// Not read yet: ask.
    NotRead,
    /// The reads failed: decide nothing.
    Unreadable,
    /// One runs: AWS refuses a change of the group's launch template while
    /// a refresh with a desired configuration is active.
    Active(&'s Refresh),
    Idle(&'s [Refresh]),
}

fn refreshes_of<'s>(group: &Group, state: &'s State) -> Refreshes<'s> {
    match state.refreshes.get(&group.name) {
        None if state.rollouts_unread => Refreshes::Unreadable,
        None => Refreshes::NotRead,
        Some(list) => match list.iter().find(|r| r.is_active()) {
            Some(active) => Refreshes::Active(active),
            None => Refreshes::Idle(list),
        },
    }
}

/// Rolling groups on a version number, so that a rollout can roll back
/// (Auto Scaling refuses `AutoRollback` for a group on `$Latest` or
/// `$Default`). A group on an alias is pinned to the version its instances
/// run; a group whose instances all run the target already moves to the
/// target's number. Nothing moves while a refresh runs.
pub fn placements(state: &State, target: Option<Target>) -> Decision<Vec<UpdateGroup>> {
    let mut notes = Notes::default();
    let mut moves = Vec::new();
    for group in state.rolling_groups() {
        let Some(spec) = placed(group, state) else {
            continue;
        };
        let on = spec.pinned_number();
        let placement = match target {
            // Already there, or behind: the refresh moves it on success.
            Some(t) if on.is_some_and(|n| t.is(n)) || outdated(group, state, t.image) > 0 => None,
            // Not one instance's image known: nothing says they run the target.
            Some(_)
                if !group.in_service.is_empty()
                    && !group
                        .in_service
                        .iter()
                        .any(|id| state.instance_images.contains_key(id)) =>
            {
                None
            }
            Some(t) => Some((
                t.version,
                format!(
                    "tagged {}={}: its in-service instances already run {}, the image of the default version",
                    group_tags::ROLLOUT,
                    group_tags::ROLLING,
                    t.image
                ),
            )),
            None => None,
        };
        let (version, reason) = match (placement, on) {
            (Some(placement), _) => placement,
            (None, Some(_)) => continue,
            (None, None) => {
                let n = instances_version(group, state, target);
                let reason = format!(
                    "tagged {}={} and on {}: pinned to version {n}, the version its instances run, so that a rollout can roll back",
                    group_tags::ROLLOUT,
                    group_tags::ROLLING,
                    spec.version_label()
                );
                (VersionTarget::Number(n), reason)
            }
        };
        let needs = match version {
            VersionTarget::Created => vec![Prerequisite::VersionCreated],
            VersionTarget::Number(_) => Vec::new(),
        };
        match refreshes_of(group, state) {
            Refreshes::NotRead => {
                notes.reads.push(Read::Refreshes(group.name.clone()));
                continue;
            }
            Refreshes::Unreadable => continue,
            Refreshes::Active(active) => {
                notes.warnings.push(Warning::RolloutRunning {
                    group: group.name.clone(),
                    refresh: active.id.clone(),
                    status: active.status.clone(),
                    outdated: target.map_or(0, |t| outdated(group, state, t.image)),
                });
                continue;
            }
            Refreshes::Idle(_) => {}
        }
        let (to, launch) = match version {
            VersionTarget::Number(n) => (n.to_string(), spec.at_number(n)),
            VersionTarget::Created => ("created".to_owned(), spec.one_identifier()),
        };
        moves.push(UpdateGroup {
            group: group.name.clone(),
            template: spec.template_label(),
            from: spec.version_label(),
            to,
            mixed_instances_policy: false,
            reason,
            launch: GroupLaunch::Plain(launch),
            version: Some(version),
            needs,
        });
    }
    notes.finish(moves)
}

/// A refresh for each rolling group whose in-service instances do not all
/// run the target's image. Asks for the instances' images, and then for the
/// refreshes of the groups that are behind: nothing starts unread.
pub fn refreshes(
    state: &State,
    target: Option<Target>,
    placements: &[UpdateGroup],
) -> Decision<Vec<StartInstanceRefresh>> {
    let rolling = state.rolling_groups();
    let mut notes = Notes::default();
    if rolling.iter().any(|g| !g.in_service.is_empty()) {
        notes.reads.push(Read::InstanceImages);
    }
    let Some(target) = target else {
        return notes.finish(Vec::new());
    };
    let starts = rolling
        .into_iter()
        .filter_map(|group| notes.take(refresh(group, state, target, placements)))
        .collect();
    notes.finish(starts)
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

/// Whether the refreshes before this run may have rolled out the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum History {
    /// The target is the version this run creates.
    Fresh,
    /// Read the group's refreshes and record.
    Read,
}

fn refresh(
    group: &Group,
    state: &State,
    target: Target,
    placements: &[UpdateGroup],
) -> Decision<Option<StartInstanceRefresh>> {
    let nothing = || Decision::made(None);
    if group.being_deleted {
        return nothing();
    }
    if let LaunchSource::Mixed(_) = &group.launch {
        return nothing().warn([Warning::RolloutUnsupported {
            group: group.name.clone(),
        }]);
    }
    let Some(spec) = placed(group, state) else {
        return nothing();
    };
    // The number the group is on when the refresh starts: a rollback
    // returns it there.
    let placement = placements.iter().find(|p| p.group == group.name);
    let rollback_to = match (spec.pinned_number(), placement.and_then(|p| p.version)) {
        (_, Some(VersionTarget::Number(n))) => n,
        (Some(n), None) => n,
        _ => return nothing(),
    };
    let outdated = outdated(group, state, target.image);
    if outdated == 0 {
        return nothing();
    }
    let preferences = match RolloutPreferences::of(group) {
        Ok(p) => p,
        Err(warning) => return nothing().warn([warning]),
    };
    let refreshes = match refreshes_of(group, state) {
        Refreshes::NotRead => return nothing().read(Read::Refreshes(group.name.clone())),
        Refreshes::Unreadable => return nothing(),
        Refreshes::Active(active) => {
            return nothing().warn([Warning::RolloutRunning {
                group: group.name.clone(),
                refresh: active.id.clone(),
                status: active.status.clone(),
                outdated,
            }]);
        }
        Refreshes::Idle(list) => list,
    };
    let recorded = group.tags.get(group_tags::ROLLOUT_IMAGE);
    // A version this run creates was never rolled out: its image's history
    // (a rollback to an image used before) does not count.
    let history = match target.version {
        VersionTarget::Created => History::Fresh,
        VersionTarget::Number(_) => History::Read,
    };
    if let Some(warning) = held(group, state, refreshes, (target.image, history), outdated) {
        return nothing().warn([warning]);
    }
    let needs = match target.version {
        VersionTarget::Created => Some(Prerequisite::VersionCreated),
        VersionTarget::Number(_) => None,
    };
    let in_service = group.in_service.len();
    Decision::made(Some(StartInstanceRefresh {
        group: group.name.clone(),
        template: spec.one_identifier(),
        version: target.version,
        rollback_to,
        image: target.image.to_owned(),
        outdated,
        in_service,
        reason: format!(
            "tagged {}={}: {outdated} of {in_service} {} another image than {} (version {})",
            group_tags::ROLLOUT,
            group_tags::ROLLING,
            if in_service == 1 {
                "in-service instance runs"
            } else {
                "in-service instances run"
            },
            target.image,
            target.label(),
        ),
        preferences: RollingPreferences {
            // Already on the target (its instances run an image in no other
            // version): skip matching compares versions and would keep every
            // instance, and a rollback would return to the same version. All
            // are replaced, with no rollback.
            skip_matching: !target.is(rollback_to),
            // Auto Scaling refuses a rollback to a version whose ImageId is
            // an SSM parameter: the refresh then goes without one.
            auto_rollback: !target.is(rollback_to)
                && !state
                    .template
                    .image_of(rollback_to)
                    .is_some_and(|image| image.starts_with("resolve:ssm:")),
            ..preferences.for_group(group)
        },
        previous_rollout_image: recorded.cloned(),
        needs: needs
            .into_iter()
            .chain(placement.map(|_| Prerequisite::GroupMoved(group.name.clone())))
            .collect(),
    }))
}

/// Statuses of a refresh that failed or was rolled back: with
/// `ami-reconciler:rollout-failure=quarantine` they quarantine its image.
/// `Cancelled` is a person's choice and never does.
pub const FAILED_STATUSES: [&str; 3] = ["Failed", "RollbackSuccessful", "RollbackFailed"];

/// The images to quarantine: a rolling group that asks for it, whose newest
/// refresh rolled out `$Latest` or the default by number and failed or was
/// rolled back. The image is then planned as if already skip-tagged
/// ([`as_quarantined`]). Once a newer version is created from the image
/// again (an operator cleared the tags), the old refresh no longer names
/// `$Latest` and quarantines nothing.
pub fn quarantines(state: &State) -> Vec<QuarantineImage> {
    let template = &state.template;
    let current: Vec<i64> = template
        .latest()
        .map(|v| v.number)
        .into_iter()
        .chain([template.default_version])
        .collect();
    let usable = |id: &str| {
        state.images.iter().any(|i| i.id == id && !i.is_unusable())
            || matches!(&state.current_image, CurrentImage::Found(i) if i.id == id && !i.is_unusable())
    };
    let skip_tagged = |id: &str| {
        state.images.iter().any(|i| i.id == id && i.skip_tagged)
            || matches!(&state.current_image, CurrentImage::Found(i) if i.id == id && i.skip_tagged)
    };
    let mut found: Vec<QuarantineImage> = Vec::new();
    for group in state.rolling_groups() {
        if placed(group, state).is_none() || on_failure(group) != Some(OnFailure::Quarantine) {
            continue;
        }
        let Some(newest) = state.refreshes.get(&group.name).and_then(|r| r.first()) else {
            continue;
        };
        let Some(number) = newest
            .desired
            .as_ref()
            .filter(|d| d.points_at(template))
            .and_then(TemplateRef::pinned_number)
            .filter(|n| current.contains(n))
        else {
            continue;
        };
        let Some(image) = template.image_of(number) else {
            continue;
        };
        // Only an image EC2 describes as usable: tagging one that is gone
        // would fail every run and hold the retreat that it needs anyway.
        if !FAILED_STATUSES.contains(&newest.status.as_str())
            || !usable(image)
            || skip_tagged(image)
            || found.iter().any(|q| q.image == image)
        {
            continue;
        }
        let skip_reason = truncate(
            &format!(
                "rollout failed: group {}, instance refresh {}, {}",
                group.name, newest.id, newest.status
            ),
            MAX_TAG_VALUE_CHARS,
        );
        found.push(QuarantineImage {
            image: image.to_owned(),
            group: group.name.clone(),
            refresh: newest.id.clone(),
            status: newest.status.clone(),
            reason: format!(
                "group {} is tagged {}={} and its instance refresh {} of version {number} ended {}",
                group.name,
                group_tags::ROLLOUT_FAILURE,
                group_tags::QUARANTINE,
                newest.id,
                newest.status
            ),
            skip_reason,
        });
    }
    found
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The state as it will be once the quarantines are written: the images
/// skip-tagged, so that the template retreats from them in this same run.
pub fn as_quarantined(state: &State, quarantines: &[QuarantineImage]) -> State {
    let mut state = state.clone();
    let quarantined = |id: &str| quarantines.iter().any(|q| q.image == id);
    for image in &mut state.images {
        image.skip_tagged |= quarantined(&image.id);
    }
    if let CurrentImage::Found(image) = &mut state.current_image {
        image.skip_tagged |= quarantined(&image.id);
    }
    state
}

/// What the group's `ami-reconciler:rollout-failure` asks for; `None` when
/// malformed (the group gets no refresh and a warning).
fn on_failure(group: &Group) -> Option<OnFailure> {
    match group
        .tags
        .get(group_tags::ROLLOUT_FAILURE)
        .map(|v| v.trim())
    {
        None => Some(OnFailure::Hold),
        Some(group_tags::HOLD) => Some(OnFailure::Hold),
        Some(group_tags::QUARANTINE) => Some(OnFailure::Quarantine),
        Some(_) => None,
    }
}

/// Why a rollout of `target` must not start for `group` although its
/// instances are behind: one was started and is over (never again: no
/// loops, whether or not the record tag is still there), or the record it
/// needs cannot be written.
fn held(
    group: &Group,
    state: &State,
    refreshes: &[crate::model::Refresh],
    (target, history): (&str, History),
    outdated: usize,
) -> Option<Warning> {
    let recorded = group.tags.get(group_tags::ROLLOUT_IMAGE);
    let past = match history {
        History::Fresh => PastRollout::None,
        History::Read => past_rollout(state, refreshes, target, recorded.map(String::as_str)),
    };
    // Tags AWS adds (`aws:` keys) do not count towards the limit.
    let own_tags = group.tags.keys().filter(|k| !k.starts_with("aws:")).count();
    match past {
        PastRollout::Over(last_status) => Some(Warning::RolloutStopped {
            group: group.name.clone(),
            image: target.to_owned(),
            last_status,
            outdated,
        }),
        // Never a refresh without its record: the record needs a tag.
        PastRollout::None if recorded.is_none() && own_tags >= MAX_GROUP_TAGS => {
            Some(Warning::RolloutTagLimit {
                group: group.name.clone(),
                tags: own_tags,
            })
        }
        PastRollout::None => None,
    }
}

/// Auto Scaling's most tags on one group.
pub const MAX_GROUP_TAGS: usize = 50;

/// How long `DescribeInstanceRefreshes` is relied on to remember a refresh:
/// it says "the previous six weeks", taken with a week's margin.
const REFRESH_HISTORY_DAYS: i64 = 35;

/// What became of rollouts of `target` before this run.
enum PastRollout {
    /// None was started (a record with no refresh behind it is a run that
    /// stopped between the two: the refresh is started now).
    None,
    /// One was started and is over, with the newest's status when AWS
    /// still describes it.
    Over(Option<String>),
}

/// A refresh of this group that started once `$Latest` last took `target` and
/// is over was a rollout of `target`: the group's history says so even when
/// the record tag is gone (Terraform removes tags it does not manage). The
/// record alone counts when the history may have forgotten: `$Latest` has
/// carried `target` for longer than the history reaches, or since when is
/// unknown.
fn past_rollout(
    state: &State,
    refreshes: &[crate::model::Refresh],
    target: &str,
    recorded: Option<&str>,
) -> PastRollout {
    let since = state
        .template
        .versions
        .iter()
        .filter(|v| v.image_id.as_deref() == Some(target))
        .filter_map(|v| v.created)
        .max();
    let over_since = since.and_then(|since| {
        refreshes
            .iter()
            .filter(|r| !r.is_active())
            .filter(|r| r.start_time.is_some_and(|start| start >= since))
            .find(|r| {
                // A refresh by number rolled out that version's image; one
                // to an alias (before rollouts were numbered), `$Latest`'s.
                r.desired.as_ref().is_none_or(|d| {
                    d.points_at(&state.template)
                        && d.pinned_number()
                            .is_none_or(|n| state.template.image_of(n) == Some(target))
                })
            })
    });
    if let Some(refresh) = over_since {
        return PastRollout::Over(Some(refresh.status.clone()));
    }
    let forgotten = since.is_none_or(|since| {
        state.observed_at - since > chrono::Duration::days(REFRESH_HISTORY_DAYS)
    });
    match recorded {
        Some(image) if image == target && forgotten => {
            PastRollout::Over(refreshes.first().map(|r| r.status.clone()))
        }
        _ => PastRollout::None,
    }
}

/// A rolling group's refresh preferences, from its tags.
struct RolloutPreferences {
    min_healthy: Option<i32>,
    checkpoints: Vec<i32>,
    checkpoint_delay: Option<i64>,
    alarms: Vec<String>,
    bake_time: Option<i64>,
    on_failure: OnFailure,
}

/// `BakeTime`'s upper bound in the API (seconds): 48 hours.
const MAX_BAKE_TIME: i64 = 172_800;
/// `AlarmSpecification.Alarms`: at most 10 names of 1 to 255 characters.
const MAX_ALARMS: usize = 10;
const MAX_ALARM_NAME_CHARS: usize = 255;

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
                // A malformed age keeps the parser's own words.
                let age = parse_age(group_tags::CHECKPOINT_DELAY, raw).map_err(|err| {
                    Warning::BadRolloutTag {
                        group: group.name.clone(),
                        tag: group_tags::CHECKPOINT_DELAY.to_owned(),
                        problem: err.to_string(),
                    }
                })?;
                let expected = "at most 2d, with ami-reconciler:checkpoints";
                let seconds = Some(age.num_seconds())
                    .filter(|s| *s <= MAX_CHECKPOINT_DELAY && !checkpoints.is_empty())
                    .ok_or_else(|| bad(group_tags::CHECKPOINT_DELAY, raw, expected))?;
                Some(seconds)
            }
        };
        let alarms = match group.tags.get(group_tags::ROLLOUT_ALARMS) {
            None => Vec::new(),
            Some(raw) => {
                let expected =
                    "1 to 10 CloudWatch alarm names of at most 255 characters, comma-separated";
                let names: Vec<String> = raw.split(',').map(|n| n.trim().to_owned()).collect();
                if names.len() > MAX_ALARMS
                    || names
                        .iter()
                        .any(|n| n.is_empty() || n.chars().count() > MAX_ALARM_NAME_CHARS)
                {
                    return Err(bad(group_tags::ROLLOUT_ALARMS, raw, expected));
                }
                names
            }
        };
        let bake_time = match group.tags.get(group_tags::ROLLOUT_BAKE_TIME) {
            None => None,
            Some(raw) => {
                let age = parse_age(group_tags::ROLLOUT_BAKE_TIME, raw).map_err(|err| {
                    Warning::BadRolloutTag {
                        group: group.name.clone(),
                        tag: group_tags::ROLLOUT_BAKE_TIME.to_owned(),
                        problem: err.to_string(),
                    }
                })?;
                let seconds = Some(age.num_seconds())
                    .filter(|s| *s <= MAX_BAKE_TIME)
                    .ok_or_else(|| bad(group_tags::ROLLOUT_BAKE_TIME, raw, "at most 48h"))?;
                Some(seconds)
            }
        };
        let on_failure = on_failure(group).ok_or_else(|| {
            let raw = group.tags.get(group_tags::ROLLOUT_FAILURE);
            bad(
                group_tags::ROLLOUT_FAILURE,
                raw.map_or("", String::as_str),
                "hold or quarantine",
            )
        })?;
        Ok(RolloutPreferences {
            min_healthy,
            checkpoints,
            checkpoint_delay,
            alarms,
            bake_time,
            on_failure,
        })
    }

    /// What the refresh of `group` sends.
    fn for_group(self, group: &Group) -> RollingPreferences {
        RollingPreferences {
            min_healthy_percentage: self.min_healthy(group),
            max_healthy_percentage: self.max_healthy(group),
            checkpoint_percentages: self.checkpoints,
            checkpoint_delay_seconds: self.checkpoint_delay,
            alarms: self.alarms,
            bake_time_seconds: self.bake_time,
            skip_matching: true,
            auto_rollback: true,
            on_failure: self.on_failure,
        }
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
