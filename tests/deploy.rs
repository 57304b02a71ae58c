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
use support::{Moto, python, root};

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
    commands_of(&read(page))
}

/// The shell commands of Markdown text.
fn commands_of(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in text.lines() {
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
fn every_alarm_notifies_the_topics_when_it_fires_and_when_it_recovers() {
    let template = template();
    // The given topic (AlarmTopicArn) and the stack's own (NotificationEmail),
    // each when set.
    let to_the_topics = json!([
        {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]},
        {"Fn::If": ["HasNotificationEmail", {"Ref": "NotificationTopic"}, {"Ref": "AWS::NoValue"}]}
    ]);
    let alarms = alarms(&template);
    assert_eq!(alarms.len(), 5);
    for (name, alarm) in &alarms {
        assert_eq!(alarm["AlarmActions"], to_the_topics, "{name}");
        assert_eq!(alarm["OKActions"], to_the_topics, "{name}");
    }
    // The stack's own topic takes the messages of exactly these alarms.
    let publish = &template["Resources"]["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]
        ["Statement"][0];
    assert_eq!(
        publish["Principal"],
        json!({"Service": "cloudwatch.amazonaws.com"})
    );
    let mut sources: Vec<&str> = publish["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arn| arn["Fn::GetAtt"][0].as_str().unwrap())
        .collect();
    sources.sort_unstable();
    let mut names: Vec<&str> = alarms.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(sources, names);
    // With both empty (the defaults) nobody is told: the parameter says so.
    for parameter in ["AlarmTopicArn", "NotificationEmail"] {
        assert_eq!(
            template["Parameters"][parameter]["Default"], "",
            "{parameter}"
        );
    }
    assert!(
        template["Parameters"]["AlarmTopicArn"]["Description"]
            .as_str()
            .unwrap()
            .contains("notify nobody")
    );
}

#[test]
fn only_the_events_of_applying_runs_that_need_a_person_are_emailed() {
    let template = template();
    let resources = &template["Resources"];
    // The rule exists only with an email and a bus.
    let rule = &resources["NotificationRule"];
    assert_eq!(rule["Condition"], "NotifyEvents");
    assert_eq!(
        template["Conditions"]["NotifyEvents"],
        json!({"Fn::And": [{"Fn::Condition": "HasNotificationEmail"}, {"Fn::Condition": "HasEventBus"}]})
    );
    let rule = &rule["Properties"];
    assert_eq!(rule["EventBusName"], json!({"Ref": "EventBusName"}));
    assert_eq!(
        rule["EventPattern"],
        json!({
            "source": ["ami-reconciler"],
            "detail-type": ["Write Failed", "Needs Attention"]
        })
    );
    let targets = rule["Targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["Arn"], json!({"Ref": "NotificationTopic"}));
    assert_eq!(
        targets[0]["DeadLetterConfig"]["Arn"],
        json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    );
    // The topic and what it needs exist only with an email (empty by default).
    assert_eq!(template["Parameters"]["NotificationEmail"]["Default"], "");
    for name in [
        "NotificationKey",
        "NotificationTopic",
        "NotificationSubscription",
        "NotificationTopicPolicy",
    ] {
        assert_eq!(
            resources[name]["Condition"], "HasNotificationEmail",
            "{name}"
        );
    }
    assert_eq!(
        template["Outputs"]["NotificationTopicArn"]["Condition"],
        "HasNotificationEmail"
    );
    let subscription = &resources["NotificationSubscription"]["Properties"];
    assert_eq!(subscription["Protocol"], "email");
    assert_eq!(
        subscription["Endpoint"],
        json!({"Ref": "NotificationEmail"})
    );
    // Encrypted with the stack's own key, rotated: alarms and rules cannot
    // publish to a topic encrypted with the AWS managed alias/aws/sns.
    assert_eq!(
        resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"],
        json!({"Fn::GetAtt": ["NotificationKey", "Arn"]})
    );
    assert_eq!(
        resources["NotificationKey"]["Properties"]["EnableKeyRotation"],
        json!(true)
    );
}

#[test]
fn image_parameter_and_event_bus_are_off_by_default_and_reach_the_function_when_set() {
    let template = template();
    let variables =
        &template["Resources"]["ReconcilerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["IMAGE_PARAMETER"],
        json!({"Ref": "ImageParameter"})
    );
    assert_eq!(variables["EVENT_BUS"], json!({"Ref": "EventBusName"}));
    for parameter in ["ImageParameter", "EventBusName"] {
        assert_eq!(
            template["Parameters"][parameter]["Default"], "",
            "{parameter}"
        );
    }
    // Empty, the role has none of their statements.
    for sid in ["PublishImageParameter", "SendEvents"] {
        assert!(!has_statement(sid, &[]), "{sid}");
    }

    // The parameter names: a path and the two placeholders only.
    let pattern = template["Parameters"]["ImageParameter"]["AllowedPattern"]
        .as_str()
        .unwrap();
    for value in [
        "",
        "/ami-reconciler/{template_name}/image",
        "/fleets/{template_id}/{template_name}-ami",
        "/golden/web.ami_1",
    ] {
        assert!(matches_pattern(pattern, value), "{value} refused");
    }
    for value in [
        "ami-reconciler/{template_name}",
        "/",
        "/{template}/image",
        "/{TEMPLATE_NAME}",
        "/a b",
    ] {
        assert!(!matches_pattern(pattern, value), "{value} accepted");
    }
    // The bus: a name of the account (custom names hold no /), or default.
    let pattern = template["Parameters"]["EventBusName"]["AllowedPattern"]
        .as_str()
        .unwrap();
    for value in ["", "default", "ami-reconciler", "ops.events_1"] {
        assert!(matches_pattern(pattern, value), "{value} refused");
    }
    for value in [
        "a/b",
        "arn:aws:events:us-east-1:123456789012:event-bus/ops",
        "my bus",
    ] {
        assert!(!matches_pattern(pattern, value), "{value} accepted");
    }

    // Each placeholder becomes * in the statements' resource.
    let publish = statement(
        "PublishImageParameter",
        &[(
            "ImageParameter",
            "/fleets/{template_name}/{template_id}-{template_name}",
        )],
    );
    assert_eq!(
        publish["Resource"],
        "arn:aws:ssm:*:*:parameter/fleets/*/*-*"
    );
    assert_eq!(
        publish["Action"],
        json!(["ssm:GetParameters", "ssm:PutParameter"])
    );
    assert_eq!(
        publish["Condition"],
        json!({"Null": {"aws:TagKeys": "true"}})
    );
    let one = statement(
        "PublishImageParameter",
        &[("ImageParameter", "/golden/ami")],
    );
    assert_eq!(one["Resource"], "arn:aws:ssm:*:*:parameter/golden/ami");
    // A read-only deployment only reads them.
    let read_only = [
        ("Permissions", "read-only"),
        ("ImageParameter", "/fleets/{template_name}/image"),
    ];
    assert!(!has_statement("PublishImageParameter", &read_only));
    let read = statement("ReadImageParameter", &read_only);
    assert_eq!(read["Resource"], "arn:aws:ssm:*:*:parameter/fleets/*/image");
    assert_eq!(read["Action"], "ssm:GetParameters");
    // Both send events, and only with their own source.
    for permissions in ["read-write", "read-only"] {
        let send = statement(
            "SendEvents",
            &[("Permissions", permissions), ("EventBusName", "default")],
        );
        assert_eq!(send["Resource"], "arn:aws:events:*:*:event-bus/default");
        assert_eq!(
            send["Condition"],
            json!({"StringEquals": {"events:source": "ami-reconciler"}})
        );
    }
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
    let out = evaluate_statement(sid, parameters);
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

/// Whether the role has the statement `sid` for these parameter values
/// (`Permissions` read-write unless given).
fn has_statement(sid: &str, parameters: &[(&str, &str)]) -> bool {
    let out = evaluate_statement(sid, parameters);
    if out.status.success() {
        return true;
    }
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("found 0"), "{error}");
    false
}

/// `tests/support/policies_match.py --statement`: the statement `sid` of the
/// role for these parameter values, as JSON on stdout.
fn evaluate_statement(sid: &str, parameters: &[(&str, &str)]) -> std::process::Output {
    Command::new(python())
        .arg(root().join("tests/support/policies_match.py"))
        .arg("--statement")
        .arg(root().join("template.yaml"))
        .arg(sid)
        .args(parameters.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .expect("run tests/support/policies_match.py")
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

/// The section of docs/deploy.md that deploys three fleets found by tag.
fn recipe() -> Vec<String> {
    let page = read("docs/deploy.md");
    let start = page
        .find("## Recipe: three fleets found by tag")
        .expect("the recipe section");
    let end = page[start + 3..]
        .find("\n## ")
        .map_or(page.len(), |i| start + 3 + i);
    commands_of(&page[start..end])
}

/// The words of a shell command, with double and single quotes removed.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The values of option `--name`: the words after it, up to the next option.
fn option(words: &[String], name: &str) -> Vec<String> {
    words
        .iter()
        .skip_while(|w| w.as_str() != name)
        .skip(1)
        .take_while(|w| !w.starts_with("--"))
        .cloned()
        .collect()
}

/// `A=1,B=2` as pairs, split at the first `=` of each comma-separated part
/// (shorthand values in the recipe hold no comma, but may hold `=`).
fn shorthand(item: &str) -> Vec<(String, String)> {
    item.split(',')
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipe_tags_three_fleets_that_a_dry_run_then_manages_each_with_its_own_backups() {
    // GIVEN an account with the three fleets untagged: a template and a group
    // each (the groups on $Default), older and newer backups of each
    // lineage, and one golden image
    let moto = Moto::start();
    let account = moto.account().await;
    let golden = account.image("golden", "golden image", 0).await;
    let mut variables = std::collections::BTreeMap::new();
    let mut newest = std::collections::BTreeMap::new();
    for (n, fleet) in ["web", "api", "worker"].into_iter().enumerate() {
        for day in [1, 2] {
            let backup = account
                .image(
                    &format!("{fleet}-backup-{day}"),
                    &format!("Created for policy: policy-{fleet} EC2_BACKUP day {day}"),
                    day * 3 + n as i64,
                )
                .await;
            account.tag_image(&backup, "workload", fleet).await;
            newest.insert(fleet, backup);
        }
        let template = account.tagged_template(fleet, &golden, &[]).await;
        account
            .group(&format!("{fleet}-asg"), &template, "$Default", false)
            .await;
        account.run_instances(&format!("{fleet}-asg"), &golden, 2);
        variables.insert(format!("${}_TEMPLATE", fleet.to_uppercase()), template);
    }

    // WHEN the recipe's tag commands run
    let recipe = recipe();
    let mut tagged = 0;
    for command in &recipe {
        let words = words(command);
        if command.starts_with("aws ec2 create-tags ") {
            let resource = &variables[&option(&words, "--resources")[0]];
            for item in option(&words, "--tags") {
                let pairs = shorthand_tag(&item);
                // CreateTags takes any EC2 resource id, a template's too.
                account
                    .tag_image(resource, &pairs["Key"], &pairs["Value"])
                    .await;
            }
            tagged += 1;
        } else if command.starts_with("aws autoscaling create-or-update-tags ") {
            let items = option(&words, "--tags");
            let tags = items.iter().map(|item| {
                let pairs: std::collections::BTreeMap<String, String> =
                    shorthand(item).into_iter().collect();
                aws_sdk_autoscaling::types::Tag::builder()
                    .resource_id(&pairs["ResourceId"])
                    .resource_type(&pairs["ResourceType"])
                    .key(&pairs["Key"])
                    .value(&pairs["Value"])
                    .propagate_at_launch(pairs["PropagateAtLaunch"] == "true")
                    .build()
            });
            account
                .asg
                .create_or_update_tags()
                .set_tags(Some(tags.collect()))
                .send()
                .await
                .unwrap();
            tagged += 1;
        }
    }
    assert_eq!(tagged, 6, "{recipe:#?}");

    // AND the first deploy's parameters are the template's, each valid
    let template = template();
    let deploys: Vec<&String> = recipe
        .iter()
        .filter(|c| c.starts_with("sam deploy"))
        .collect();
    assert_eq!(deploys.len(), 2, "{deploys:?}");
    let overrides: Vec<(String, String)> = option(&words(deploys[0]), "--parameter-overrides")
        .iter()
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .unwrap()
        })
        .collect();
    for (name, value) in &overrides {
        let parameter = &template["Parameters"][name];
        assert!(
            parameter.is_object(),
            "{name} is no parameter of template.yaml"
        );
        if let Some(pattern) = parameter["AllowedPattern"].as_str() {
            assert!(
                matches_pattern(pattern, value),
                "{name}={value} refused by {pattern}"
            );
        }
        if let Some(allowed) = parameter["AllowedValues"].as_array() {
            assert!(
                allowed.contains(&json!(value)),
                "{name}={value} not in {allowed:?}"
            );
        }
    }
    assert!(overrides.contains(&("DiscoverTemplates".into(), "true".into())));
    assert!(
        !overrides.iter().any(|(k, _)| k == "DryRun"),
        "the first deploy is a dry run"
    );

    // WHEN the deployed function's dry run comes: DiscoverTemplates=true
    // sets LAUNCH_TEMPLATE_TAG to AsgTag's default
    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["plan", "--output", "json"])
        .env_clear()
        .envs(moto.env())
        .env("LAUNCH_TEMPLATE_TAG", "ami-reconciler:managed=true")
        .output()
        .expect("run ami-reconciler");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    // THEN the three templates are managed, each with its own fleet's
    // newest backup, and nothing needs a person
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["needs_attention"], 0, "{report:#}");
    let templates = report["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 3, "{report:#}");
    for t in templates {
        let fleet = t["template_name"].as_str().unwrap();
        assert_eq!(
            t["newest_backup"]["image_id"],
            json!(newest[fleet]),
            "{fleet}"
        );
        let actions: Vec<&str> = t["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect();
        let mut expected = vec!["create_version", "set_default_version", "update_group"];
        if fleet == "web" {
            // pinned to its instances' version, then refreshed by number
            expected.push("start_instance_refresh");
        }
        assert_eq!(actions, expected, "{fleet}: {t:#}");
    }
}

/// `Key=K,Value=V` of `aws ec2 create-tags`, where V may hold `=` (a lineage).
fn shorthand_tag(item: &str) -> std::collections::BTreeMap<String, String> {
    let (key, value) = item
        .strip_prefix("Key=")
        .and_then(|rest| rest.split_once(",Value="))
        .unwrap_or_else(|| panic!("{item} is not Key=...,Value=..."));
    [("Key", key), ("Value", value)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
