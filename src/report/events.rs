//! The run's events for EventBridge (`EVENT_BUS`), made from its report:
//! one per change applied (in a dry run, planned), one per failed write,
//! and one per condition needing a person that this run's own writes
//! brought about. A converged run has none. docs/events.md shows each.
//!
//! A condition a read finds (a backup too large for the template, a group
//! on a gone image) stands until a person acts: it is in every run's report,
//! and the `NeedsAttention` alarm tells of it once per state change, not
//! an event every run.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Report, TemplateReport};
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
    report
        .templates
        .iter()
        .flat_map(|t| template_events(t, report.dry_run))
        .collect()
}

fn template_events(report: &TemplateReport, dry_run: bool) -> Vec<Event> {
    let template = Some(report);
    let done: Vec<(&Change, Option<&str>)> = match dry_run {
        true => report.changes.iter().map(|c| (c, None)).collect(),
        false => report
            .applied
            .iter()
            .map(|a| (&a.change, Some(a.result.as_str())))
            .collect(),
    };
    let mut events = Vec::new();
    let event = |detail_type, fields: Value| Event {
        detail_type,
        detail: detail(template, dry_run, fields),
    };
    let created = done.iter().find_map(|(c, result)| match c {
        Change::CreateVersion(c) => Some((c, *result)),
        _ => None,
    });
    let switched = done.iter().find_map(|(c, result)| match c {
        Change::SetDefaultVersion(c) => Some((c, *result)),
        _ => None,
    });
    if created.is_some() || switched.is_some() {
        let results: Vec<&str> = [created.and_then(|(_, r)| r), switched.and_then(|(_, r)| r)]
            .into_iter()
            .flatten()
            .collect();
        let reason = created
            .map(|(c, _)| c.reason.clone())
            .or_else(|| switched.map(|(c, _)| c.reason.clone()));
        events.push(event(
            TEMPLATE_UPDATED,
            json!({
                "image": created.map(|(c, _)| json!({"from": c.from_image, "to": c.to_image})),
                "default_version": switched.map(|(c, _)| json!({
                    "from": c.from,
                    "to": match c.to {
                        VersionTarget::Number(n) => json!(n),
                        VersionTarget::Created => json!("created"),
                    },
                })),
                "results": results,
                "reason": reason,
            }),
        ));
    }
    let mut moved = Vec::new();
    for (change, result) in &done {
        // The group moves are one run of changes: their events come where
        // they were made.
        if !matches!(change, Change::UpdateGroup(_)) {
            flush_moves(&mut moved, &mut events, &event);
        }
        match change {
            Change::PutImageParameter(c) => events.push(event(
                IMAGE_PARAMETER_UPDATED,
                json!({
                    "parameter": c.parameter,
                    "image": {"from": c.from, "to": c.to},
                    "result": result,
                    "reason": c.reason,
                }),
            )),
            Change::UpdateGroup(c) => moved.push(json!({
                "group": c.group,
                "from": c.from,
                "to": c.to,
                "result": result,
                "reason": c.reason,
            })),
            Change::StartInstanceRefresh(c) => events.push(event(
                ROLLOUT_STARTED,
                json!({
                    "group": c.group,
                    "image": {"to": c.image},
                    "version": {
                        "from": c.rollback_to,
                        "to": match c.version {
                            VersionTarget::Number(n) => json!(n),
                            VersionTarget::Created => json!("created"),
                        },
                    },
                    "outdated": c.outdated,
                    "in_service": c.in_service,
                    "preferences": &c.preferences,
                    "result": result,
                    "reason": c.reason,
                }),
            )),
            Change::QuarantineImage(c) => events.push(event(
                IMAGE_QUARANTINED,
                json!({
                    "image": c.image,
                    "group": c.group,
                    "refresh": c.refresh,
                    "status": c.status,
                    "reason": c.reason,
                }),
            )),
            Change::DeleteVersions(c) => events.push(event(
                VERSIONS_DELETED,
                json!({
                    "versions": c.versions,
                    "result": result,
                    "reason": c.reason,
                }),
            )),
            Change::CreateVersion(_) | Change::SetDefaultVersion(_) => {}
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
