//! The IAM policies are complete and no larger than needed: the reconciler
//! runs against moto with IAM enforcement on, signed as users whose policies
//! are the action lists of `policies/`.
//!
//! moto checks the action of each call but ignores resources and conditions,
//! so the users' policies keep each file's actions with `Resource: "*"` and
//! no condition. Resource scoping and tag conditions are checked by the
//! linters and reviewed in policies/README.md; the one exception is the
//! instance refresh emulation, which evaluates them for its own actions
//! (the last test here runs the shipped reconciler.json against it).

mod support;

use std::collections::BTreeSet;

use ami_reconciler::Mode;
use ami_reconciler::run;
use ami_reconciler::settings::{RawSettings, Settings};
use serde_json::{Value, json};
use support::{Key, Moto};

const PARAMETER: &str = "/app/launch-template-id";

/// Actions AWS checks on the caller when `UpdateAutoScalingGroup` names a
/// launch template (it must be allowed to launch from it, pass its instance
/// role and tag what it launches); the reconciler never calls them, and moto
/// does not check them.
const CHECKED_BY_AWS_FOR_UPDATE_GROUP: [&str; 4] = [
    "ec2:RunInstances",
    "ec2:CreateTags",
    "iam:PassRole",
    "ssm:GetParameters",
];

/// Called only when AWS refuses to start a refresh: the group's record of
/// the rollout is put back (tests/rollout.rs).
const CALLED_WHEN_A_REFRESH_IS_REFUSED: &str = "autoscaling:DeleteTags";

/// Reads of rollouts: without them the run goes on and only the rollouts
/// stop, with warning `rollout_not_read`.
const ROLLOUT_READS: [&str; 2] = [
    "ec2:DescribeInstances",
    "autoscaling:DescribeInstanceRefreshes",
];

fn policy_actions(file: &str) -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(file);
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        match &statement["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => {
                actions.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()));
            }
            other => panic!("{file}: Action {other}"),
        }
    }
    actions
}

/// The policy moto can enforce: these actions on every resource.
fn widened(actions: &BTreeSet<String>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
    })
}

/// The image parameter's read: one of the actions AWS checks for a group
/// update, called by the reconciler itself when it publishes.
const PUBLISHING_READ: &str = "ssm:GetParameters";

/// Not sending the run's events leaves the changes standing: the run says
/// so with warning `events_refused`.
const EVENTS: &str = "events:PutEvents";

/// Every feature on, so that every action of the policies is called.
fn settings() -> Settings {
    RawSettings {
        launch_template_parameter: Some(PARAMETER.to_owned()),
        image_parameter: Some("/ami-reconciler/{template_name}/image".to_owned()),
        event_bus: Some("ami-reconciler".to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap()
}

/// An account where a full apply makes every kind of call: the template id
/// in SSM, a newer backup (new version + default switch), a managed group
/// pinned to version 1 (group update), a rolling group with instances on the
/// golden image (refresh) and four old versions (deletion).
async fn drifted(moto: &Moto) -> String {
    let account = moto.account().await;
    let golden = account.image("golden", "golden image", 0).await;
    account.backup(1).await;
    account.backup(2).await;
    let template = account.template("web", &golden).await;
    for _ in 2..=4 {
        account.version(&template, &golden).await;
    }
    account.group("web", &template, "1", true).await;
    account
        .rolling_group("web-rolling", &template, 2, &golden, &[])
        .await;
    account.parameter(PARAMETER, &template).await;
    template
}

/// An admin user to inspect the account once enforcement is on.
fn admin(moto: &Moto) -> Key {
    moto.user_with_policy(
        "admin",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
}

/// The called actions as IAM names (`ec2:DescribeImages`).
fn called(moto: &Moto) -> BTreeSet<String> {
    moto.calls()
        .into_iter()
        .map(|c| format!("{}:{}", c.service, c.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_succeeds_with_the_actions_of_reconciler_json_and_calls_each_of_them() {
    // GIVEN a drifted account and a user with the actions of reconciler.json
    let moto = Moto::start();
    let template = drifted(&moto).await;
    let actions = policy_actions("reconciler.json");
    let key = moto.user_with_policy("reconciler", &widened(&actions));
    let admin = admin(&moto);
    moto.enforce_iam();
    moto.reset();

    // WHEN the reconciler applies as that user
    let report = run(&moto.clients_as(&key).await, &settings(), Mode::Apply)
        .await
        .unwrap();

    // THEN every change is applied
    assert!(
        report.failed.is_empty() && report.skipped.is_empty(),
        "{}",
        report.to_text()
    );
    assert_eq!(
        support::applied_actions(&report),
        [
            "create_version",
            "set_default_version",
            "put_image_parameter",
            "update_group",
            "update_group",
            "start_instance_refresh",
            "delete_versions"
        ]
    );
    let account = moto.account_as(&admin).await;
    assert_eq!(account.group_version("web").await, "$Latest");
    // The rolling group is pinned to its instances' version, which stays
    // as its rollback target.
    assert_eq!(account.group_version("web-rolling").await, "1");
    assert_eq!(account.versions(&template).await, (vec![1, 3, 4, 5], 5));
    // AND the policy holds no action it does not need: every action was
    // called, except those AWS checks on the caller's behalf
    let expected: BTreeSet<String> = actions
        .iter()
        .filter(|a| !CHECKED_BY_AWS_FOR_UPDATE_GROUP.contains(&a.as_str()) || *a == PUBLISHING_READ)
        .filter(|a| a.as_str() != CALLED_WHEN_A_REFRESH_IS_REFUSED)
        .cloned()
        .collect();
    assert_eq!(called(&moto), expected);
    assert!(actions.contains(CALLED_WHEN_A_REFRESH_IS_REFUSED));
    for action in CHECKED_BY_AWS_FOR_UPDATE_GROUP {
        assert!(actions.contains(action), "reconciler.json lacks {action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_succeeds_with_the_read_only_policy_and_calls_each_of_its_actions() {
    let moto = Moto::start();
    drifted(&moto).await;
    let actions = policy_actions("reconciler-readonly.json");
    let key = moto.user_with_policy("reader", &widened(&actions));
    moto.enforce_iam();
    moto.reset();

    let report = run(&moto.clients_as(&key).await, &settings(), Mode::DryRun)
        .await
        .unwrap();

    assert_eq!(report.changes.len(), 7, "{}", report.to_text());
    assert_eq!(called(&moto), actions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_under_the_read_only_policy_reports_access_denied_and_changes_nothing() {
    // GIVEN a drifted account and a user with only the read-only policy
    let moto = Moto::start();
    let template = drifted(&moto).await;
    let key = moto.user_with_policy(
        "reader",
        &widened(&policy_actions("reconciler-readonly.json")),
    );
    let admin = admin(&moto);
    moto.enforce_iam();

    // WHEN it applies
    let report = run(&moto.clients_as(&key).await, &settings(), Mode::Apply)
        .await
        .unwrap();

    // THEN the report says access was denied, change by change
    assert_eq!(report.exit_code(), 1);
    assert!(report.applied.is_empty(), "{}", report.to_text());
    assert!(!report.failed.is_empty(), "{}", report.to_text());
    for failed in &report.failed {
        assert_eq!(
            failed.error_code.as_deref(),
            Some("AccessDenied"),
            "{}",
            report.to_text()
        );
        assert!(failed.error.contains("not authorized"), "{}", failed.error);
    }
    assert!(report.to_text().contains("FAILED: AccessDenied"));
    // AND nothing changed
    let account = moto.account_as(&admin).await;
    assert_eq!(account.group_version("web").await, "1");
    assert_eq!(account.versions(&template).await, (vec![1, 2, 3, 4], 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_any_one_called_action_from_reconciler_json_makes_the_run_fail() {
    let all = policy_actions("reconciler.json");
    let called: Vec<&String> = all
        .iter()
        .filter(|a| !CHECKED_BY_AWS_FOR_UPDATE_GROUP.contains(&a.as_str()))
        .filter(|a| a.as_str() != TAG_MODE_LISTING)
        .filter(|a| a.as_str() != CALLED_WHEN_A_REFRESH_IS_REFUSED)
        .collect();
    assert_eq!(called.len(), 14, "{called:?}");
    for removed in called {
        // GIVEN a fresh drifted account and a user lacking one action
        let moto = Moto::start();
        drifted(&moto).await;
        let mut actions = all.clone();
        actions.remove(removed);
        let key = moto.user_with_policy("reconciler", &widened(&actions));
        moto.enforce_iam();

        // WHEN it applies
        let result = run(&moto.clients_as(&key).await, &settings(), Mode::Apply).await;

        // THEN the run fails: a read makes it an error (a rollout read stops
        // the rollouts with a warning), a write a failed change
        if removed == EVENTS {
            let report = result.unwrap();
            assert!(
                report.warnings.iter().any(|w| w.code() == "events_refused"
                    && w.to_string().contains("AccessDenied")),
                "without {removed}: {}",
                report.to_text()
            );
            assert_eq!(report.exit_code(), 1);
            assert!(report.failed.is_empty(), "the changes stand");
            continue;
        }
        if ROLLOUT_READS.contains(&removed.as_str()) {
            let report = result.unwrap();
            assert!(
                report
                    .warnings
                    .iter()
                    .any(|w| w.code() == "rollout_not_read"),
                "without {removed}: {}",
                report.to_text()
            );
            assert_eq!(report.exit_code(), 1);
            continue;
        }
        match result {
            Err(err) => assert!(
                ami_reconciler::error_chain(&err).contains("AccessDenied"),
                "without {removed}: {}",
                ami_reconciler::error_chain(&err)
            ),
            Ok(report) => {
                assert_eq!(
                    report.exit_code(),
                    1,
                    "without {removed}: {}",
                    report.to_text()
                );
                assert!(
                    report
                        .failed
                        .iter()
                        .any(|f| f.error_code.as_deref() == Some("AccessDenied")),
                    "without {removed}: {}",
                    report.to_text()
                );
            }
        }
    }
}

/// With one named template this action only reads the template's tags
/// before a write, to warn when the write statements would deny it; tag
/// mode cannot run without it.
const TAG_MODE_LISTING: &str = "ec2:DescribeLaunchTemplates";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_describe_launch_templates_one_template_still_converges_and_tag_mode_fails() {
    let mut actions = policy_actions("reconciler.json");
    actions.remove(TAG_MODE_LISTING);
    for tag_mode in [false, true] {
        // GIVEN a drifted account and a user lacking DescribeLaunchTemplates
        let moto = Moto::start();
        drifted(&moto).await;
        let key = moto.user_with_policy("reconciler", &widened(&actions));
        moto.enforce_iam();
        let settings = if tag_mode {
            ami_reconciler::settings::RawSettings {
                launch_template_tag: Some("ami-reconciler:managed=true".into()),
                ..Default::default()
            }
            .validate()
            .unwrap()
        } else {
            settings()
        };

        // WHEN it applies
        let result = run(&moto.clients_as(&key).await, &settings, Mode::Apply).await;

        // THEN one named template converges (only the tag warning is lost);
        // tag mode cannot list its templates and changes nothing
        match (tag_mode, result) {
            (false, Ok(report)) => assert_eq!(report.exit_code(), 0, "{}", report.to_text()),
            (true, Err(err)) => {
                assert_eq!(
                    err.kind(),
                    ami_reconciler::ErrorKind::DescribeTemplatesFailed
                );
                assert_eq!(moto.mutating_calls(), Vec::<String>::new());
            }
            (mode, other) => panic!("tag mode {mode}: {:?}", other.map(|r| r.to_text())),
        }
    }
}

/// A managed group on a template whose image is `resolve:ssm:...`, pinned to
/// version 1; the template id in SSM.
async fn ssm_image_account(moto: &Moto) {
    let account = moto.account().await;
    account.parameter("/golden/ami", "ami-12345678").await;
    let template = account.template("web", "resolve:ssm:/golden/ami").await;
    account.version(&template, "resolve:ssm:/golden/ami").await;
    account.set_default(&template, 2).await;
    account.group("web", &template, "1", true).await;
    account.parameter(PARAMETER, &template).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_on_a_template_resolving_its_image_from_ssm_moves_only_with_ssm_get_parameters() {
    for (policy_has_it, outcome) in [(true, "moved"), (false, "refused")] {
        // GIVEN a template whose image comes from SSM, a managed group on
        // version 1, and reconciler.json with or without ssm:GetParameters
        let moto = Moto::start();
        ssm_image_account(&moto).await;
        let mut actions = policy_actions("reconciler.json");
        if !policy_has_it {
            actions.remove("ssm:GetParameters");
        }
        let key = moto.user_with_policy("reconciler", &widened(&actions));
        let admin = admin(&moto);
        moto.enforce_iam();

        // WHEN it applies
        let report = run(&moto.clients_as(&key).await, &settings(), Mode::Apply)
            .await
            .unwrap();

        // THEN Auto Scaling's launch check decides
        let version = moto.account_as(&admin).await.group_version("web").await;
        if policy_has_it {
            assert_eq!(report.exit_code(), 0, "{outcome}: {}", report.to_text());
            assert_eq!(version, "$Latest", "{outcome}");
        } else {
            assert_eq!(report.exit_code(), 1, "{outcome}");
            assert_eq!(
                report.failed[0].error_code.as_deref(),
                Some("AccessDenied"),
                "{outcome}: {}",
                report.to_text()
            );
            assert_eq!(version, "1", "{outcome}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciler_json_lets_a_refresh_start_only_on_a_group_tagged_managed() {
    // GIVEN a user with reconciler.json as it is (resources and conditions
    // included: the refresh emulation evaluates them), and two groups with
    // instances, one tagged ami-reconciler:managed=true and one not
    let moto = Moto::start();
    let account = moto.account().await;
    let image = account.backup(1).await;
    let template = account.template("web", &image).await;
    account.group("managed", &template, "$Latest", true).await;
    account.group("other", &template, "$Latest", false).await;
    account.run_instances("managed", &image, 1);
    account.run_instances("other", &image, 1);
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(support::root().join("policies/reconciler.json")).unwrap(),
    )
    .unwrap();
    let key = moto.user_with_policy("reconciler", &shipped);
    moto.enforce_iam();
    let asg = moto.account_as(&key).await.asg;

    // WHEN it starts a refresh of each
    let start = |group: &'static str| {
        asg.start_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
    };
    let managed = start("managed").await;
    let other = start("other").await;

    // THEN only the managed group's starts; the other is denied
    assert!(managed.is_ok(), "{managed:?}");
    let code = other
        .unwrap_err()
        .into_service_error()
        .meta()
        .code()
        .map(str::to_owned);
    assert_eq!(code.as_deref(), Some("AccessDenied"));
}
