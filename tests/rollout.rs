//! Rollouts: groups tagged `ami-reconciler:rollout=rolling` get an instance
//! refresh when their in-service instances do not all run the template's
//! image. Against moto with instance refresh emulated from the Auto Scaling
//! API reference (tests/support/instance_refresh.py, docs/testing.md).

mod support;

use ami_reconciler::Mode;
use ami_reconciler::warning::Warning;
use ami_reconciler::{Change, Report, run};
use serde_json::json;
use support::{Account, Moto, settings_for};

/// A template whose $Latest is on `old`, a newer backup `new`.
async fn fleet(account: &Account<'_>) -> (String, String, String) {
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    (template, old, new)
}

async fn refreshes(
    account: &Account<'_>,
    group: &str,
) -> Vec<aws_sdk_autoscaling::types::InstanceRefresh> {
    account
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(group)
        .send()
        .await
        .unwrap()
        .instance_refreshes
        .unwrap_or_default()
}

fn started(report: &Report) -> Vec<&str> {
    report
        .applied
        .iter()
        .filter(|a| matches!(a.change, Change::StartInstanceRefresh(_)))
        .map(|a| a.change.target())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_group_on_an_old_image_gets_one_refresh_and_converges_after_it() {
    // GIVEN a rolling group of three instances on the old image, and a newer backup
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.rolling_group("web", &template, 3, &old, &[]).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies
    let first = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the group is pinned to its instances' version (1), and one
    // refresh starts, rolling, skipping matching instances, at 90% healthy,
    // toward the new version by number, able to roll back; the group
    // remembers the image
    assert_eq!(started(&first), ["web"], "{}", first.to_text());
    assert_eq!(first.refreshes.started, 1);
    let refresh = &refreshes(&account, "web").await[0];
    let prefs = refresh.preferences.as_ref().unwrap();
    assert_eq!(prefs.skip_matching, Some(true));
    assert_eq!(prefs.min_healthy_percentage, Some(90));
    assert_eq!(prefs.max_healthy_percentage, None);
    assert_eq!(prefs.auto_rollback, Some(true));
    let desired = refresh.desired_configuration.as_ref().unwrap();
    assert_eq!(
        desired.launch_template.as_ref().unwrap().version.as_deref(),
        Some("2")
    );
    assert_eq!(account.group_version("web").await, "1");
    let group = account.describe_group("web").await;
    let new_image = match &first.changes[0] {
        Change::CreateVersion(c) => c.to_image.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        group
            .tags()
            .iter()
            .any(|t| t.key() == Some("ami-reconciler:rollout-image")
                && t.value() == Some(new_image.as_str()))
    );

    // WHEN it runs again while the refresh runs
    moto.reset();
    let second = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN nothing starts; the report says it waits
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(second.refreshes.running, 1);
    assert!(
        second
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::RolloutRunning { group, .. } if group == "web")),
        "{}",
        second.to_text()
    );

    // WHEN the refresh succeeds and replaces the instances
    moto.move_refresh("web", "Successful");
    moto.reset();
    let third = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN Auto Scaling left the group on the new number, and the next run
    // is converged: no change, no write, no refresh read
    assert!(third.changes.is_empty(), "{}", third.to_text());
    assert!(third.warnings.is_empty(), "{}", third.to_text());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert!(
        !moto
            .calls()
            .iter()
            .any(|c| c.action == "DescribeInstanceRefreshes")
    );
    assert_eq!(account.group_version("web").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_refresh_is_not_restarted_for_the_same_image_and_a_newer_image_starts_one() {
    // GIVEN a rolling group, migrated from $Latest, whose refresh to the new
    // backup failed and was rolled back
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    run(&clients, &settings, Mode::Apply).await.unwrap();
    moto.roll_back("web");

    // THEN the rollback returned the group to its instances' version
    assert_eq!(account.group_version("web").await, "1");

    // WHEN the next runs come
    for _ in 0..2 {
        moto.reset();
        let report = run(&clients, &settings, Mode::Apply).await.unwrap();

        // THEN no refresh starts; the report names the failure and exits 1
        assert_eq!(moto.mutating_calls(), Vec::<String>::new());
        assert!(
            report.warnings.iter().any(|w| matches!(w,
                Warning::RolloutStopped { group, last_status: Some(status), outdated: 2, .. }
                    if group == "web" && status == "RollbackSuccessful")),
            "{}",
            report.to_text()
        );
        assert_eq!(report.refreshes.failed, 1);
        assert_eq!(report.exit_code(), 1);
    }
    assert_eq!(refreshes(&account, "web").await.len(), 1);

    // WHEN a newer backup arrives
    account.backup(3).await;
    moto.reset();
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN a refresh for it starts
    assert_eq!(started(&report), ["web"], "{}", report.to_text());
    assert_eq!(refreshes(&account, "web").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_instance_group_launches_before_it_terminates() {
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account
        .rolling_group(
            "solo",
            &template,
            1,
            &old,
            &[("ami-reconciler:min-healthy", "50")],
        )
        .await;

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    assert_eq!(started(&report), ["solo"], "{}", report.to_text());
    let prefs = refreshes(&account, "solo").await[0]
        .preferences
        .clone()
        .unwrap();
    assert_eq!(prefs.min_healthy_percentage, Some(100));
    assert_eq!(prefs.max_healthy_percentage, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_without_the_rollout_tag_never_gets_a_refresh_nor_a_refresh_read() {
    // GIVEN a managed group with running instances on the old image, not rolling
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.group("web", &template, "$Latest", true).await;
    account.run_instances("web", &old, 2);

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    assert!(started(&report).is_empty(), "{}", report.to_text());
    assert!(refreshes(&account, "web").await.is_empty());
    // Its instances are read once, to count those behind; its refreshes never.
    let rollout_calls: Vec<String> = moto
        .calls()
        .into_iter()
        .filter(|c| c.action.contains("Instance"))
        .map(|c| c.action)
        .collect();
    assert_eq!(rollout_calls, ["DescribeInstances"]);
    assert_eq!(report.templates[0].fleet.instances_behind, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_aws_refuses_is_reported_its_record_put_back_and_the_rest_goes_on() {
    // GIVEN two rolling groups; someone else starts a refresh of the first
    // just before ours
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account
        .rolling_group("web-a", &template, 2, &old, &[])
        .await;
    account
        .rolling_group("web-b", &template, 2, &old, &[])
        .await;
    moto.faults(json!([{
        "action": "StartInstanceRefresh", "group": "web-a", "fault": "before", "times": 1,
        "request": {"service": "autoscaling", "action": "StartInstanceRefresh",
                    "params": {"AutoScalingGroupName": "web-a"}}
    }]));

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the refusal is a failed change with AWS's code, web-a's record
    // is removed again, and web-b's refresh started
    let failed: Vec<(&str, Option<&str>)> = report
        .failed
        .iter()
        .map(|f| (f.change.target(), f.error_code.as_deref()))
        .collect();
    assert_eq!(failed, [("web-a", Some("InstanceRefreshInProgress"))]);
    assert_eq!(started(&report), ["web-b"]);
    let tags = account.describe_group("web-a").await;
    assert!(
        !tags
            .tags()
            .iter()
            .any(|t| t.key() == Some("ami-reconciler:rollout-image"))
    );
    assert_eq!(report.refreshes.failed, 1);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_refresh_it_would_start_and_why() {
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account
        .rolling_group(
            "web",
            &template,
            4,
            &old,
            &[("ami-reconciler:checkpoints", "50,100")],
        )
        .await;

    let report = run(
        &moto.clients().await,
        &settings_for(&template),
        Mode::DryRun,
    )
    .await
    .unwrap();

    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(report.refreshes.planned, 1);
    let text = report.to_text();
    assert!(
        text.contains("auto scaling group web: instance refresh to the new version (ami-"),
        "{text}"
    );
    assert!(text.contains("4 of 4 instances"), "{text}");
    assert!(text.contains("checkpoints at 50%, 100%"), "{text}");
    assert!(text.contains("alarms none"), "{text}");
    assert!(
        text.contains("failure Auto Scaling rolls the group back to version 1; the image is not rolled out again"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_still_soaking_is_not_rolled_out() {
    // GIVEN $Latest was given (by hand) a backup younger than
    // MIN_IMAGE_AGE, and the group's instances run the older backup
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let fresh = account.backup(2).await;
    moto.set_image(&fresh, None, Some(chrono::Utc::now()));
    let template = account.template("web", &fresh).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    let mut settings = settings_for(&template);
    settings.policy.min_image_age = chrono::Duration::hours(2);

    // WHEN it applies
    let report = run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    // THEN the unsoaked image is not rolled out to running instances: the
    // group is only pinned to a number (its instances' image is in no
    // version, so the default's), ready for a later rollout
    let actions: Vec<&str> = report.changes.iter().map(Change::action).collect();
    assert_eq!(actions, ["update_group"], "{}", report.to_text());
    assert!(refreshes(&account, "web").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_backup_waits_for_a_running_refresh_and_a_rollback_does_not() {
    // GIVEN a rolling group whose refresh to the new backup runs
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, new) = fleet(&account).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    run(&clients, &settings, Mode::Apply).await.unwrap();
    let (versions, _) = account.versions(&template).await;

    // WHEN a newer backup arrives while it runs
    let newer = account.backup(3).await;
    moto.reset();
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN $Latest keeps the image the refresh rolls out, and the report says why
    assert_eq!(account.versions(&template).await.0, versions);
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::ImageWaitsForRollout { image, group, .. } if *image == newer && group == "web")),
        "{}",
        report.to_text()
    );

    // WHEN the image being rolled out is skip-tagged (a rollback)
    account.skip(&new).await;
    let rollback = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the rollback does not wait: $Latest gets the newest good backup
    let created = rollback.changes.iter().find_map(|c| match c {
        Change::CreateVersion(c) => Some(c.to_image.clone()),
        _ => None,
    });
    assert_eq!(created, Some(newer), "{}", rollback.to_text());
    assert!(rollback.failed.is_empty(), "{}", rollback.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_instances_are_left_alone_by_the_refresh_and_counted_behind() {
    // GIVEN a rolling group of two instances on the old image, one
    // protected from scale-in
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    let instances = account
        .describe_group("web")
        .await
        .instances
        .unwrap_or_default();
    account
        .asg
        .set_instance_protection()
        .auto_scaling_group_name("web")
        .instance_ids(instances[0].instance_id().unwrap())
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the refresh counts one outdated instance and ignores protected
    // and standby ones instead of waiting for them
    let change = report.changes.iter().find_map(|c| match c {
        Change::StartInstanceRefresh(c) => Some(c.clone()),
        _ => None,
    });
    assert_eq!(change.map(|c| (c.outdated, c.in_service)), Some((1, 1)));
    // AND the fleet's figures count the protected one among those behind
    let fleet = &report.templates[0].fleet;
    assert_eq!((fleet.in_service, fleet.instances_behind), (2, Some(2)));
    let prefs = refreshes(&account, "web").await[0]
        .preferences
        .clone()
        .unwrap();
    assert_eq!(
        prefs
            .scale_in_protected_instances
            .map(|p| p.as_str().to_owned()),
        Some("Ignore".to_owned())
    );
    assert_eq!(
        prefs.standby_instances.map(|p| p.as_str().to_owned()),
        Some("Ignore".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_that_stop_short_of_100_are_refused_for_that_group_only() {
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account
        .rolling_group(
            "short",
            &template,
            2,
            &old,
            &[("ami-reconciler:checkpoints", "25,50")],
        )
        .await;
    account.rolling_group("full", &template, 2, &old, &[]).await;

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    assert_eq!(started(&report), ["full"]);
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::BadRolloutTag { group, tag, .. }
                if group == "short" && tag == "ami-reconciler:checkpoints")),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_rollout_reads_fail_no_refresh_starts_and_a_newer_backup_waits() {
    // GIVEN a rolling group on the old image, a newer backup, and
    // DescribeInstances denied
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    moto.faults(json!([{
        "action": "DescribeInstances", "fault": "error", "status": 403,
        "code": "UnauthorizedOperation", "message": "denied for the test"
    }]));

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN nothing is written (a refresh may be running for all it knows),
    // and the report says why; the run exits 1
    assert_eq!(
        moto.mutating_calls(),
        Vec::<String>::new(),
        "{}",
        report.to_text()
    );
    let codes: Vec<String> = report.warnings.iter().map(Warning::code).collect();
    assert!(codes.contains(&"rollout_not_read".to_owned()), "{codes:?}");
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::ImageWaitsForRollout { refresh: None, group, .. } if group == "web")),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_group_of_another_template_is_neither_read_nor_refreshed() {
    // GIVEN a converged template, and a rolling managed group of another
    // template whose instances run that template's image
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    let other_image = account.image("db-golden", "golden image", 1).await;
    let other = account.template("db", &other_image).await;
    account
        .rolling_group("db", &other, 2, &other_image, &[])
        .await;

    // WHEN this template's reconciler runs
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the other group adds no rollout read and no refresh
    assert!(started(&report).is_empty(), "{}", report.to_text());
    let rollout_reads = moto
        .calls()
        .into_iter()
        .filter(|c| c.action == "DescribeInstances" || c.action == "DescribeInstanceRefreshes")
        .count();
    assert_eq!(rollout_reads, 0);
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.code().starts_with("rollout")),
        "{}",
        report.to_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_alone_does_not_read_the_templates_tags() {
    // GIVEN a converged template and a rolling group whose instances still
    // run an older image
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &new).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the refresh starts; the template is not written, so its write
    // tag is not read. The group's instances run an image in no version, so
    // it is pinned to the target itself: the refresh replaces every
    // instance (skip matching compares versions and would keep them all),
    // with no rollback to the same version
    assert_eq!(started(&report), ["web"], "{}", report.to_text());
    let prefs = refreshes(&account, "web").await[0]
        .preferences
        .clone()
        .unwrap();
    assert_eq!(
        (prefs.skip_matching, prefs.auto_rollback),
        (Some(false), Some(false))
    );
    assert!(
        !moto
            .calls()
            .iter()
            .any(|c| c.action == "DescribeLaunchTemplates")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_another_run_started_the_same_refresh_first_its_record_stays() {
    // GIVEN another run of the reconciler starts the same refresh (the
    // template at the new version, 2) just before this one
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    moto.faults(json!([{
        "action": "StartInstanceRefresh", "group": "web", "fault": "before", "times": 1,
        "request": {"service": "autoscaling", "action": "StartInstanceRefresh",
                    "params": {"AutoScalingGroupName": "web",
                               "DesiredConfiguration": {"LaunchTemplate": {
                                   "LaunchTemplateId": template, "Version": "2"}},
                               "Preferences": {"SkipMatching": true}}}
    }]));

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN its own start is refused, which is a race lost to ourselves and
    // no failure, and the group's record of the image stays: that refresh,
    // if it fails, is not started again
    assert!(report.failed.is_empty(), "{}", report.to_text());
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert!(
        report
            .applied
            .iter()
            .any(|a| a.result.contains("started by another run")),
        "{}",
        report.to_text()
    );
    let image = match &report.changes[0] {
        Change::CreateVersion(c) => c.to_image.clone(),
        other => panic!("{other:?}"),
    };
    let group = account.describe_group("web").await;
    assert!(
        group
            .tags()
            .iter()
            .any(|t| t.key() == Some("ami-reconciler:rollout-image")
                && t.value() == Some(image.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_is_not_restarted_when_its_record_tag_is_removed() {
    // GIVEN a rolling group whose refresh to the new backup failed, and a
    // tool that removes the tags it does not manage (Terraform does)
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    account.rolling_group("web", &template, 2, &old, &[]).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    run(&clients, &settings, Mode::Apply).await.unwrap();
    moto.roll_back("web");
    account
        .asg
        .delete_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id("web")
                .resource_type("auto-scaling-group")
                .key("ami-reconciler:rollout-image")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // WHEN the next runs come
    for _ in 0..2 {
        moto.reset();
        let report = run(&clients, &settings, Mode::Apply).await.unwrap();

        // THEN the group's refresh history says the image was rolled out:
        // nothing starts, and the report says why
        assert_eq!(moto.mutating_calls(), Vec::<String>::new());
        assert!(
            report.warnings.iter().any(|w| matches!(w,
                Warning::RolloutStopped { last_status: Some(status), .. } if status == "RollbackSuccessful")),
            "{}",
            report.to_text()
        );
    }
    assert_eq!(refreshes(&account, "web").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_no_refresh_behind_it_is_started_again() {
    // GIVEN a run that recorded the new image on the group and stopped
    // before the start (a Lambda timeout between the two calls)
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, new) = fleet(&account).await;
    account.version(&template, &new).await;
    account.set_default(&template, 2).await;
    account
        .rolling_group(
            "web",
            &template,
            2,
            &old,
            &[("ami-reconciler:rollout-image", new.as_str())],
        )
        .await;

    // WHEN the next run comes
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the refresh the record promised starts now
    assert_eq!(started(&report), ["web"], "{}", report.to_text());
    assert_eq!(refreshes(&account, "web").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_at_the_tag_limit_gets_its_own_warning_and_no_refresh_without_a_record() {
    // GIVEN a rolling group that already carries 50 tags, Auto Scaling's
    // limit ("The maximum number of tags per resource is 50")
    let moto = Moto::start();
    let account = moto.account().await;
    let (template, old, _new) = fleet(&account).await;
    let names: Vec<String> = (0..47).map(|i| format!("team-{i}")).collect();
    let extra: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    account
        .rolling_group("web", &template, 2, &old, &extra)
        .await;
    assert_eq!(account.describe_group("web").await.tags().len(), 50);

    // WHEN it applies, twice
    for _ in 0..2 {
        moto.reset();
        let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
            .await
            .unwrap();

        // THEN no refresh starts and no record is attempted; the warning
        // says why and needs a person
        assert!(started(&report).is_empty(), "{}", report.to_text());
        let calls = moto.mutating_calls();
        assert!(
            !calls
                .iter()
                .any(|c| c == "CreateOrUpdateTags" || c == "StartInstanceRefresh"),
            "{calls:?}"
        );
        assert!(
            report.warnings.iter().any(
                |w| matches!(w, Warning::RolloutTagLimit { group, tags: 50 } if group == "web")
            ),
            "{}",
            report.to_text()
        );
        assert!(report.needs_attention >= 1);
    }
}
