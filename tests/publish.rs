//! The default version's image published to SSM (`IMAGE_PARAMETER`): as a
//! `String` of data type `aws:ec2:image`, written only when missing or
//! different, following a retreat, shown by the plan, confirmed by the next
//! run's read.

mod support;

use ami_reconciler::settings::{RawSettings, Settings};
use ami_reconciler::warning::Warning;
use ami_reconciler::{Mode, Report, run};
use aws_sdk_ssm::types::ParameterType;
use support::{Account, Moto, applied_actions};

const PATTERN: &str = "/ami-reconciler/{template_name}/image";
const WEB: &str = "/ami-reconciler/web/image";

fn publishing(template: &str) -> Settings {
    RawSettings {
        launch_template_id: Some(template.to_owned()),
        image_parameter: Some(PATTERN.to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap()
}

/// The parameter's value and data type, `None` when it does not exist.
async fn published(account: &Account<'_>, name: &str) -> Option<(String, String)> {
    let out = account
        .ssm
        .get_parameters()
        .names(name)
        .send()
        .await
        .unwrap();
    out.parameters().first().map(|p| {
        (
            p.value().unwrap_or_default().to_owned(),
            p.data_type().unwrap_or_default().to_owned(),
        )
    })
}

/// A template on the older of two backups, not yet published.
struct Behind<'a> {
    account: Account<'a>,
    old: String,
    new: String,
    template: String,
}

async fn behind(moto: &Moto) -> Behind<'_> {
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    Behind {
        account,
        old,
        new,
        template,
    }
}

/// One run publishing the template's image.
async fn publish(moto: &Moto, template: &str, mode: Mode) -> Report {
    run(&moto.clients().await, &publishing(template), mode)
        .await
        .unwrap()
}

fn puts(moto: &Moto) -> usize {
    moto.mutating_calls()
        .iter()
        .filter(|a| *a == "PutParameter")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_default_image_is_published_as_an_image_parameter_and_not_written_again() {
    // GIVEN a template on an old backup, a newer backup, no parameter yet
    let moto = Moto::start();
    let Behind {
        account,
        new,
        template,
        ..
    } = behind(&moto).await;

    // WHEN it applies
    let first = publish(&moto, &template, Mode::Apply).await;

    // THEN the parameter holds the new default's image, as aws:ec2:image
    assert!(
        applied_actions(&first).contains(&"put_image_parameter"),
        "{}",
        first.to_text()
    );
    assert_eq!(
        published(&account, WEB).await,
        Some((new.clone(), "aws:ec2:image".to_owned()))
    );

    // AND a second run reads it, finds it right, and writes nothing
    moto.reset();
    let second = publish(&moto, &template, Mode::Apply).await;
    assert!(second.changes.is_empty(), "{}", second.to_text());
    assert_eq!(puts(&moto), 0);
    let reads = moto
        .calls()
        .into_iter()
        .filter(|c| c.action == "GetParameters")
        .count();
    assert_eq!(reads, 1, "one GetParameters for one template");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_parameter_is_written_back_with_the_default_image() {
    // GIVEN a converged template whose parameter someone deleted
    let moto = Moto::start();
    let Behind {
        account,
        new,
        template,
        ..
    } = behind(&moto).await;
    publish(&moto, &template, Mode::Apply).await;
    account
        .ssm
        .delete_parameter()
        .name(WEB)
        .send()
        .await
        .unwrap();

    // WHEN it runs again
    let report = publish(&moto, &template, Mode::Apply).await;

    // THEN only the parameter is written, back to the default's image, and
    // the run says it was missing
    assert_eq!(applied_actions(&report), ["put_image_parameter"]);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::ImageParameterDiffered { value: None, .. })),
        "{}",
        report.to_text()
    );
    assert_eq!(
        published(&account, WEB).await.map(|p| p.0),
        Some(new.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_skip_tag_retreat_the_parameter_follows_the_default_back() {
    // GIVEN the newer backup published, then tagged skip by an operator
    let moto = Moto::start();
    let Behind {
        account,
        old,
        new,
        template,
    } = behind(&moto).await;
    publish(&moto, &template, Mode::Apply).await;
    assert_eq!(
        published(&account, WEB).await.map(|p| p.0),
        Some(new.clone())
    );
    account.skip(&new).await;

    // WHEN it runs
    let report = publish(&moto, &template, Mode::Apply).await;

    // THEN the template retreats to the older backup, and so does the parameter
    let actions = applied_actions(&report);
    assert!(actions.contains(&"set_default_version"), "{actions:?}");
    assert!(actions.contains(&"put_image_parameter"), "{actions:?}");
    assert_eq!(published(&account, WEB).await.map(|p| p.0), Some(old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_write_it_would_make_and_makes_none() {
    let moto = Moto::start();
    let Behind {
        account,
        new,
        template,
        ..
    } = behind(&moto).await;

    let report = publish(&moto, &template, Mode::DryRun).await;

    let text = report.to_text();
    assert!(
        text.contains(&format!("ssm parameter {WEB}: image")),
        "{text}"
    );
    assert!(
        text.contains(&format!("none -> {new} (aws:ec2:image)")),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let put = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "put_image_parameter")
        .cloned()
        .unwrap();
    assert_eq!(put["parameter"], WEB);
    assert_eq!(put["from"], serde_json::Value::Null);
    assert_eq!(put["to"], new.as_str());
    assert!(moto.mutating_calls().is_empty());
    assert_eq!(published(&account, WEB).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_ssm_refused_after_answering_is_seen_by_the_next_run_and_written_again_with_a_notice()
 {
    // GIVEN a converged template whose parameter holds another image than
    // the default (as when SSM's asynchronous validation refused a write,
    // or another writer set it)
    let moto = Moto::start();
    let Behind {
        account,
        old,
        new,
        template,
    } = behind(&moto).await;
    publish(&moto, &template, Mode::Apply).await;
    account
        .ssm
        .put_parameter()
        .name(WEB)
        .value(&old)
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .unwrap();

    // WHEN it runs
    let report = publish(&moto, &template, Mode::Apply).await;

    // THEN it writes the default's image again and says the value differed
    assert_eq!(applied_actions(&report), ["put_image_parameter"]);
    assert!(
        report.warnings.iter().any(|w| matches!(
            w,
            Warning::ImageParameterDiffered { value, image, .. } if value.as_deref() == Some(old.as_str()) && *image == new
        )),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 0, "a notice: the write is the remedy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_parameter_of_that_name_is_never_overwritten() {
    // GIVEN a parameter of that name with data type text (SSM cannot change
    // it to aws:ec2:image)
    let moto = Moto::start();
    let Behind {
        account, template, ..
    } = behind(&moto).await;
    account.parameter(WEB, "hand-written").await;

    let report = publish(&moto, &template, Mode::Apply).await;

    assert!(!applied_actions(&report).contains(&"put_image_parameter"));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::ImageParameterNotImage { data_type, .. } if data_type == "text")),
        "{}",
        report.to_text()
    );
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        published(&account, WEB).await,
        Some(("hand-written".to_owned(), "text".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_read_of_ten_names_is_made_again_name_by_name() {
    // GIVEN two tagged templates, each publishing its own parameter, and the
    // first GetParameters refused (as for a name the role may not read)
    let moto = Moto::start();
    let account = moto.account().await;
    for name in ["web", "api"] {
        let policy = format!("policy-{name}");
        let old = account.backup_of(&policy, 1, "x86_64").await;
        account.backup_of(&policy, 2, "x86_64").await;
        let lineage = format!("aws:dlm:lifecycle-policy-id={policy}");
        account
            .tagged_template(
                name,
                &old,
                &[
                    ("ami-reconciler:managed", "true"),
                    ("ami-reconciler:image-tag", lineage.as_str()),
                ],
            )
            .await;
    }
    moto.faults(serde_json::json!([
        {"action": "GetParameters", "fault": "error", "status": 400,
         "code": "AccessDeniedException", "message": "not allowed", "times": 1}
    ]));
    let settings = RawSettings {
        launch_template_tag: Some("ami-reconciler:managed=true".to_owned()),
        image_parameter: Some(PATTERN.to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap();

    let report = run(&moto.clients().await, &settings, Mode::Apply)
        .await
        .unwrap();

    // THEN each name is read alone, and both are published
    let reads = moto
        .calls()
        .into_iter()
        .filter(|c| c.action == "GetParameters")
        .count();
    assert_eq!(reads, 3, "one refused call of two names, then one per name");
    assert_eq!(puts(&moto), 2, "{}", report.to_text());
    for name in ["web", "api"] {
        let parameter = format!("/ami-reconciler/{name}/image");
        assert!(published(&account, &parameter).await.is_some(), "{name}");
    }
}
