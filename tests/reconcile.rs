//! The reconciler end to end: the real SDK clients over HTTP against moto,
//! through the counting, fault-injecting proxy.

mod support;

use ami_reconciler::Mode;
use ami_reconciler::run;
use ami_reconciler::settings::{RawSettings, Settings};
use ami_reconciler::warning::Warning;
use serde_json::json;
use support::{Moto, applied_actions, drifted, settings_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_repair_converges_in_one_run_and_the_second_run_plans_nothing() {
    // GIVEN a drifted account
    let moto = Moto::start();
    let d = drifted(&moto).await;
    let account = moto.account().await;
    let clients = moto.clients().await;
    let settings = settings_for(&d.template);

    // WHEN the reconciler applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN every change is applied and nothing failed
    assert!(
        report.failed.is_empty() && report.skipped.is_empty(),
        "{}",
        report.to_text()
    );
    assert_eq!(applied_actions(&report), support::DRIFT_REPAIR);
    // a version 7 with the newest backup is the default
    let (versions, default) = account.versions(&d.template).await;
    assert_eq!(default, 7);
    let latest = account.version_data(&d.template, "7").await;
    assert_eq!(latest.image_id(), Some(d.backups[2].as_str()));
    // managed groups follow $Latest; the untagged one is untouched
    assert_eq!(account.group_version("web").await, "$Latest");
    assert_eq!(account.group_version("spot").await, "$Latest");
    assert_eq!(account.group_version("batch").await, "2");
    // 1 (old default, pinned only by the moved group) and 4 are gone; 2 and 3
    // stay because the untagged group and an override pin them
    assert_eq!(versions, [2, 3, 5, 6, 7]);

    // AND a second run plans nothing and makes no mutating call
    moto.reset();
    let again = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert!(again.changes.is_empty(), "{}", again.to_text());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_version_inherits_everything_from_latest_but_the_image() {
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;

    run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    let data = account.version_data(&template, "2").await;
    assert_eq!(data.image_id(), Some(new.as_str()));
    assert_eq!(data.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    assert_eq!(data.user_data(), Some("IyEvYmluL2Jhc2gKZWNobyBoZWxsbw=="));
    let calls = moto.calls();
    let create = calls
        .iter()
        .filter(|c| c.action == "CreateLaunchTemplateVersion")
        .count();
    assert_eq!(create, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_the_plan_and_makes_no_mutating_call() {
    let moto = Moto::start();
    let d = drifted(&moto).await;
    let account = moto.account().await;

    let report = run(
        &moto.clients().await,
        &settings_for(&d.template),
        Mode::DryRun,
    )
    .await
    .unwrap();

    assert!(report.dry_run);
    assert_eq!(report.changes.len(), 5, "{}", report.to_text());
    assert!(report.applied.is_empty());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(account.versions(&d.template).await, ((1..=6).collect(), 1));
    assert_eq!(account.group_version("web").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_run_over_100_groups_makes_only_the_four_floor_calls() {
    // GIVEN a converged account with 100 managed groups and the template id in SSM
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    account
        .parameter("/app/launch-template-id", &template)
        .await;
    for i in 0..100 {
        account
            .group(&format!("web-{i:03}"), &template, "$Latest", true)
            .await;
    }
    let settings = RawSettings {
        launch_template_parameter: Some("/app/launch-template-id".into()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap();

    // WHEN it runs
    let report = run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    // THEN it plans nothing, with one call each to SSM, the versions, the
    // images, and one page of groups
    assert!(report.changes.is_empty(), "{}", report.to_text());
    let mut actions: Vec<String> = moto
        .calls()
        .into_iter()
        .map(|c| format!("{}:{}", c.service, c.action))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "autoscaling:DescribeAutoScalingGroups",
            "ec2:DescribeImages",
            "ec2:DescribeLaunchTemplateVersions",
            "ssm:GetParameter"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_beyond_one_page_are_all_read_and_moved() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    for i in 0..105 {
        account
            .group(&format!("web-{i:03}"), &template, "1", true)
            .await;
    }

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    assert_eq!(report.applied.len(), 105, "{}", report.summary());
    assert_eq!(account.group_version("web-104").await, "$Latest");
    let pages = moto
        .calls()
        .iter()
        .filter(|c| c.action == "DescribeAutoScalingGroups")
        .count();
    assert_eq!(pages, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_instances_group_keeps_its_overrides_and_distribution() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    account.version(&template, &image).await;
    account
        .mixed_group(
            "spot",
            &template,
            "1",
            &[("t3.micro", None), ("t3a.micro", Some("2"))],
            true,
        )
        .await;

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{}", report.to_text());

    let group = account.describe_group("spot").await;
    let policy = group.mixed_instances_policy().unwrap();
    let lt = policy.launch_template().unwrap();
    let spec = lt.launch_template_specification().unwrap();
    assert_eq!(spec.launch_template_id(), Some(template.as_str()));
    assert_eq!(spec.version(), Some("$Latest"));
    let types: Vec<_> = lt
        .overrides()
        .iter()
        .map(|o| o.instance_type().unwrap_or_default())
        .collect();
    assert_eq!(types, ["t3.micro", "t3a.micro"]);
    assert_eq!(
        lt.overrides()[1]
            .launch_template_specification()
            .unwrap()
            .version(),
        Some("2")
    );
    let dist = policy.instances_distribution().unwrap();
    assert_eq!(dist.on_demand_base_capacity(), Some(1));
    assert_eq!(dist.on_demand_percentage_above_base_capacity(), Some(25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_group_whose_override_has_its_own_image_keeps_it_after_a_move() {
    use aws_sdk_autoscaling::types::LaunchTemplateOverrides;
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    let arm = LaunchTemplateOverrides::builder()
        .instance_type("m7g.large")
        .weighted_capacity("1")
        .image_id("ami-0123456789abcdef0")
        .build();
    let x86 = LaunchTemplateOverrides::builder()
        .instance_type("m7i.large")
        .weighted_capacity("1")
        .build();
    account
        .mixed_group_of("both", &template, "1", vec![arm, x86], true)
        .await;

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{}", report.to_text());

    let group = account.describe_group("both").await;
    let lt = group
        .mixed_instances_policy()
        .unwrap()
        .launch_template()
        .unwrap();
    assert_eq!(
        lt.launch_template_specification().unwrap().version(),
        Some("$Latest")
    );
    let images: Vec<_> = lt.overrides().iter().map(|o| o.image_id()).collect();
    assert_eq!(images, [Some("ami-0123456789abcdef0"), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_tagging_a_bad_backup_rolls_the_template_back_to_the_newest_good_one() {
    let moto = Moto::start();
    let account = moto.account().await;
    let good = account.backup(1).await;
    let bad = account.backup(2).await;
    let template = account.template("web", &good).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_eq!(
        account.version_data(&template, "$Latest").await.image_id(),
        Some(bad.as_str())
    );

    account.skip(&bad).await;
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    assert!(report.failed.is_empty(), "{}", report.to_text());
    assert_eq!(
        account.version_data(&template, "$Latest").await.image_id(),
        Some(good.as_str())
    );
    assert_eq!(account.versions(&template).await, (vec![1, 2, 3], 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_a_launch_configuration_is_left_alone_with_a_warning() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    account
        .asg
        .create_launch_configuration()
        .launch_configuration_name("legacy-lc")
        .image_id(&image)
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    account
        .asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("legacy")
        .launch_configuration_name("legacy-lc")
        .min_size(0)
        .max_size(1)
        .availability_zones("us-east-1a")
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .key("ami-reconciler:managed")
                .value("true")
                .resource_id("legacy")
                .resource_type("auto-scaling-group")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    assert!(report.changes.is_empty());
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::LaunchConfiguration { launch_configuration, .. } if launch_configuration == "legacy-lc")),
        "{:?}",
        report.warnings
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_200_stale_versions_are_deleted_in_batches_of_200() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    for _ in 2..=250 {
        account.version(&template, &image).await;
    }
    account.set_default(&template, 250).await;

    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    assert!(report.failed.is_empty(), "{}", report.to_text());
    assert_eq!(
        account.versions(&template).await,
        (vec![248, 249, 250], 250)
    );
    let deletes = moto
        .calls()
        .iter()
        .filter(|c| c.action == "DeleteLaunchTemplateVersions")
        .count();
    assert_eq!(deletes, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_updates_never_exceed_the_configured_concurrency() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    for i in 0..12 {
        account
            .group(&format!("web-{i:02}"), &template, "1", true)
            .await;
    }
    // Slow updates make them overlap as much as the bound allows.
    moto.faults(json!([{"action": "UpdateAutoScalingGroup", "fault": "hang", "delay_ms": 300}]));
    let settings = Settings {
        concurrency: 3,
        ..settings_for(&template)
    };

    let report = run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    assert_eq!(report.applied.len(), 12);
    assert_eq!(moto.peak_in_flight_mutating(), 3);
}
