//! Where real AWS differs from moto, and the reconciler must follow AWS:
//! each test runs against the emulation of the AWS behaviour (see
//! docs/testing.md) and fails on a reconciler that trusts moto's view.

mod support;

use ami_reconciler::Mode;
use ami_reconciler::run;
use ami_reconciler::warning::Warning;
use serde_json::json;
use support::{Moto, settings_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_stay_put_when_latests_image_is_unusable_and_its_replacement_fails() {
    // GIVEN $Latest uses a backup that was skip-tagged, a good newer backup,
    // a managed group pinned to version 1, and the create is refused
    let moto = Moto::start();
    let account = moto.account().await;
    let good = account.backup(1).await;
    let bad = account.backup(2).await;
    let template = account.template("web", &good).await;
    account.version(&template, &bad).await;
    account.set_default(&template, 2).await;
    account.skip(&bad).await;
    account.group("web", &template, "1", true).await;
    moto.faults(json!([{
        "action": "CreateLaunchTemplateVersion", "fault": "error", "status": 403,
        "code": "UnauthorizedOperation", "message": "refused for the test"
    }]));

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the group stays on version 1, and the report says why
    assert_eq!(report.exit_code(), 1);
    assert_eq!(account.group_version("web").await, "1");
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.change.action(), s.change.target().to_owned()))
        .collect();
    assert!(
        skipped.contains(&("update_group", "web".to_owned())),
        "{}",
        report.to_text()
    );
    assert!(
        !moto
            .mutating_calls()
            .contains(&"UpdateAutoScalingGroup".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_another_writer_creates_meanwhile_keeps_its_changes_and_the_next_run_builds_on_it()
 {
    // GIVEN a template on an old backup, a newer backup, and another writer
    // that adds a version with another instance type just before our create
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    moto.faults(json!([{
        "action": "CreateLaunchTemplateVersion", "fault": "before", "times": 1,
        "request": {"service": "ec2", "action": "CreateLaunchTemplateVersion",
                    "params": {"LaunchTemplateId": template, "SourceVersion": "$Latest",
                               "LaunchTemplateData": {"InstanceType": "m5.large"}}}
    }]));
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN our version (3, built from 1) is deleted again, the other
    // writer's version 2 stays $Latest, the default is untouched, and it says so
    assert_eq!(report.exit_code(), 1);
    assert!(
        report.warnings.contains(&Warning::RacedAnotherWriter {
            template: template.clone(),
            source_version: 1,
            created: 3
        }),
        "{}",
        report.to_text()
    );
    assert_eq!(account.versions(&template).await, (vec![1, 2], 1));

    // AND the next run builds on the other writer's version: new image,
    // their instance type
    let next = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_eq!(next.exit_code(), 0, "{}", next.to_text());
    assert_eq!(account.versions(&template).await, (vec![1, 2, 4], 4));
    let data = account.version_data(&template, "4").await;
    assert_eq!(data.image_id(), Some(new.as_str()));
    assert_eq!(data.instance_type().map(|t| t.as_str()), Some("m5.large"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_left_by_deleted_versions_is_not_taken_for_another_writer() {
    // GIVEN versions 1 and 2, 2 deleted by hand (so EC2's next number is 3)
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    account.version(&template, &old).await;
    account.delete_version(&template, 2).await;

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN version 3 is created and made the default
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(account.versions(&template).await, (vec![1, 3], 3));
    let data = account.version_data(&template, "3").await;
    assert_eq!(data.image_id(), Some(new.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_group_on_another_template_is_left_alone_with_a_warning() {
    // GIVEN a managed group on version 1 of a template that is not managed
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let managed = account.template("web", &image).await;
    let other = account.template("drafts", &image).await;
    account.version(&other, &image).await;
    account.group("drafts", &other, "1", true).await;

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&managed), Mode::Apply)
        .await
        .unwrap();

    // THEN the group stays on version 1 of its template
    assert_eq!(report.exit_code(), 0);
    assert_eq!(account.group_version("drafts").await, "1");
    assert_eq!(
        report.warnings[..],
        [Warning::OtherTemplate {
            group: "drafts".into(),
            template: other
        }]
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_being_deleted_is_skipped_and_the_version_it_pins_is_kept() {
    // GIVEN versions 1..=5 (5 the default), a managed group on 1 being deleted
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    for _ in 2..=5 {
        account.version(&template, &image).await;
    }
    account.set_default(&template, 5).await;
    account.group("leaving", &template, "1", true).await;
    moto.control(
        "POST",
        "/_harness/groups/leaving",
        &json!({"status": "Delete in progress"}),
    );

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN no update is attempted (AWS would refuse it), the run succeeds,
    // and version 1 is kept while version 2 is pruned
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(
        report.warnings[..],
        [Warning::GroupBeingDeleted {
            group: "leaving".into()
        }]
    );
    assert!(
        !moto
            .mutating_calls()
            .contains(&"UpdateAutoScalingGroup".to_owned())
    );
    assert_eq!(account.versions(&template).await, (vec![1, 3, 4, 5], 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_operator_rolls_back_and_deletes_our_version_the_next_run_makes_a_live_one() {
    // GIVEN a run that moved the template to the newest backup (version 2)
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);
    run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_eq!(account.versions(&template).await, (vec![1, 2], 2));
    // AND an operator rolled back: version 1 the default, version 2 deleted
    account.set_default(&template, 1).await;
    account.delete_version(&template, 2).await;

    // WHEN it applies again (same source version and image: same ClientToken,
    // which EC2 may answer with the deleted version's number)
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN a live version with the newest image is created and made default
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(account.versions(&template).await, (vec![1, 3], 3));
    let data = account.version_data(&template, "3").await;
    assert_eq!(data.image_id(), Some(new.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_keeps_the_snapshot_its_source_maps() {
    // GIVEN a template that maps a data volume from a snapshot, and a newer backup
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let data = aws_sdk_ec2::types::LaunchTemplateBlockDeviceMappingRequest::builder()
        .device_name("/dev/xvdb")
        .ebs(
            aws_sdk_ec2::types::LaunchTemplateEbsBlockDeviceRequest::builder()
                .snapshot_id("snap-0123456789abcdef0")
                .volume_size(20)
                .volume_type(aws_sdk_ec2::types::VolumeType::Gp3)
                .delete_on_termination(true)
                .build(),
        )
        .build();
    let template = account
        .ec2
        .create_launch_template()
        .launch_template_name("web")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(&old)
                .block_device_mappings(data)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .launch_template
        .unwrap()
        .launch_template_id
        .unwrap();

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the new version has the new image and the same mapping, snapshot
    // included (EC2 drops inherited snapshots unless they are sent)
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    let version = account.version_data(&template, "2").await;
    assert_eq!(version.image_id(), Some(new.as_str()));
    let mapping = &version.block_device_mappings()[0];
    assert_eq!(mapping.device_name(), Some("/dev/xvdb"));
    let ebs = mapping.ebs().unwrap();
    assert_eq!(ebs.snapshot_id(), Some("snap-0123456789abcdef0"));
    assert_eq!(ebs.volume_size(), Some(20));
    assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("gp3"));
    assert_eq!(ebs.delete_on_termination(), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_ec2_warns_about_never_becomes_default_nor_reaches_a_group_and_is_not_retried() {
    // GIVEN a template on an old backup, a newer backup, a managed group on
    // version 1, and EC2 answering the create with a Warning
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    account.group("web", &template, "1", true).await;
    moto.faults(json!([{
        "action": "CreateLaunchTemplateVersion", "fault": "warn", "times": 1,
        "code": "InvalidParameterValue", "message": "The security group does not exist"
    }]));
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the create is reported failed with EC2's warning, $Latest is a
    // copy of version 1 (version 3), the warned version 2 is not the default,
    // and the group follows $Latest, not version 2
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.failed[0].change.action(), "create_version");
    assert_eq!(
        report.failed[0].error_code.as_deref(),
        Some("InvalidParameterValue")
    );
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::VersionWarned { version: 2, image, .. } if *image == new)),
        "{}",
        report.to_text()
    );
    assert_eq!(account.versions(&template).await, (vec![1, 2, 3], 1));
    let latest = account.version_data(&template, "3").await;
    assert_eq!(latest.image_id(), Some(old.as_str()));
    assert_eq!(latest.instance_type().map(|t| t.as_str()), Some("t3.micro"));

    // AND the next runs create nothing for that image, never make version 2
    // the default, and keep reporting the failure
    for _ in 0..2 {
        moto.reset();
        let next = run(&clients, &settings, Mode::Apply).await.unwrap();
        assert_eq!(next.exit_code(), 1, "{}", next.to_text());
        assert!(
            next.warnings
                .iter()
                .any(|w| matches!(w, Warning::VersionWarned { version: 2, .. })),
            "{}",
            next.to_text()
        );
        assert!(
            !moto
                .mutating_calls()
                .contains(&"CreateLaunchTemplateVersion".to_owned())
        );
        let (versions, default) = account.versions(&template).await;
        assert_eq!(versions, [1, 2, 3]);
        assert_ne!(default, 2);
    }
    assert_eq!(account.group_version("web").await, "$Latest");

    // AND a newer backup is tried again
    let newer = account.backup(3).await;
    moto.reset();
    let after = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert_eq!(after.exit_code(), 0, "{}", after.to_text());
    let (versions, default) = account.versions(&template).await;
    assert_eq!(default, *versions.last().unwrap());
    let data = account.version_data(&template, &default.to_string()).await;
    assert_eq!(data.image_id(), Some(newer.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_gets_the_newest_backup_of_its_own_lineage_and_architecture() {
    // GIVEN the web fleet's x86_64 backups, a newer arm64 one of the same
    // policy, and the database server's even newer backups
    let moto = Moto::start();
    let account = moto.account().await;
    let web_old = account.backup_of("policy-web", 1, "x86_64").await;
    let web_new = account.backup_of("policy-web", 2, "x86_64").await;
    let web_arm = account.backup_of("policy-web", 3, "arm64").await;
    account.backup_of("policy-db", 4, "x86_64").await;
    let template = account.template("web", &web_old).await;
    let mut settings = settings_for(&template);
    settings.policy.image_tag = Some(ami_reconciler::model::Tag {
        key: "aws:dlm:lifecycle-policy-id".into(),
        value: "policy-web".into(),
    });

    // WHEN it applies
    let report = run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    // THEN the new version uses the newest x86_64 backup of policy-web, and
    // the arm64 one is named
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    let data = account.version_data(&template, "2").await;
    assert_eq!(data.image_id(), Some(web_new.as_str()));
    assert_eq!(
        report.warnings[..],
        [Warning::OtherArchitecture {
            images: vec![web_arm],
            architecture: "x86_64".into()
        }]
    );
}
