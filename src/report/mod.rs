//! The report of a run: per template the plan, what was applied and what
//! failed; the run's totals; and its renderings: JSON as documented in
//! docs/report.md (here), text like a Terraform plan ([`text`]) and the
//! CloudWatch embedded metric format ([`emf`]).

pub mod emf;
pub mod events;
mod text;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::error::retryable_code;
use crate::plan::fleet::Fleet;
use crate::plan::{Change, ImageSummary, Plan};
use crate::settings::{Mode, Settings};
use crate::warning::{Severity, Warning, Warnings};

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
    /// Conditions only a person can clear: warnings of severity
    /// `needs_attention` and failures no retry fixes. The Lambda reports
    /// them in this count and its metric, and does not fail for them.
    pub needs_attention: usize,
    /// In-service instances of every template's managed groups not on
    /// their template's default image; `None` when no template's could be
    /// read.
    pub instances_behind: Option<usize>,
    /// The oldest of the templates' oldest running images' ages, seconds.
    pub oldest_running_image_age_seconds: Option<i64>,
    /// One report per managed template, by template id.
    pub templates: Vec<TemplateReport>,
    /// Warnings about no single template (groups on unmanaged templates, no
    /// template found).
    #[serde(skip)]
    pub run_warnings: Vec<Warning>,
    /// When the run's report was made.
    #[serde(skip)]
    pub at: DateTime<Utc>,
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
    /// Images this run tagged `ami-reconciler:skip=true` because a rollout
    /// of them failed (`ami-reconciler:rollout-failure=quarantine`).
    pub quarantined: usize,
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
            quarantined: applied
                .iter()
                .filter(|a| matches!(a.change, Change::QuarantineImage(_)))
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
    /// Conditions only a person can clear: [`needs_attention`].
    pub needs_attention: usize,
    /// How many of `warnings` the plan had: those after are this run's
    /// writes' own (a version EC2 warned about).
    #[serde(skip)]
    pub planned_warnings: usize,
    /// What its managed groups run: in-service instances, those behind the
    /// default image, the oldest image still running.
    pub fleet: Fleet,
    /// How old the oldest running image was when the run ended, in whole
    /// seconds; `None` when unknown.
    pub oldest_running_image_age_seconds: Option<i64>,
}

/// Conditions only a person can clear: warnings of severity
/// `NeedsAttention` and failures no retry fixes.
fn needs_attention(warnings: &[Warning], failed: &[Failed]) -> usize {
    let warned = warnings
        .iter()
        .filter(|w| w.severity() == Severity::NeedsAttention)
        .count();
    warned + failed.iter().filter(|f| !f.retryable()).count()
}

/// An applied change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// What happened, e.g. `created version 7`.
    pub result: String,
    /// The id of what the write made, for events: the version created or
    /// made the default, the instance refresh, the parameter's version.
    #[serde(skip)]
    pub made: Option<String>,
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

/// Why a change was not started once the deadline is near.
pub const DEADLINE_REACHED: &str = "the run's deadline is near: not started";

impl Failed {
    /// True when a retry can fix the failure; otherwise a person must act
    /// (a refusal such as AccessDenied, or a version EC2 warned about).
    pub fn retryable(&self) -> bool {
        retryable_code(self.error_code.as_deref())
    }
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
    pub fn planned(plan: Plan, mode: Mode) -> Self {
        TemplateReport {
            dry_run: mode.is_dry_run(),
            template_id: plan.template_id,
            template_name: plan.template_name,
            newest_backup: plan.newest_backup,
            newest_backup_age_seconds: None,
            changes: plan.changes,
            applied: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
            planned_warnings: plan.warnings.len(),
            warnings: Warnings(plan.warnings),
            needs_attention: 0,
            fleet: plan.fleet,
            oldest_running_image_age_seconds: None,
        }
    }

    /// The report once its template is done: the newest backup's age at
    /// `now` (never negative: a backup dated in the future counts as brand
    /// new) and the conditions that need a person.
    pub fn finished(mut self, now: DateTime<Utc>) -> Self {
        self.needs_attention = needs_attention(&self.warnings, &self.failed);
        self.newest_backup_age_seconds = self
            .newest_backup
            .as_ref()
            .map(|b| (now - b.creation_date).num_seconds().max(0));
        self.oldest_running_image_age_seconds = self
            .fleet
            .oldest_running_image
            .as_ref()
            .map(|i| (now - i.creation_date).num_seconds().max(0));
        self
    }
}

impl Report {
    /// Whether the run wrote.
    pub fn mode(&self) -> Mode {
        if self.dry_run {
            Mode::DryRun
        } else {
            Mode::Apply
        }
    }

    /// The run's report from each template's, aged at `now` (the clock is
    /// read by the caller, never in planning). When one template was named
    /// (`LAUNCH_TEMPLATE_ID` or `_PARAMETER`) the top-level template fields
    /// are its own.
    pub fn of(
        mode: Mode,
        settings: &Settings,
        templates: Vec<TemplateReport>,
        run_warnings: Vec<Warning>,
        now: DateTime<Utc>,
    ) -> Self {
        let templates: Vec<TemplateReport> =
            templates.into_iter().map(|t| t.finished(now)).collect();
        let one = templates
            .first()
            .filter(|_| !settings.discovers_templates());
        let mut warnings: Vec<Warning> = templates
            .iter()
            .flat_map(|t| t.warnings.iter().cloned())
            .collect();
        warnings.extend(run_warnings.iter().cloned());
        let changes: Vec<Change> = templates.iter().flat_map(|t| t.changes.clone()).collect();
        let applied: Vec<Applied> = templates.iter().flat_map(|t| t.applied.clone()).collect();
        let failed: Vec<Failed> = templates.iter().flat_map(|t| t.failed.clone()).collect();
        let needs_attention = needs_attention(&warnings, &failed);
        Report {
            needs_attention,
            refreshes: RefreshCounts::of(&changes, &applied, &failed, &warnings),
            schema_version: SCHEMA_VERSION,
            dry_run: mode.is_dry_run(),
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
            // Unknown when any template's is: a partial sum would read as
            // fewer instances behind than there are.
            instances_behind: templates
                .iter()
                .map(|t| t.fleet.instances_behind)
                .sum::<Option<usize>>()
                .filter(|_| !templates.is_empty()),
            oldest_running_image_age_seconds: templates
                .iter()
                .filter_map(|t| t.oldest_running_image_age_seconds)
                .max(),
            templates,
            run_warnings,
            at: now,
        }
    }

    /// Adds a warning about no single template, found after the report was
    /// made (events not sent), and counts it.
    pub fn add_run_warning(&mut self, warning: Warning) {
        self.run_warnings.push(warning.clone());
        self.warnings.0.push(warning);
        self.needs_attention = needs_attention(&self.warnings, &self.failed);
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

    /// True when a failure a later attempt can fix happened: a write
    /// throttled, failing inside AWS or unanswered, or changes left for the
    /// deadline. The Lambda fails such an invocation so that it is retried.
    pub fn retry_can_fix(&self) -> bool {
        self.failed.iter().any(Failed::retryable)
            || self
                .skipped
                .iter()
                .any(|s| s.skipped_because == DEADLINE_REACHED)
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
