//! Tag mode: one run over every launch template carrying
//! `LAUNCH_TEMPLATE_TAG`, each choosing its own backup by the tags it
//! carries, each failing alone. Against moto with DescribeLaunchTemplates
//! paging, tag filters and RegisterImage's Architecture emulated
//! (docs/testing.md).

mod support;

use ami_reconciler::Mode;
use ami_reconciler::settings::RawSettings;
use ami_reconciler::warning::Warning;
use ami_reconciler::{Settings, run};
use serde_json::json;
use support::{Account, Moto};

const MANAGED: (&str, &str) = ("ami-reconciler:managed", "true");
const LINEAGE: &str = "aws:dlm:lifecycle-policy-id";

fn tag_mode(adjust: impl FnOnce(RawSettings) -> RawSettings) -> Settings {
    adjust(RawSettings {
        launch_template_tag: Some("ami-reconciler:managed=true".into()),
        ..RawSettings::default()
    })
    .validate()
    .unwrap()
}

/// A managed template of a DLM policy's lineage.
async fn fleet_template(account: &Account<'_>, name: &str, image: &str, policy: &str) -> String {
    let lineage = format!("{LINEAGE}={policy}");
    account
        .tagged_template(
            name,
            image,
            &[MANAGED, ("ami-reconciler:image-tag", lineage.as_str())],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_template_gets_the_newest_backup_of_its_own_lineage_and_a_bad_tag_skips_only_its_own()
{
    // GIVEN the web fleet's x86_64 backups and a newer arm64 one of the same
    // policy; the api fleet's arm64 backups; the database server's newer
    // backups, marker and all; a worker template whose keep-versions tag is
    // malformed; a managed group on each, and one on an unmanaged template
    let moto = Moto::start();
    let account = moto.account().await;
    let web_old = account.backup_of("policy-web", 1, "x86_64").await;
    let web_new = account.backup_of("policy-web", 3, "x86_64").await;
    let web_arm = account.backup_of("policy-web", 4, "arm64").await;
    let api_old = account.backup_of("policy-api", 1, "arm64").await;
    let api_new = account.backup_of("policy-api", 2, "arm64").await;
    account.backup_of("policy-db", 5, "x86_64").await;
    let web = fleet_template(&account, "web", &web_old, "policy-web").await;
    let api = fleet_template(&account, "api", &api_old, "policy-api").await;
    let worker = account
        .tagged_template(
            "worker",
            &web_old,
            &[
                MANAGED,
                (
                    "ami-reconciler:image-tag",
                    "aws:dlm:lifecycle-policy-id=policy-web",
                ),
                ("ami-reconciler:keep-versions", "three"),
            ],
        )
        .await;
    let unmanaged = account.tagged_template("legacy", &web_old, &[]).await;
    account.group("web-1", &web, "1", true).await;
    account.group("api-1", &api, "$Default", true).await;
    account.group("worker-1", &worker, "1", true).await;
    account.group("legacy-1", &unmanaged, "1", true).await;

    // WHEN one run applies in tag mode
    let report = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();

    // THEN web and api each have a version with their own newest backup of
    // their own architecture, and their groups follow $Latest
    assert_eq!(
        account.version_data(&web, "2").await.image_id(),
        Some(web_new.as_str())
    );
    assert_eq!(
        account.version_data(&api, "2").await.image_id(),
        Some(api_new.as_str())
    );
    assert_eq!(account.group_version("web-1").await, "$Latest");
    assert_eq!(account.group_version("api-1").await, "$Latest");
    // the worker template and its group are untouched, and say why
    assert_eq!(account.versions(&worker).await, (vec![1], 1));
    assert_eq!(account.group_version("worker-1").await, "1");
    assert_eq!(account.group_version("legacy-1").await, "1");
    assert!(report.failed.is_empty(), "{}", report.to_text());
    assert_eq!(report.exit_code(), 1, "a skipped template needs a person");
    let mut ids = [api.clone(), web.clone(), worker.clone()];
    ids.sort();
    let listed: Vec<&str> = report
        .templates
        .iter()
        .map(|t| t.template_id.as_str())
        .collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let of = |id: &str| {
        report
            .templates
            .iter()
            .find(|t| t.template_id == id)
            .unwrap()
    };
    assert_eq!(
        of(&web).warnings[..],
        [Warning::OtherArchitecture {
            images: vec![web_arm],
            architecture: "x86_64".into()
        }]
    );
    assert_eq!(of(&api).warnings.len(), 0, "{}", report.to_text());
    assert!(
        matches!(&of(&worker).warnings[..],
            [Warning::BadTemplateTag { template, tag, problem }]
                if *template == worker
                && tag == "ami-reconciler:keep-versions"
                && problem.contains("\"three\"")),
        "{}",
        report.to_text()
    );
    assert_eq!(
        report.run_warnings,
        [Warning::OtherTemplate {
            group: "legacy-1".into(),
            template: unmanaged.clone()
        }]
    );
    let doc: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["template_id"], json!(null));
    assert_eq!(doc["templates"].as_array().unwrap().len(), 3);

    // AND a second run changes nothing and still names the bad tag
    moto.reset();
    let again = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();
    assert!(again.changes.is_empty(), "{}", again.to_text());
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    assert_eq!(again.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_whose_versions_cannot_be_read_is_skipped_and_the_others_converge() {
    // GIVEN two fleets, and the first version listing is denied
    let moto = Moto::start();
    let account = moto.account().await;
    let a_old = account.backup_of("policy-a", 1, "x86_64").await;
    let a_new = account.backup_of("policy-a", 2, "x86_64").await;
    let b_old = account.backup_of("policy-b", 1, "x86_64").await;
    let b_new = account.backup_of("policy-b", 2, "x86_64").await;
    let mut templates = [
        (
            fleet_template(&account, "a", &a_old, "policy-a").await,
            a_new,
        ),
        (
            fleet_template(&account, "b", &b_old, "policy-b").await,
            b_new,
        ),
    ];
    templates.sort();
    moto.faults(json!([{
        "action": "DescribeLaunchTemplateVersions", "fault": "error", "status": 403,
        "code": "UnauthorizedOperation", "message": "denied for the test", "times": 1
    }]));

    // WHEN it applies, reading one template at a time (in id order)
    let settings = tag_mode(|raw| RawSettings {
        concurrency: Some("1".into()),
        ..raw
    });
    let report = run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    // THEN the first is skipped with the reason, the second converges
    let [(first, _), (second, second_new)] = &templates;
    assert!(
        matches!(&report.templates[0].warnings[..],
            [Warning::TemplateNotRead { template, kind, error }]
                if template == first
                && *kind == ami_reconciler::ErrorKind::DescribeTemplateVersionsFailed
                && error.contains("UnauthorizedOperation")),
        "{}",
        report.to_text()
    );
    assert_eq!(account.versions(first).await, (vec![1], 1));
    assert_eq!(
        account.version_data(second, "2").await.image_id(),
        Some(second_new.as_str())
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_on_one_template_does_not_stop_the_next() {
    // GIVEN two drifted fleets, and the first create is refused
    let moto = Moto::start();
    let account = moto.account().await;
    let a_old = account.backup_of("policy-a", 1, "x86_64").await;
    let a_new = account.backup_of("policy-a", 2, "x86_64").await;
    let b_old = account.backup_of("policy-b", 1, "x86_64").await;
    let b_new = account.backup_of("policy-b", 2, "x86_64").await;
    let mut templates = [
        (
            fleet_template(&account, "a", &a_old, "policy-a").await,
            a_new,
        ),
        (
            fleet_template(&account, "b", &b_old, "policy-b").await,
            b_new,
        ),
    ];
    templates.sort();
    let [(first, _), (second, second_new)] = &templates;
    account.group("first-1", first, "1", true).await;
    moto.faults(json!([{
        "action": "CreateLaunchTemplateVersion", "fault": "error", "status": 403,
        "code": "UnauthorizedOperation", "message": "refused for the test", "times": 1
    }]));

    // WHEN it applies (templates are applied in id order)
    let report = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();

    // THEN the first template's create failed (its group still moved to a
    // usable $Latest); the second template converged; the run exits 1
    assert_eq!(report.templates[0].failed.len(), 1, "{}", report.to_text());
    assert_eq!(account.versions(first).await, (vec![1], 1));
    assert_eq!(account.group_version("first-1").await, "$Latest");
    assert_eq!(
        account.version_data(second, "2").await.image_id(),
        Some(second_new.as_str())
    );
    assert!(report.templates[1].failed.is_empty());
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_run_over_t_templates_makes_two_plus_t_plus_group_pages_calls() {
    // GIVEN three converged fleets and 150 managed groups (two pages)
    let moto = Moto::start();
    let account = moto.account().await;
    let mut templates = Vec::new();
    for policy in ["policy-a", "policy-b", "policy-c"] {
        let image = account.backup_of(policy, 1, "x86_64").await;
        templates.push(fleet_template(&account, policy, &image, policy).await);
    }
    for i in 0..150 {
        account
            .group(&format!("g-{i:03}"), &templates[i % 3], "$Latest", true)
            .await;
    }

    // WHEN it runs
    moto.reset();
    let report = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();

    // THEN it plans nothing and makes 2 + T + ceil(G/100) = 7 calls: the
    // template page, a version listing per template, one image query, two
    // group pages
    assert!(report.changes.is_empty(), "{}", report.to_text());
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
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
            "autoscaling:DescribeAutoScalingGroups",
            "ec2:DescribeImages",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeLaunchTemplates",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lineage_a_template_is_skipped_when_several_are_managed_and_used_when_alone() {
    // GIVEN a template without an image-tag, and the backups of another policy
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup_of("policy-a", 1, "x86_64").await;
    let new = account.backup_of("policy-a", 2, "x86_64").await;
    let bare = account.tagged_template("bare", &old, &[MANAGED]).await;

    // WHEN it is the only managed template
    let alone = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::DryRun)
        .await
        .unwrap();

    // THEN it takes the newest backup, as single-template mode would
    assert!(
        matches!(&alone.changes[0],
            ami_reconciler::Change::CreateVersion(c) if c.to_image == new),
        "{}",
        alone.to_text()
    );

    // WHEN a second managed template appears
    fleet_template(&account, "other", &old, "policy-a").await;
    let report = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();

    // THEN the bare one is skipped, and untouched
    assert!(
        report.warnings.iter().any(|w| matches!(w,
            Warning::NoLineage { template, templates: 2 } if *template == bare)),
        "{}",
        report.to_text()
    );
    assert_eq!(account.versions(&bare).await, (vec![1], 1));
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_lacking_the_write_tag_is_named_before_the_writes_are_denied() {
    // GIVEN a drifted template named by id that lacks ami-reconciler:managed
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    account.backup(2).await;
    let template = account.tagged_template("web", &old, &[]).await;

    // WHEN it plans
    let report = run(
        &moto.clients().await,
        &support::settings_for(&template),
        Mode::DryRun,
    )
    .await
    .unwrap();

    // THEN the plan names the missing tag (one DescribeLaunchTemplates read)
    assert_eq!(
        report.warnings[..],
        [Warning::TemplateNotTaggedForWrites {
            template: template.clone(),
            tag: ami_reconciler::model::Tag {
                key: MANAGED.0.into(),
                value: MANAGED.1.into()
            }
        }]
    );
    let reads = moto
        .calls()
        .into_iter()
        .filter(|c| c.action == "DescribeLaunchTemplates")
        .count();
    assert_eq!(reads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tagged_template_is_a_warning_and_no_change() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    account.tagged_template("web", &image, &[]).await;

    let report = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();

    assert!(report.templates.is_empty());
    assert_eq!(
        report.summary(),
        "No changes. No launch template is managed. Exit 1: 1 condition a person must clear; see above."
    );
    assert!(
        matches!(&report.warnings[..], [Warning::NoTemplateTagged { .. }]),
        "{}",
        report.to_text()
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
    // A tag that matches nothing is a person's to fix: exit 1.
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_image_query_serves_templates_with_different_markers_and_lineage_keys() {
    // GIVEN a web fleet of DLM backups, and an api fleet whose images carry
    // another marker and are tagged by a key of their own
    let moto = Moto::start();
    let account = moto.account().await;
    let web_old = account.backup_of("policy-web", 1, "x86_64").await;
    let web_new = account.backup_of("policy-web", 2, "x86_64").await;
    let api_old = account
        .image("api-1", "nightly API_SNAPSHOT of api", 1)
        .await;
    let api_new = account
        .image("api-2", "nightly API_SNAPSHOT of api", 2)
        .await;
    for image in [&api_old, &api_new] {
        account.tag_image(image, "team", "api").await;
    }
    let web = fleet_template(&account, "web", &web_old, "policy-web").await;
    let api = account
        .tagged_template(
            "api",
            &api_old,
            &[
                MANAGED,
                ("ami-reconciler:image-tag", "team=api"),
                ("ami-reconciler:marker", "API_SNAPSHOT"),
            ],
        )
        .await;

    // WHEN it applies
    let report = run(&moto.clients().await, &tag_mode(|raw| raw), Mode::Apply)
        .await
        .unwrap();

    // THEN each template has its own newest image, read in one DescribeImages
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(
        account.version_data(&web, "2").await.image_id(),
        Some(web_new.as_str())
    );
    assert_eq!(
        account.version_data(&api, "2").await.image_id(),
        Some(api_new.as_str())
    );
    let image_reads = moto
        .calls()
        .into_iter()
        .filter(|c| c.action == "DescribeImages")
        .count();
    assert_eq!(image_reads, 1);
}
