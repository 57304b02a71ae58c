//! The run's events for EventBridge (`EVENT_BUS`), made from its report:
//! one per change applied (in a dry run, planned; a new version and its
//! default as one, group moves a hundred to one), one per failed write,
//! and one per condition needing a person that this run's own writes
//! brought about. A converged run has none. docs/events.md shows each.
//!
//! A condition a read finds (a backup too large for the template, a group
//! on a gone image) stands until a person acts: it is in every run's report,
//! and the `NeedsAttention` alarm tells of it once per state change, not
//! an event every run.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Applied, Report, TemplateReport};
use crate::plan::{Change, VersionTarget};
use crate::warning::{Severity, Warning};

/// Every event's `Source`.
pub const SOURCE: &str = "ami-reconciler";
/// The `schema_version` of every event's detail; docs/events.md describes it.
pub const EVENT_SCHEMA_VERSION: u32 = 1;
/// The most groups one "Groups Moved" event lists: a detail stays far
/// below EventBridge's 256 KB per entry however many groups move.
pub const GROUPS_PER_EVENT: usize = 100;

/// The `DetailType`s, one per kind of event.
pub mod detail_types {
    /// A new version and/or a new default version.
    pub const TEMPLATE_UPDATED: &str = "Template Updated";
    /// The image parameter now holds the default version's image.
    pub const IMAGE_PARAMETER_UPDATED: &str = "Image Parameter Updated";
    /// Managed groups moved to `$Latest` or a version number.
    pub const GROUPS_MOVED: &str = "Groups Moved";
    /// An instance refresh started for a rolling group.
    pub const ROLLOUT_STARTED: &str = "Rollout Started";
    /// An image whose rollout failed was tagged skipped.
    pub const IMAGE_QUARANTINED: &str = "Image Quarantined";
    /// Old versions were deleted.
    pub const VERSIONS_DELETED: &str = "Versions Deleted";
    /// A write AWS refused or did not answer.
    pub const WRITE_FAILED: &str = "Write Failed";
    /// A condition only a person can clear, brought about by this run.
    pub const NEEDS_ATTENTION: &str = "Needs Attention";
    /// All of them.
    pub const ALL: [&str; 8] = [
        TEMPLATE_UPDATED,
        IMAGE_PARAMETER_UPDATED,
        GROUPS_MOVED,
        ROLLOUT_STARTED,
        IMAGE_QUARANTINED,
        VERSIONS_DELETED,
        WRITE_FAILED,
        NEEDS_ATTENTION,
    ];
}

use detail_types::*;

/// One event: its `DetailType` and its `Detail` (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub detail_type: &'static str,
    pub detail: Value,
}

/// The events of a run, in the order its changes were made. A run-wide
/// condition (no template tagged, rollouts unread) is found by a read: the
/// alarm carries it.
pub fn events(report: &Report) -> Vec<Event> {
    let run = report.at.to_rfc3339();
    report
        .templates
        .iter()
        .flat_map(|t| template_events(t, report.dry_run))
        .map(|mut event| {
            let key = event_key(&run, event.detail_type, &event.detail);
            if let Value::Object(detail) = &mut event.detail {
                detail.insert("event_key".to_owned(), json!(key));
            }
            event
        })
        .collect()
}

/// The same for every copy of one event (a call sent again, EventBridge's
/// at-least-once delivery), another for another event or run: FNV-1a of
/// the run's time, the detail type and the detail.
fn event_key(run: &str, detail_type: &str, detail: &Value) -> String {
    let text = format!("{run}\n{detail_type}\n{detail}");
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// A change as this run made it (applied) or would make it (planned: no
/// answer).
type Done<'a> = (&'a Change, Option<&'a Applied>);

fn template_events(report: &TemplateReport, dry_run: bool) -> Vec<Event> {
    let template = Some(report);
    let done: Vec<Done> = match dry_run {
        true => report.changes.iter().map(|c| (c, None)).collect(),
        false => report
            .applied
            .iter()
            .map(|a| (&a.change, Some(a)))
            .collect(),
    };
    let event = |detail_type, fields: Value| Event {
        detail_type,
        detail: detail(template, dry_run, fields),
    };
    let mut events = Vec::new();
    let mut updated = false;
    let mut moved = Vec::new();
    // In the order the changes were made; the group moves, one run of
    // changes, as one event (or one per hundred groups) where they were made.
    for &(change, applied) in &done {
        if let Change::UpdateGroup(c) = change {
            moved.push(json!({
                "group": c.group,
                "from": c.from,
                // The number a rolling group is now on, once moved.
                "to": number(applied).unwrap_or_else(|| json!(c.to)),
                "result": applied.map(|a| &a.result),
                "reason": c.reason,
            }));
            continue;
        }
        flush_moves(&mut moved, &mut events, &event);
        match change {
            Change::CreateVersion(_) | Change::SetDefaultVersion(_) if !updated => {
                updated = true;
                events.push(event(TEMPLATE_UPDATED, template_updated(&done)));
            }
            Change::CreateVersion(_) | Change::SetDefaultVersion(_) => {}
            _ => events.extend(
                change_event(change, applied, created_number(&done)).map(|(t, f)| event(t, f)),
            ),
        }
    }
    flush_moves(&mut moved, &mut events, &event);
    events.extend(report.failed.iter().map(|f| {
        event(
            WRITE_FAILED,
            json!({
                "action": f.change.action(),
                "target": f.change.target(),
                "error_code": f.error_code,
                "error": f.error,
                "retryable": f.retryable(),
                "change": &f.change,
                "reason": format!("{} of {} failed: {}", f.change.action(), f.change.target(), f.error),
            }),
        )
    }));
    // The warnings after the planned ones are this run's writes' own.
    events.extend(
        report.warnings[report.planned_warnings.min(report.warnings.len())..]
            .iter()
            .filter(|w| w.severity() == Severity::NeedsAttention)
            .map(|w| attention(template, w, dry_run)),
    );
    events
}

/// One "Template Updated" for the new version and the new default together,
/// with their numbers once made.
fn template_updated(done: &[Done]) -> Value {
    let created = done.iter().find_map(|(c, applied)| match c {
        Change::CreateVersion(c) => Some((c, *applied)),
        _ => None,
    });
    let switched = done.iter().find_map(|(c, applied)| match c {
        Change::SetDefaultVersion(c) => Some((c, *applied)),
        _ => None,
    });
    let results: Vec<&str> = [created.and_then(|(_, a)| a), switched.and_then(|(_, a)| a)]
        .into_iter()
        .flatten()
        .map(|a| a.result.as_str())
        .collect();
    let reason = created
        .map(|(c, _)| c.reason.clone())
        .or_else(|| switched.map(|(c, _)| c.reason.clone()));
    json!({
        "image": created.map(|(c, _)| json!({"from": c.from_image, "to": c.to_image})),
        "created_version": created.and_then(|(_, a)| number(a)),
        "default_version": switched.map(|(c, a)| json!({
            "from": c.from,
            "to": number(a).unwrap_or_else(|| target(c.to)),
        })),
        "results": results,
        "reason": reason,
    })
}

/// The number of the version this run created, once made.
fn created_number(done: &[Done]) -> Option<Value> {
    done.iter().find_map(|(c, applied)| match c {
        Change::CreateVersion(_) => number(*applied),
        _ => None,
    })
}

/// The number a write made (a version, a parameter version).
fn number(applied: Option<&Applied>) -> Option<Value> {
    let made = applied?.made.as_deref()?;
    Some(
        made.parse::<i64>()
            .map_or_else(|_| json!(made), |n| json!(n)),
    )
}

/// The event of one change other than the template's and the groups'.
fn change_event(
    change: &Change,
    applied: Option<&Applied>,
    created: Option<Value>,
) -> Option<(&'static str, Value)> {
    let result = applied.map(|a| a.result.as_str());
    Some(match change {
        Change::PutImageParameter(c) => (
            IMAGE_PARAMETER_UPDATED,
            json!({
                "parameter": c.parameter,
                "image": {"from": c.from, "to": c.to},
                "parameter_version": number(applied),
                "result": result,
                "reason": c.reason,
            }),
        ),
        Change::StartInstanceRefresh(c) => (
            ROLLOUT_STARTED,
            json!({
                "group": c.group,
                "image": {"to": c.image},
                "version": {
                    "from": c.rollback_to,
                    "to": match c.version {
                        VersionTarget::Created => created.unwrap_or_else(|| target(c.version)),
                        VersionTarget::Number(_) => target(c.version),
                    },
                },
                "instance_refresh_id": applied.and_then(|a| a.made.as_deref()),
                "outdated": c.outdated,
                "in_service": c.in_service,
                "preferences": &c.preferences,
                "result": result,
                "reason": c.reason,
            }),
        ),
        Change::QuarantineImage(c) => (
            IMAGE_QUARANTINED,
            json!({
                "image": c.image,
                "group": c.group,
                "refresh": c.refresh,
                "status": c.status,
                "result": result,
                "reason": c.reason,
            }),
        ),
        Change::DeleteVersions(c) => (
            VERSIONS_DELETED,
            json!({
                "versions": c.versions,
                "result": result,
                "reason": c.reason,
            }),
        ),
        Change::CreateVersion(_) | Change::SetDefaultVersion(_) | Change::UpdateGroup(_) => {
            return None;
        }
    })
}

fn target(version: VersionTarget) -> Value {
    match version {
        VersionTarget::Number(n) => json!(n),
        VersionTarget::Created => json!("created"),
    }
}

/// "Groups Moved" events of the moves gathered, [`GROUPS_PER_EVENT`] each.
fn flush_moves(
    moved: &mut Vec<Value>,
    events: &mut Vec<Event>,
    event: &impl Fn(&'static str, Value) -> Event,
) {
    for groups in moved.chunks(GROUPS_PER_EVENT) {
        events.push(event(
            GROUPS_MOVED,
            json!({
                "groups": groups,
                "reason": format!("{} managed group(s) moved", groups.len()),
            }),
        ));
    }
    moved.clear();
}

fn attention(template: Option<&TemplateReport>, warning: &Warning, dry_run: bool) -> Event {
    Event {
        detail_type: NEEDS_ATTENTION,
        detail: detail(
            template,
            dry_run,
            json!({
                "code": warning.code(),
                "warning": warning,
                "reason": warning.to_string(),
            }),
        ),
    }
}

/// The fields every detail has, then the event's own.
fn detail(template: Option<&TemplateReport>, dry_run: bool, fields: Value) -> Value {
    let mut detail = json!({
        "schema_version": EVENT_SCHEMA_VERSION,
        "dry_run": dry_run,
        "template": template.map(|t| json!({"id": t.template_id, "name": t.template_name})),
    });
    if let (Some(all), Value::Object(own)) = (detail.as_object_mut(), fields) {
        all.extend(own);
    }
    detail
}
