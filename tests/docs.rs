//! The docs keep up with the code: every error kind and every warning code
//! has its row in docs/report.md, and the settings table lives only in
//! docs/configuration.md (README.md links to it). No server needed.

use std::path::Path;

use ami_reconciler::ErrorKind;
use ami_reconciler::settings::env;
use ami_reconciler::warning::Warning;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// True when `text` has a table row whose first cell is `` `name` ``.
fn has_row(text: &str, name: &str) -> bool {
    let start = format!("| `{name}` |");
    text.lines().any(|line| line.starts_with(&start))
}

#[test]
fn every_error_kind_has_its_row_in_the_report_doc() {
    let report = read("docs/report.md");
    let missing: Vec<&str> = ErrorKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .filter(|name| !has_row(&report, name))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/report.md has no error kinds row for {missing:?}"
    );
}

#[test]
fn every_warning_code_has_its_row_in_the_report_doc() {
    let report = read("docs/report.md");
    let missing: Vec<String> = Warning::codes()
        .into_iter()
        .filter(|code| !has_row(&report, code))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/report.md has no warning_details row for {missing:?}"
    );
}

#[test]
fn the_readme_links_the_settings_table_instead_of_copying_it() {
    let readme = read("README.md");
    assert!(
        readme.contains("](docs/configuration.md"),
        "README.md does not link docs/configuration.md"
    );
    let settings = [
        env::LAUNCH_TEMPLATE_PARAMETER,
        env::LAUNCH_TEMPLATE_ID,
        env::LAUNCH_TEMPLATE_TAG,
        env::AMI_DESCRIPTION_MARKER,
        env::ASG_TAG,
        env::KEEP_VERSIONS,
        env::CONCURRENCY,
        env::IMAGE_TAG,
        env::MIN_IMAGE_AGE,
        env::IMAGE_PARAMETER,
        env::EVENT_BUS,
        env::DRY_RUN,
    ];
    let rows: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with('|'))
        .filter(|line| settings.iter().any(|s| line.contains(&format!("`{s}`"))))
        .collect();
    assert!(
        rows.is_empty(),
        "README.md copies settings table rows: {rows:?}"
    );
    let configuration = read("docs/configuration.md");
    for setting in settings {
        assert!(
            configuration
                .lines()
                .any(|line| line.starts_with('|') && line.contains(&format!("`{setting}`"))),
            "docs/configuration.md has no settings row for {setting}"
        );
    }
}

#[test]
fn every_template_tag_has_its_row_in_the_configuration_doc() {
    let configuration = read("docs/configuration.md");
    let missing: Vec<&str> = ami_reconciler::model::template_tags::ALL
        .into_iter()
        .filter(|tag| !has_row(&configuration, tag))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no template tag row for {missing:?}"
    );
}

#[test]
fn every_group_tag_has_its_row_in_the_configuration_doc() {
    use ami_reconciler::model::group_tags;
    let configuration = read("docs/configuration.md");
    let missing: Vec<&str> = [
        group_tags::ROLLOUT,
        group_tags::MIN_HEALTHY,
        group_tags::CHECKPOINTS,
        group_tags::CHECKPOINT_DELAY,
        group_tags::ROLLOUT_IMAGE,
        group_tags::ROLLOUT_ALARMS,
        group_tags::ROLLOUT_BAKE_TIME,
        group_tags::ROLLOUT_FAILURE,
    ]
    .into_iter()
    .filter(|tag| !has_row(&configuration, tag))
    .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no group tag row for {missing:?}"
    );
}

#[test]
fn every_event_detail_type_has_an_example_in_the_events_doc() {
    use ami_reconciler::report::events::{EVENT_SCHEMA_VERSION, SOURCE, detail_types};
    let doc = read("docs/events.md");
    // Every JSON block of the page that is an event of ours.
    let examples: Vec<serde_json::Value> = doc
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|event| event["source"] == SOURCE)
        .collect();
    for detail_type in detail_types::ALL {
        let example = examples
            .iter()
            .find(|e| e["detail-type"] == detail_type)
            .unwrap_or_else(|| panic!("docs/events.md has no example of {detail_type:?}"));
        let detail = &example["detail"];
        assert_eq!(
            detail["schema_version"], EVENT_SCHEMA_VERSION,
            "{detail_type}"
        );
        for field in ["dry_run", "template", "reason"] {
            assert!(
                detail.get(field).is_some(),
                "{detail_type}: the example's detail has no {field}"
            );
        }
    }
}
