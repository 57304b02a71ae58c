//! What a first deploy does, read from template.yaml, samconfig.toml and the
//! docs' own commands: the things `sam validate --lint`, cfn-lint, checkov and
//! parliament cannot see (docs/deploy.md explains each one).
//!
//! template.yaml is YAML with CloudFormation tags; `tests/support/template_json.py`
//! turns it into JSON (tags in their long form, `{"Ref": ...}`) with the test
//! Python's PyYAML, the same loader as `tests/support/policies_match.py`.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{python, root};

/// template.yaml as JSON.
fn template() -> Value {
    let out = Command::new(python())
        .arg(root().join("tests/support/template_json.py"))
        .arg(root().join("template.yaml"))
        .output()
        .expect("run tests/support/template_json.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// Every page a user copies commands from.
const PAGES: [&str; 4] = [
    "README.md",
    "docs/deploy.md",
    "docs/operating.md",
    "docs/scale.md",
];

/// The shell commands of a Markdown page: the lines of its ```sh blocks,
/// with backslash continuations joined and comments dropped.
fn commands(page: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in read(page).lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = match trimmed.find(" #") {
            Some(i) => trimmed[..i].trim_end(),
            None if trimmed.starts_with('#') => "",
            None => trimmed,
        };
        match code.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(code);
                if !current.trim().is_empty() {
                    commands.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    commands
}

/// Every command of every page that contains `needle`, with its page.
fn commands_with(needle: &str) -> Vec<(&'static str, String)> {
    PAGES
        .iter()
        .flat_map(|page| commands(page).into_iter().map(move |c| (*page, c)))
        .filter(|(_, c)| c.contains(needle))
        .collect()
}

#[test]
fn the_docs_commands_are_found() {
    // The other tests would pass vacuously on pages without commands.
    assert!(!commands_with("sam deploy").is_empty());
    assert!(!commands_with("sam list stack-outputs").is_empty());
}

#[test]
fn a_new_stack_only_reports_until_apply_is_switched_on() {
    let template = template();
    assert_eq!(template["Parameters"]["DryRun"]["Default"], "true");
    assert_eq!(
        template["Resources"]["ReconcilerFunction"]["Properties"]["Environment"]["Variables"]["DRY_RUN"],
        json!({"Ref": "DryRun"})
    );
}

#[test]
fn the_function_reserves_no_concurrency_unless_asked_to() {
    let template = template();
    let parameter = &template["Parameters"]["ReservedConcurrency"];
    assert_eq!(parameter["Default"], "");
    assert_eq!(
        template["Conditions"]["HasReservation"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, ""]}]})
    );
    assert_eq!(
        template["Resources"]["ReconcilerFunction"]["Properties"]["ReservedConcurrentExecutions"],
        json!({"Fn::If": ["HasReservation", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]})
    );
}

#[test]
fn the_deploy_guide_has_the_concurrency_check_among_its_prerequisites() {
    let guide = read("docs/deploy.md");
    let prerequisites =
        &guide[guide.find("## Prerequisites").unwrap()..guide.find("## Build").unwrap()];
    assert!(prerequisites.contains("aws lambda get-account-settings"));
}

#[test]
fn no_rule_waits_for_create_image_and_new_backups_come_from_the_available_event() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    for (name, resource) in resources {
        assert!(
            !resource.to_string().contains("CreateImage"),
            "{name} mentions CreateImage"
        );
    }
    let pattern = &resources["BackupAvailableRule"]["Properties"]["EventPattern"];
    assert_eq!(pattern["detail-type"], json!(["EC2 AMI State Change"]));
    assert_eq!(pattern["detail"]["State"], json!(["available"]));
}

#[test]
fn the_function_logs_to_a_group_that_exists_before_it() {
    let template = template();
    let function = &template["Resources"]["ReconcilerFunction"]["Properties"];
    assert_eq!(
        function["LoggingConfig"]["LogGroup"],
        json!({"Ref": "ReconcilerLogGroup"})
    );
    // The group's name must not wait for the function (that would reverse the order).
    let name =
        template["Resources"]["ReconcilerLogGroup"]["Properties"]["LogGroupName"].to_string();
    assert!(!name.contains("ReconcilerFunction"), "{name}");
    assert!(!name.contains("/aws/lambda/"), "{name}");
}

#[test]
fn lambdas_start_and_report_lines_are_kept_and_the_metrics_pass_the_application_filter() {
    let template = template();
    let logging = &template["Resources"]["ReconcilerFunction"]["Properties"]["LoggingConfig"];
    assert_eq!(logging["SystemLogLevel"], "INFO");
    // The EMF line is at WARN (src/metrics.rs, LOG_LEVEL): any level up to WARN passes it.
    let passing = ["TRACE", "DEBUG", "INFO", "WARN"];
    assert!(passing.contains(&logging["ApplicationLogLevel"].as_str().unwrap()));
    assert_eq!(ami_reconciler::report::emf::LOG_LEVEL, "WARN");
}

#[test]
fn sam_build_never_stops_at_the_beta_question() {
    // SAM CLI releases where rust-cargolambda was a beta build method ask
    // [y/N] before building; samconfig.toml answers for `sam build`.
    let config = read("samconfig.toml");
    let build = config
        .split("\n[")
        .find(|section| section.starts_with("default.build.parameters]"))
        .expect("samconfig.toml has [default.build.parameters]");
    assert!(
        build.lines().any(|l| l.trim() == "beta_features = true"),
        "{build}"
    );
}

#[test]
fn every_parameter_change_the_docs_show_is_saved_for_the_next_deploy() {
    // A --parameter-overrides given only on the command line is undone by the
    // next plain `sam deploy`, which sends samconfig.toml's saved values.
    let changes = commands_with("--parameter-overrides");
    assert!(changes.iter().any(|(_, c)| c.contains("DryRun=false")));
    for (page, command) in changes {
        if command.starts_with("sam deploy") {
            assert!(command.contains("--save-params"), "{page}: {command}");
        }
    }
}

#[test]
fn the_schedule_can_be_paused_by_parameter_and_its_name_is_an_output() {
    let template = template();
    let state = &template["Parameters"]["ScheduleState"];
    assert_eq!(state["Default"], "ENABLED");
    assert_eq!(state["AllowedValues"], json!(["ENABLED", "DISABLED"]));
    let schedule = &template["Resources"]["ReconcilerFunction"]["Properties"]["Events"]["Schedule"];
    assert_eq!(schedule["Type"], "ScheduleV2");
    assert_eq!(
        schedule["Properties"]["State"],
        json!({"Ref": "ScheduleState"})
    );
    // SAM names the generated AWS::Scheduler::Schedule <function><event>.
    assert_eq!(
        template["Outputs"]["ScheduleName"]["Value"],
        json!({"Ref": "ReconcilerFunctionSchedule"})
    );
}

#[test]
fn pausing_everything_stops_the_schedule_and_the_fast_path_together() {
    let pause: Vec<_> = commands("docs/operating.md")
        .into_iter()
        .filter(|c| c.contains("ScheduleState=DISABLED"))
        .collect();
    assert_eq!(pause.len(), 1, "{pause:?}");
    assert!(pause[0].contains("FastPath=false"), "{}", pause[0]);
}

/// The template's CloudWatch alarms, by logical id.
fn alarms(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(name, r)| (name.clone(), r["Properties"].clone()))
        .collect()
}

#[test]
fn each_new_dead_letter_notifies_even_while_older_ones_wait_in_the_queue() {
    let template = template();
    let sent: Vec<_> = alarms(&template)
        .into_iter()
        .filter(|(_, a)| a["Namespace"] == "AWS/SQS" && a["MetricName"] == "NumberOfMessagesSent")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (_, alarm) = &sent[0];
    assert_eq!(
        alarm["Dimensions"],
        json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}])
    );
    assert_eq!(alarm["Statistic"], "Sum");
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
}

#[test]
fn a_condition_that_needs_a_person_has_its_own_alarm_on_the_functions_metric() {
    let template = template();
    let needs: Vec<_> = alarms(&template)
        .into_iter()
        .filter(|(_, a)| {
            a["Namespace"] == ami_reconciler::report::emf::NAMESPACE
                && a["MetricName"] == ami_reconciler::report::emf::NEEDS_ATTENTION
        })
        .collect();
    assert_eq!(needs.len(), 1, "{needs:?}");
    let (_, alarm) = &needs[0];
    assert_eq!(
        alarm["Dimensions"],
        json!([{"Name": "FunctionName", "Value": {"Ref": "ReconcilerFunction"}}])
    );
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanOrEqualToThreshold");
    assert_eq!(alarm["Threshold"], 1);
    // A run that did not happen says nothing about a person's condition.
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
}

#[test]
fn every_alarm_notifies_the_topic_when_it_fires_and_when_it_recovers() {
    let template = template();
    let to_the_topic =
        json!({"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]});
    let alarms = alarms(&template);
    assert_eq!(alarms.len(), 5);
    for (name, alarm) in alarms {
        assert_eq!(alarm["AlarmActions"], to_the_topic, "{name}");
        assert_eq!(alarm["OKActions"], to_the_topic, "{name}");
    }
    // With the default (empty) topic nobody is told: the parameter says so.
    let topic = &template["Parameters"]["AlarmTopicArn"];
    assert_eq!(topic["Default"], "");
    assert!(
        topic["Description"]
            .as_str()
            .unwrap()
            .contains("notify nobody")
    );
}

#[test]
fn invoke_examples_take_the_region_from_the_stack_not_from_the_page() {
    for page in PAGES {
        let text = read(page);
        let lines = text.lines().map(str::to_owned);
        for line in commands(page).into_iter().chain(lines) {
            if !line.contains("aws lambda invoke") {
                continue;
            }
            if let Some((_, after)) = line.split_once("--region ") {
                assert!(after.starts_with('<'), "{page}: {line}");
            }
        }
    }
    // The outputs' commands carry the stack's own region.
    let template = template();
    for output in ["DryRunCommand", "DriftRepairCommand"] {
        let command = template["Outputs"][output]["Value"]["Fn::Sub"]
            .as_str()
            .unwrap();
        assert!(
            command.starts_with("aws lambda invoke --region ${AWS::Region} "),
            "{command}"
        );
    }
}

#[test]
fn cargo_lambda_is_installed_in_a_virtual_environment_that_is_active_for_the_build() {
    // A bare `pip install` fails where the system Python is externally
    // managed, and cargo-lambda finds zig only through the active environment.
    let installs = commands_with("install cargo-lambda");
    assert!(!installs.is_empty());
    for (page, command) in &installs {
        let pip = command.split_whitespace().next().unwrap();
        assert!(pip.ends_with("/bin/pip"), "{page}: {command}");
    }
    let guide = commands("docs/deploy.md");
    assert!(guide.iter().any(|c| c.starts_with("python3 -m venv ")));
    assert!(
        guide
            .iter()
            .any(|c| c.starts_with(". ") && c.ends_with("/bin/activate"))
    );
}

#[test]
fn the_stackset_gets_the_processed_template_which_has_no_transform_left() {
    // Service-managed StackSets refuse templates with macros, the
    // AWS::Serverless transform included, even with CAPABILITY_AUTO_EXPAND.
    let page = commands("docs/scale.md");
    let creates: Vec<_> = page
        .iter()
        .filter(|c| c.contains("create-stack-set "))
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    let create = creates[0];
    assert!(create.contains("--permission-model SERVICE_MANAGED"));
    assert!(!create.contains("CAPABILITY_AUTO_EXPAND"), "{create}");
    let body = create
        .split_whitespace()
        .find_map(|word| word.strip_prefix("file://"))
        .expect("a --template-body file");
    assert_ne!(body, "packaged.yaml");

    // Follow the file back to CloudFormation's processed template.
    let writer = |file: &str| {
        page.iter()
            .find(|c| c.ends_with(&format!("> {file}")))
            .unwrap_or_else(|| panic!("no command writes {file}"))
    };
    let mut file = body.to_owned();
    for _ in 0..3 {
        let command = writer(&file);
        if command.contains("--template-stage Processed") {
            return;
        }
        file = command
            .split_whitespace()
            .rev()
            .skip(2)
            .find(|word| word.ends_with(".json"))
            .unwrap_or_else(|| panic!("{command} reads no file"))
            .to_owned();
    }
    panic!("{body} does not come from get-template --template-stage Processed");
}

/// The read-write statement `sid` of the function's role, as CloudFormation
/// would make it for these parameter values (account `*`, as the policy
/// files write it), evaluated by `tests/support/policies_match.py`.
fn statement(sid: &str, parameters: &[(&str, &str)]) -> Value {
    let out = Command::new(python())
        .arg(root().join("tests/support/policies_match.py"))
        .arg("--statement")
        .arg(root().join("template.yaml"))
        .arg(sid)
        .args(parameters.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .expect("run tests/support/policies_match.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn instance_role_name_takes_up_to_five_roles_each_with_its_own_pass_role_arn() {
    let template = template();
    let pattern = template["Parameters"]["InstanceRoleName"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let role = |name: &str| format!("arn:aws:iam::*:role/{name}");

    for (value, arns) in [
        ("*", vec![role("*")]),
        ("web-role", vec![role("web-role")]),
        (
            "web-role,fleets/api-*,worker-role",
            vec![role("web-role"), role("fleets/api-*"), role("worker-role")],
        ),
        ("a,b,c,d,e", ["a", "b", "c", "d", "e"].map(role).to_vec()),
    ] {
        let pass_role = statement("LaunchCheckPassRole", &[("InstanceRoleName", value)]);
        assert_eq!(pass_role["Resource"], json!(arns), "{value}");
        assert!(
            matches_pattern(pattern, value),
            "{value} refused by {pattern}"
        );
    }
    // A sixth role, an empty name or a name with a comma is refused by the
    // parameter's pattern before any stack change.
    for value in ["a,b,c,d,e,f", "web-role,", ",web-role", ""] {
        assert!(
            !matches_pattern(pattern, value),
            "{value} accepted by {pattern}"
        );
    }
}

/// CloudFormation's AllowedPattern check (a Java regular expression over
/// the whole value), through the test Python's `re.fullmatch`.
fn matches_pattern(pattern: &str, value: &str) -> bool {
    let out = Command::new(python())
        .args([
            "-c",
            "import re, sys; sys.exit(0 if re.fullmatch(sys.argv[1], sys.argv[2]) else 1)",
            pattern,
            value,
        ])
        .output()
        .expect("run python");
    out.status.success()
}
