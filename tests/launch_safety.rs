//! Never promote what cannot launch, and show what still runs behind: a
//! backup whose root snapshot outgrew the template's volume, groups whose
//! version's image is gone, and the in-service instances behind the default
//! image. Against moto, with RegisterImage's block device mappings emulated
//! (tests/support/moto_gaps.py, docs/testing.md).

mod support;

use ami_reconciler::lambda::Function;
use ami_reconciler::report::emf::emf_lines;
use ami_reconciler::warning::Warning;
use ami_reconciler::{Change, Mode, run};
use serde_json::{Value, json};
use support::{Moto, settings_for};

fn created_image(report: &ami_reconciler::Report) -> Option<String> {
    report.changes.iter().find_map(|c| match c {
        Change::CreateVersion(c) => Some(c.to_image.clone()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_whose_root_snapshot_outgrew_the_templates_volume_is_not_promoted() {
    // GIVEN a template giving /dev/xvda 8 GiB on day 1's backup, a day-2
    // backup that fits, and a day-3 backup of a server whose disk grew to 20
    let moto = Moto::start();
    let account = moto.account().await;
    let first = account.backup_with_root(1, 8).await;
    let fitting = account.backup_with_root(2, 8).await;
    let grown = account.backup_with_root(3, 20).await;
    let template = account.sized_template("web", &first, 8).await;
    let clients = moto.clients().await;
    let settings = settings_for(&template);

    // WHEN it applies
    let report = run(&clients, &settings, Mode::Apply).await.unwrap();

    // THEN the grown backup is not promoted; the run names the device and
    // both sizes and needs a person; the newest backup that fits is used
    assert_eq!(
        created_image(&report),
        Some(fitting.clone()),
        "{}",
        report.to_text()
    );
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::VolumeTooSmall { image, device, template_size: 8, image_size: 20, .. }
                if image == &grown && device == "/dev/xvda")),
        "{}",
        report.to_text()
    );
    let text = report.to_text();
    assert!(
        text.contains("gives /dev/xvda 8 GiB, but backup") && text.contains("maps 20 GiB there"),
        "{text}"
    );
    assert_eq!(report.needs_attention, 1);
    assert_eq!(report.exit_code(), 1);

    // AND with nothing newer that fits, the next run changes nothing and
    // keeps saying why
    moto.reset();
    let again = run(&clients, &settings, Mode::Apply).await.unwrap();
    assert!(again.changes.is_empty(), "{}", again.to_text());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert!(
        again
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::VolumeTooSmall { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_pinned_to_a_version_whose_image_is_gone_is_reported_and_never_moved() {
    // GIVEN a template whose version 1 ran a golden image, now deregistered,
    // an unmanaged group still pinned to version 1, and a converged $Latest
    let moto = Moto::start();
    let account = moto.account().await;
    let golden = account.image("golden", "golden image", 0).await;
    let backup = account.backup(1).await;
    let template = account.template("web", &golden).await;
    account.version(&template, &backup).await;
    account.set_default(&template, 2).await;
    account.group("batch", &template, "1", false).await;
    account.group("web", &template, "$Latest", true).await;
    account
        .ec2
        .deregister_image()
        .image_id(&golden)
        .send()
        .await
        .unwrap();
    moto.reset();

    // WHEN it applies
    let report = run(&moto.clients().await, &settings_for(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the group is named with its version and image, needs a person,
    // and is left where it is: nothing is written
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::GroupOnGoneImage { group, version, image: Some(image), managed: false, .. }
                if group == "batch" && version == "1" && image == &golden)),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 1);
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(account.group_version("batch").await, "1");
    // AND the image the group needs cost one DescribeImages, the groups one
    // DescribeAutoScalingGroups (all of them, managed picked locally)
    let count = |action: &str| moto.calls().iter().filter(|c| c.action == action).count();
    assert_eq!(count("DescribeImages"), 2, "{:?}", moto.calls());
    assert_eq!(count("DescribeAutoScalingGroups"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_behind_and_the_oldest_running_image_reach_the_report_and_the_lambdas_metrics() {
    // GIVEN a converged template on day 3's backup and two managed groups:
    // three instances on it, two on day 1's
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let current = account.backup(3).await;
    let template = account.template("web", &current).await;
    account.group("web-a", &template, "$Latest", true).await;
    account.run_instances("web-a", &current, 3);
    account.group("web-b", &template, "$Latest", true).await;
    account.run_instances("web-b", &old, 2);
    let function = Function {
        clients: moto.clients().await,
        settings: settings_for(&template),
        dry_run: false,
    };

    // WHEN the function runs
    moto.reset();
    let report: Value = function.handle(json!({})).await.unwrap();

    // THEN the report counts five in service, two behind, and the oldest
    // running image is day 1's
    let fleet = &report["templates"][0]["fleet"];
    assert_eq!(fleet["in_service"], 5, "{report:#}");
    assert_eq!(fleet["instances_behind"], 2);
    assert_eq!(fleet["oldest_running_image"]["image_id"], json!(old));
    assert_eq!(report["instances_behind"], 2);
    // AND one DescribeInstances read them all, nothing was written
    let calls = moto.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.action == "DescribeInstances")
            .count(),
        1
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());

    // AND the metrics lines the function prints carry both figures, on the
    // run's line and the template's
    let run_report = run(&function.clients, &function.settings, Mode::Apply)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    for line in emf_lines(&run_report, now, "reconciler") {
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["InstancesBehind"], 2, "{doc:#}");
        let age = doc["OldestRunningImageAgeHours"].as_f64().unwrap();
        let expected = (now
            - run_report.templates[0]
                .fleet
                .oldest_running_image
                .as_ref()
                .unwrap()
                .creation_date)
            .num_minutes() as f64
            / 60.0;
        assert!((age - expected).abs() < 0.1, "{age} vs {expected}");
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"InstancesBehind") && names.contains(&"OldestRunningImageAgeHours")
        );
    }
}
