//! policies/ and template.yaml grant the same statements: the role the
//! template deploys is the policy the IAM tests (tests/iam.rs) prove.
//!
//! The comparison itself is `tests/support/policies_match.py` (template.yaml
//! is YAML with CloudFormation tags; the test Python has PyYAML).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{python, root};

/// Runs the checker on a template and a policies directory: (passed, output).
fn check(template: &Path, policies: &Path) -> (bool, String) {
    let out = Command::new(python())
        .arg(root().join("tests/support/policies_match.py"))
        .arg(template)
        .arg(policies)
        .output()
        .expect("run tests/support/policies_match.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The parameters whose statements exist only when they are set, with the
/// values the policy files give them (their example resources).
const EXAMPLE_VALUES: [(&str, &str); 2] = [
    ("ImageParameter", "/ami-reconciler/{template_name}/image"),
    ("EventBusName", "ami-reconciler"),
];

/// template.yaml with the parameters of EXAMPLE_VALUES defaulting to them,
/// as the policy files are written.
fn example_template_text() -> String {
    let mut text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for (parameter, value) in EXAMPLE_VALUES {
        let from = format!("  {parameter}:\n    Type: String\n    Default: \"\"\n");
        assert_eq!(
            text.matches(&from).count(),
            1,
            "{from:?} is not unique in template.yaml"
        );
        let to = format!("  {parameter}:\n    Type: String\n    Default: {value}\n");
        text = text.replace(&from, &to);
    }
    text
}

/// A copy of the example template with `from` replaced by `to` (exactly once).
fn template_with(name: &str, from: &str, to: &str) -> PathBuf {
    let text = example_template_text();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} is not unique in template.yaml"
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("template-{name}.yaml"));
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

fn policy(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("policies").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn actions(policy: &Value) -> Vec<String> {
    let mut all = Vec::new();
    for statement in policy["Statement"].as_array().unwrap() {
        match &statement["Action"] {
            Value::String(a) => all.push(a.clone()),
            Value::Array(list) => all.extend(list.iter().map(|a| a.as_str().unwrap().to_owned())),
            other => panic!("Action {other}"),
        }
    }
    all
}

#[test]
fn the_template_role_grants_exactly_the_statements_of_both_policy_files() {
    // With ImageParameter and EventBusName set as the files' examples.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("template-example.yaml");
    std::fs::write(&path, example_template_text()).unwrap();
    let (ok, out) = check(&path, &root().join("policies"));
    assert!(ok, "{out}");
}

#[test]
fn with_image_parameter_and_event_bus_empty_the_role_has_none_of_their_statements() {
    // template.yaml as it is: both parameters default to empty (off).
    let (ok, out) = check(&root().join("template.yaml"), &root().join("policies"));
    assert!(!ok, "{out}");
    let missing = |file: &str, permissions: &str, sid: &str| {
        format!(
            "{file} vs Permissions={permissions}: statement {sid} is in the policy file but not in template.yaml"
        )
    };
    assert_eq!(
        out.lines().map(str::to_owned).collect::<Vec<_>>(),
        [
            missing("reconciler.json", "read-write", "PublishImageParameter"),
            missing("reconciler.json", "read-write", "SendEvents"),
            missing(
                "reconciler-readonly.json",
                "read-only",
                "ReadImageParameter"
            ),
            missing("reconciler-readonly.json", "read-only", "SendEvents"),
        ],
        "{out}"
    );
}

#[test]
fn a_template_missing_an_action_of_the_policy_file_is_caught() {
    let t = template_with(
        "missing-action",
        "                  - ec2:DeleteLaunchTemplateVersions\n",
        "",
    );
    let (ok, out) = check(&t, &root().join("policies"));
    assert!(!ok, "{out}");
    assert!(
        out.contains("ManageTemplateVersions.Action differs"),
        "{out}"
    );
}

#[test]
fn a_template_with_a_wider_resource_is_caught() {
    let t = template_with(
        "wider-resource",
        "autoscaling:StartInstanceRefresh\n                Resource: !Sub \"arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*:autoScalingGroupName/*\"",
        "autoscaling:StartInstanceRefresh\n                Resource: \"*\"",
    );
    let (ok, out) = check(&t, &root().join("policies"));
    assert!(!ok, "{out}");
    assert!(
        out.contains("UpdateManagedGroups.Resource differs"),
        "{out}"
    );
}

#[test]
fn a_template_without_the_tag_condition_is_caught() {
    let t = template_with(
        "no-condition",
        "                Condition:\n                  StringEquals:\n                    ec2:CreateAction: RunInstances\n",
        "",
    );
    let (ok, out) = check(&t, &root().join("policies"));
    assert!(!ok, "{out}");
    assert!(
        out.contains("LaunchCheckCreateTags.Condition differs"),
        "{out}"
    );
}

#[test]
fn a_read_only_deployment_that_kept_a_write_statement_is_caught() {
    // Every !If on ReadWrite now takes the write branch, whatever Permissions says.
    let t = template_with(
        "read-only-writes",
        "ReadWrite: !Equals [!Ref Permissions, read-write]",
        "ReadWrite: !Equals [a, a]",
    );
    let (ok, out) = check(&t, &root().join("policies"));
    assert!(!ok, "{out}");
    assert!(
        out.contains("in template.yaml but not in the policy file"),
        "{out}"
    );
}

/// The one action of the read-only policy that is no read: a dry run sends
/// its events too (each flagged `dry_run`), which changes no resource.
const SENDS_EVENTS: &str = "events:PutEvents";

#[test]
fn the_read_only_policy_is_the_read_part_of_the_full_one_and_has_no_write_action() {
    let full = actions(&policy("reconciler.json"));
    let read_only = actions(&policy("reconciler-readonly.json"));
    for action in &read_only {
        let verb = action.split(':').nth(1).unwrap();
        assert!(
            verb.starts_with("Describe")
                || verb.starts_with("Get")
                || verb.starts_with("List")
                || action == SENDS_EVENTS,
            "{action} is not a read"
        );
        assert!(full.contains(action), "{action} is not in reconciler.json");
    }
}

#[test]
fn no_policy_grants_a_wildcard_action() {
    for name in ["reconciler.json", "reconciler-readonly.json"] {
        for action in actions(&policy(name)) {
            assert!(!action.contains('*'), "{name}: {action}");
        }
    }
}
