//! The text rendering of a report, for a terminal: each template's header,
//! changes and warnings, the run's warnings, and a one-line summary.

use std::fmt::Write as _;

use super::{Report, TemplateReport};
use crate::model::{OnFailure, SKIP_REASON_TAG_KEY, SKIP_TAG_KEY};
use crate::plan::{Change, StartInstanceRefresh, VersionTarget};
use crate::warning::{Severity, Warning, join};

/// `1 thing` or `2 things`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl TemplateReport {
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
        if let Some(line) = self.fleet_line() {
            let _ = writeln!(out, "Instances       {line}");
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
        write_warnings(out, "Warnings:", self.warnings.iter());
    }

    /// `5 in service, 2 behind the default image; oldest running image
    /// ami-... created ...`; `None` when the managed groups run nothing.
    fn fleet_line(&self) -> Option<String> {
        let fleet = &self.fleet;
        if fleet.in_service == 0 {
            return None;
        }
        let mut line = format!("{} in service", fleet.in_service);
        match fleet.instances_behind {
            Some(behind) => {
                let _ = write!(line, ", {behind} behind the default image");
            }
            None => line.push_str(", how many are behind is unknown"),
        }
        if let Some(oldest) = &fleet.oldest_running_image {
            let _ = write!(
                line,
                "; oldest running image {} created {}",
                oldest.image_id, oldest.creation_date
            );
        }
        Some(line)
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
    /// One line: what was planned and what happened.
    pub fn summary(&self) -> String {
        let what = self.what_happened();
        match self.causes() {
            causes if causes.is_empty() => what,
            causes => format!("{what} Exit 1: {}; see above.", causes.join(", ")),
        }
    }

    fn what_happened(&self) -> String {
        let outcome = self.outcome();
        match self.without_backup() {
            None => outcome,
            Some(note) => format!("{outcome} {note}"),
        }
    }

    fn outcome(&self) -> String {
        if self.changes.is_empty() {
            return match self.templates.len() {
                0 => "No changes. No launch template is managed.".to_owned(),
                _ if self.exit_code() != 0 || self.without_backup().is_some() => {
                    "No changes.".to_owned()
                }
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
                "Apply: {} of {} applied, {} failed, {} skipped ({counts}).",
                self.applied.len(),
                plural(self.changes.len(), "change", "changes"),
                self.failed.len(),
                self.skipped.len()
            )
        }
    }

    /// A marker or lineage that matches nothing, said out loud.
    fn without_backup(&self) -> Option<String> {
        let n = self.templates.len();
        let k = self
            .templates
            .iter()
            .filter(|t| t.newest_backup.is_none())
            .count();
        match (n, k) {
            (_, 0) => None,
            (1, _) => Some(
                "No backup matches the marker and lineage of the launch template (see the warnings above)."
                    .to_owned(),
            ),
            (n, k) => Some(format!(
                "No backup matches the marker and lineage of {k} of the {n} launch templates (see the warnings above)."
            )),
        }
    }

    /// Why the run exits 1, one phrase per kind of cause; empty for exit 0.
    fn causes(&self) -> Vec<String> {
        let mut causes = Vec::new();
        if !self.failed.is_empty() {
            causes.push(format!("{} failed", self.failed.len()));
        }
        if !self.skipped.is_empty() {
            causes.push(format!("{} skipped", self.skipped.len()));
        }
        let warned = self
            .warnings
            .iter()
            .filter(|w| w.severity() == Severity::NeedsAttention)
            .count();
        if warned > 0 {
            causes.push(format!(
                "{} a person must clear",
                plural(warned, "condition", "conditions")
            ));
        }
        causes
    }

    /// One line per cause of a non-zero exit, naming its target and what
    /// to do: failed and skipped changes, then conditions a person must clear.
    pub fn cause_lines(&self) -> Vec<String> {
        let failed = self
            .failed
            .iter()
            .map(|f| format!("error: {}: {}", f.change.target(), f.error));
        let skipped = self
            .skipped
            .iter()
            .map(|s| format!("skipped: {}: {}", s.change.target(), s.skipped_because));
        let attention = self
            .warnings
            .iter()
            .filter(|w| w.severity() == Severity::NeedsAttention)
            .map(|w| format!("needs attention: {w}"));
        failed.chain(skipped).chain(attention).collect()
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
        write_warnings(
            &mut out,
            "Warnings about no single template:",
            self.run_warnings.iter(),
        );
        let _ = writeln!(out, "{}", self.summary());
        out
    }
}

fn write_warnings<'a>(
    out: &mut String,
    heading: &str,
    warnings: impl Iterator<Item = &'a Warning>,
) {
    let mut warnings = warnings.peekable();
    if warnings.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "{heading}");
    for w in warnings {
        let _ = writeln!(out, "  ! {w}");
    }
    out.push('\n');
}

fn symbol(change: &Change) -> &'static str {
    match change {
        Change::QuarantineImage(_) => "!",
        Change::CreateVersion(_) => "+",
        Change::SetDefaultVersion(_) | Change::PutImageParameter(_) | Change::UpdateGroup(_) => "~",
        Change::StartInstanceRefresh(_) => ">",
        Change::DeleteVersions(_) => "-",
    }
}

fn headline(change: &Change) -> String {
    match change {
        Change::QuarantineImage(c) => format!("image {}: quarantine", c.image),
        Change::CreateVersion(c) => format!(
            "launch template {}: new version from version {} ($Latest)",
            c.template_id, c.source_version
        ),
        Change::SetDefaultVersion(c) => {
            format!("launch template {}: default version", c.template_id)
        }
        Change::PutImageParameter(c) => format!("ssm parameter {}: image", c.parameter),
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
            "auto scaling group {}: instance refresh to {} ({})",
            c.group,
            match c.version {
                VersionTarget::Number(n) => format!("version {n}"),
                VersionTarget::Created => "the new version".to_owned(),
            },
            c.image
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
        Change::QuarantineImage(c) => vec![
            (
                "tags",
                format!(
                    "{SKIP_TAG_KEY}=true, {SKIP_REASON_TAG_KEY}={}",
                    c.skip_reason
                ),
            ),
            ("why", c.reason.clone()),
        ],
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
        Change::PutImageParameter(c) => vec![
            (
                "value",
                format!(
                    "{} -> {} (aws:ec2:image)",
                    c.from.as_deref().unwrap_or("none"),
                    c.to
                ),
            ),
            ("why", c.reason.clone()),
        ],
        Change::UpdateGroup(c) => vec![
            ("from", format!("{} {} -> {}", c.template, c.from, c.to)),
            ("why", c.reason.clone()),
        ],
        Change::StartInstanceRefresh(c) => refresh_details(c),
        Change::DeleteVersions(c) => vec![("delete", join(&c.versions)), ("why", c.reason.clone())],
    }
}

/// How a refresh replaces instances, what it watches, what a failure does.
fn refresh_details(c: &StartInstanceRefresh) -> Vec<(&'static str, String)> {
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
    if let Some(bake) = p.bake_time_seconds {
        let _ = write!(how, ", bake time {}", duration(bake));
    }
    let alarms = match p.alarms.as_slice() {
        [] => "none".to_owned(),
        names => names.join(", "),
    };
    if !p.skip_matching {
        how.push_str(", every instance replaced (the group is on this version already)");
    }
    let on_failure = match p.on_failure {
        _ if !p.auto_rollback => format!(
            "no automatic rollback: the group is on version {} already, or that version's image is an SSM parameter",
            c.rollback_to
        ),
        OnFailure::Hold => format!(
            "Auto Scaling rolls the group back to version {}; the image is not rolled out again",
            c.rollback_to
        ),
        OnFailure::Quarantine => format!(
            "Auto Scaling rolls the group back to version {}; the image is quarantined ({SKIP_TAG_KEY}=true) and the template retreats to the newest good backup",
            c.rollback_to
        ),
    };
    vec![
        (
            "outdated",
            format!("{} of {} instances", c.outdated, c.in_service),
        ),
        ("how", how),
        ("alarms", alarms),
        ("failure", on_failure),
        ("why", c.reason.clone()),
    ]
}

fn plan_counts(changes: &[Change]) -> String {
    let mut created = 0;
    let mut defaults = 0;
    let mut groups = 0;
    let mut deleted = 0;
    let mut refreshes = 0;
    let mut quarantines = 0;
    let mut parameters = 0;
    for c in changes {
        match c {
            Change::QuarantineImage(_) => quarantines += 1,
            Change::CreateVersion(_) => created += 1,
            Change::SetDefaultVersion(_) => defaults += 1,
            Change::PutImageParameter(_) => parameters += 1,
            Change::UpdateGroup(_) => groups += 1,
            Change::StartInstanceRefresh(_) => refreshes += 1,
            Change::DeleteVersions(c) => deleted += c.versions.len(),
        }
    }
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
    if parameters > 0 {
        counts.push(plural(
            parameters,
            "parameter to publish",
            "parameters to publish",
        ));
    }
    if quarantines > 0 {
        counts.insert(
            0,
            plural(quarantines, "image to quarantine", "images to quarantine"),
        );
    }
    counts.join(", ")
}

/// Seconds as the tags write them: `2h`, `30m`, `90s`.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
