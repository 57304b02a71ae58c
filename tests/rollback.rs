//! Rollouts that can roll back: a rolling group sits on a version number,
//! its refresh targets the default version by number with `AutoRollback`,
//! alarms and bake time come from the group's tags, and a rolled-back image
//! is held, or quarantined when the group asks, with the template retreating
//! to the newest good backup. Against moto with instance refresh emulated
//! from the Auto Scaling API reference (tests/support/instance_refresh.py,
//! docs/testing.md).

mod support;

use ami_reconciler::Mode;
use ami_reconciler::warning::Warning;
use ami_reconciler::{Change, Clients, Report, Settings, run};
use serde_json::json;
use support::{Account, Moto, settings_for};

const QUARANTINE: (&str, &str) = ("ami-reconciler:rollout-failure", "quarantine");

/// A template whose $Latest is on `old`, a newer backup `new`, and a
/// rolling group `web` of two instances on `old` with these extra tags.
async fn fleet(account: &Account<'_>, tags: &[(&str, &str)]) -> (String, String, String) {
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    account.rolling_group("web", &template, 2, &old, tags).await;
    (template, old, new)
}

/// A fleet of [`fleet`] whose first run started its refresh, with the
/// clients and settings of the runs to come.
async fn refreshing(
    moto: &Moto,
    account: &Account<'_>,
    tags: &[(&str, &str)],
) -> (String, String, String, Clients, Settings) {
    let (template, old, new) = fleet(account, tags).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    run(&clients, &settings, Mode::Apply).await.unwrap();
    (template, old, new, clients, settings)
}

async fn newest_refresh(account: &Account<'_>) -> aws_sdk_autoscaling::types::InstanceRefresh {
    account
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap()
        .instance_refreshes
        .unwrap_or_default()
        .remove(0)
}

async fn image_tags(account: &Account<'_>, image: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = account
        .ec2
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .unwrap()
        .images()[0]
        .tags()
        .iter()
        .filter(|t| t.key().is_some_and(|k| k.starts_with("ami-reconciler:")))
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    tags.sort();
    tags
}

fn actions(report: &Report) -> Vec<&'static str> {
    report.changes.iter().map(Change::action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_and_bake_time_are_sent_from_the_group_tags_with_auto_rollback() {
    // GIVEN a rolling group naming two alarms and a 30-minute bake time
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, _old, _new) = fleet(
        &account,
        &[
            ("ami-reconciler:rollout-alarms", "web-5xx, web-latency"),
            ("ami-reconciler:rollout-bake-time", "30m"),
        ],
    )
    .await;

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the refresh carries them, can roll back, and targets version 2
    assert_eq!(report.refreshes.started, 1, "{}", report.to_text());
    let refresh = newest_refresh(&account).await;
    let prefs = refresh.preferences.unwrap();
    assert_eq!(prefs.auto_rollback, Some(true));
    assert_eq!(prefs.bake_time, Some(1800));
    assert_eq!(
        prefs.alarm_specification.unwrap().alarms.unwrap(),
        ["web-5xx", "web-latency"]
    );
    let desired = refresh
        .desired_configuration
        .unwrap()
        .launch_template
        .unwrap();
    assert_eq!(desired.version.as_deref(), Some("2"));
    // AND the plan said so
    let text = report.to_text();
    assert!(text.contains("alarms web-5xx, web-latency"), "{text}");
    assert!(text.contains("bake time 30m"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_image_is_held_by_default_and_the_template_keeps_it() {
    // GIVEN a rolling group without the quarantine tag whose rollout of the
    // new backup was rolled back
    let moto = Moto::start();
    let account = moto.account().await;
    let (_template, _old, new, clients, settings) = refreshing(&moto, &account, &[]).await;
    moto.roll_back("web");

    // WHEN the next run comes
    moto.reset();
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN nothing is written: the group stays on its old version, the
    // image is not tagged, and the stopped rollout needs a person
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(account.group_version("web").await, "1");
    assert!(image_tags(&account, &new).await.is_empty());
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::RolloutStopped { last_status: Some(s), .. } if s == "RollbackSuccessful")),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_image_is_quarantined_when_the_group_asks_and_latest_retreats_in_the_same_run()
 {
    // GIVEN a rolling group asking for quarantine, a group following
    // $Latest, and the rolling group's rollout of the new backup rolled back
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, new) = fleet(&account, &[QUARANTINE]).await;
    account.group("api", &template, "$Latest", true).await;
    let clients = moto.clients().await;
    let settings = ami_reconciler::Settings {
        event_bus: Some("ops".to_owned()),
        ..settings_for(&template)
    };
    run(&clients, &settings, Mode::Apply).await.unwrap();
    let refresh = moto.roll_back("web");

    // WHEN the next run comes
    moto.reset();
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the image is quarantined, naming the group, the refresh and the
    // status; $Latest and the default retreat to the newest good backup;
    // the rolling group follows by number, with no refresh (its instances
    // already run that image)
    assert!(report.failed.is_empty(), "{}", report.to_text());
    assert_eq!(
        actions(&report),
        [
            "quarantine_image",
            "create_version",
            "set_default_version",
            "update_group"
        ],
        "{}",
        report.to_text()
    );
    assert_eq!(
        image_tags(&account, &new).await,
        [
            ("ami-reconciler:skip".to_owned(), "true".to_owned()),
            (
                "ami-reconciler:skip-reason".to_owned(),
                format!(
                    "rollout failed: group web, instance refresh {refresh}, RollbackSuccessful"
                )
            ),
        ]
    );
    assert_eq!(report.refreshes.quarantined, 1);
    // AND the events tell it in that order, the quarantine first
    let sent: Vec<(String, serde_json::Value)> = moto
        .sent_events()
        .iter()
        .map(|e| {
            let detail = serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
            (e["DetailType"].as_str().unwrap().to_owned(), detail)
        })
        .collect();
    let types: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["Image Quarantined", "Template Updated", "Groups Moved"]
    );
    assert_eq!(sent[0].1["image"], new.as_str());
    assert_eq!(sent[0].1["refresh"], refresh.as_str());
    assert_eq!(sent[0].1["status"], "RollbackSuccessful");
    assert_eq!(
        sent[1].1["image"],
        serde_json::json!({"from": new, "to": old})
    );
    let (versions, default) = account.versions(&template).await;
    assert_eq!(default, 3, "{versions:?}");
    let latest = account.version_data(&template, "3").await;
    assert_eq!(latest.image_id.as_deref(), Some(old.as_str()));
    assert_eq!(account.group_version("web").await, "3");
    assert_eq!(account.group_version("api").await, "$Latest");

    // AND the run after that is converged
    moto.reset();
    let again = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert!(again.changes.is_empty(), "{}", again.to_text());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_rollout_holds_and_never_quarantines() {
    // GIVEN a group asking for quarantine whose refresh a person cancelled
    let moto = Moto::start();
    let account = moto.account().await;
    let (_template, _old, new, clients, settings) =
        refreshing(&moto, &account, &[QUARANTINE]).await;
    moto.move_refresh("web", "Cancelled");

    // WHEN the next run comes
    moto.reset();
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN nothing is written and the image is not tagged
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert!(image_tags(&account, &new).await.is_empty());
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::RolloutStopped { last_status: Some(s), .. } if s == "Cancelled")),
        "{}",
        report.to_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_that_cannot_be_written_keeps_everything_where_it_is() {
    // GIVEN a rolled-back rollout in a quarantining group, and EC2 refusing
    // the image's tags
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, _old, new, clients, settings) = refreshing(&moto, &account, &[QUARANTINE]).await;
    moto.roll_back("web");
    moto.faults(json!([{"action": "CreateTags", "fault": "error", "status": 400,
        "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation."}]));

    // WHEN the next run comes
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the quarantine failed and nothing retreats on its account: a
    // version made without the tag would be replaced by the same image again
    assert_eq!(report.failed.len(), 1, "{}", report.to_text());
    assert!(report.applied.is_empty(), "{}", report.to_text());
    assert!(image_tags(&account, &new).await.is_empty());
    assert_eq!(account.versions(&template).await.1, 2);
    assert_eq!(report.exit_code(), 1);
}
