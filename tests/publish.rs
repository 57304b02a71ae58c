//! The default version's image published to SSM (`IMAGE_PARAMETER`): as a
//! `String` of data type `aws:ec2:image`, written only when missing or
//! different, following a retreat, shown by the plan, confirmed by the next
//! run's read.

mod support;

use ami_reconciler::settings::{RawSettings, Settings};
use ami_reconciler::warning::Warning;
use ami_reconciler::{Mode, run};
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
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    let clients = moto.clients().await;

    // WHEN it applies
    let first = run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();

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
    let second = run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();
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
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    let clients = moto.clients().await;
    run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();
    account
        .ssm
        .delete_parameter()
        .name(WEB)
        .send()
        .await
        .unwrap();

    // WHEN it runs again
    let report = run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();

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
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    let clients = moto.clients().await;
    run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();
    assert_eq!(
        published(&account, WEB).await.map(|p| p.0),
        Some(new.clone())
    );
    account.skip(&new).await;

    // WHEN it runs
    let report = run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();

    // THEN the template retreats to the older backup, and so does the parameter
    let actions = applied_actions(&report);
    assert!(actions.contains(&"set_default_version"), "{actions:?}");
    assert!(actions.contains(&"put_image_parameter"), "{actions:?}");
    assert_eq!(published(&account, WEB).await.map(|p| p.0), Some(old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_the_write_it_would_make_and_makes_none() {
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    let clients = moto.clients().await;

    let report = run(&clients, &publishing(&template), Mode::DryRun)
        .await
        .unwrap();

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
    let account = moto.account().await;
    let old = account.backup(1).await;
    let new = account.backup(2).await;
    let template = account.template("web", &old).await;
    let clients = moto.clients().await;
    run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();
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
    let report = run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();

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
    let account = moto.account().await;
    let old = account.backup(1).await;
    account.backup(2).await;
    let template = account.template("web", &old).await;
    account.parameter(WEB, "hand-written").await;
    let clients = moto.clients().await;

    let report = run(&clients, &publishing(&template), Mode::Apply)
        .await
        .unwrap();

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
