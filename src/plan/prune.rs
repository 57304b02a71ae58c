//! Pruning: the versions outside the newest-N window that neither the
//! default nor any group needs.

use std::collections::{BTreeMap, BTreeSet};

use super::Decision;
use super::change::{
    CreateVersion, DeleteVersions, Prerequisite, SetDefaultVersion, UpdateGroup, VersionTarget,
};
use super::reads::Read;
use crate::model::{State, Template};
use crate::warning::{Warning, join};

/// Which versions the newest-N window keeps, given what this run changes.
pub struct KeepWindow<'p> {
    /// `KEEP_VERSIONS`.
    pub keep: usize,
    /// The version the run creates, which counts towards the window.
    pub create: Option<&'p CreateVersion>,
    /// The run's default switch.
    pub switch: Option<&'p SetDefaultVersion>,
}

impl KeepWindow<'_> {
    /// Existing versions outside the window that are not the default after
    /// this run, ascending.
    fn outside(&self, template: &Template) -> Vec<i64> {
        let keep_existing = match self.create {
            Some(_) => self.keep - 1,
            None => self.keep,
        };
        // After a switch to the created version the old default becomes
        // deletable; without a switch the default stays protected.
        let default_after = match (self.switch, self.create) {
            (None, _) => Some(template.default_version),
            (Some(_), None) => template.latest().map(|v| v.number),
            (Some(_), Some(_)) => None,
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

fn pins(state: &State, moves: &[UpdateGroup]) -> Pins {
    let moving: BTreeSet<&str> = moves.iter().map(|m| m.group.as_str()).collect();
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
    // Where this run places rolling groups, and what a running refresh
    // targets: a rollback returns to the first, success lands on the second.
    pins.protected
        .extend(moves.iter().filter_map(|m| match m.version {
            Some(VersionTarget::Number(n)) => Some(n),
            _ => None,
        }));
    pins.protected.extend(
        state
            .refreshes
            .values()
            .flatten()
            .filter(|r| r.is_active())
            .filter_map(|r| r.desired.as_ref())
            .filter(|d| d.points_at(&state.template))
            .filter_map(|d| d.pinned_number()),
    );
    for names in pins.released_by.values_mut() {
        names.sort();
        names.dedup();
    }
    pins
}

/// The deletion of the versions outside the window that no group pins.
/// Groups without the managed tag pin versions too: until they are read,
/// nothing is deleted and the planner asks for them.
pub fn delete(
    state: &State,
    window: &KeepWindow,
    moves: &[UpdateGroup],
) -> Decision<Option<DeleteVersions>> {
    let template = &state.template;
    let mut candidates = window.outside(template);
    if candidates.is_empty() {
        return Decision::made(None);
    }
    let Pins {
        protected,
        released_by,
    } = pins(state, moves);
    let pinned: Vec<i64> = candidates
        .iter()
        .copied()
        .filter(|n| protected.contains(n))
        .collect();
    candidates.retain(|n| !protected.contains(n));
    if candidates.is_empty() {
        return Decision::made(None);
    }
    // A running refresh's target is known only from the group's refreshes.
    let unread: Vec<Read> = state
        .rolling_groups()
        .into_iter()
        .filter(|g| !state.refreshes.contains_key(&g.name))
        .map(|g| Read::Refreshes(g.name.clone()))
        .collect();
    if !unread.is_empty() {
        let decision = Decision::made(None);
        return match state.rollouts_unread {
            true => decision,
            false => unread.into_iter().fold(decision, Decision::read),
        };
    }
    if state.other_groups.is_none() {
        return Decision::made(None)
            .warn([Warning::OtherGroupsNotRead {
                template: template.id.clone(),
                versions: candidates,
            }])
            .read(Read::OtherGroups);
    }
    let mut each_needs: BTreeMap<i64, Vec<Prerequisite>> = released_by
        .into_iter()
        .filter(|(n, _)| candidates.contains(n))
        .map(|(n, groups)| {
            (
                n,
                groups.into_iter().map(Prerequisite::GroupMoved).collect(),
            )
        })
        .collect();
    if window.switch.is_some() && candidates.contains(&template.default_version) {
        each_needs
            .entry(template.default_version)
            .or_default()
            .insert(0, Prerequisite::DefaultSwitched);
    }
    let keep = window.keep;
    Decision::made(Some(DeleteVersions {
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
        needs: window
            .create
            .map(|_| Prerequisite::VersionCreated)
            .into_iter()
            .collect(),
        each_needs,
    }))
}
