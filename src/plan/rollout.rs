//! Rollouts: instance refreshes of groups tagged
//! `ami-reconciler:rollout=rolling`, and the hold a running one puts on a
//! newer image.

use std::collections::BTreeMap;

use super::change::{
    CreateVersion, Prerequisite, SetDefaultVersion, StartInstanceRefresh, UpdateGroup,
    VersionTarget,
};
use super::image::{Eligibility, ImageChange, ImageChoice, Latest};
use super::preferences::RolloutPreferences;
use super::reads::Read;
use super::{Decision, Notes};
use crate::model::{
    CurrentImage, Group, GroupLaunch, LaunchSource, Refresh, RollingPreferences, State,
    TemplateRef, group_tags,
};
use crate::policy::Policy;
use crate::warning::Warning;

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
pub(super) fn placed<'g>(group: &'g Group, state: &State) -> Option<&'g TemplateRef> {
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
        let Some((version, reason)) = destination(group, spec, state, target) else {
            continue;
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

/// Where a rolling group must be moved before its rollout, and why;
/// `None` when it stays.
fn destination(
    group: &Group,
    spec: &TemplateRef,
    state: &State,
    target: Option<Target>,
) -> Option<(VersionTarget, String)> {
    let on = spec.pinned_number();
    let known = group
        .in_service
        .iter()
        .any(|id| state.instance_images.contains_key(id));
    match target {
        // Already there, or behind: the refresh moves it on success.
        Some(t) if on.is_some_and(|n| t.is(n)) || outdated(group, state, t.image) > 0 => {}
        // Not one instance's image known: nothing says they run the target.
        Some(_) if !group.in_service.is_empty() && !known => {}
        Some(t) => {
            let reason = format!(
                "tagged {}={}: its in-service instances already run {}, the image of the default version",
                group_tags::ROLLOUT,
                group_tags::ROLLING,
                t.image
            );
            return Some((t.version, reason));
        }
        None => {}
    }
    if on.is_some() {
        return None;
    }
    let n = instances_version(group, state, target);
    let reason = format!(
        "tagged {}={} and on {}: pinned to version {n}, the version its instances run, so that a rollout can roll back",
        group_tags::ROLLOUT,
        group_tags::ROLLING,
        spec.version_label()
    );
    Some((VersionTarget::Number(n), reason))
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
    // A version this run creates was never rolled out: its image's history
    // (a rollback to an image used before) does not count.
    let history = match target.version {
        VersionTarget::Created => History::Fresh,
        VersionTarget::Number(_) => History::Read,
    };
    if let Some(warning) = held(group, state, refreshes, (target.image, history), outdated) {
        return nothing().warn([warning]);
    }
    let start = Start {
        group,
        template: spec.one_identifier(),
        target,
        rollback_to,
        outdated,
        moved: placement.is_some(),
    };
    Decision::made(Some(start.change(state, preferences.for_group(group))))
}

/// A refresh decided on, before it is written as a change.
struct Start<'g, 's> {
    group: &'g Group,
    template: TemplateRef,
    target: Target<'s>,
    /// The number the group is on when the refresh starts.
    rollback_to: i64,
    outdated: usize,
    /// The group is moved to `rollback_to` by this run first.
    moved: bool,
}

impl Start<'_, '_> {
    fn change(self, state: &State, preferences: RollingPreferences) -> StartInstanceRefresh {
        let Start {
            group,
            target,
            rollback_to,
            outdated,
            ..
        } = self;
        let needs = match target.version {
            VersionTarget::Created => Some(Prerequisite::VersionCreated),
            VersionTarget::Number(_) => None,
        };
        let in_service = group.in_service.len();
        let runs = if in_service == 1 {
            "in-service instance runs"
        } else {
            "in-service instances run"
        };
        StartInstanceRefresh {
            group: group.name.clone(),
            template: self.template,
            version: target.version,
            rollback_to,
            image: target.image.to_owned(),
            outdated,
            in_service,
            reason: format!(
                "tagged {}={}: {outdated} of {in_service} {runs} another image than {} (version {})",
                group_tags::ROLLOUT,
                group_tags::ROLLING,
                target.image,
                target.label(),
            ),
            preferences: RollingPreferences {
                // Already on the target (its instances run an image in no
                // other version): skip matching compares versions and would
                // keep every instance, and a rollback would return to the
                // same version. All are replaced, with no rollback.
                skip_matching: !target.is(rollback_to),
                // Auto Scaling refuses a rollback to a version whose ImageId
                // is an SSM parameter: the refresh then goes without one.
                auto_rollback: !target.is(rollback_to)
                    && !state
                        .template
                        .image_of(rollback_to)
                        .is_some_and(|image| image.starts_with("resolve:ssm:")),
                ..preferences
            },
            previous_rollout_image: group.tags.get(group_tags::ROLLOUT_IMAGE).cloned(),
            needs: needs
                .into_iter()
                .chain(
                    self.moved
                        .then(|| Prerequisite::GroupMoved(group.name.clone())),
                )
                .collect(),
        }
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
