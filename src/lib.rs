//! ami-reconciler keeps EC2 Auto Scaling groups launching from the newest
//! backup AMI that Data Lifecycle Manager made.
//!
//! One run observes the account, plans, and (unless dry) applies:
//!
//! ```text
//! observe(&Clients, &Settings)      -> Observed        all reads, those the plans ask for included
//! plan_run(&Observed, &asg_tag)      -> RunPlan         pure: a Plan per template, no I/O, no clock
//! apply(&Clients, Plan, concurrency) -> TemplateReport  all writes, each change reported
//! Report::of(mode, &Settings, ..)    -> Report          the run's totals and each template's
//! ```
//!
//! Dependencies point one way, down this picture; nothing imports upwards:
//!
//! ```text
//! lambda, bin/*            entry points: parse input, build clients, render
//!   run (this file)
//!   observe  apply  report (text, emf, events)  notify
//!        \    |    /
//!         plan                 pure rules, one family per file
//!   ec2  autoscaling  ssm  eventbridge   adapters: SDK <-> model
//!   model  policy  warning     plain data, no SDK type, no I/O
//!   settings  error  clients   configuration, error types, SDK clients
//! ```
//!
//! `apply` runs group updates up to `concurrency` at a time. The CLI
//! (`ami-reconciler`) and the Lambda function (`ami-reconciler-lambda`) are
//! thin shells over [`run`].

pub mod apply;
pub mod autoscaling;
pub mod clients;
pub mod ec2;
pub mod error;
pub mod eventbridge;
pub mod lambda;
pub mod model;
pub mod notify;
pub mod observe;
pub mod plan;
pub mod policy;
pub mod report;
#[cfg(test)]
mod sdk_fields;
pub mod settings;
pub mod ssm;
pub mod warning;

pub use clients::{Clients, load_config};
pub use error::{ConfigError, Error, ErrorKind, Result, error_chain};
pub use observe::observe;
pub use plan::{Change, Plan, plan};
pub use report::{Report, TemplateReport};
pub use settings::{Mode, RawSettings, Settings};

use tracing::{debug, info};

/// One full pass: observe, plan, and apply unless a dry run.
///
/// Errors mean the state could not be read: nothing was changed. Failures of
/// single changes, and templates skipped in tag mode, are in the report
/// (`failed`, `skipped`, `warnings`).
pub async fn run(clients: &Clients, settings: &Settings, mode: Mode) -> Result<Report> {
    run_until(clients, settings, mode, None).await
}

/// [`run`] whose writes must all be over by `writes_until` (see
/// [`apply::writes_until`]): a change whose calls might not end by then is
/// not started and is reported skipped.
pub async fn run_until(
    clients: &Clients,
    settings: &Settings,
    mode: Mode,
    writes_until: Option<std::time::Instant>,
) -> Result<Report> {
    let observed = match observe(clients, settings).await {
        Ok(observed) => observed,
        Err(err) if err.is_not_found() => return Err(err.searched_in(clients.place().await)),
        Err(err) => {
            if let Some(aws) = err.aws() {
                debug!(detail = aws.detail(), "observe failed: the SDK's account");
            }
            return Err(err.at(clients.endpoint()));
        }
    };
    let run_plan = plan::plan_run(&observed, &settings.asg_tag);
    for change in run_plan.plans.iter().flat_map(|p| &p.changes) {
        info!(
            action = change.action(),
            target = %change.target(),
            change = %serde_json::to_string(change).unwrap_or_default(),
            "planned"
        );
    }
    let warnings = run_plan.plans.iter().flat_map(|p| &p.warnings);
    for warning in warnings.chain(&run_plan.warnings) {
        // At INFO: the report prints each warning once.
        info!(code = %warning.code(), warning = %warning, "warning");
    }
    // Templates are applied one after another; within one, group updates
    // run `concurrency` at a time. A template's failures never stop the next.
    let mut reports = Vec::with_capacity(run_plan.plans.len());
    for plan in run_plan.plans {
        reports.push(if mode.is_dry_run() || plan.is_converged() {
            TemplateReport::planned(plan, mode)
        } else {
            apply::apply(clients, plan, settings.concurrency, writes_until).await
        });
    }
    // The clock is read here, at the edge, never in plan().
    let mut report = Report::of(
        mode,
        settings,
        reports,
        run_plan.warnings,
        chrono::Utc::now(),
    );
    if let Some(bus) = &settings.event_bus {
        notify::send_events(clients, bus, &mut report, writes_until).await;
    }
    info!(
        dry_run = mode.is_dry_run(),
        templates = report.templates.len(),
        template = report.template_id.as_deref().unwrap_or(""),
        newest_backup = report
            .newest_backup
            .as_ref()
            .map(|b| b.image_id.as_str())
            .unwrap_or(""),
        planned = report.changes.len(),
        applied = report.applied.len(),
        failed = report.failed.len(),
        skipped = report.skipped.len(),
        warnings = report.warnings.len(),
        "{}",
        report.summary()
    );
    Ok(report)
}
