//! Faults against moto through the proxy: throttling, 5xx bursts, dropped
//! connections, hung endpoints, writes that keep failing, and two runs at
//! once. Each test asserts the state the account is left in and what the
//! report says, not only how the run ended.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use ami_reconciler::Mode;
use ami_reconciler::clients::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, OPERATION_TIMEOUT};
use ami_reconciler::error::Error;
use ami_reconciler::warning::Warning;
use ami_reconciler::{Clients, Report, run};
use aws_config::ConfigLoader;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use serde_json::{Value, json};
use support::{Drifted, Moto, applied_actions, drifted, settings_for};

/// Retries as in production (standard mode) without the waits, so a test of
/// what is retried does not sleep through the backoff: at most `n` attempts.
fn retries(n: u32) -> impl FnOnce(ConfigLoader) -> ConfigLoader {
    move |loader| {
        loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(n)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(50)),
        )
    }
}

/// Quick retries, as many attempts as in production.
fn quick_retries(loader: ConfigLoader) -> ConfigLoader {
    retries(ami_reconciler::clients::DEFAULT_MAX_ATTEMPTS)(loader)
}

/// The production timeouts divided by `scale`, with quick retries.
fn timeouts(scale: u32) -> impl FnOnce(ConfigLoader) -> ConfigLoader {
    move |loader| {
        quick_retries(loader).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT / scale)
                .read_timeout(ATTEMPT_TIMEOUT / scale)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT / scale)
                .operation_timeout(OPERATION_TIMEOUT / scale)
                .build(),
        )
    }
}

/// How many calls of `action` the proxy saw, and how many it faulted.
fn count(moto: &Moto, action: &str) -> (usize, usize) {
    let calls: Vec<_> = moto
        .calls()
        .into_iter()
        .filter(|c| c.action == action)
        .collect();
    let faulted = calls.iter().filter(|c| c.fault.is_some()).count();
    (calls.len(), faulted)
}

/// The converged state of [`Drifted`]: versions 2, 3, 5, 6, 7 (7 the
/// default, with the newest backup), both managed groups on `$Latest`, the
/// untagged group untouched.
async fn assert_drift_repaired(moto: &Moto, d: &Drifted) {
    assert_repaired_on(moto, d, (vec![2, 3, 5, 6, 7], 7)).await;
}

/// The drift is repaired with `versions` left and the last of them the
/// default, on the newest backup.
async fn assert_repaired_on(moto: &Moto, d: &Drifted, versions: (Vec<i64>, i64)) {
    let account = moto.account().await;
    let default = versions.1;
    assert_eq!(account.versions(&d.template).await, versions);
    assert_eq!(
        account
            .version_data(&d.template, &default.to_string())
            .await
            .image_id(),
        Some(d.backups[2].as_str())
    );
    assert_eq!(account.group_version("web").await, "$Latest");
    assert_eq!(account.group_version("spot").await, "$Latest");
    assert_eq!(account.group_version("batch").await, "2");
}

fn assert_all_applied(report: &Report) {
    assert!(
        report.failed.is_empty() && report.skipped.is_empty(),
        "{}",
        report.to_text()
    );
    assert_eq!(report.applied.len(), report.changes.len());
    assert_eq!(report.exit_code(), 0);
}

// --- retried until they succeed ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_on_30_percent_of_every_services_calls_slows_the_run_down_but_it_converges() {
    // GIVEN a drifted account named through SSM, and 30% of the calls to each
    // service throttled (fixed seeds; each service's first call is among them)
    let moto = Moto::start();
    let d = drifted(&moto).await;
    moto.account().await.parameter("/app/lt", &d.template).await;
    let settings = ami_reconciler::RawSettings {
        launch_template_parameter: Some("/app/lt".into()),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let throttling = json!([
        {"service": "ssm", "fault": "throttle", "probability": 0.3, "seed": 1},
        {"service": "ec2", "fault": "throttle", "probability": 0.3, "seed": 3},
        {"service": "autoscaling", "fault": "throttle", "probability": 0.3, "seed": 14},
    ]);
    moto.faults(throttling.clone());
    let clients = moto.clients().await; // production retry settings

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN every change is applied, after retries on every service
    assert_all_applied(&report);
    assert_drift_repaired(&moto, &d).await;
    let calls = moto.calls();
    for service in ["ssm", "ec2", "autoscaling"] {
        let throttled = calls
            .iter()
            .filter(|c| c.service == service && c.fault.as_deref() == Some("throttle"))
            .count();
        assert!(throttled >= 1, "{service} was never throttled: {calls:?}");
    }
    // AND one version was created however often its call was throttled
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.action == "CreateLaunchTemplateVersion" && c.status == 200)
            .count(),
        1
    );

    // AND a second run under the same throttling plans nothing
    moto.reset();
    moto.faults(throttling);
    let again = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert!(again.changes.is_empty(), "{}", again.to_text());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_and_503_bursts_and_dropped_connections_are_retried_until_they_succeed() {
    let moto = Moto::start();
    let d = drifted(&moto).await;
    moto.faults(json!([
        {"action": "DescribeLaunchTemplateVersions", "fault": "drop", "times": 1},
        {"action": "CreateLaunchTemplateVersion", "fault": "http500", "times": 2},
        {"action": "ModifyLaunchTemplate", "fault": "http503", "times": 2},
        {"action": "UpdateAutoScalingGroup", "group": "web", "fault": "drop", "times": 1},
        {"action": "UpdateAutoScalingGroup", "group": "spot", "fault": "http500", "times": 1},
        {"action": "DeleteLaunchTemplateVersions", "fault": "http503", "times": 3},
    ]));

    let report = run(
        &moto.clients_with(quick_retries).await,
        &settings_for(&d.template),
        Mode::Apply,
    )
    .await
    .unwrap();

    assert_all_applied(&report);
    assert_drift_repaired(&moto, &d).await;
    for (call, faults) in [
        ("DescribeLaunchTemplateVersions", 1),
        ("CreateLaunchTemplateVersion", 2),
        ("ModifyLaunchTemplate", 2),
        ("UpdateAutoScalingGroup", 2),
        ("DeleteLaunchTemplateVersions", 3),
    ] {
        let (calls, faulted) = count(&moto, call);
        assert_eq!(faulted, faults, "{call}");
        assert!(calls > faulted, "{call} never got through");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_is_retried_into_the_same_version() {
    // GIVEN the first CreateLaunchTemplateVersion hangs past the attempt
    // timeout, then reaches EC2 anyway (as a lost answer does on AWS)
    let moto = Moto::start();
    let d = drifted(&moto).await;
    moto.faults(json!([{
        "action": "CreateLaunchTemplateVersion", "fault": "hang", "delay_ms": 2_500, "times": 1
    }]));

    // WHEN the SDK gives up on it and retries
    // (attempt timeout 2 s: room for a slow machine, not for the hang)
    let report = run(
        &moto.clients_with(timeouts(10)).await,
        &settings_for(&d.template),
        Mode::Apply,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await; // the hung call lands

    // THEN the ClientToken makes both attempts one version
    assert_all_applied(&report);
    assert_eq!(count(&moto, "CreateLaunchTemplateVersion"), (2, 1));
    assert_drift_repaired(&moto, &d).await;
}

// --- reported when they keep failing -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_keeps_failing_exits_2_naming_the_step_and_changes_nothing() {
    let moto = Moto::start();
    let d = drifted(&moto).await;
    moto.faults(json!([{"action": "DescribeImages", "fault": "http503"}]));

    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args([
            "apply",
            "--output",
            "json",
            "--launch-template-id",
            &d.template,
        ])
        .env_clear()
        .envs(moto.env())
        .env("AWS_MAX_ATTEMPTS", "2")
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: failed to describe images: Unavailable: "),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "DescribeImagesFailed");
    assert_eq!(doc["changed"], false);
    assert_eq!(count(&moto, "DescribeImages"), (2, 2)); // retried once, then reported
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_endpoint_ends_the_run_with_a_timeout_error_and_changes_nothing() {
    // GIVEN every call hangs longer than the (scaled-down) operation timeout
    let moto = Moto::start();
    let d = drifted(&moto).await;
    moto.faults(json!([{"fault": "hang", "delay_ms": 5_000}]));
    let clients = moto.clients_with(timeouts(40)).await;
    let started = Instant::now();

    // WHEN it runs
    let err = run(&clients, &settings_for(&d.template), Mode::Apply)
        .await
        .unwrap_err();

    // THEN it stops at the operation timeout with an error naming the step
    // and the timeout, and nothing was attempted
    let elapsed = started.elapsed();
    assert!(
        elapsed >= OPERATION_TIMEOUT / 40 && elapsed < OPERATION_TIMEOUT / 40 * 2,
        "{elapsed:?}"
    );
    let message = ami_reconciler::error_chain(&err);
    assert!(
        matches!(
            err,
            Error::DescribeTemplateVersions { .. }
                | Error::DescribeImages { .. }
                | Error::DescribeGroups { .. }
        ),
        "{message}"
    );
    assert!(message.contains("timeout"), "{message}");
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[test]
fn a_stuck_call_ends_well_inside_the_lambda_timeout() {
    // One stuck call, retries included, ends at OPERATION_TIMEOUT with an
    // error; that must be a small part of the function's Timeout, so the
    // run reports it instead of being killed by Lambda.
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .expect("template.yaml");
    let lambda_timeout: u64 = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("Timeout:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("template.yaml sets the function's Timeout");
    assert!(
        OPERATION_TIMEOUT.as_secs() * 4 <= lambda_timeout,
        "{OPERATION_TIMEOUT:?} per call, {lambda_timeout} s for the function"
    );
    assert!(ATTEMPT_TIMEOUT < OPERATION_TIMEOUT && CONNECT_TIMEOUT < ATTEMPT_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_new_version_fails_the_default_and_prune_wait_but_groups_are_fixed() {
    // GIVEN CreateLaunchTemplateVersion is refused
    let moto = Moto::start();
    let d = drifted(&moto).await;
    let account = moto.account().await;
    moto.faults(json!([{
        "action": "CreateLaunchTemplateVersion", "fault": "error", "status": 400,
        "code": "InvalidParameterValue", "message": "refused for the test"
    }]));
    let clients = moto.clients().await;
    let settings = settings_for(&d.template);

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the create is reported failed with AWS's error, the default switch
    // and the prune (which counted the new version) are skipped, the groups moved
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.failed.len(), 1, "{}", report.to_text());
    assert_eq!(report.failed[0].change.action(), "create_version");
    assert_eq!(
        report.failed[0].error_code.as_deref(),
        Some("InvalidParameterValue")
    );
    assert_eq!(
        report.failed[0].error,
        "InvalidParameterValue: refused for the test"
    );
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.change.action(), s.skipped_because.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("set_default_version", "the new version was not created"),
            (
                "delete_versions",
                "the keep window counted a version that was not created"
            )
        ]
    );
    assert_eq!(applied_actions(&report), ["update_group", "update_group"]);
    assert_eq!(account.versions(&d.template).await, ((1..=6).collect(), 1));
    assert_eq!(account.group_version("web").await, "$Latest");
    let mutating = moto.mutating_calls();
    assert!(
        !mutating.contains(&"ModifyLaunchTemplate".into()),
        "{mutating:?}"
    );
    assert!(
        !mutating.contains(&"DeleteLaunchTemplateVersions".into()),
        "{mutating:?}"
    );

    // AND once EC2 accepts it again, the next run finishes the job
    moto.reset();
    let next = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_all_applied(&next);
    assert_drift_repaired(&moto, &d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_default_switch_keeps_failing_the_old_default_is_kept_and_the_next_run_judges_the_version_again()
 {
    // GIVEN ModifyLaunchTemplate fails on every attempt
    let moto = Moto::start();
    let d = drifted(&moto).await;
    let account = moto.account().await;
    moto.faults(json!([{"action": "ModifyLaunchTemplate", "fault": "http500"}]));
    let clients = moto.clients_with(retries(3)).await;
    let settings = settings_for(&d.template);

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the switch is reported failed after its retries; version 7 exists,
    // version 1 (still the default) is kept, version 4 is pruned
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.failed.len(), 1, "{}", report.to_text());
    assert_eq!(report.failed[0].change.action(), "set_default_version");
    assert_eq!(
        report.failed[0].error_code.as_deref(),
        Some("InternalError")
    );
    assert_eq!(count(&moto, "ModifyLaunchTemplate"), (3, 3));
    assert_eq!(
        report.warnings[..],
        [Warning::VersionsKept {
            template: d.template.clone(),
            versions: vec![1]
        }]
    );
    assert_eq!(
        account.versions(&d.template).await,
        (vec![1, 2, 3, 5, 6, 7], 1)
    );

    // AND the next run cannot tell version 7 from one whose answer was
    // lost: it is unverified, never made the default; the same data is
    // created again (version 8), judged clean, made the default, and the
    // rest pruned
    moto.reset();
    let next = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_all_applied(&next);
    assert_eq!(
        moto.mutating_calls(),
        [
            "CreateLaunchTemplateVersion",
            "ModifyLaunchTemplate",
            "DeleteLaunchTemplateVersions"
        ]
    );
    assert_repaired_on(&moto, &d, (vec![2, 3, 6, 7, 8], 8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_group_does_not_stop_the_others_and_the_report_names_it() {
    // GIVEN three managed groups on version 1, and b's update is refused
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    account.version(&template, &image).await;
    account.set_default(&template, 2).await;
    for name in ["a", "b", "c"] {
        account.group(name, &template, "1", true).await;
    }
    moto.faults(json!([{
        "action": "UpdateAutoScalingGroup", "group": "b", "fault": "error",
        "status": 400, "code": "ValidationError", "message": "AutoScalingGroup name not found - b"
    }]));
    let clients = moto.clients().await;
    // Keeping one version makes version 1 prunable once the groups leave it.
    let mut settings = settings_for(&template);
    settings.policy.keep_versions = 1;

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN a and c moved, b is the one failure, named with AWS's error
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.failed.len(), 1, "{}", report.to_text());
    assert_eq!(report.failed[0].change.target(), "b");
    assert_eq!(
        report.failed[0].error,
        "ValidationError: AutoScalingGroup name not found - b"
    );
    assert_eq!(account.group_version("a").await, "$Latest");
    assert_eq!(account.group_version("c").await, "$Latest");
    assert_eq!(account.group_version("b").await, "1");
    // AND version 1, which b still pins, is kept with a warning saying why
    assert_eq!(account.versions(&template).await, (vec![1, 2], 2));
    assert_eq!(
        report.warnings[..],
        [Warning::VersionsKept {
            template: template.clone(),
            versions: vec![1]
        }]
    );

    // AND the next run moves b and prunes version 1
    moto.reset();
    let next = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_all_applied(&next);
    assert_eq!(account.group_version("b").await, "$Latest");
    assert_eq!(account.versions(&template).await, (vec![2], 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_aws_refuses_to_delete_become_warnings_and_nothing_else_breaks() {
    // GIVEN a plan that deletes versions 1 and 2, and version 1 disappears
    // before the apply (as when another run deleted it first)
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    for _ in 2..=5 {
        account.version(&template, &image).await;
    }
    account.set_default(&template, 5).await;
    account.group("web", &template, "2", true).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    let observed = ami_reconciler::observe(&clients, &settings).await.unwrap();
    let plan = ami_reconciler::plan::plan_run(&observed, &settings.asg_tag)
        .plans
        .remove(0);
    account
        .ec2
        .delete_launch_template_versions()
        .launch_template_id(&template)
        .versions("1")
        .send()
        .await
        .unwrap();

    // WHEN it is applied
    let applied = ami_reconciler::apply::apply(&clients, plan, 4, None).await;
    let report = Report::of(
        Mode::Apply,
        &settings,
        vec![applied],
        Vec::new(),
        chrono::Utc::now(),
    );

    // THEN the refusal is a warning naming the version and AWS's code; the
    // group moved and version 2 was deleted; the run counts as a success
    assert_all_applied(&report);
    assert_eq!(
        applied_actions(&report),
        ["update_group", "delete_versions"]
    );
    assert_eq!(report.applied[1].result, "deleted version 2");
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::VersionNotDeleted { version: 1, error_code, .. }
                if error_code == "launchTemplateVersionDoesNotExist")),
        "{:?}",
        report.warnings
    );
    assert_eq!(account.versions(&template).await, (vec![3, 4, 5], 5));
    assert_eq!(account.group_version("web").await, "$Latest");
}

// --- two runs at once ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_at_the_same_time_create_one_version_and_never_touch_the_default() {
    // GIVEN a drifted account, and writes slowed down so that two runs
    // started together both plan before either writes
    let moto = Moto::start();
    let d = drifted(&moto).await;
    moto.faults(
        json!([{"action": "CreateLaunchTemplateVersion", "fault": "hang", "delay_ms": 300}]),
    );
    let settings = settings_for(&d.template);
    let (one, two): (Clients, Clients) = (moto.clients().await, moto.clients().await);

    // WHEN both apply at once
    let (first, second) = tokio::join!(
        run(&one, &settings, Mode::Apply),
        run(&two, &settings, Mode::Apply)
    );
    let (first, second) = (first.unwrap(), second.unwrap());

    // THEN both planned the same new version, and the ClientToken made it one
    for report in [&first, &second] {
        assert_all_applied(report);
        assert_eq!(report.applied[0].result, "created version 7");
        // the default was never in a deletion EC2 refused
        assert!(
            !report.warnings.iter().any(|w| matches!(w,
                Warning::VersionNotDeleted { error_code, .. } if error_code == "unexpectedError")),
            "{:?}",
            report.warnings
        );
    }
    assert_eq!(count(&moto, "CreateLaunchTemplateVersion"), (2, 2));
    assert_drift_repaired(&moto, &d).await;

    // AND the account is as one run leaves it: the next run plans nothing
    moto.reset();
    let again = run(&one, &settings, Mode::DryRun).await.unwrap();
    assert!(again.changes.is_empty(), "{}", again.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_starts_only_when_all_its_calls_fit_before_the_deadline_and_the_next_run_finishes()
{
    // GIVEN a drifted account, calls that may take 3 s each with their
    // retries, a slow answer to every group update, and 12 s for the writes:
    // room for a one-call change, not for a create's seven calls (create,
    // judge, create again, judge, delete a duplicate, restore, take back)
    let moto = Moto::start();
    let d = drifted(&moto).await;
    let account = moto.account().await;
    moto.faults(json!([
        {"action": "UpdateAutoScalingGroup", "fault": "hang", "delay_ms": 400}
    ]));
    let clients = moto.clients_with(timeouts(20)).await;
    assert_eq!(clients.call_budget(), Duration::from_secs(3));
    let settings = settings_for(&d.template);
    let writes_until = std::time::Instant::now() + Duration::from_secs(12);

    // WHEN it applies
    let report = ami_reconciler::run_until(&clients, &settings, Mode::Apply, Some(writes_until))
        .await
        .unwrap();

    // THEN the create is not started (a warned version would have no time
    // for its restore), what relies on it is skipped, the group moves fit
    assert_eq!(report.exit_code(), 1);
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.change.action(), s.skipped_because.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("create_version", ami_reconciler::apply::DEADLINE_REACHED),
            ("set_default_version", "the new version was not created"),
            (
                "delete_versions",
                "the keep window counted a version that was not created"
            ),
        ]
    );
    assert_eq!(applied_actions(&report), ["update_group", "update_group"]);
    assert_eq!(count(&moto, "CreateLaunchTemplateVersion"), (0, 0));
    assert_eq!(account.versions(&d.template).await, ((1..=6).collect(), 1));

    // AND the next run, with time, finishes what was left
    moto.reset();
    let next = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_all_applied(&next);
    assert_drift_repaired(&moto, &d).await;
}
