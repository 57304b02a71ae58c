//! Rollouts: instance refreshes of groups tagged
//! `ami-reconciler:rollout=rolling`, and the hold a running one puts on a
//! newer image.

use super::change::{CreateVersion, Prerequisite, StartInstanceRefresh, UpdateGroup};
use super::image::{Eligibility, ImageChange, ImageChoice, Latest};
use super::reads::Read;
use super::{Decision, Notes};
use crate::model::{CurrentImage, Group, LaunchSource, RollingPreferences, State, group_tags};
use crate::policy::{Policy, parse_age};
use crate::warning::Warning;

/// `CheckpointDelay`'s upper bound in the API (seconds).
const MAX_CHECKPOINT_DELAY: i64 = 172_800;

/// A running refresh follows `$Latest`: a newer image now would replace the
/// instances it already replaced. The image change waits for it; a
/// rollback (an unusable image) goes through, and the refresh follows it.
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

/// The image a rollout converges instances to: the image `$Latest` has after
/// this run, when it is a backup the rules admit now (the soak time holds
/// for rollouts too). `None`: nothing is rolled out.
fn rollout_image<'s>(
    state: &'s State,
    policy: &Policy,
    create: Option<&'s CreateVersion>,
) -> Option<&'s str> {
    if let Some(create) = create {
        return Some(&create.to_image);
    }
    match &state.current_image {
        CurrentImage::Found(image) if Eligibility::of(state, policy).admits(image) => {
            Some(&image.id)
        }
        _ => None,
    }
}

/// A refresh for each rolling group whose in-service instances do not all
/// run the rollout image. Asks for the instances' images, and then for the
/// refreshes of the groups that are behind: nothing starts unread.
pub fn refreshes(
    state: &State,
    policy: &Policy,
    create: Option<&CreateVersion>,
    moves: &[UpdateGroup],
) -> Decision<Vec<StartInstanceRefresh>> {
    let rolling = state.rolling_groups();
    let mut notes = Notes::default();
    if rolling.iter().any(|g| !g.in_service.is_empty()) {
        notes.reads.push(Read::InstanceImages);
    }
    let Some(target) = rollout_image(state, policy, create) else {
        return notes.finish(Vec::new());
    };
    let starts = rolling
        .into_iter()
        .filter_map(|group| {
            // A version this run creates was never rolled out: its image's
            // history (a rollback to an image used before) does not count.
            let past = match create {
                Some(_) => History::Fresh,
                None => History::Read,
            };
            notes.take(refresh(group, state, (target, past), moves))
        })
        .map(|start| StartInstanceRefresh {
            needs: create
                .map(|_| Prerequisite::VersionCreated)
                .into_iter()
                .chain(start.needs.clone())
                .collect(),
            ..start
        })
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
    (target, history): (&str, History),
    moves: &[UpdateGroup],
) -> Decision<Option<StartInstanceRefresh>> {
    let moving = moves.iter().any(|m| m.group == group.name);
    let nothing = || Decision::made(None);
    if group.being_deleted {
        return nothing();
    }
    let spec = match &group.launch {
        LaunchSource::Template(spec) if spec.points_at(&state.template) => spec,
        LaunchSource::Mixed(_) => {
            return nothing().warn([Warning::RolloutUnsupported {
                group: group.name.clone(),
            }]);
        }
        _ => return nothing(),
    };
    // Only a group on $Latest (now, or by this run) follows the template.
    if !spec.is_latest() && !moving {
        return nothing();
    }
    let outdated = outdated(group, state, target);
    if outdated == 0 {
        return nothing();
    }
    let preferences = match RolloutPreferences::of(group) {
        Ok(p) => p,
        Err(warning) => return nothing().warn([warning]),
    };
    let Some(refreshes) = state.refreshes.get(&group.name) else {
        // Not read: nothing is decided without the group's refreshes.
        return if state.rollouts_unread {
            nothing()
        } else {
            nothing().read(Read::Refreshes(group.name.clone()))
        };
    };
    if let Some(active) = refreshes.iter().find(|r| r.is_active()) {
        return nothing().warn([Warning::RolloutRunning {
            group: group.name.clone(),
            refresh: active.id.clone(),
            status: active.status.clone(),
            outdated,
        }]);
    }
    let recorded = group.tags.get(group_tags::ROLLOUT_IMAGE);
    if let Some(warning) = held(group, state, refreshes, (target, history), outdated) {
        return nothing().warn([warning]);
    }
    Decision::made(Some(StartInstanceRefresh {
        group: group.name.clone(),
        template: spec.at_latest(),
        image: target.to_owned(),
        outdated,
        in_service: group.in_service.len(),
        reason: format!(
            "tagged {}={}: {outdated} of {} {} another image than {target}",
            group_tags::ROLLOUT,
            group_tags::ROLLING,
            group.in_service.len(),
            if group.in_service.len() == 1 {
                "in-service instance runs"
            } else {
                "in-service instances run"
            }
        ),
        preferences: preferences.for_group(group),
        previous_rollout_image: recorded.cloned(),
        needs: moving
            .then(|| Prerequisite::GroupMoved(group.name.clone()))
            .into_iter()
            .collect(),
    }))
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
                r.desired
                    .as_ref()
                    .is_none_or(|d| d.points_at(&state.template))
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
        Ok(RolloutPreferences {
            min_healthy,
            checkpoints,
            checkpoint_delay,
        })
    }

    /// What the refresh of `group` sends.
    fn for_group(self, group: &Group) -> RollingPreferences {
        RollingPreferences {
            min_healthy_percentage: self.min_healthy(group),
            max_healthy_percentage: self.max_healthy(group),
            checkpoint_percentages: self.checkpoints,
            checkpoint_delay_seconds: self.checkpoint_delay,
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
