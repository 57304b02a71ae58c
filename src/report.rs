//! The report of a run: per template the plan, what was applied and what
//! failed; the run's totals; and the renderings (text like a Terraform plan,
//! JSON as documented in docs/report.md).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plan::{Change, ImageSummary, Plan, VersionTarget};
use crate::warning::{Severity, Warning, Warnings, join};

/// The JSON report's `schema_version`; docs/report.md describes each.
/// 2 added `templates` (and `template_id`, `template_name` null in tag mode).
pub const SCHEMA_VERSION: u32 = 2;

/// The outcome of one run over every managed template: the totals, and
/// each template's own report under `templates`. In a dry run `applied`,
/// `failed` and `skipped` are empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// True when nothing was (to be) changed by this run.
    pub dry_run: bool,
    /// The managed launch template; `None` in tag mode (see `templates`).
    pub template_id: Option<String>,
    /// Its name; `None` in tag mode.
    pub template_name: Option<String>,
    /// The newest eligible backup AMI; `None` in tag mode.
    pub newest_backup: Option<ImageSummary>,
    /// How old the newest backup was when the run ended, in whole seconds;
    /// in tag mode the oldest of the templates' (what the stale-backup
    /// alarm watches). `None` without a backup.
    pub newest_backup_age_seconds: Option<i64>,
    /// Every planned change of every template, in order.
    pub changes: Vec<Change>,
    /// Changes applied, with what AWS answered.
    pub applied: Vec<Applied>,
    /// Changes that failed, with the AWS error.
    pub failed: Vec<Failed>,
    /// Changes not attempted because one they relied on failed.
    pub skipped: Vec<Skipped>,
    /// Every template's warnings, then the run's own.
    #[serde(flatten)]
    pub warnings: Warnings,
    /// Instance refreshes of rolling groups (`ami-reconciler:rollout=rolling`).
    pub refreshes: RefreshCounts,
    /// One report per managed template, by template id.
    pub templates: Vec<TemplateReport>,
    /// Warnings about no single template (groups on unmanaged templates, no
    /// template found).
    #[serde(skip)]
    pub run_warnings: Vec<Warning>,
}

/// How the rollouts of this run went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefreshCounts {
    /// Refreshes planned (in a dry run: those it would start).
    pub planned: usize,
    /// Refreshes this run started.
    pub started: usize,
    /// Refreshes found running, which the rollout waits for.
    pub running: usize,
    /// Refreshes that could not be started, or that ended with instances
    /// left on older images (`rollout_stopped`).
    pub failed: usize,
}

impl RefreshCounts {
    fn of(
        changes: &[Change],
        applied: &[Applied],
        failed: &[Failed],
        warnings: &[Warning],
    ) -> Self {
        let refresh = |c: &Change| matches!(c, Change::StartInstanceRefresh(_));
        RefreshCounts {
            planned: changes.iter().filter(|c| refresh(c)).count(),
            started: applied.iter().filter(|a| refresh(&a.change)).count(),
            running: warnings
                .iter()
                .filter(|w| matches!(w, Warning::RolloutRunning { .. }))
                .count(),
            failed: failed.iter().filter(|f| refresh(&f.change)).count()
                + warnings
                    .iter()
                    .filter(|w| matches!(w, Warning::RolloutStopped { .. }))
                    .count(),
        }
    }
}

/// The outcome of one run for one template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateReport {
    /// True when nothing was (to be) changed by this run.
    #[serde(skip)]
    pub dry_run: bool,
    /// The managed launch template.
    pub template_id: String,
    /// Its name.
    pub template_name: String,
    /// The newest eligible backup AMI.
    pub newest_backup: Option<ImageSummary>,
    /// How old the newest backup was when the run ended, in whole seconds;
    /// `None` without a backup. Set by the caller that owns the clock
    /// ([`Report::aged`]), so planning stays free of time.
    pub newest_backup_age_seconds: Option<i64>,
    /// Every planned change, in order. Empty when converged.
    pub changes: Vec<Change>,
    /// Changes applied, with what AWS answered.
    pub applied: Vec<Applied>,
    /// Changes that failed, with the AWS error.
    pub failed: Vec<Failed>,
    /// Changes not attempted because one they relied on failed.
    pub skipped: Vec<Skipped>,
    /// Things the operator should know (`warnings` and `warning_details` in JSON).
    #[serde(flatten)]
    pub warnings: Warnings,
}

/// An applied change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// What happened, e.g. `created version 7`.
    pub result: String,
}

/// A change that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failed {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// The AWS error code, when AWS answered.
    pub error_code: Option<String>,
    /// The error.
    pub error: String,
}

/// A change not attempted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// Why it was not attempted.
    pub skipped_because: String,
}

impl TemplateReport {
    /// The report of a plan before anything is applied.
    pub fn planned(plan: Plan, dry_run: bool) -> Self {
        TemplateReport {
            dry_run,
            template_id: plan.template_id,
            template_name: plan.template_name,
            newest_backup: plan.newest_backup,
            newest_backup_age_seconds: None,
            changes: plan.changes,
            applied: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
            warnings: Warnings(plan.warnings),
        }
    }

    /// The report with the newest backup's age at `now` (never negative:
    /// a backup dated in the future counts as brand new).
    pub fn aged(mut self, now: DateTime<Utc>) -> Self {
        self.newest_backup_age_seconds = self
            .newest_backup
            .as_ref()
            .map(|b| (now - b.creation_date).num_seconds().max(0));
        self
    }

    /// The template's part of the text report: header, changes, warnings.
    fn write_text(&self, out: &mut String) {
        let name = if self.template_name.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.template_name)
        };
        let _ = writeln!(out, "Launch template {}{name}", self.template_id);
        match &self.newest_backup {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "Newest backup   {} created {}",
                    b.image_id, b.creation_date
                );
            }
            None => {
                let _ = writeln!(out, "Newest backup   none found");
            }
        }
        out.push('\n');
        if !self.changes.is_empty() {
            let heading = if self.dry_run {
                "Planned changes:"
            } else {
                "Changes:"
            };
            let _ = writeln!(out, "{heading}");
            for change in &self.changes {
                let status = self.status_of(change);
                let _ = writeln!(out, "  {} {}{}", symbol(change), headline(change), status);
                for (label, value) in details(change) {
                    let _ = writeln!(out, "      {label:<6} {value}");
                }
            }
            out.push('\n');
        }
        write_warnings(out, self.warnings.iter());
    }

    fn status_of(&self, change: &Change) -> String {
        if self.dry_run {
            return String::new();
        }
        if let Some(a) = self.applied.iter().find(|a| &a.change == change) {
            return format!("  [done: {}]", a.result);
        }
        if let Some(f) = self.failed.iter().find(|f| &f.change == change) {
            return format!("  [FAILED: {}]", f.error);
        }
        if let Some(s) = self.skipped.iter().find(|s| &s.change == change) {
            return format!("  [skipped: {}]", s.skipped_because);
        }
        String::new()
    }
}

impl Report {
    /// The run's report from each template's, aged at `now` (the clock is
    /// read by the caller, never in planning). `single`: one template was
    /// named (`LAUNCH_TEMPLATE_ID` or `_PARAMETER`), so the top-level
    /// template fields are its own.
    pub fn of(
        dry_run: bool,
        single: bool,
        templates: Vec<TemplateReport>,
        run_warnings: Vec<Warning>,
        now: DateTime<Utc>,
    ) -> Self {
        let templates: Vec<TemplateReport> = templates.into_iter().map(|t| t.aged(now)).collect();
        let one = templates.first().filter(|_| single);
        let mut warnings: Vec<Warning> = templates
            .iter()
            .flat_map(|t| t.warnings.iter().cloned())
            .collect();
        warnings.extend(run_warnings.iter().cloned());
        let changes: Vec<Change> = templates.iter().flat_map(|t| t.changes.clone()).collect();
        let applied: Vec<Applied> = templates.iter().flat_map(|t| t.applied.clone()).collect();
        let failed: Vec<Failed> = templates.iter().flat_map(|t| t.failed.clone()).collect();
        Report {
            refreshes: RefreshCounts::of(&changes, &applied, &failed, &warnings),
            schema_version: SCHEMA_VERSION,
            dry_run,
            template_id: one.map(|t| t.template_id.clone()),
            template_name: one.map(|t| t.template_name.clone()),
            newest_backup: one.and_then(|t| t.newest_backup.clone()),
            newest_backup_age_seconds: templates
                .iter()
                .filter_map(|t| t.newest_backup_age_seconds)
                .max(),
            changes,
            applied,
            failed,
            skipped: templates.iter().flat_map(|t| t.skipped.clone()).collect(),
            warnings: Warnings(warnings),
            templates,
            run_warnings,
        }
    }

    /// 0 when everything planned was applied (or only planned), 1 when
    /// something failed or was skipped because of a failure, or a warning
    /// says the reconciler is blocked until a person acts.
    pub fn exit_code(&self) -> i32 {
        if self.failed.is_empty()
            && self.skipped.is_empty()
            && !self
                .warnings
                .iter()
                .any(|w| w.severity() == Severity::NeedsAttention)
        {
            0
        } else {
            1
        }
    }

    /// One line: what was planned and what happened.
    pub fn summary(&self) -> String {
        if self.changes.is_empty() {
            return match self.templates.len() {
                0 => "No changes. No launch template is managed.".to_owned(),
                1 => "No changes. The launch template and groups are up to date.".to_owned(),
                n => {
                    format!("No changes. The {n} launch templates and their groups are up to date.")
                }
            };
        }
        let counts = plan_counts(&self.changes);
        if self.dry_run {
            format!("Plan: {counts}. Dry run: nothing was changed.")
        } else {
            format!(
                "Apply: {} applied, {} failed, {} skipped ({counts}).",
                self.applied.len(),
                self.failed.len(),
                self.skipped.len()
            )
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.templates.is_empty() && self.template_id.is_none() {
            let _ = writeln!(out, "No launch template is managed.\n");
        }
        for template in &self.templates {
            template.write_text(&mut out);
        }
        write_warnings(&mut out, self.run_warnings.iter());
        let _ = writeln!(out, "{}", self.summary());
        out
    }
}

fn write_warnings<'a>(out: &mut String, warnings: impl Iterator<Item = &'a Warning>) {
    let mut warnings = warnings.peekable();
    if warnings.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "Warnings:");
    for w in warnings {
        let _ = writeln!(out, "  ! {w}");
    }
    out.push('\n');
}

fn symbol(change: &Change) -> &'static str {
    match change {
        Change::CreateVersion(_) => "+",
        Change::SetDefaultVersion(_) | Change::UpdateGroup(_) => "~",
        Change::StartInstanceRefresh(_) => ">",
        Change::DeleteVersions(_) => "-",
    }
}

fn headline(change: &Change) -> String {
    match change {
        Change::CreateVersion(c) => format!(
            "launch template {}: new version from version {} ($Latest)",
            c.template_id, c.source_version
        ),
        Change::SetDefaultVersion(c) => {
            format!("launch template {}: default version", c.template_id)
        }
        Change::UpdateGroup(c) => {
            let kind = if c.mixed_instances_policy {
                " (mixed instances policy)"
            } else {
                ""
            };
            format!(
                "auto scaling group {}{kind}: launch template version",
                c.group
            )
        }
        Change::StartInstanceRefresh(c) => format!(
            "auto scaling group {}: instance refresh to {}",
            c.group, c.image
        ),
        Change::DeleteVersions(c) => format!(
            "launch template {}: delete {} old version{}",
            c.template_id,
            c.versions.len(),
            if c.versions.len() == 1 { "" } else { "s" }
        ),
    }
}

fn details(change: &Change) -> Vec<(&'static str, String)> {
    match change {
        Change::CreateVersion(c) => vec![
            ("image", format!("{} -> {}", c.from_image, c.to_image)),
            ("why", c.reason.clone()),
        ],
        Change::SetDefaultVersion(c) => {
            let to = match c.to {
                VersionTarget::Number(n) => n.to_string(),
                VersionTarget::Created => "the new version".to_owned(),
            };
            vec![
                ("from", format!("{} -> {to}", c.from)),
                ("why", c.reason.clone()),
            ]
        }
        Change::UpdateGroup(c) => vec![
            ("from", format!("{} {} -> {}", c.template, c.from, c.to)),
            ("why", c.reason.clone()),
        ],
        Change::StartInstanceRefresh(c) => {
            let p = &c.preferences;
            let mut how = match p.min_healthy_percentage {
                Some(min) => format!("min healthy {min}%"),
                None => "min healthy: the group's maintenance policy, else 90%".to_owned(),
            };
            if let Some(max) = p.max_healthy_percentage {
                let _ = write!(how, ", max healthy {max}% (launch before terminate)");
            }
            if !p.checkpoint_percentages.is_empty() {
                let points: Vec<String> = p
                    .checkpoint_percentages
                    .iter()
                    .map(i32::to_string)
                    .collect();
                let _ = write!(how, ", checkpoints at {}%", points.join("%, "));
            }
            vec![
                (
                    "outdated",
                    format!("{} of {} instances", c.outdated, c.in_service),
                ),
                ("how", how),
                ("why", c.reason.clone()),
            ]
        }
        Change::DeleteVersions(c) => vec![("delete", join(&c.versions)), ("why", c.reason.clone())],
    }
}

fn plan_counts(changes: &[Change]) -> String {
    let mut created = 0;
    let mut defaults = 0;
    let mut groups = 0;
    let mut deleted = 0;
    let mut refreshes = 0;
    for c in changes {
        match c {
            Change::CreateVersion(_) => created += 1,
            Change::SetDefaultVersion(_) => defaults += 1,
            Change::UpdateGroup(_) => groups += 1,
            Change::StartInstanceRefresh(_) => refreshes += 1,
            Change::DeleteVersions(c) => deleted += c.versions.len(),
        }
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut counts = vec![
        plural(created, "version to create", "versions to create"),
        plural(defaults, "default to set", "defaults to set"),
        plural(groups, "group to update", "groups to update"),
        plural(deleted, "version to delete", "versions to delete"),
    ];
    // Said only when there are any: most deployments have no rolling group.
    if refreshes > 0 {
        counts.push(plural(refreshes, "refresh to start", "refreshes to start"));
    }
    counts.join(", ")
}
