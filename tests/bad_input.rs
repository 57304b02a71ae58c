//! Everything an operator or an event can hand the reconciler that it must
//! refuse: each case names the culprit in a clear message, and makes no
//! mutating call (settings are refused before any call at all).

mod support;

use std::process::{Command, Output};

use ami_reconciler::lambda::{Function, InvocationError};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};
use support::{Moto, REGION, settings_for};

/// moto's default account.
const ACCOUNT: &str = "123456789012";

fn cli(moto: &Moto, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["apply", "--output", "json"])
        .env_clear()
        .envs(moto.env())
        .envs(env.iter().copied())
        .output()
        .expect("run ami-reconciler")
}

/// The CLI refused the input: exit 2, the message on stderr, the same
/// message and its kind in the JSON document, nothing changed.
fn assert_refused(out: &Output, kind: &str, message: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
    assert!(
        stderr.contains(&format!("error: {message}")),
        "{case}: {stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{case}: stdout is not JSON: {e}"));
    assert_eq!(doc["error"]["kind"], kind, "{case}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(message)),
        "{case}: {doc}"
    );
    assert_eq!(doc["changed"], false, "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_exit_2_naming_the_setting_before_any_call() {
    let moto = Moto::start();
    let id = ("LAUNCH_TEMPLATE_ID", "lt-0abc");
    for (env, message) in [
        (
            vec![id, ("KEEP_VERSIONS", "three")],
            r#"KEEP_VERSIONS must be a whole number >= 1, got "three""#,
        ),
        (
            vec![id, ("DRY_RUN", "true")],
            "DRY_RUN=true asks for a dry run, and apply writes: run `ami-reconciler plan`, or unset DRY_RUN to apply",
        ),
        (
            vec![id, ("DRY_RUN", "perhaps")],
            r#"DRY_RUN must be true or false, got "perhaps""#,
        ),
        (
            vec![id, ("IMAGE_TAG", "policy-0abc")],
            r#"IMAGE_TAG must be KEY=VALUE with a non-empty key, got "policy-0abc""#,
        ),
        (
            vec![id, ("MIN_IMAGE_AGE", "2 hours")],
            r#"MIN_IMAGE_AGE must be a whole number with a unit s, m, h or d (e.g. 30m, 2h), at most 90d, got "2 hours""#,
        ),
        (
            vec![id, ("MIN_IMAGE_AGE", "91d")],
            r#"MIN_IMAGE_AGE must be a whole number with a unit s, m, h or d (e.g. 30m, 2h), at most 90d, got "91d""#,
        ),
        (
            vec![id, ("KEEP_VERSIONS", "0")],
            r#"KEEP_VERSIONS must be a whole number >= 1, got "0""#,
        ),
        (
            vec![id, ("KEEP_VERSIONS", "-1")],
            r#"KEEP_VERSIONS must be a whole number >= 1, got "-1""#,
        ),
        (
            vec![id, ("KEEP_VERSIONS", "1.5")],
            r#"KEEP_VERSIONS must be a whole number >= 1, got "1.5""#,
        ),
        (
            vec![id, ("KEEP_VERSIONS", "+2")],
            r#"KEEP_VERSIONS must be a whole number >= 1, got "+2""#,
        ),
        (
            vec![id, ("KEEP_VERSIONS", "10001")],
            r#"KEEP_VERSIONS must be at most 10000, got "10001""#,
        ),
        (
            vec![id, ("KEEP_VERSIONS", "99999999999999999999999")],
            r#"KEEP_VERSIONS must be at most 10000, got "99999999999999999999999""#,
        ),
        (
            vec![id, ("CONCURRENCY", "33")],
            r#"CONCURRENCY must be at most 32, got "33""#,
        ),
        (
            vec![id, ("ASG_TAG", "managed")],
            r#"ASG_TAG must be KEY=VALUE with a non-empty key, got "managed""#,
        ),
        (
            vec![id, ("ASG_TAG", "=true")],
            r#"ASG_TAG must be KEY=VALUE with a non-empty key, got "=true""#,
        ),
        (
            vec![id, ("AMI_DESCRIPTION_MARKER", "  ")],
            r#"AMI_DESCRIPTION_MARKER must be non-empty text found in backup AMI descriptions, got "  ""#,
        ),
        (
            vec![id, ("LAUNCH_TEMPLATE_PARAMETER", "/app/lt")],
            "set only one of LAUNCH_TEMPLATE_PARAMETER, LAUNCH_TEMPLATE_ID and LAUNCH_TEMPLATE_TAG",
        ),
        (
            vec![],
            "set LAUNCH_TEMPLATE_PARAMETER (an SSM parameter holding the launch template id), LAUNCH_TEMPLATE_ID, or LAUNCH_TEMPLATE_TAG (KEY=VALUE: every launch template carrying it)",
        ),
        (
            vec![
                ("LAUNCH_TEMPLATE_ID", ""),
                ("LAUNCH_TEMPLATE_PARAMETER", " "),
            ],
            "set LAUNCH_TEMPLATE_PARAMETER (an SSM parameter holding the launch template id), LAUNCH_TEMPLATE_ID, or LAUNCH_TEMPLATE_TAG (KEY=VALUE: every launch template carrying it)",
        ),
        (
            vec![id, ("LAUNCH_TEMPLATE_TAG", "ami-reconciler:managed=true")],
            "set only one of LAUNCH_TEMPLATE_PARAMETER, LAUNCH_TEMPLATE_ID and LAUNCH_TEMPLATE_TAG (flag or environment): LAUNCH_TEMPLATE_ID (environment) and LAUNCH_TEMPLATE_TAG (environment) are set",
        ),
        (
            vec![("LAUNCH_TEMPLATE_TAG", "managed")],
            r#"LAUNCH_TEMPLATE_TAG must be KEY=VALUE with a non-empty key, got "managed""#,
        ),
        (
            vec![id, ("IMAGE_PARAMETER", "/images/{template}/ami")],
            r#"IMAGE_PARAMETER names the unknown placeholder {template}: only {template_name} and {template_id} exist, got "/images/{template}/ami""#,
        ),
        (
            vec![id, ("IMAGE_PARAMETER", "/images/{template_name")],
            r#"IMAGE_PARAMETER names the unknown placeholder {template_name: only {template_name} and {template_id} exist"#,
        ),
        (
            vec![id, ("IMAGE_PARAMETER", "images/{template_name}")],
            r#"IMAGE_PARAMETER must be an SSM parameter name: a name in a hierarchy must begin with /, got "images/{template_name}""#,
        ),
        (
            vec![id, ("IMAGE_PARAMETER", "/aws/{template_name}")],
            r#"IMAGE_PARAMETER must be an SSM parameter name: it must not begin with aws or ssm (any case), got "/aws/{template_name}""#,
        ),
        (
            vec![id, ("IMAGE_PARAMETER", "/images/{template_name} ami")],
            r#"IMAGE_PARAMETER must be an SSM parameter name: ' ' is not allowed (only letters, digits, _ . - and /)"#,
        ),
        (
            vec![id, ("EVENT_BUS", "ops bus")],
            r#"EVENT_BUS must be an event bus name (letters, digits, / . - _, at most 256) or an event bus ARN, got "ops bus""#,
        ),
        (
            vec![("LAUNCH_TEMPLATE_ID", "web-servers")],
            r#"LAUNCH_TEMPLATE_ID must be a launch template id like lt-0123456789abcdef0, got "web-servers""#,
        ),
    ] {
        let out = cli(&moto, &env);
        assert_refused(&out, "ConfigError", message, &format!("{env:?}"));
    }
    assert_eq!(moto.calls().len(), 0);
}

#[test]
fn conflicting_template_settings_say_which_came_from_a_flag_and_which_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["plan", "--launch-template-id", "lt-0abc"])
        .env_clear()
        .env("LAUNCH_TEMPLATE_TAG", "ami-reconciler:managed=true")
        .output()
        .expect("run ami-reconciler");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: set only one of LAUNCH_TEMPLATE_PARAMETER, LAUNCH_TEMPLATE_ID and LAUNCH_TEMPLATE_TAG (flag or environment): --launch-template-id (flag) and LAUNCH_TEMPLATE_TAG (environment) are set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_setting_counts_as_unset_and_takes_the_default() {
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    for _ in 2..=4 {
        account.version(&template, &image).await;
    }
    account.set_default(&template, 4).await;

    let out = cli(
        &moto,
        &[
            ("LAUNCH_TEMPLATE_ID", &template),
            ("KEEP_VERSIONS", ""),
            ("ASG_TAG", ""),
            ("CONCURRENCY", ""),
        ],
    );

    // the default KEEP_VERSIONS (3) prunes version 1 only
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(account.versions(&template).await, (vec![2, 3, 4], 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_cannot_be_managed_exits_2_naming_the_culprit_and_changes_nothing() {
    // GIVEN parameters holding nothing, a name, or a template that does not
    // exist, and a template whose $Latest has no ImageId
    let moto = Moto::start();
    let account = moto.account().await;
    account.parameter("/app/blank", " ").await;
    account.parameter("/app/name", "web-servers").await;
    account
        .parameter("/app/ghost", "lt-0000000000000000f")
        .await;
    let image = account.backup(1).await;
    let imageless = account
        .ec2
        .create_launch_template()
        .launch_template_name("no-image")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .launch_template
        .and_then(|t| t.launch_template_id)
        .unwrap();
    account.template("web", &image).await;
    let parameter = "LAUNCH_TEMPLATE_PARAMETER";
    let id = "LAUNCH_TEMPLATE_ID";
    // A "not found" says where it looked: the CLI's credentials name the
    // account (AWS_ACCOUNT_ID), the function learns it from its own ARN.
    let searched = format!("region {REGION}, account {ACCOUNT}");

    for (setting, value, kind, message) in [
        (
            parameter,
            "/app/missing",
            "ParameterNotFound",
            format!("SSM parameter /app/missing not found in {searched}"),
        ),
        (
            parameter,
            "/app/blank",
            "ParameterNotTemplateId",
            r#"SSM parameter /app/blank holds "", which is not a launch template id (lt-...)"#
                .to_owned(),
        ),
        (
            parameter,
            "/app/name",
            "ParameterNotTemplateId",
            r#"SSM parameter /app/name holds "web-servers", which is not a launch template id (lt-...)"#
                .to_owned(),
        ),
        (
            parameter,
            "/app/ghost",
            "TemplateNotFound",
            format!("launch template lt-0000000000000000f not found in {searched}"),
        ),
        (
            id,
            "lt-0000000000000000f",
            "TemplateNotFound",
            format!("launch template lt-0000000000000000f not found in {searched}"),
        ),
        (
            id,
            &imageless,
            "LatestWithoutImage",
            format!(
                "launch template {imageless} version 1 ($Latest) has no ImageId; give it one before the reconciler manages it"
            ),
        ),
    ] {
        let case = format!("{setting}={value}");
        // WHEN the CLI applies
        moto.reset();
        let out = cli(&moto, &[(setting, value), ("AWS_ACCOUNT_ID", ACCOUNT)]);
        // THEN it exits 2 naming the culprit, and made no mutating call
        assert_refused(&out, kind, &message, &case);
        assert_eq!(moto.mutating_calls(), Vec::<String>::new(), "{case}");

        // AND the Lambda function fails the invocation the same way
        let settings = ami_reconciler::RawSettings {
            launch_template_parameter: (setting == parameter).then(|| value.to_owned()),
            launch_template_id: (setting == id).then(|| value.to_owned()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let function = Function {
            clients: moto.clients().await,
            settings,
            dry_run: false,
        };
        function.clients.know_account(ACCOUNT);
        let diagnostic = Diagnostic::from(function.handle(json!({})).await.unwrap_err());
        assert_eq!(diagnostic.error_type, kind, "{case}");
        assert_eq!(diagnostic.error_message, message, "{case}");
        assert_eq!(moto.mutating_calls(), Vec::<String>::new(), "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_of_the_wrong_shape_are_refused_naming_the_culprit_without_any_call() {
    let moto = Moto::start();
    let function = Function {
        clients: moto.clients().await,
        settings: settings_for("lt-0abc"),
        dry_run: false,
    };
    let megabyte = "x".repeat(1 << 20);
    let mut wide = serde_json::Map::new();
    for i in 0..20_000 {
        wide.insert(format!("key{i:05}"), json!(&megabyte[..50]));
    }

    for (payload, culprit) in [
        (json!({"dryrun": true}), r#"unknown key "dryrun""#),
        (
            json!({"dry_run": true, "force": true}),
            r#"unknown key "force""#,
        ),
        (
            json!({"dry_run": "yes"}),
            r#""dry_run" must be true or false, got "yes""#,
        ),
        (
            json!({"dry_run": 1}),
            r#""dry_run" must be true or false, got 1"#,
        ),
        (
            json!({"dry_run": null}),
            r#""dry_run" must be true or false, got null"#,
        ),
        (
            json!({"dry_run": {"value": true}}),
            r#""dry_run" must be true or false, got {"value":true}"#,
        ),
        (json!([{"dry_run": true}]), "a JSON array"),
        (json!("apply"), "a JSON string"),
        (json!(42), "the JSON value 42"),
        (json!(true), "the JSON value true"),
        (
            json!({"source": "aws.ec2", "detail-type": "x"}),
            r#"an EventBridge event without an object "detail""#,
        ),
        (
            json!({"source": 1, "detail-type": "x", "detail": {}}),
            r#"an EventBridge event without a string "source""#,
        ),
        (
            json!({"source": "aws.ec2", "detail-type": ["x"], "detail": {}}),
            r#"an EventBridge event without a string "detail-type""#,
        ),
        // a megabyte: one value, one key, 20,000 keys, an array
        (json!({"padding": megabyte}), r#"unknown key "padding""#),
        (
            json!({ megabyte.clone(): true }),
            &format!(r#"unknown key "{}...""#, &megabyte[..60]),
        ),
        (Value::Object(wide), r#"unknown key "key00000""#),
        (json!(vec![0u8; 1 << 20]), "a JSON array"),
    ] {
        let shape: String = payload.to_string().chars().take(60).collect();
        let err = function.handle(payload).await.unwrap_err();
        assert!(matches!(err, InvocationError::Payload(_)), "{shape}: {err}");
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "InvalidPayload", "{shape}");
        assert_eq!(
            diagnostic.error_message,
            format!(
                r#"invalid payload: {culprit}; expected {{}}, {{"dry_run": true|false}} or an EventBridge event"#
            ),
            "{shape}"
        );
    }
    assert_eq!(moto.calls().len(), 0);
}
