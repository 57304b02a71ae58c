//! The Lambda handler with the payloads it meets in production, against moto.

mod support;

use ami_reconciler::lambda::{Function, Trigger, parse_dry_run, parse_payload};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use support::{Moto, settings_for};

/// A CloudTrail `CreateImage` event as EventBridge delivers it.
fn create_image_event() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-11-26T03:04:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventSource": "ec2.amazonaws.com",
            "eventName": "CreateImage",
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "AssumedRole", "invokedBy": "dlm.amazonaws.com"},
            "requestParameters": {"instanceId": "i-0abcd1234", "name": "web-backup", "description": "Created for policy: policy-0abc EC2_BACKUP"},
            "responseElements": {"imageId": "ami-0123456789abcdef0"}
        }
    })
}

/// A CloudTrail `CreateAutoScalingGroup` event.
fn create_group_event() -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2026-11-26T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"eventName": "CreateAutoScalingGroup", "requestParameters": {"autoScalingGroupName": "web"}}
    })
}

/// A drifted account (a newer backup, a pinned managed group) and its function.
async fn function(moto: &Moto, dry_run: bool) -> (Function, String) {
    let account = moto.account().await;
    let old = account.backup(1).await;
    account.backup(2).await;
    let template = account.template("web", &old).await;
    account.group("web", &template, "1", true).await;
    let function = Function {
        clients: moto.clients().await,
        settings: settings_for(&template),
        dry_run,
    };
    (function, template)
}

#[test]
fn payloads_are_classified_by_shape() {
    assert_eq!(parse_payload(&json!({})), Ok(Trigger::Schedule));
    assert_eq!(parse_payload(&Value::Null), Ok(Trigger::Schedule));
    assert_eq!(
        parse_payload(&json!({"dry_run": true})),
        Ok(Trigger::Manual { dry_run: true })
    );
    assert_eq!(
        parse_payload(&create_image_event()),
        Ok(Trigger::Event {
            source: "aws.ec2".into(),
            detail_type: "AWS API Call via CloudTrail".into()
        })
    );
}

#[test]
fn dry_run_is_false_unless_set_to_true() {
    assert_eq!(parse_dry_run(None), Ok(false));
    assert_eq!(parse_dry_run(Some("")), Ok(false));
    assert_eq!(parse_dry_run(Some("TRUE")), Ok(true));
    assert_eq!(parse_dry_run(Some("false")), Ok(false));
    let err = parse_dry_run(Some("maybe")).unwrap_err().to_string();
    assert_eq!(err, "DRY_RUN must be true or false, got \"maybe\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_payload_runs_a_full_reconcile_and_returns_the_report() {
    let moto = Moto::start();
    let (function, template) = function(&moto, false).await;

    let report = function.handle(json!({})).await.unwrap();

    assert_eq!(report["dry_run"], false);
    assert_eq!(report["template_id"], template.as_str());
    assert_eq!(report["applied"].as_array().unwrap().len(), 3, "{report:#}");
    assert_eq!(report["failed"], json!([]));
    assert!(
        moto.mutating_calls()
            .contains(&"UpdateAutoScalingGroup".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudtrail_events_trigger_the_same_full_reconcile() {
    for event in [create_image_event(), create_group_event()] {
        let moto = Moto::start();
        let (function, template) = function(&moto, false).await;

        let report = function.handle(event).await.unwrap();

        assert_eq!(report["applied"].as_array().unwrap().len(), 3, "{report:#}");
        let account = moto.account().await;
        assert_eq!(account.versions(&template).await.1, 2);
        assert_eq!(account.group_version("web").await, "$Latest");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_dry_run_overrides_the_setting_and_changes_nothing() {
    let moto = Moto::start();
    let (function, _) = function(&moto, false).await;

    let report = function.handle(json!({"dry_run": true})).await.unwrap();

    assert_eq!(report["dry_run"], true);
    assert_eq!(report["changes"].as_array().unwrap().len(), 3);
    assert_eq!(report["applied"], json!([]));
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_apply_overrides_a_dry_run_deployment() {
    let moto = Moto::start();
    let (function, _) = function(&moto, true).await;

    let scheduled = function.handle(json!({})).await.unwrap();
    assert_eq!(scheduled["dry_run"], true);
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());

    let manual = function.handle(json!({"dry_run": false})).await.unwrap();
    assert_eq!(manual["dry_run"], false);
    assert_eq!(manual["applied"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_a_retry_can_fix_is_an_invocation_error_that_carries_the_report() {
    let moto = Moto::start();
    let (function, _) = function(&moto, false).await;
    moto.faults(json!([{
        "action": "UpdateAutoScalingGroup", "group": "web", "fault": "http503"
    }]));

    let err = function.handle(json!({})).await.unwrap_err();

    let report = err.report().cloned().unwrap();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "ChangesFailed");
    // One sentence for Lambda: the report is its own log line.
    assert!(
        !diagnostic.error_message.contains('{'),
        "{}",
        diagnostic.error_message
    );
    assert!(
        diagnostic
            .error_message
            .ends_with("Exit 1: 1 failed; see above."),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(report["failed"][0]["group"], "web");
    assert_eq!(report["applied"].as_array().unwrap().len(), 2);
    assert_eq!(report["needs_attention"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_only_a_person_can_clear_is_a_successful_invocation_that_shows_it() {
    // GIVEN a write AWS refuses outright: no retry fixes it, and Lambda's
    // own retries would only repeat it
    let moto = Moto::start();
    let (function, _) = function(&moto, false).await;
    moto.faults(json!([{
        "action": "UpdateAutoScalingGroup", "fault": "error", "status": 400,
        "code": "ValidationError", "message": "AutoScalingGroup name not found - web"
    }]));

    // WHEN the schedule invokes the function
    let report = function.handle(json!({})).await.unwrap();

    // THEN the invocation succeeds, and the result counts what needs a person
    assert_eq!(report["failed"][0]["error_code"], "ValidationError");
    assert_eq!(report["needs_attention"], 1);
    assert_eq!(report["applied"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_near_its_deadline_starts_no_write_and_still_reports() {
    // GIVEN a drifted account and an invocation with 10 s left, less than
    // one call's full timeout plus the report
    let moto = Moto::start();
    let (function, _) = function(&moto, false).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);

    // WHEN it runs
    let err = function
        .handle_until(json!({}), Some(deadline))
        .await
        .unwrap_err();

    // THEN every change is reported skipped for the deadline, nothing was written
    let report = err.report().cloned().unwrap();
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "ChangesFailed");
    let skipped: Vec<(&str, &str)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap(),
                s["skipped_because"].as_str().unwrap(),
            )
        })
        .collect();
    let late = ami_reconciler::apply::DEADLINE_REACHED;
    assert_eq!(
        skipped,
        [
            ("create_version", late),
            ("set_default_version", "the new version was not created"),
            ("update_group", late),
        ]
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

/// Every log line of the function, as JSON, into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_state_read_failure_is_logged_by_the_function_as_one_json_line_and_returned_short() {
    // GIVEN the function's logs formatted as JSON (the template's LogFormat)
    // and the images read refused
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let moto = Moto::start();
    let err = runtime.block_on(async {
        let (function, _) = function(&moto, false).await;
        moto.faults(json!([{
            "action": "DescribeImages", "fault": "error", "status": 400,
            "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation."
        }]));
        // WHEN the schedule invokes it
        function.handle(json!({})).await.unwrap_err()
    });

    // THEN the function itself logged the failure as one structured line
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let failure: Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["fields"]["message"] == "the run failed")
        .unwrap_or_else(|| panic!("no failure line in:\n{text}"));
    assert_eq!(failure["level"], "ERROR");
    assert_eq!(failure["fields"]["kind"], "DescribeImagesFailed");
    assert_eq!(failure["fields"]["error_code"], "UnauthorizedOperation");
    assert!(
        failure["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("failed to describe images: UnauthorizedOperation")),
        "{failure}"
    );
    // AND Lambda gets the error's type and one short sentence
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "DescribeImagesFailed");
    assert!(!diagnostic.error_message.contains('\n'));
    assert!(
        diagnostic.error_message.len() < 300,
        "{}",
        diagnostic.error_message
    );
}
