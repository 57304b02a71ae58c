//! The docs keep up with the code: every error kind and every warning code
//! has its row in docs/report.md, and the settings table lives only in
//! docs/configuration.md (README.md links to it). No server needed.

use std::path::Path;

use ami_reconciler::ErrorKind;
use ami_reconciler::model::Tag;
use ami_reconciler::settings::env;
use ami_reconciler::warning::Warning;
use chrono::{TimeZone, Utc};

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// True when `text` has a table row whose first cell is `` `name` ``.
fn has_row(text: &str, name: &str) -> bool {
    let start = format!("| `{name}` |");
    text.lines().any(|line| line.starts_with(&start))
}

/// The position of each variant in [`one_of_each`]. The match has no
/// wildcard: a new variant does not compile until it is listed here, and
/// the test below fails until `one_of_each` builds it.
fn position(warning: &Warning) -> usize {
    match warning {
        Warning::ImageFromSsm { .. } => 0,
        Warning::NoBackup { .. } => 1,
        Warning::NotMovingBackwards { .. } => 2,
        Warning::LaunchConfiguration { .. } => 3,
        Warning::NoLaunchTemplate { .. } => 4,
        Warning::InstanceRequirements { .. } => 5,
        Warning::OtherTemplate { .. } => 6,
        Warning::GroupBeingDeleted { .. } => 7,
        Warning::RacedAnotherWriter { .. } => 8,
        Warning::SnapshotOverridesImage { .. } => 9,
        Warning::VersionWarned { .. } => 10,
        Warning::OtherArchitecture { .. } => 11,
        Warning::Soaking { .. } => 12,
        Warning::OtherGroupsNotRead { .. } => 13,
        Warning::VersionsKept { .. } => 14,
        Warning::VersionNotDeleted { .. } => 15,
        Warning::DeletedBeforeFailure { .. } => 16,
        Warning::NoTemplateTagged { .. } => 17,
        Warning::BadTemplateTag { .. } => 18,
        Warning::NoLineage { .. } => 19,
        Warning::TemplateNotRead { .. } => 20,
        Warning::TemplateNotTaggedForWrites { .. } => 21,
        Warning::RolloutNotRead { .. } => 22,
        Warning::RolloutRunning { .. } => 23,
        Warning::RolloutStopped { .. } => 24,
        Warning::BadRolloutTag { .. } => 25,
        Warning::RolloutUnsupported { .. } => 26,
        Warning::RolloutTagNotRestored { .. } => 27,
        Warning::ImageWaitsForRollout { .. } => 28,
    }
}

/// One value of every `Warning` variant, in [`position`] order.
fn one_of_each() -> Vec<Warning> {
    let tag = Tag {
        key: "ami-reconciler:managed".into(),
        value: "true".into(),
    };
    let day = |d| Utc.with_ymd_and_hms(2026, 11, d, 3, 0, 0).unwrap();
    vec![
        Warning::ImageFromSsm {
            template: "lt-1".into(),
            parameter: "resolve:ssm:/golden/ami".into(),
        },
        Warning::NoBackup {
            marker: "EC2_BACKUP".into(),
        },
        Warning::NotMovingBackwards {
            template: "lt-1".into(),
            current: "ami-2".into(),
            current_created: day(2),
            newest: "ami-1".into(),
            newest_created: day(1),
        },
        Warning::LaunchConfiguration {
            group: "web".into(),
            tag: tag.clone(),
            launch_configuration: "web-lc".into(),
        },
        Warning::NoLaunchTemplate {
            group: "web".into(),
            tag: tag.clone(),
        },
        Warning::InstanceRequirements {
            group: "web".into(),
        },
        Warning::OtherTemplate {
            group: "web".into(),
            template: "lt-2".into(),
        },
        Warning::GroupBeingDeleted {
            group: "web".into(),
        },
        Warning::RacedAnotherWriter {
            template: "lt-1".into(),
            source_version: 4,
            created: 6,
        },
        Warning::SnapshotOverridesImage {
            template: "lt-1".into(),
            device: "/dev/xvda".into(),
            template_snapshot: "snap-1".into(),
            image: "ami-1".into(),
            image_snapshot: "snap-2".into(),
        },
        Warning::VersionWarned {
            template: "lt-1".into(),
            image: "ami-1".into(),
            version: 5,
            messages: "InvalidParameterValue: bad".into(),
        },
        Warning::OtherArchitecture {
            images: vec!["ami-2".into()],
            architecture: "x86_64".into(),
        },
        Warning::Soaking {
            image: "ami-2".into(),
            created: day(2),
            usable_from: day(3),
        },
        Warning::OtherGroupsNotRead {
            template: "lt-1".into(),
            versions: vec![1, 2],
        },
        Warning::VersionsKept {
            template: "lt-1".into(),
            versions: vec![1],
        },
        Warning::VersionNotDeleted {
            template: "lt-1".into(),
            version: 1,
            error_code: "InvalidLaunchTemplateVersion.NotFound".into(),
            error: "gone".into(),
        },
        Warning::DeletedBeforeFailure {
            template: "lt-1".into(),
            versions: vec![1, 2],
        },
        Warning::NoTemplateTagged { tag: tag.clone() },
        Warning::BadTemplateTag {
            template: "lt-1".into(),
            tag: "ami-reconciler:keep-versions".into(),
            problem: "ami-reconciler:keep-versions must be a whole number >= 1, got \"x\"".into(),
        },
        Warning::NoLineage {
            template: "lt-1".into(),
            templates: 2,
        },
        Warning::TemplateNotRead {
            template: "lt-1".into(),
            kind: "DescribeTemplateVersionsFailed".into(),
            error: "failed to describe the versions of launch template lt-1: AccessDenied".into(),
        },
        Warning::TemplateNotTaggedForWrites {
            template: "lt-1".into(),
            tag,
        },
        Warning::RolloutNotRead {
            groups: vec!["web".into()],
            error: "failed to describe instances: UnauthorizedOperation: denied".into(),
        },
        Warning::RolloutRunning {
            group: "web".into(),
            refresh: "0f5e-1".into(),
            status: "InProgress".into(),
            outdated: 2,
        },
        Warning::RolloutStopped {
            group: "web".into(),
            image: "ami-2".into(),
            last_status: Some("Failed".into()),
            outdated: 2,
        },
        Warning::BadRolloutTag {
            group: "web".into(),
            tag: "ami-reconciler:min-healthy".into(),
            problem:
                "ami-reconciler:min-healthy must be a whole number from 0 to 100, got \"most\""
                    .into(),
        },
        Warning::RolloutUnsupported {
            group: "web".into(),
        },
        Warning::RolloutTagNotRestored {
            group: "web".into(),
            image: "ami-2".into(),
        },
        Warning::ImageWaitsForRollout {
            template: "lt-1".into(),
            image: "ami-3".into(),
            group: "web".into(),
            refresh: Some("0f5e-1".into()),
        },
    ]
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
fn the_warning_list_builds_each_variant_once() {
    let positions: Vec<usize> = one_of_each().iter().map(position).collect();
    let expected: Vec<usize> = (0..positions.len()).collect();
    assert_eq!(positions, expected);
}

#[test]
fn every_warning_code_has_its_row_in_the_report_doc() {
    let report = read("docs/report.md");
    let missing: Vec<String> = one_of_each()
        .iter()
        .map(Warning::code)
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
    ]
    .into_iter()
    .filter(|tag| !has_row(&configuration, tag))
    .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no group tag row for {missing:?}"
    );
}
