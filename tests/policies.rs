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

/// A copy of template.yaml with `from` replaced by `to` (exactly once).
fn template_with(name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
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
    let (ok, out) = check(&root().join("template.yaml"), &root().join("policies"));
    assert!(ok, "{out}");
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

#[test]
fn the_read_only_policy_is_the_read_part_of_the_full_one_and_has_no_write_action() {
    let full = actions(&policy("reconciler.json"));
    let read_only = actions(&policy("reconciler-readonly.json"));
    for action in &read_only {
        let verb = action.split(':').nth(1).unwrap();
        assert!(
            verb.starts_with("Describe") || verb.starts_with("Get") || verb.starts_with("List"),
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
