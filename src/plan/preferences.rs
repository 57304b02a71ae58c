//! A rolling group's refresh preferences, from its `ami-reconciler:*` tags.

use crate::model::{Group, OnFailure, RollingPreferences, group_tags};
use crate::policy::parse_age;
use crate::warning::Warning;

/// `CheckpointDelay`'s upper bound in the API (seconds).
const MAX_CHECKPOINT_DELAY: i64 = 172_800;

/// What the group's `ami-reconciler:rollout-failure` asks for; `None` when
/// malformed (the group gets no refresh and a warning).
pub(super) fn on_failure(group: &Group) -> Option<OnFailure> {
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

/// A rolling group's refresh preferences, from its tags.
pub(super) struct RolloutPreferences {
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
    pub(super) fn of(group: &Group) -> Result<Self, Warning> {
        let tags = Tags(group);
        let min_healthy = tags.parse(
            group_tags::MIN_HEALTHY,
            "a whole number from 0 to 100",
            |raw| {
                raw.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=100).contains(n))
            },
        )?;
        // The last must be 100: AWS calls a refresh Successful once the last
        // checkpoint's share is replaced, and a rollout that stopped short
        // would never be started again for its image.
        let checkpoints = tags
            .parse(
                group_tags::CHECKPOINTS,
                "ascending whole numbers from 1 to 100 ending with 100, comma-separated (e.g. 25,50,100)",
                checkpoints,
            )?
            .unwrap_or_default();
        let checkpoint_delay = tags.age(
            group_tags::CHECKPOINT_DELAY,
            "at most 2d, with ami-reconciler:checkpoints",
            |s| s <= MAX_CHECKPOINT_DELAY && !checkpoints.is_empty(),
        )?;
        let alarms = tags
            .parse(
                group_tags::ROLLOUT_ALARMS,
                "1 to 10 CloudWatch alarm names of at most 255 characters, comma-separated",
                alarms,
            )?
            .unwrap_or_default();
        let bake_time = tags.age(group_tags::ROLLOUT_BAKE_TIME, "at most 48h", |s| {
            s <= MAX_BAKE_TIME
        })?;
        let on_failure = on_failure(group).ok_or_else(|| {
            let raw = group.tags.get(group_tags::ROLLOUT_FAILURE);
            tags.bad(
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
    pub(super) fn for_group(self, group: &Group) -> RollingPreferences {
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

/// A group's tags as its rollout reads them: each malformed one is a
/// warning naming the tag, what it must be, and the value given.
struct Tags<'g>(&'g Group);

impl Tags<'_> {
    fn bad(&self, tag: &str, value: &str, expected: &str) -> Warning {
        Warning::BadRolloutTag {
            group: self.0.name.clone(),
            tag: tag.to_owned(),
            problem: format!("{tag} must be {expected}, got {value:?}"),
        }
    }

    /// The tag's value as `read` makes it; `None` when the tag is absent.
    fn parse<T>(
        &self,
        tag: &str,
        expected: &str,
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, Warning> {
        match self.0.tags.get(tag) {
            None => Ok(None),
            Some(raw) => read(raw)
                .map(Some)
                .ok_or_else(|| self.bad(tag, raw, expected)),
        }
    }

    /// An age tag in seconds, which `allowed` must accept. A malformed age
    /// keeps the parser's own words.
    fn age(
        &self,
        tag: &'static str,
        expected: &str,
        allowed: impl Fn(i64) -> bool,
    ) -> Result<Option<i64>, Warning> {
        let Some(raw) = self.0.tags.get(tag) else {
            return Ok(None);
        };
        let age = parse_age(tag, raw).map_err(|err| Warning::BadRolloutTag {
            group: self.0.name.clone(),
            tag: tag.to_owned(),
            problem: err.to_string(),
        })?;
        Some(age.num_seconds())
            .filter(|s| allowed(*s))
            .map(Some)
            .ok_or_else(|| self.bad(tag, raw, expected))
    }
}

/// `25,50,100`: ascending, from 1 to 100, ending with 100.
fn checkpoints(raw: &str) -> Option<Vec<i32>> {
    let numbers: Vec<i32> = raw
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
        })
        .collect::<Option<_>>()?;
    let ascending = numbers.windows(2).all(|w| w[1] > w[0]);
    (ascending && numbers.last() == Some(&100)).then_some(numbers)
}

/// `web-5xx, web-latency`: 1 to 10 names of 1 to 255 characters.
fn alarms(raw: &str) -> Option<Vec<String>> {
    let names: Vec<String> = raw.split(',').map(|n| n.trim().to_owned()).collect();
    let valid = names.len() <= MAX_ALARMS
        && names
            .iter()
            .all(|n| !n.is_empty() && n.chars().count() <= MAX_ALARM_NAME_CHARS);
    valid.then_some(names)
}
