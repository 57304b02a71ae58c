//! A refused or unverified version never sticks: whatever fails after the
//! create, or if its answer never arrives, it never becomes the default and
//! never reaches a group, in that run or the next two. EC2's warnings are
//! judged on the data (the proxy's "warn" rule with "when"), so the same
//! data sent again is warned about again.

mod support;

use ami_reconciler::warning::Warning;
use ami_reconciler::{Mode, Report, run};
use serde_json::{Value, json};
use support::{Account, Moto, settings_for};

/// EC2 warns about every version whose `ImageId` is `image`.
fn warns_about(image: &str) -> Value {
    json!({
        "action": "CreateLaunchTemplateVersion", "fault": "warn",
        "when": {"LaunchTemplateData.ImageId": image},
        "code": "InvalidParameterValue", "message": "The security group does not exist"
    })
}

/// Neither the default nor any group's version carries `bad`, and a group
/// on `$Latest` launches from another image.
async fn bad_image_reaches_nothing(account: &Account<'_>, template: &str, bad: &str) {
    let (versions, default) = account.versions(template).await;
    let image_of = |v: String| async move {
        account
            .version_data(template, &v)
            .await
            .image_id()
            .map(str::to_owned)
    };
    assert_ne!(
        image_of(default.to_string()).await.as_deref(),
        Some(bad),
        "the default {default} carries {bad} (versions {versions:?})"
    );
    let group = account.group_version("web").await;
    assert_ne!(
        image_of(group.clone()).await.as_deref(),
        Some(bad),
        "group web on {group} launches {bad}"
    );
}

fn summary(report: &Report) -> String {
    report.to_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warned_version_whose_restore_and_undo_both_fail_never_becomes_default_nor_reaches_a_group()
 {
    // GIVEN a template on an old backup, a newer backup EC2 warns about, a
    // managed group pinned to version 1, and the restore and the undo failing
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    account.group("web", &template, "1", true).await;
    moto.faults(json!([
        warns_about(&new),
        {"action": "CreateLaunchTemplateVersion", "fault": "error", "status": 400,
         "code": "InvalidParameterValue", "message": "restore refused", "times": 1},
        {"action": "DeleteLaunchTemplateVersions", "fault": "error", "status": 400,
         "code": "UnauthorizedOperation", "message": "undo refused", "times": 1},
    ]));
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies: version 2 is warned about and stays $Latest
    let first = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the group is not moved onto it and it is not the default
    assert_eq!(account.versions(&template).await, (vec![1, 2], 1));
    assert_eq!(
        account.group_version("web").await,
        "1",
        "{}",
        summary(&first)
    );
    assert!(
        first
            .skipped
            .iter()
            .any(|s| s.change.action() == "update_group"),
        "{}",
        summary(&first)
    );

    // AND the next two runs judge version 2 again (EC2 warns again), put a
    // copy of version 1 back as $Latest, and never let the image through
    for _ in 0..2 {
        moto.reset();
        moto.faults(json!([warns_about(&new)]));
        let next = run(&clients, &settings, Mode::Apply).await.unwrap();
        bad_image_reaches_nothing(&account, &template, &new).await;
        assert!(
            next.warnings
                .iter()
                .any(|w| matches!(w, Warning::VersionWarned { image, .. } if *image == new)),
            "{}",
            summary(&next)
        );
    }
    let latest = account.version_data(&template, "$Latest").await;
    assert_eq!(latest.image_id(), Some(old.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_answer_never_arrives_is_unverified_until_ec2_judges_its_data_again() {
    // GIVEN EC2 warns about the newer backup, and the answer to every
    // create is lost on the way back (the client never learns of version 2)
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    account.group("web", &template, "1", true).await;
    moto.faults(json!([
        {"action": "CreateLaunchTemplateVersion", "fault": "lose"},
    ]));
    // Retried quickly: every attempt's answer is lost anyway.
    let clients = moto
        .clients_with(|loader| {
            loader.retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(10)),
            )
        })
        .await;
    let settings = settings_for(&template);

    // WHEN it applies
    let first = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the create failed as far as the run knows, version 2 exists,
    // and nothing follows it: no default switch, no group move
    assert_eq!(first.failed[0].change.action(), "create_version");
    assert_eq!(account.versions(&template).await, (vec![1, 2], 1));
    assert_eq!(
        account.group_version("web").await,
        "1",
        "{}",
        summary(&first)
    );

    // AND the next runs find version 2 unverified: the same data is created
    // again, EC2 warns about it, $Latest is put back to version 1's copy,
    // and neither version reaches the default or the group
    for _ in 0..2 {
        moto.reset();
        moto.faults(json!([warns_about(&new)]));
        let next = run(&clients, &settings, Mode::Apply).await.unwrap();
        bad_image_reaches_nothing(&account, &template, &new).await;
        assert_ne!(account.versions(&template).await.1, 2, "{}", summary(&next));
    }
    let latest = account.version_data(&template, "$Latest").await;
    assert_eq!(latest.image_id(), Some(old.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_refusal_keeps_groups_an_operator_pinned_off_a_skip_tagged_latest() {
    // GIVEN $Latest (version 2) on a backup now tagged skip, a group an
    // operator pinned back to version 1, and EC2 warning about the fix
    // towards the newest good backup
    let moto = Moto::start();
    let account = moto.account().await;
    let good = account.backup(1).await;
    let bad = account.backup(2).await;
    let newest_good = account.backup(3).await;
    let template = account.template("web", &good).await;
    account.version(&template, &bad).await;
    account.set_default(&template, 2).await;
    account.skip(&bad).await;
    account.group("web", &template, "1", true).await;
    moto.faults(json!([warns_about(&newest_good)]));
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies, and twice more with the refusal recorded
    for _ in 0..3 {
        let report = run(&clients, &settings, Mode::Apply).await.unwrap();

        // THEN the group stays on the version the operator chose
        assert_eq!(
            account.group_version("web").await,
            "1",
            "{}",
            summary(&report)
        );
        moto.reset();
        moto.faults(json!([warns_about(&newest_good)]));
    }
    let (_, default) = account.versions(&template).await;
    let default_image = account.version_data(&template, &default.to_string()).await;
    assert_ne!(default_image.image_id(), Some(newest_good.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_does_not_show_the_new_version_yet_is_no_race() {
    // GIVEN a drift to repair and the read after the create still stale
    // ("the result of a command ... might not be immediately visible")
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    account.group("web", &template, "1", true).await;
    moto.faults(json!([
        {"action": "DescribeLaunchTemplateVersions", "fault": "stale", "after": 1, "times": 1},
    ]));
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN exactly one new version is left, made the default, and the run
    // succeeds without a race
    assert_eq!(report.exit_code(), 0, "{}", summary(&report));
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::RacedAnotherWriter { .. })),
        "{}",
        summary(&report)
    );
    let (versions, default) = account.versions(&template).await;
    assert_eq!((versions.len(), default), (2, 2), "{versions:?}");
    let latest = account.version_data(&template, "$Latest").await;
    assert_eq!(latest.image_id(), Some(new.as_str()));

    // AND the next two runs have nothing to do
    for _ in 0..2 {
        moto.reset();
        let next = run(&clients, &settings, Mode::Apply).await.unwrap();
        assert!(next.changes.is_empty(), "{}", summary(&next));
    }
}
