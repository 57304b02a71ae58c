//! Events (`EVENT_BUS`): one per change, failed write and condition this
//! run brought about, sent with `PutEvents` at most ten to a call; none for
//! a converged run; a partial failure retried once, then a warning, never a
//! failed or undone run. The proxy records every entry sent
//! (`/_harness/events`) and fails chosen entries (fault `partial`).

mod support;

use std::process::Command;

use ami_reconciler::settings::{RawSettings, Settings};
use ami_reconciler::warning::Warning;
use ami_reconciler::{Mode, Report, run};
use serde_json::{Value, json};
use support::{Moto, applied_actions, drifted};

const BUS: &str = "ops";

fn sending(raw: RawSettings) -> Settings {
    RawSettings {
        event_bus: Some(BUS.to_owned()),
        ..raw
    }
    .validate()
    .unwrap()
}

fn for_template(template: &str) -> RawSettings {
    RawSettings {
        launch_template_id: Some(template.to_owned()),
        ..RawSettings::default()
    }
}

/// Runs against the drifted account's template, sending to the bus.
async fn run_drifted(moto: &Moto, template: &str, mode: Mode) -> Report {
    let clients = moto.clients().await;
    run(&clients, &sending(for_template(template)), mode)
        .await
        .unwrap()
}

/// The detail types sent, in order.
fn detail_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["DetailType"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn detail(event: &Value) -> Value {
    let detail = serde_json::from_str(event["Detail"].as_str().unwrap_or("null")).unwrap();
    assert_eq!(
        keys(&detail),
        keys(&documented(
            event["DetailType"].as_str().unwrap_or_default()
        )),
        "{detail}: the fields of docs/events.md's example"
    );
    detail
}

fn keys(detail: &Value) -> Vec<String> {
    detail
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// The detail of docs/events.md's example of `detail_type`.
fn documented(detail_type: &str) -> Value {
    let doc = std::fs::read_to_string(support::root().join("docs/events.md")).unwrap();
    doc.split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .find(|e| e["source"] == "ami-reconciler" && e["detail-type"] == detail_type)
        .map(|e| e["detail"].clone())
        .unwrap_or_else(|| panic!("docs/events.md has no example of {detail_type}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changing_run_sends_an_event_per_change_and_a_converged_run_sends_none() {
    // GIVEN a template behind its newest backup, managed groups off $Latest
    // and versions to prune
    let moto = Moto::start();
    let drifted = drifted(&moto).await;
    let clients = moto.clients().await;
    let settings = sending(for_template(&drifted.template));

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN each kind of change made is one event on the bus, from ami-reconciler
    let sent = moto.sent_events();
    assert_eq!(
        detail_types(&sent),
        ["Template Updated", "Groups Moved", "Versions Deleted"],
        "{}",
        report.to_text()
    );
    for event in &sent {
        assert_eq!(event["Source"], "ami-reconciler");
        assert_eq!(event["EventBusName"], BUS);
        let detail = detail(event);
        assert_eq!(detail["schema_version"], 1);
        assert_eq!(detail["dry_run"], false);
        assert_eq!(detail["template"]["id"], drifted.template.as_str());
        assert!(detail["reason"].is_string(), "{detail}");
        assert_eq!(detail["event_key"].as_str().map(str::len), Some(16));
    }
    let keys: std::collections::BTreeSet<String> = sent
        .iter()
        .map(|e| detail(e)["event_key"].to_string())
        .collect();
    assert_eq!(keys.len(), sent.len(), "one key per event");
    let updated = detail(&sent[0]);
    assert_eq!(updated["image"]["to"], drifted.backups[2].as_str());
    assert_eq!(updated["created_version"], 7);
    assert_eq!(updated["default_version"], json!({"from": 1, "to": 7}));
    let moved = detail(&sent[1]);
    let groups: Vec<&str> = moved["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["spot", "web"]);
    assert!(
        moved["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["to"] == "$Latest"),
        "{moved}"
    );
    assert_eq!(moto.put_events_calls(), [3]);

    // AND a second run changes nothing and sends nothing
    moto.reset();
    let second = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert!(second.changes.is_empty(), "{}", second.to_text());
    assert!(moto.put_events_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_rollout_names_its_refresh_to_match_auto_scalings_own_events() {
    // GIVEN a rolling group whose instances run the golden image, and a backup
    let moto = Moto::start();
    let account = moto.account().await;
    let golden = account.image("golden", "golden image", 0).await;
    let backup = account.backup(1).await;
    let template = account.template("web", &golden).await;
    account
        .rolling_group("web-rolling", &template, 2, &golden, &[])
        .await;
    let clients = moto.clients().await;

    run(&clients, &sending(for_template(&template)), Mode::Apply)
        .await
        .unwrap();

    let sent = moto.sent_events();
    let started: Vec<Value> = sent
        .iter()
        .filter(|e| e["DetailType"] == "Rollout Started")
        .map(detail)
        .collect();
    assert_eq!(started.len(), 1, "{sent:?}");
    let refresh = account
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name("web-rolling")
        .send()
        .await
        .unwrap();
    let id = refresh.instance_refreshes()[0]
        .instance_refresh_id()
        .unwrap();
    assert_eq!(started[0]["group"], "web-rolling");
    assert_eq!(started[0]["instance_refresh_id"], id);
    assert_eq!(started[0]["image"]["to"], backup.as_str());
    assert_eq!(
        started[0]["version"]["to"], 2,
        "the created version's number"
    );
    assert_eq!(started[0]["preferences"]["auto_rollback"], true);
    let moved = sent
        .iter()
        .find(|e| e["DetailType"] == "Groups Moved")
        .map(detail)
        .expect("the rolling group is pinned first");
    assert_eq!(
        moved["groups"][0],
        json!({"group": "web-rolling", "from": "$Latest", "to": 1,
               "result": "now on version 1", "reason": moved["groups"][0]["reason"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_what_it_would_change_flagged_dry_run() {
    let moto = Moto::start();
    let drifted = drifted(&moto).await;

    run_drifted(&moto, &drifted.template, Mode::DryRun).await;

    let sent = moto.sent_events();
    assert_eq!(
        detail_types(&sent),
        ["Template Updated", "Groups Moved", "Versions Deleted"]
    );
    assert!(sent.iter().all(|e| detail(e)["dry_run"] == true));
    // What the stack's email rule matches comes from runs that apply only.
    let types = detail_types(&sent);
    assert!(
        !types
            .iter()
            .any(|t| t == "Write Failed" || t == "Needs Attention")
    );
    let writes: Vec<String> = moto
        .mutating_calls()
        .into_iter()
        .filter(|a| a != "PutEvents")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_carries_more_than_ten_entries() {
    // GIVEN six tagged templates behind their backups, each with a group off
    // $Latest: twelve events or more
    let moto = Moto::start();
    let account = moto.account().await;
    for n in 0..6 {
        let policy = format!("policy-{n}");
        let old = account.backup_of(&policy, 1, "x86_64").await;
        account.backup_of(&policy, 2, "x86_64").await;
        let lineage = format!("aws:dlm:lifecycle-policy-id={policy}");
        let template = account
            .tagged_template(
                &format!("fleet-{n}"),
                &old,
                &[
                    ("ami-reconciler:managed", "true"),
                    ("ami-reconciler:image-tag", lineage.as_str()),
                ],
            )
            .await;
        account
            .group(&format!("fleet-{n}"), &template, "1", true)
            .await;
    }
    let clients = moto.clients().await;
    let settings = sending(RawSettings {
        launch_template_tag: Some("ami-reconciler:managed=true".into()),
        ..RawSettings::default()
    });

    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    let calls = moto.put_events_calls();
    assert_eq!(calls, [10, 2], "{}", report.to_text());
    assert_eq!(moto.sent_events().len(), 12);
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_eventbridge_fails_once_is_sent_again_and_nothing_is_reported() {
    let moto = Moto::start();
    let drifted = drifted(&moto).await;
    moto.faults(json!([
        {"action": "PutEvents", "fault": "partial", "entries": [1], "times": 1}
    ]));

    let report = run_drifted(&moto, &drifted.template, Mode::Apply).await;

    assert_eq!(moto.put_events_calls(), [3, 1]);
    let sent = moto.sent_events();
    assert_eq!(detail_types(&sent)[3], "Groups Moved");
    assert_eq!(
        detail(&sent[3])["event_key"],
        detail(&sent[1])["event_key"],
        "the copy sent again is the same event"
    );
    assert!(
        !report.warnings.iter().any(|w| matches!(
            w,
            Warning::EventsNotSent { .. } | Warning::EventsRefused { .. }
        )),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_eventbridge_keeps_failing_are_a_warning_and_the_changes_stand() {
    for (code, calls, exit, needs_a_person) in [
        // Retried once, then a notice: the run still succeeds.
        ("InternalFailure", vec![3, 2], 0, false),
        // Refused: no retry, and a person must look.
        ("AccessDeniedException", vec![3], 1, true),
    ] {
        let moto = Moto::start();
        let drifted = drifted(&moto).await;
        moto.faults(json!([
            {"action": "PutEvents", "fault": "partial", "entries": [0, 1], "code": code}
        ]));

        let report = run_drifted(&moto, &drifted.template, Mode::Apply).await;

        assert_eq!(moto.put_events_calls(), calls, "{code}");
        assert_eq!(
            applied_actions(&report),
            support::DRIFT_REPAIR,
            "{code}: the changes stand"
        );
        let lost = report.warnings.iter().find_map(|w| match w {
            Warning::EventsNotSent { lost, events, .. } if !needs_a_person => {
                Some((*lost, *events))
            }
            Warning::EventsRefused { lost, events, .. } if needs_a_person => Some((*lost, *events)),
            _ => None,
        });
        assert_eq!(lost, Some((2, 3)), "{code}: {}", report.to_text());
        assert_eq!(report.exit_code(), exit, "{code}");
        assert_eq!(
            report.needs_attention,
            usize::from(needs_a_person),
            "{code}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_an_event_naming_the_change_and_the_error() {
    let moto = Moto::start();
    let drifted = drifted(&moto).await;
    moto.faults(json!([
        {"action": "UpdateAutoScalingGroup", "group": "web", "fault": "error", "status": 400,
         "code": "AccessDenied", "message": "not allowed"}
    ]));

    run_drifted(&moto, &drifted.template, Mode::Apply).await;

    let sent = moto.sent_events();
    let failed: Vec<Value> = sent
        .iter()
        .filter(|e| e["DetailType"] == "Write Failed")
        .map(detail)
        .collect();
    assert_eq!(failed.len(), 1, "{sent:?}");
    assert_eq!(failed[0]["action"], "update_group");
    assert_eq!(failed[0]["target"], "web");
    assert_eq!(failed[0]["error_code"], "AccessDenied");
    assert_eq!(failed[0]["retryable"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_ec2_warns_about_is_announced_once_not_every_run() {
    // GIVEN a newer backup whose version EC2 warns about
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    moto.faults(json!([
        {"action": "CreateLaunchTemplateVersion", "fault": "warn",
         "when": {"LaunchTemplateData.ImageId": new},
         "code": "InvalidParameterValue", "message": "The security group does not exist"}
    ]));
    let clients = moto.clients().await;
    let settings = sending(for_template(&template));

    // WHEN it runs, and runs again
    run(&clients, &settings, Mode::Apply).await.unwrap();
    let first = moto.sent_events();
    moto.reset();
    let again = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the first run announces the condition; the second, which finds
    // the refusal's memory, reports it but announces nothing about it
    let attention: Vec<Value> = first
        .iter()
        .filter(|e| e["DetailType"] == "Needs Attention")
        .map(detail)
        .collect();
    assert_eq!(attention.len(), 1, "{first:?}");
    assert_eq!(attention[0]["code"], "version_warned");
    assert_eq!(attention[0]["warning"]["image"], new.as_str());
    assert!(
        again
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::VersionWarned { .. }))
    );
    let later = moto.sent_events();
    assert!(
        !detail_types(&later).contains(&"Needs Attention".to_owned()),
        "{later:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_the_events_when_given_the_flag() {
    let moto = Moto::start();
    let drifted = drifted(&moto).await;

    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["apply", "--event-bus", BUS])
        .env_clear()
        .envs(moto.env())
        .env("LAUNCH_TEMPLATE_ID", &drifted.template)
        .output()
        .expect("run ami-reconciler");

    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        detail_types(&moto.sent_events()),
        ["Template Updated", "Groups Moved", "Versions Deleted"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_the_image_is_an_event_with_the_parameter_and_its_version() {
    let moto = Moto::start();
    let drifted = drifted(&moto).await;
    let settings = sending(RawSettings {
        image_parameter: Some("/ami-reconciler/{template_name}/image".to_owned()),
        ..for_template(&drifted.template)
    });

    run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    let sent = moto.sent_events();
    assert_eq!(
        detail_types(&sent),
        [
            "Template Updated",
            "Image Parameter Updated",
            "Groups Moved",
            "Versions Deleted"
        ]
    );
    let published = detail(&sent[1]);
    assert_eq!(published["parameter"], "/ami-reconciler/web/image");
    assert_eq!(
        published["image"],
        json!({"from": null, "to": drifted.backups[2]})
    );
    assert_eq!(published["parameter_version"], 1);
}
