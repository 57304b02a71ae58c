//! What a deletion may still do, and why a change is skipped.
use std::collections::BTreeMap;

use super::*;
use crate::plan::Prerequisite::{DefaultSwitched, GroupMoved, VersionCreated};

fn deletion(needs: Vec<Prerequisite>, each: &[(i64, Vec<Prerequisite>)]) -> DeleteVersions {
    DeleteVersions {
        template_id: "lt-1".to_owned(),
        versions: vec![1, 2],
        reason: String::new(),
        needs,
        each_needs: each.iter().cloned().collect::<BTreeMap<_, _>>(),
    }
}

fn moved(group: &str) -> Prerequisite {
    GroupMoved(group.to_owned())
}

fn done(what: &[Prerequisite]) -> BTreeSet<Prerequisite> {
    what.iter().cloned().collect()
}

#[test]
fn with_everything_done_every_planned_version_is_deleted() {
    let change = deletion(
        vec![VersionCreated],
        &[(1, vec![moved("web")]), (2, vec![DefaultSwitched])],
    );
    assert_eq!(
        deletable(
            &change,
            &done(&[VersionCreated, DefaultSwitched, moved("web")])
        ),
        Deletable::Versions {
            delete: vec![1, 2],
            kept: vec![]
        }
    );
}

#[test]
fn a_window_that_counted_a_version_not_created_deletes_nothing() {
    let change = deletion(vec![VersionCreated], &[]);
    assert_eq!(
        deletable(&change, &done(&[])),
        Deletable::Nothing(VersionCreated)
    );
}

#[test]
fn the_old_default_stays_when_the_default_switch_failed() {
    let change = deletion(vec![], &[(2, vec![DefaultSwitched])]);
    assert_eq!(
        deletable(&change, &done(&[])),
        Deletable::Versions {
            delete: vec![1],
            kept: vec![2]
        }
    );
}

#[test]
fn a_version_stays_while_a_group_that_pinned_it_failed_to_move() {
    let change = deletion(vec![], &[(1, vec![moved("api"), moved("web")])]);
    assert_eq!(
        deletable(&change, &done(&[moved("api")])),
        Deletable::Versions {
            delete: vec![2],
            kept: vec![1]
        }
    );
}

#[test]
fn every_version_is_kept_when_each_relied_on_a_failure() {
    let change = deletion(vec![], &[(1, vec![moved("web")]), (2, vec![moved("web")])]);
    assert_eq!(
        deletable(&change, &done(&[])),
        Deletable::Versions {
            delete: vec![],
            kept: vec![1, 2]
        }
    );
}

#[test]
fn each_skip_names_the_prerequisite_that_is_missing() {
    let delete = Change::DeleteVersions(deletion(vec![], &[]));
    assert_eq!(
        delete.skipped_because(&VersionCreated),
        "the keep window counted a version that was not created"
    );
    let default = Change::SetDefaultVersion(SetDefaultVersion {
        template_id: "lt-1".to_owned(),
        from: 1,
        to: VersionTarget::Created,
        reason: String::new(),
    });
    assert_eq!(default.needs(), vec![VersionCreated]);
    assert_eq!(
        default.skipped_because(&VersionCreated),
        "the new version was not created"
    );
}
