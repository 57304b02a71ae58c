//! CloudWatch metrics of a run, as one Embedded Metric Format (EMF) log line.
//!
//! The Lambda function prints the line to stdout; CloudWatch Logs turns it
//! into metrics, so publishing them costs no API call and no permission. The
//! template's stale-backup alarm reads [`NEWEST_BACKUP_AGE_HOURS`].
//!
//! Lambda's log-level filter (JSON log format) reads a JSON line's `level`
//! and `timestamp`; a line without a `level`, or without a valid RFC 3339
//! `timestamp`, counts as INFO and is dropped when `ApplicationLogLevel` is
//! above INFO. The line carries both, at [`LOG_LEVEL`].

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{RefreshCounts, Report, TemplateReport};
use crate::settings::Mode;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "AmiReconciler";
/// The dimension every metric carries: the Lambda function's name.
pub const DIMENSION: &str = "FunctionName";
/// Age of the newest backup AMI, in hours. Absent when there is no backup.
pub const NEWEST_BACKUP_AGE_HOURS: &str = "NewestBackupAgeHours";
/// Changes planned: how far the account had drifted (0 when converged).
pub const DRIFT: &str = "Drift";
/// Changes applied by this run (0 in a dry run).
pub const APPLIED: &str = "Applied";
/// Changes that failed in this run.
pub const FAILED: &str = "Failed";
/// Conditions only a person can clear (a refused version, a malformed tag,
/// a stopped rollout, a write AWS refused): the needs-attention alarm's
/// metric. Such a run does not fail the invocation.
pub const NEEDS_ATTENTION: &str = "NeedsAttention";
/// Instance refreshes this run started (rolling groups).
pub const REFRESHES_STARTED: &str = "RefreshesStarted";
/// Instance refreshes found running.
pub const REFRESHES_RUNNING: &str = "RefreshesRunning";
/// Instance refreshes refused, or over with instances left on older images.
pub const REFRESHES_FAILED: &str = "RefreshesFailed";
/// In-service instances of the managed groups not on the default image.
pub const INSTANCES_BEHIND: &str = "InstancesBehind";
/// Age of the oldest image an in-service instance runs, in hours.
pub const OLDEST_RUNNING_IMAGE_AGE_HOURS: &str = "OldestRunningImageAgeHours";
/// Images quarantined by this run after a failed or rolled-back rollout.
pub const IMAGES_QUARANTINED: &str = "ImagesQuarantined";
/// The line's `level` for Lambda's log-level filter: it passes an
/// `ApplicationLogLevel` of up to WARN. ERROR or FATAL would still drop it
/// (and fire the stale-backup alarm); a higher level here would mark a
/// healthy run's metrics as an error.
pub const LOG_LEVEL: &str = "WARN";

/// The dimension of each template's own figures, next to [`DIMENSION`].
pub const TEMPLATE_DIMENSION: &str = "TemplateId";

/// The figures of one document.
struct Figures {
    newest_backup_age_seconds: Option<i64>,
    instances_behind: Option<usize>,
    oldest_running_image_age_seconds: Option<i64>,
    drift: usize,
    applied: usize,
    failed: usize,
    needs_attention: usize,
    /// The run's line only.
    refreshes: Option<RefreshCounts>,
}

/// The EMF document of a run's totals under one `FunctionName` dimension:
/// its age is the oldest template's, so the stale-backup alarm fires on
/// the template that fell behind. Pure: the caller passes the timestamp.
pub fn emf(report: &Report, timestamp: DateTime<Utc>, function_name: &str) -> Value {
    let figures = Figures {
        newest_backup_age_seconds: report.newest_backup_age_seconds,
        instances_behind: report.instances_behind,
        oldest_running_image_age_seconds: report.oldest_running_image_age_seconds,
        drift: report.changes.len(),
        applied: report.applied.len(),
        failed: report.failed.len(),
        needs_attention: report.needs_attention,
        refreshes: Some(report.refreshes),
    };
    let mut doc = document(&figures, timestamp, &[(DIMENSION, function_name)]);
    doc.insert(TEMPLATE_DIMENSION.into(), json!(report.template_id));
    doc.insert("Templates".into(), json!(report.templates.len()));
    doc.insert("DryRun".into(), json!(report.dry_run));
    Value::Object(doc)
}

/// The EMF document of one template's figures, under the dimensions
/// `FunctionName` and `TemplateId`.
pub fn emf_template(
    template: &TemplateReport,
    mode: Mode,
    timestamp: DateTime<Utc>,
    function_name: &str,
) -> Value {
    let figures = Figures {
        newest_backup_age_seconds: template.newest_backup_age_seconds,
        instances_behind: template.fleet.instances_behind,
        oldest_running_image_age_seconds: template.oldest_running_image_age_seconds,
        drift: template.changes.len(),
        applied: template.applied.len(),
        failed: template.failed.len(),
        needs_attention: template.needs_attention,
        refreshes: None,
    };
    let mut doc = document(
        &figures,
        timestamp,
        &[
            (DIMENSION, function_name),
            (TEMPLATE_DIMENSION, &template.template_id),
        ],
    );
    doc.insert("DryRun".into(), json!(mode.is_dry_run()));
    Value::Object(doc)
}

fn document(
    figures: &Figures,
    timestamp: DateTime<Utc>,
    dimensions: &[(&str, &str)],
) -> Map<String, Value> {
    let mut values: Vec<(&str, &str, Value)> = Vec::new();
    if let Some(age) = figures.newest_backup_age_seconds {
        // Two decimals: minutes are enough for a threshold counted in hours.
        let hours = (age as f64 / 36.0).round() / 100.0;
        values.push((NEWEST_BACKUP_AGE_HOURS, "None", json!(hours)));
    }
    values.push((DRIFT, "Count", json!(figures.drift)));
    // Left out, not zero, when unknown: an alarm must not read "all caught up".
    if let Some(behind) = figures.instances_behind {
        values.push((INSTANCES_BEHIND, "Count", json!(behind)));
    }
    if let Some(age) = figures.oldest_running_image_age_seconds {
        let hours = (age as f64 / 36.0).round() / 100.0;
        values.push((OLDEST_RUNNING_IMAGE_AGE_HOURS, "None", json!(hours)));
    }
    values.push((APPLIED, "Count", json!(figures.applied)));
    values.push((FAILED, "Count", json!(figures.failed)));
    values.push((NEEDS_ATTENTION, "Count", json!(figures.needs_attention)));
    if let Some(r) = figures.refreshes {
        values.push((REFRESHES_STARTED, "Count", json!(r.started)));
        values.push((REFRESHES_RUNNING, "Count", json!(r.running)));
        values.push((REFRESHES_FAILED, "Count", json!(r.failed)));
        values.push((IMAGES_QUARANTINED, "Count", json!(r.quarantined)));
    }

    let definitions: Vec<Value> = values
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": definitions,
            }],
        }),
    );
    for (name, value) in dimensions {
        doc.insert((*name).into(), json!(value));
    }
    for (name, _, value) in values {
        doc.insert(name.into(), value);
    }
    doc.insert("level".into(), json!(LOG_LEVEL));
    doc.insert(
        "timestamp".into(),
        json!(timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    doc
}

/// The lines to print to stdout: the run's totals, then one per template.
pub fn emf_lines(report: &Report, timestamp: DateTime<Utc>, function_name: &str) -> Vec<String> {
    std::iter::once(emf(report, timestamp, function_name))
        .chain(
            report
                .templates
                .iter()
                .map(|t| emf_template(t, report.mode(), timestamp, function_name)),
        )
        .map(|doc| doc.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::plan::{Change, ImageSummary, Plan, SetDefaultVersion};
    use crate::report::Failed;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, hour, 0, 0).unwrap()
    }

    fn settings(template: (&str, &str)) -> crate::Settings {
        let (variable, value) = template;
        let mut raw = crate::RawSettings::default();
        match variable {
            "LAUNCH_TEMPLATE_ID" => raw.launch_template_id = Some(value.into()),
            _ => raw.launch_template_tag = Some(value.into()),
        }
        raw.validate().unwrap()
    }

    fn report(backup: Option<DateTime<Utc>>, changes: usize) -> Report {
        Report::of(
            Mode::Apply,
            &settings(("LAUNCH_TEMPLATE_ID", "lt-0123")),
            vec![template_report("lt-0123", backup, changes)],
            Vec::new(),
            at(3),
        )
    }

    fn template_report(id: &str, backup: Option<DateTime<Utc>>, changes: usize) -> TemplateReport {
        let change = Change::SetDefaultVersion(SetDefaultVersion {
            template_id: id.into(),
            from: 1,
            to: crate::plan::VersionTarget::Number(2),
            reason: "test".into(),
        });
        TemplateReport::planned(
            Plan {
                template_id: id.into(),
                template_name: "web".into(),
                newest_backup: backup.map(|creation_date| ImageSummary {
                    image_id: "ami-1".into(),
                    creation_date,
                }),
                changes: vec![change; changes],
                warnings: Vec::new(),
                fleet: Default::default(),
                reads: Vec::new(),
            },
            Mode::Apply,
        )
    }

    fn metric_names(doc: &Value) -> Vec<&str> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_backup_made_27_and_a_half_hours_ago_is_reported_as_27_5_hours_old() {
        let made = at(3) - chrono::Duration::minutes(27 * 60 + 30);
        let report = report(Some(made), 0);
        assert_eq!(report.newest_backup_age_seconds, Some(99_000));

        let doc = emf(&report, at(3), "reconciler");

        assert_eq!(doc[NEWEST_BACKUP_AGE_HOURS], json!(27.5));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "None"
        );
    }

    #[test]
    fn drift_applied_and_failed_are_counts_of_the_report() {
        let mut report = report(Some(at(1)), 3);
        report.applied.push(crate::report::Applied {
            change: report.changes[0].clone(),
            result: "done".into(),
            made: None,
        });
        report.failed.push(Failed {
            change: report.changes[1].clone(),
            error_code: Some("AccessDenied".into()),
            error: "AccessDenied: denied".into(),
        });

        let doc = emf(&report, at(3), "reconciler");

        assert_eq!(doc[DRIFT], 3);
        assert_eq!(doc[APPLIED], 1);
        assert_eq!(doc[FAILED], 1);
        assert_eq!(
            metric_names(&doc),
            [
                NEWEST_BACKUP_AGE_HOURS,
                DRIFT,
                APPLIED,
                FAILED,
                NEEDS_ATTENTION,
                REFRESHES_STARTED,
                REFRESHES_RUNNING,
                REFRESHES_FAILED,
                IMAGES_QUARANTINED
            ]
        );
    }

    #[test]
    fn the_document_follows_the_emf_specification() {
        let doc = emf(&report(Some(at(1)), 0), at(3), "my-fn");

        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], at(3).timestamp_millis());
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        // every dimension and metric named in the directive has a value at the top level
        assert_eq!(doc["FunctionName"], "my-fn");
        for name in metric_names(&doc) {
            assert!(doc[name].is_number(), "{name} has no numeric value");
        }
        assert_eq!(doc["TemplateId"], "lt-0123");
    }

    #[test]
    fn a_refused_version_counts_as_needing_a_person_on_the_run_and_its_template() {
        let mut template = template_report("lt-web", Some(at(2)), 1);
        template
            .warnings
            .push(crate::warning::Warning::VersionWarned {
                template: "lt-web".into(),
                image: "ami-1".into(),
                version: 2,
                messages: "InvalidParameterValue: bad".into(),
            });
        let report = Report::of(
            Mode::Apply,
            &settings(("LAUNCH_TEMPLATE_ID", "lt-0123")),
            vec![template],
            Vec::new(),
            at(3),
        );

        let lines: Vec<Value> = emf_lines(&report, at(3), "fn")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();

        assert_eq!(lines[0][NEEDS_ATTENTION], 1);
        assert_eq!(lines[1][NEEDS_ATTENTION], 1);
        assert_eq!(lines[1][TEMPLATE_DIMENSION], "lt-web");
        assert!(!report.retry_can_fix());
    }

    #[test]
    fn without_a_backup_the_age_metric_is_left_out_not_zero() {
        let report = report(None, 0);
        assert_eq!(report.newest_backup_age_seconds, None);

        let doc = emf(&report, at(3), "reconciler");

        assert!(doc.get(NEWEST_BACKUP_AGE_HOURS).is_none());
        assert_eq!(
            metric_names(&doc),
            [
                DRIFT,
                APPLIED,
                FAILED,
                NEEDS_ATTENTION,
                REFRESHES_STARTED,
                REFRESHES_RUNNING,
                REFRESHES_FAILED,
                IMAGES_QUARANTINED
            ]
        );
    }

    #[test]
    fn a_backup_dated_in_the_future_counts_as_brand_new() {
        let report = report(Some(at(5)), 0);
        assert_eq!(report.newest_backup_age_seconds, Some(0));
    }

    #[test]
    fn the_line_has_the_level_and_timestamp_lambdas_log_filter_reads() {
        let doc = emf(&report(Some(at(1)), 0), at(3), "fn");

        // WARN passes ApplicationLogLevel TRACE to WARN; without a level, or
        // without a valid timestamp, Lambda would treat the line as INFO.
        assert_eq!(doc["level"], "WARN");
        assert_eq!(doc["timestamp"], "2026-11-02T03:00:00.000Z");
        assert_eq!(
            DateTime::parse_from_rfc3339(doc["timestamp"].as_str().unwrap()).unwrap(),
            at(3)
        );
    }

    #[test]
    fn the_line_is_one_line_of_json() {
        let lines = emf_lines(&report(Some(at(1)), 2), at(3), "fn");
        for line in &lines {
            assert!(!line.contains('\n'));
        }
        let parsed: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(parsed[DRIFT], 2);
    }

    #[test]
    fn each_template_has_its_own_line_with_the_template_as_a_dimension() {
        let report = Report::of(
            Mode::Apply,
            &settings(("LAUNCH_TEMPLATE_TAG", "ami-reconciler:managed=true")),
            vec![
                template_report("lt-web", Some(at(2)), 0),
                template_report("lt-api", Some(at(3) - chrono::Duration::hours(30)), 2),
            ],
            Vec::new(),
            at(3),
        );

        let lines: Vec<Value> = emf_lines(&report, at(3), "fn")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();

        assert_eq!(lines.len(), 3);
        // The totals carry the oldest template's age: the alarm fires on it.
        assert_eq!(lines[0][NEWEST_BACKUP_AGE_HOURS], json!(30.0));
        assert_eq!(lines[0][DRIFT], 2);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"]])
        );
        for (line, (id, age, drift)) in lines[1..]
            .iter()
            .zip([("lt-web", 1.0, 0), ("lt-api", 30.0, 2)])
        {
            assert_eq!(
                line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["FunctionName", "TemplateId"]])
            );
            assert_eq!(line[TEMPLATE_DIMENSION], id);
            assert_eq!(line[NEWEST_BACKUP_AGE_HOURS], json!(age));
            assert_eq!(line[DRIFT], drift);
        }
    }
}
