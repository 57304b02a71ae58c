//! The planner's rules, one test each: plain data in, a `Plan` out. No server.

mod support;

#[path = "planner/publish.rs"]
mod publish;

use ami_reconciler::model::{
    BlockDevice, CurrentImage, DiscoveredTemplate, EbsVolume, GroupLaunch, LATEST, State,
};
use ami_reconciler::plan::change::Restore;
use ami_reconciler::plan::{
    Change, CreateVersion, Created, DeleteVersions, Observation, Observed, Prerequisite,
    SetDefaultVersion, UpdateGroup, VersionTarget, client_token, plan_run, restore_description,
    template_policies,
};
use ami_reconciler::settings::Settings;
use ami_reconciler::warning::{Severity, Warning};
use support::fixtures::{
    ImageExt, PlanExt, StateExt, TEMPLATE, backup, group, legacy_group, mixed_group, planned,
    settings, settings_with,
};

fn keep(n: u32) -> Settings {
    settings_with(|p| p.keep_versions = n)
}

fn created_image(p: &ami_reconciler::Plan) -> Option<&str> {
    p.changes.iter().find_map(|c| match c {
        Change::CreateVersion(c) => Some(c.to_image.as_str()),
        _ => None,
    })
}

fn default_target(p: &ami_reconciler::Plan) -> Option<VersionTarget> {
    p.changes.iter().find_map(|c| match c {
        Change::SetDefaultVersion(SetDefaultVersion { to, .. }) => Some(*to),
        _ => None,
    })
}

/// The versions a deletion may take only once the default moved off them.
fn switched_away_from(d: &DeleteVersions) -> Vec<i64> {
    d.each_needs
        .iter()
        .filter(|(_, needs)| needs.contains(&Prerequisite::DefaultSwitched))
        .map(|(n, _)| *n)
        .collect()
}

// --- converged -----------------------------------------------------------

#[test]
fn a_converged_state_plans_nothing() {
    let p = planned(&State::fixture(), &settings());
    assert!(p.is_converged(), "{p:#?}");
    assert!(p.warnings.is_empty());
    assert_eq!(p.newest_backup.unwrap().image_id, "ami-a");
}

#[test]
fn planning_twice_gives_the_same_plan() {
    let state = State::fixture()
        .image(backup("b", 2))
        .group(group("web", "1"))
        .versions(&[1, 2, 3, 4, 5]);
    assert_eq!(planned(&state, &settings()), planned(&state, &settings()));
}

// --- which AMI -----------------------------------------------------------

#[test]
fn a_newer_backup_creates_a_version_from_latest_with_only_the_image() {
    let p = planned(&State::fixture().image(backup("b", 2)), &settings());
    match &p.changes[0] {
        Change::CreateVersion(CreateVersion {
            template_id,
            source_version,
            from_image,
            to_image,
            version_description,
            client_token: token,
            ..
        }) => {
            assert_eq!(template_id, TEMPLATE);
            assert_eq!(*source_version, 3);
            assert_eq!((from_image.as_str(), to_image.as_str()), ("ami-a", "ami-b"));
            assert!(
                version_description.contains("ami-b"),
                "{version_description}"
            );
            assert_eq!(token, &client_token(TEMPLATE, 3, "ami-b"));
        }
        other => panic!("expected a new version first, got {other:?}"),
    }
    assert_eq!(default_target(&p), Some(VersionTarget::Created));
}

#[test]
fn the_newest_backup_is_chosen_by_creation_date_not_by_api_order() {
    let state = State::fixture()
        .image(backup("d", 4))
        .image(backup("b", 2))
        .image(backup("c", 3));
    assert_eq!(created_image(&planned(&state, &settings())), Some("ami-d"));
}

#[test]
fn backups_created_in_the_same_second_are_ordered_by_id_so_the_choice_is_stable() {
    let state = State::fixture().image(backup("y", 5)).image(backup("x", 5));
    assert_eq!(created_image(&planned(&state, &settings())), Some("ami-y"));
}

#[test]
fn images_that_are_not_available_are_never_chosen() {
    for s in ["pending", "failed", "disabled"] {
        let state = State::fixture().image(backup("b", 2).in_state(s));
        assert_eq!(
            created_image(&planned(&state, &settings())),
            None,
            "state {s}"
        );
    }
}

#[test]
fn images_without_the_marker_are_never_chosen() {
    let mut golden = backup("golden", 9);
    golden.description = "golden image".into();
    assert_eq!(
        created_image(&planned(&State::fixture().image(golden), &settings())),
        None
    );
}

#[test]
fn the_marker_is_a_setting() {
    let mut nightly = backup("n", 9);
    nightly.description = "NIGHTLY".into();
    let s = settings_with(|p| p.marker = "NIGHTLY".into());
    let state = State::fixture().image(nightly);
    assert_eq!(created_image(&planned(&state, &s)), Some("ami-n"));
}

#[test]
fn images_of_other_accounts_are_never_chosen() {
    let mut shared = backup("shared", 9);
    shared.owned_by_account = false;
    assert_eq!(
        created_image(&planned(&State::fixture().image(shared), &settings())),
        None
    );
}

#[test]
fn skip_tagged_backups_are_never_chosen() {
    let state = State::fixture().image(backup("bad", 9).skipped());
    assert_eq!(created_image(&planned(&state, &settings())), None);
}

#[test]
fn no_backup_at_all_changes_no_image_and_warns() {
    let mut state = State::fixture();
    state.images.clear();
    let p = planned(&state, &settings());
    assert!(p.is_converged());
    assert_eq!(
        p.warnings,
        [Warning::NoBackup {
            marker: "EC2_BACKUP".into()
        }]
    );
    assert!(p.newest_backup.is_none());
}

// --- template image ------------------------------------------------------

#[test]
fn a_skip_tagged_current_image_rolls_back_to_the_newest_good_backup() {
    let state = State::fixture()
        .image(backup("b", 2))
        .current(CurrentImage::Found(backup("bad", 3).skipped()));
    let p = planned(&state, &settings());
    assert_eq!(created_image(&p), Some("ami-b"));
    match &p.changes[0] {
        Change::CreateVersion(CreateVersion { reason, .. }) => {
            assert!(reason.contains("ami-reconciler:skip"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_deregistered_current_image_is_replaced() {
    let state = State::fixture().current(CurrentImage::Missing("ami-gone".into()));
    let p = planned(&state, &settings());
    assert_eq!(created_image(&p), Some("ami-a"));
}

#[test]
fn a_failed_current_image_is_replaced_even_by_an_older_backup() {
    let state =
        State::fixture().current(CurrentImage::Found(backup("broken", 5).in_state("failed")));
    assert_eq!(created_image(&planned(&state, &settings())), Some("ami-a"));
}

#[test]
fn a_newer_current_image_is_never_replaced_by_an_older_backup() {
    let mut golden = backup("golden", 9);
    golden.description = "hand-made".into();
    let state = State::fixture().current(CurrentImage::Found(golden));
    let p = planned(&state, &settings());
    assert!(p.is_converged(), "{p:#?}");
    assert!(
        matches!(&p.warnings[..], [Warning::NotMovingBackwards { current, newest, .. }]
            if current == "ami-golden" && newest == "ami-a"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn an_older_current_image_outside_the_backups_is_replaced() {
    let mut golden = backup("golden", 0);
    golden.description = "golden image".into();
    golden.owned_by_account = false;
    let state = State::fixture().current(CurrentImage::Found(golden));
    assert_eq!(created_image(&planned(&state, &settings())), Some("ami-a"));
}

#[test]
fn an_image_taken_from_ssm_is_left_alone_and_reported() {
    let state = State::fixture()
        .image(backup("b", 2))
        .current(CurrentImage::FromSsm("resolve:ssm:/golden/ami".into()));
    let p = planned(&state, &settings());
    assert_eq!(created_image(&p), None);
    assert_eq!(
        p.warnings,
        [Warning::ImageFromSsm {
            template: TEMPLATE.into(),
            parameter: "resolve:ssm:/golden/ami".into()
        }]
    );
}

#[test]
fn the_client_token_fits_ec2s_limit_and_differs_by_source_version() {
    let a = client_token(TEMPLATE, 3, "ami-0123456789abcdef0");
    let b = client_token(TEMPLATE, 4, "ami-0123456789abcdef0");
    assert_ne!(a, b);
    assert!(a.len() <= 64 && a.is_ascii(), "{a}");
    let long = client_token(&"lt-".repeat(30), 1_000_000, "ami-0123456789abcdef0");
    assert!(long.len() <= 64, "{long}");
    assert_eq!(
        long,
        client_token(&"lt-".repeat(30), 1_000_000, "ami-0123456789abcdef0")
    );
}

// --- default version -----------------------------------------------------

#[test]
fn a_drifted_default_is_set_back_to_the_latest_number() {
    let p = planned(&State::fixture().default_version(2), &settings());
    assert_eq!(p.changes.len(), 1, "{p:#?}");
    assert_eq!(default_target(&p), Some(VersionTarget::Number(3)));
}

#[test]
fn no_default_switch_is_planned_when_the_default_is_the_latest() {
    let p = planned(&State::fixture().group(group("web", "1")), &settings());
    assert_eq!(default_target(&p), None);
}

// --- groups --------------------------------------------------------------

#[test]
fn a_tagged_group_on_a_version_number_moves_to_latest() {
    let p = planned(&State::fixture().group(group("web", "1")), &settings());
    match &p.changes[..] {
        [
            Change::UpdateGroup(UpdateGroup {
                group,
                from,
                to,
                launch: GroupLaunch::Plain(spec),
                mixed_instances_policy: false,
                ..
            }),
        ] => {
            assert_eq!(
                (group.as_str(), from.as_str(), to.as_str()),
                ("web", "1", "$Latest")
            );
            assert_eq!(spec.id.as_deref(), Some(TEMPLATE));
            assert_eq!(spec.name, None, "the id alone is sent");
            assert_eq!(spec.version.as_deref(), Some(LATEST));
        }
        other => panic!("{other:#?}"),
    }
}

#[test]
fn tagged_groups_on_default_or_no_version_move_to_latest() {
    let mut unversioned = group("b", "x");
    if let ami_reconciler::model::LaunchSource::Template(spec) = &mut unversioned.launch {
        spec.version = None;
    }
    let state = State::fixture()
        .group(group("a", "$Default"))
        .group(unversioned);
    assert_eq!(planned(&state, &settings()).updated_groups(), ["a", "b"]);
}

#[test]
fn a_tagged_group_on_latest_is_left_alone() {
    let p = planned(
        &State::fixture().group(group("web", "$Latest")),
        &settings(),
    );
    assert!(p.is_converged());
}

#[test]
fn a_mixed_instances_group_moves_to_latest_with_its_overrides_as_read() {
    let group = mixed_group("spot", "2", &["1"]);
    let p = planned(&State::fixture().group(group.clone()), &settings());
    let ami_reconciler::model::LaunchSource::Mixed(read) = &group.launch else {
        unreachable!()
    };
    match &p.changes[..] {
        [
            Change::UpdateGroup(UpdateGroup {
                launch: GroupLaunch::Mixed(sent),
                mixed_instances_policy: true,
                from,
                ..
            }),
        ] => {
            assert_eq!(from, "2");
            assert_eq!(sent.spec.version.as_deref(), Some(LATEST));
            assert_eq!(sent.overrides, read.overrides);
        }
        other => panic!("{other:#?}"),
    }
}

#[test]
fn a_group_on_a_launch_configuration_is_skipped_with_a_warning() {
    let p = planned(&State::fixture().group(legacy_group("old")), &settings());
    assert!(p.is_converged());
    assert!(
        matches!(&p.warnings[..], [Warning::LaunchConfiguration { group, launch_configuration, .. }]
            if group == "old" && launch_configuration == "old-lc"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn untagged_groups_never_appear_in_the_plan() {
    let state = State::fixture()
        .other_group(group("untagged", "1"))
        .image(backup("b", 2));
    let p = planned(&state, &settings());
    assert!(p.updated_groups().is_empty());
}

#[test]
fn groups_are_planned_in_name_order() {
    let state = State::fixture()
        .group(group("c", "1"))
        .group(group("a", "1"))
        .group(group("b", "2"));
    assert_eq!(
        planned(&state, &settings()).updated_groups(),
        ["a", "b", "c"]
    );
}

// --- prune ---------------------------------------------------------------

#[test]
fn versions_beyond_the_newest_three_are_deleted() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5])
        .default_version(5);
    assert_eq!(planned(&state, &settings()).deleted_versions(), [1, 2]);
}

#[test]
fn the_version_created_in_this_run_counts_towards_the_kept_three() {
    let state = State::fixture().versions(&[1, 2, 3]).image(backup("b", 2));
    let p = planned(&state, &settings());
    assert_eq!(p.deleted_versions(), [1]);
    match p.changes.last() {
        Some(Change::DeleteVersions(DeleteVersions { needs, .. })) => {
            assert_eq!(needs, &[Prerequisite::VersionCreated])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gaps_in_version_numbers_are_counted_by_existing_versions() {
    let state = State::fixture()
        .versions(&[2, 7, 9, 12])
        .default_version(12);
    assert_eq!(planned(&state, &settings()).deleted_versions(), [2]);
}

#[test]
fn the_default_version_is_never_deleted() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5, 6])
        .default_version(1);
    // The switch to 6 is planned; 1 goes only once it succeeds.
    let p = planned(&state, &settings());
    assert_eq!(default_target(&p), Some(VersionTarget::Number(6)));
    assert_eq!(p.deleted_versions(), [1, 2, 3]);
    match p.changes.last() {
        Some(Change::DeleteVersions(d)) => assert_eq!(switched_away_from(d), [1]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_version_an_untagged_group_pins_is_never_deleted() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5])
        .default_version(5)
        .other_group(group("untagged", "2"));
    assert_eq!(planned(&state, &settings()).deleted_versions(), [1]);
}

#[test]
fn versions_that_mixed_policies_and_their_overrides_pin_are_never_deleted() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5, 6])
        .default_version(6)
        .other_group(mixed_group("spot", "1", &["2"]))
        .group(mixed_group("managed-spot", "$Latest", &["3"]));
    assert!(planned(&state, &settings()).deleted_versions().is_empty());
}

#[test]
fn a_version_only_a_moving_managed_group_pins_is_deleted_once_the_group_moves() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5])
        .default_version(5)
        .group(group("web", "1"));
    let p = planned(&state, &settings());
    assert_eq!(p.deleted_versions(), [1, 2]);
    match p.changes.last() {
        Some(Change::DeleteVersions(DeleteVersions { each_needs, .. })) => {
            assert_eq!(
                each_needs.get(&1),
                Some(&vec![Prerequisite::GroupMoved("web".to_owned())])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_is_deleted_while_untagged_groups_are_unknown() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4])
        .default_version(4)
        .others_unread();
    let p = planned(&state, &settings());
    assert!(p.deleted_versions().is_empty());
    assert_eq!(
        p.warnings,
        [Warning::OtherGroupsNotRead {
            template: TEMPLATE.into(),
            versions: vec![1]
        }]
    );
}

#[test]
fn versions_the_managed_groups_pin_raise_no_warning_when_untagged_groups_were_not_read() {
    // observe reads untagged groups only when a deletion is possible; here
    // the managed group's override pins the only version outside the window.
    let state = State::fixture()
        .versions(&[1, 2, 3, 4])
        .default_version(4)
        .group(mixed_group("spot", LATEST, &["1"]))
        .others_unread();
    let p = planned(&state, &settings());
    assert!(p.is_converged(), "{p:#?}");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn keep_versions_is_a_setting() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5])
        .default_version(5);
    assert_eq!(planned(&state, &keep(1)).deleted_versions(), [1, 2, 3, 4]);
    assert!(planned(&state, &keep(5)).deleted_versions().is_empty());
}

#[test]
fn with_keep_one_a_new_version_makes_every_old_one_deletable_after_the_switch() {
    let state = State::fixture().versions(&[1, 2, 3]).image(backup("b", 2));
    let p = planned(&state, &keep(1));
    assert_eq!(p.deleted_versions(), [1, 2, 3]);
    match p.changes.last() {
        Some(Change::DeleteVersions(d)) => {
            assert_eq!(d.needs, [Prerequisite::VersionCreated]);
            assert_eq!(switched_away_from(d), [3]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_drift_repair_plans_every_step_in_apply_order() {
    let state = State::fixture()
        .versions(&[1, 2, 3, 4, 5, 6])
        .default_version(1)
        .image(backup("b", 2))
        .group(group("web", "1"))
        .other_group(group("legacy-pin", "2"));
    let kinds: Vec<&str> = planned(&state, &settings())
        .changes
        .iter()
        .map(Change::action)
        .collect();
    assert_eq!(
        kinds,
        [
            "create_version",
            "set_default_version",
            "update_group",
            "delete_versions"
        ]
    );
}

#[test]
fn the_plan_serializes_to_the_documented_json_shape() {
    let state = State::fixture()
        .image(backup("b", 2))
        .group(group("web", "1"));
    let json = serde_json::to_value(planned(&state, &settings())).unwrap();
    assert_eq!(json["changes"][0]["action"], "create_version");
    assert_eq!(json["changes"][1]["to"], "created");
    assert_eq!(json["changes"][2]["group"], "web");
    assert_eq!(json["changes"][2]["to"], "$Latest");
    assert!(
        json["changes"][2].get("target").is_none(),
        "SDK data stays out of the report"
    );
    assert_eq!(json["newest_backup"]["image_id"], "ami-b");
}

// --- judging a create ------------------------------------------------------

fn create_from(source: i64) -> CreateVersion {
    CreateVersion {
        template_id: TEMPLATE.into(),
        source_version: source,
        from_image: "ami-a".into(),
        to_image: "ami-b".into(),
        reason: String::new(),
        version_description: String::new(),
        client_token: client_token(TEMPLATE, source, "ami-b"),
        restore: Some(Restore {
            version: source,
            image: "ami-a".into(),
            block_devices: Vec::new(),
        }),
        block_devices: Vec::new(),
        needs: Vec::new(),
    }
}

#[test]
fn a_version_between_that_is_our_own_is_a_duplicate_not_a_rival() {
    let ours = |number: i64, image: &str| ami_reconciler::model::TemplateVersion {
        number,
        image_id: Some(image.into()),
        block_devices: Vec::new(),
        description: Some(String::new()),
        created: None,
    };
    let create = create_from(3);
    let stale_then_both = [ours(3, "ami-a"), ours(4, "ami-b"), ours(5, "ami-b")];
    assert_eq!(create.own_duplicate(5, &stale_then_both), Some(4));
    let rival = [ours(3, "ami-a"), ours(4, "ami-c"), ours(5, "ami-b")];
    assert_eq!(create.own_duplicate(5, &rival), None);
}

#[test]
fn a_create_numbered_right_after_its_source_is_fresh() {
    assert_eq!(create_from(3).judge(4, Some(&[1, 2, 3, 4])), Created::Fresh);
}

#[test]
fn a_gap_left_by_deleted_versions_is_still_fresh() {
    assert_eq!(create_from(3).judge(6, Some(&[1, 2, 3, 6])), Created::Fresh);
}

#[test]
fn a_version_between_the_source_and_the_created_one_means_another_writer() {
    assert_eq!(
        create_from(3).judge(5, Some(&[1, 2, 3, 4, 5])),
        Created::Raced
    );
}

#[test]
fn a_created_number_that_does_not_exist_is_a_replayed_token() {
    assert_eq!(create_from(3).judge(4, Some(&[1, 2, 3])), Created::Replayed);
}

#[test]
fn without_the_second_read_only_the_next_number_counts_as_fresh() {
    assert_eq!(create_from(3).judge(4, None), Created::Fresh);
    assert_eq!(create_from(3).judge(6, None), Created::Raced);
}

// --- block device mappings -------------------------------------------------

fn data_volume(snapshot: Option<&str>) -> BlockDevice {
    BlockDevice {
        device_name: Some("/dev/xvdb".into()),
        ebs: Some(EbsVolume {
            snapshot_id: snapshot.map(str::to_owned),
            volume_size: Some(20),
            volume_type: Some("gp3".into()),
            ..EbsVolume::default()
        }),
        ..BlockDevice::default()
    }
}

fn with_latest_devices(mut state: State, devices: Vec<BlockDevice>) -> State {
    if let Some(latest) = state.template.versions.iter_mut().max_by_key(|v| v.number) {
        latest.block_devices = devices;
    }
    state
}

fn created(p: &ami_reconciler::Plan) -> &CreateVersion {
    p.changes
        .iter()
        .find_map(|c| match c {
            Change::CreateVersion(c) => Some(c),
            _ => None,
        })
        .expect("a version is created")
}

#[test]
fn mappings_that_name_a_snapshot_are_sent_as_they_are() {
    let devices = vec![data_volume(Some("snap-data")), data_volume(None)];
    let state = with_latest_devices(State::fixture().image(backup("b", 2)), devices.clone());
    assert_eq!(
        created(&planned(&state, &settings())).block_devices,
        devices
    );
}

#[test]
fn mappings_without_a_snapshot_are_left_to_inherit() {
    let state = with_latest_devices(
        State::fixture().image(backup("b", 2)),
        vec![data_volume(None)],
    );
    assert!(
        created(&planned(&state, &settings()))
            .block_devices
            .is_empty()
    );
}

#[test]
fn a_template_snapshot_that_hides_the_backups_own_is_a_warning() {
    let mut newer = backup("b", 2);
    newer
        .snapshots
        .insert("/dev/xvdb".into(), "snap-backup".into());
    let state = with_latest_devices(
        State::fixture().image(newer),
        vec![data_volume(Some("snap-data"))],
    );
    let p = planned(&state, &settings());
    assert_eq!(
        p.warnings,
        [Warning::SnapshotOverridesImage {
            template: TEMPLATE.into(),
            device: "/dev/xvdb".into(),
            template_snapshot: "snap-data".into(),
            image: "ami-b".into(),
            image_snapshot: "snap-backup".into(),
        }]
    );
}

// --- a version EC2 warned about ---------------------------------------------

fn restored_after_warning_about(image: &str, messages: &[String]) -> State {
    let mut state = State::fixture().image(backup("b", 2));
    if let Some(latest) = state.template.versions.iter_mut().max_by_key(|v| v.number) {
        latest.description = Some(restore_description(image, 2, messages));
    }
    state
}

#[test]
fn no_version_is_created_again_for_an_image_ec2_warned_about() {
    let messages = vec!["InvalidParameterValue: bad".to_owned()];
    let p = planned(
        &restored_after_warning_about("ami-b", &messages),
        &settings(),
    );
    assert_eq!(created_image(&p), None);
    assert_eq!(
        p.warnings,
        [Warning::VersionWarned {
            template: TEMPLATE.into(),
            image: "ami-b".into(),
            version: 2,
            messages: "InvalidParameterValue: bad".into(),
        }]
    );
    assert_eq!(p.warnings[0].severity(), Severity::NeedsAttention);
}

#[test]
fn a_newer_backup_than_the_one_ec2_warned_about_is_tried() {
    let messages = vec!["InvalidParameterValue: bad".to_owned()];
    let p = planned(
        &restored_after_warning_about("ami-a0", &messages),
        &settings(),
    );
    assert_eq!(created_image(&p), Some("ami-b"));
}

#[test]
fn a_long_warning_is_cut_to_ec2s_description_limit_and_still_read_back() {
    let messages = vec![format!("InvalidParameterValue: {}", "x".repeat(400))];
    assert!(restore_description("ami-b", 2, &messages).chars().count() <= 255);
    let p = planned(
        &restored_after_warning_about("ami-b", &messages),
        &settings(),
    );
    assert_eq!(created_image(&p), None);
}

// --- which backup: lineage, architecture, soak time ----------------------

fn lineage(mut image: ami_reconciler::model::Image, policy: &str) -> ami_reconciler::model::Image {
    image
        .tags
        .insert("aws:dlm:lifecycle-policy-id".into(), policy.into());
    image
}

fn with_lineage(policy: &str) -> Settings {
    settings_with(|p| {
        p.image_tag = Some(ami_reconciler::model::Tag {
            key: "aws:dlm:lifecycle-policy-id".into(),
            value: policy.into(),
        })
    })
}

#[test]
fn with_a_lineage_only_its_backups_are_chosen() {
    // the database server's backup is newer, but of another policy
    let state = State::fixture()
        .image(lineage(backup("web", 2), "policy-web"))
        .image(lineage(backup("db", 3), "policy-db"));
    assert_eq!(
        created_image(&planned(&state, &with_lineage("policy-web"))),
        Some("ami-web")
    );
    assert_eq!(created_image(&planned(&state, &settings())), Some("ami-db"));
}

#[test]
fn a_backup_of_another_architecture_is_never_chosen_and_is_named() {
    let mut arm = backup("arm", 3);
    arm.architecture = Some("arm64".into());
    let state = State::fixture().image(backup("b", 2)).image(arm);
    let p = planned(&state, &settings());
    assert_eq!(created_image(&p), Some("ami-b"));
    assert_eq!(
        p.warnings,
        [Warning::OtherArchitecture {
            images: vec!["ami-arm".into()],
            architecture: "x86_64".into(),
        }]
    );
}

#[test]
fn a_backup_younger_than_the_soak_time_waits_and_the_plan_says_until_when() {
    // observed on day 30: the day-29 backup is one day old
    let soak = settings_with(|p| p.min_image_age = chrono::Duration::hours(36));
    let state = State::fixture()
        .image(backup("b", 20))
        .image(backup("fresh", 29));
    let p = planned(&state, &soak);
    assert_eq!(created_image(&p), Some("ami-b"));
    assert_eq!(
        p.warnings,
        [Warning::Soaking {
            image: "ami-fresh".into(),
            created: support::day(29),
            usable_from: support::day(29) + chrono::Duration::hours(36),
        }]
    );
}

// --- many templates (tag mode) --------------------------------------------

fn discovered(id: &str, tags: &[(&str, &str)]) -> DiscoveredTemplate {
    DiscoveredTemplate {
        id: id.to_owned(),
        name: id.trim_start_matches("lt-").to_owned(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

const IMAGE_TAG: (&str, &str) = (
    "ami-reconciler:image-tag",
    "aws:dlm:lifecycle-policy-id=policy-web",
);

#[test]
fn a_lone_template_needs_no_lineage_but_among_several_each_does() {
    let alone = template_policies(&[discovered("lt-a", &[])], &settings().policy);
    assert!(alone[0].is_ok());

    let several = template_policies(
        &[discovered("lt-a", &[IMAGE_TAG]), discovered("lt-b", &[])],
        &settings().policy,
    );

    assert_eq!(
        several[0]
            .as_ref()
            .unwrap()
            .image_tag
            .as_ref()
            .unwrap()
            .value,
        "policy-web"
    );
    assert_eq!(
        several[1],
        Err(Warning::NoLineage {
            template: "lt-b".into(),
            templates: 2
        })
    );
}

#[test]
fn the_runs_image_tag_is_every_templates_lineage_unless_it_has_its_own() {
    let run = settings_with(|p| {
        p.image_tag = Some(ami_reconciler::model::Tag {
            key: "team".into(),
            value: "web".into(),
        })
    });
    let own = template_policies(
        &[discovered("lt-a", &[IMAGE_TAG]), discovered("lt-b", &[])],
        &run.policy,
    );
    assert_eq!(
        own[0].as_ref().unwrap().image_tag.as_ref().unwrap().key,
        "aws:dlm:lifecycle-policy-id"
    );
    assert_eq!(
        own[1].as_ref().unwrap().image_tag.as_ref().unwrap().key,
        "team"
    );
}

#[test]
fn a_malformed_tag_skips_its_template_with_a_warning_naming_the_tag() {
    let own = template_policies(
        &[discovered(
            "lt-a",
            &[IMAGE_TAG, ("ami-reconciler:min-image-age", "soon")],
        )],
        &settings().policy,
    );
    assert!(
        matches!(&own[0], Err(Warning::BadTemplateTag { template, tag, problem })
            if template == "lt-a"
            && tag == "ami-reconciler:min-image-age"
            && problem.ends_with(r#"got "soon""#)),
        "{own:?}"
    );
}

#[test]
fn a_group_on_no_managed_template_is_a_run_warning_and_a_skipped_template_plans_nothing() {
    let skipped = Observation::Skipped {
        template: discovered("lt-b", &[]),
        warning: Warning::NoLineage {
            template: "lt-b".into(),
            templates: 2,
        },
    };
    let observed = Observed {
        templates: vec![
            Observation::Ready {
                state: State::fixture().image(backup("b", 2)),
                policy: settings().policy,
            },
            skipped,
        ],
        stray_groups: vec![legacy_group("old"), {
            let mut g = group("elsewhere", "1");
            if let ami_reconciler::model::LaunchSource::Template(spec) = &mut g.launch {
                spec.id = Some("lt-other".into());
            }
            g
        }],
        discovery_tag: Some(ami_reconciler::model::Tag {
            key: "ami-reconciler:managed".into(),
            value: "true".into(),
        }),
        warnings: Vec::new(),
    };

    let run = plan_run(&observed, &settings().asg_tag);

    assert_eq!(created_image(&run.plans[0]), Some("ami-b"));
    assert!(run.plans[1].is_converged());
    assert!(matches!(
        run.plans[1].warnings[..],
        [Warning::NoLineage { .. }]
    ));
    assert_eq!(
        run.warnings.iter().map(Warning::code).collect::<Vec<_>>(),
        ["other_template", "launch_configuration"]
    );
}

#[test]
fn a_template_without_the_write_tag_is_named_only_when_it_would_be_written() {
    let untagged = |state: State| State {
        template: ami_reconciler::model::Template {
            tags: Some(Default::default()),
            ..state.template.clone()
        },
        ..state
    };
    let observed = |state: State| Observed {
        templates: vec![Observation::Ready {
            state: untagged(state),
            policy: settings().policy,
        }],
        stray_groups: Vec::new(),
        discovery_tag: None,
        warnings: Vec::new(),
    };

    let writes = plan_run(
        &observed(State::fixture().image(backup("b", 2))),
        &settings().asg_tag,
    );
    let group_only = plan_run(
        &observed(State::fixture().group(group("web", "1"))),
        &settings().asg_tag,
    );

    assert!(matches!(
        writes.plans[0].warnings[..],
        [Warning::TemplateNotTaggedForWrites { .. }]
    ));
    assert!(!group_only.plans[0].is_converged());
    assert!(group_only.plans[0].warnings.is_empty());
}

// --- rollouts -------------------------------------------------------------

/// A rolling group of `desired` instances, all on `image`, with `tags`; its
/// refreshes read (none).
fn rolling(state: State, desired: i32, image: &str, tags: &[(&str, &str)]) -> State {
    let mut g = group("web", "$Latest");
    g.tags
        .insert("ami-reconciler:rollout".into(), "rolling".into());
    for (k, v) in tags {
        g.tags.insert((*k).into(), (*v).into());
    }
    g.desired_capacity = desired;
    let mut state = state.group(g);
    for i in 0..desired {
        let id = format!("i-{i}");
        state.managed_groups[0].in_service.push(id.clone());
        state.instance_images.insert(id, image.to_owned());
    }
    state.refreshes.insert("web".into(), Vec::new());
    state
}

fn refresh(p: &ami_reconciler::Plan) -> Option<&ami_reconciler::plan::StartInstanceRefresh> {
    p.changes.iter().find_map(|c| match c {
        Change::StartInstanceRefresh(c) => Some(c),
        _ => None,
    })
}

#[test]
fn a_rolling_group_on_the_new_image_plans_no_refresh_and_one_on_the_old_image_does() {
    let new = State::fixture().image(backup("b", 2));
    assert!(
        refresh(&planned(
            &rolling(new.clone(), 2, "ami-b", &[]),
            &settings()
        ))
        .is_none()
    );

    let p = planned(&rolling(new, 2, "ami-a", &[]), &settings());

    let r = refresh(&p).unwrap();
    assert_eq!(
        (r.image.as_str(), r.outdated, r.in_service),
        ("ami-b", 2, 2)
    );
    assert_eq!(
        r.needs,
        [
            Prerequisite::VersionCreated,
            Prerequisite::GroupMoved("web".into())
        ]
    );
    assert_eq!(r.preferences.min_healthy_percentage, None);
    assert_eq!(r.preferences.max_healthy_percentage, None);
}

fn placement(p: &ami_reconciler::Plan) -> Option<&ami_reconciler::plan::UpdateGroup> {
    p.changes.iter().find_map(|c| match c {
        Change::UpdateGroup(c) => Some(c),
        _ => None,
    })
}

#[test]
fn a_rolling_group_on_latest_is_pinned_to_its_instances_version_and_refreshed_to_the_new_one_by_number()
 {
    let state = rolling(State::fixture().image(backup("b", 2)), 2, "ami-a", &[]);

    let p = planned(&state, &settings());

    let pin = placement(&p).unwrap();
    // the default (3) carries the image its instances run
    assert_eq!((pin.from.as_str(), pin.to.as_str()), ("$Latest", "3"));
    assert_eq!(pin.version, Some(VersionTarget::Number(3)));
    let r = refresh(&p).unwrap();
    assert_eq!((r.version, r.rollback_to), (VersionTarget::Created, 3));
    assert!(r.preferences.auto_rollback);
    assert!(r.needs.contains(&Prerequisite::GroupMoved("web".into())));
    let order: Vec<&str> = p.changes.iter().map(Change::action).collect();
    let at = |a: &str| order.iter().position(|x| *x == a).unwrap();
    assert!(at("update_group") < at("start_instance_refresh"));
}

#[test]
fn a_rolling_group_whose_instances_already_run_the_new_image_moves_to_its_number_without_a_refresh()
{
    let state = rolling(State::fixture().image(backup("b", 2)), 2, "ami-b", &[]);

    let p = planned(&state, &settings());

    let pin = placement(&p).unwrap();
    assert_eq!(
        (pin.to.as_str(), pin.version),
        ("created", Some(VersionTarget::Created))
    );
    assert_eq!(pin.needs, [Prerequisite::VersionCreated]);
    assert!(refresh(&p).is_none());
}

#[test]
fn a_one_instance_group_keeps_its_instance_until_the_new_one_is_healthy_whatever_its_tag() {
    let state = rolling(
        State::fixture().image(backup("b", 2)),
        1,
        "ami-a",
        &[("ami-reconciler:min-healthy", "50")],
    );
    let r = planned(&state, &settings());
    let prefs = &refresh(&r).unwrap().preferences;
    assert_eq!(
        (prefs.min_healthy_percentage, prefs.max_healthy_percentage),
        (Some(100), Some(200))
    );
}

#[test]
fn malformed_rollout_tags_are_named_and_plan_no_refresh() {
    for (tag, value) in [
        ("ami-reconciler:min-healthy", "101"),
        ("ami-reconciler:checkpoints", "50,25,100"),
        ("ami-reconciler:checkpoint-delay", "30m"),
        ("ami-reconciler:rollout-alarms", "a,b,c,d,e,f,g,h,i,j,k"),
        ("ami-reconciler:rollout-alarms", "web-5xx,,web-latency"),
        ("ami-reconciler:rollout-bake-time", "49h"),
        ("ami-reconciler:rollout-bake-time", "half an hour"),
        ("ami-reconciler:rollout-failure", "delete"),
    ] {
        let state = rolling(
            State::fixture().image(backup("b", 2)),
            2,
            "ami-a",
            &[(tag, value)],
        );
        let p = planned(&state, &settings());
        assert!(refresh(&p).is_none(), "{tag}={value}");
        assert!(
            p.warnings.iter().any(|w| matches!(w,
                Warning::BadRolloutTag { tag: t, .. } if t == tag)),
            "{tag}={value}: {:?}",
            p.warnings
        );
    }
}

#[test]
fn a_rolling_group_already_on_a_number_is_refreshed_from_it_without_a_move() {
    let mut state = rolling(State::fixture().image(backup("b", 2)), 2, "ami-a", &[]);
    if let ami_reconciler::model::LaunchSource::Template(spec) = &mut state.managed_groups[0].launch
    {
        spec.version = Some("1".into());
    }
    let p = planned(&state, &settings());
    assert!(placement(&p).is_none(), "{:?}", p.changes);
    let r = refresh(&p).unwrap();
    assert_eq!(r.rollback_to, 1);
    assert_eq!(r.needs, [Prerequisite::VersionCreated]);
}

#[test]
fn without_its_refreshes_read_a_rolling_group_plans_no_refresh() {
    let mut state = rolling(State::fixture().image(backup("b", 2)), 2, "ami-a", &[]);
    state.refreshes.clear();
    assert!(refresh(&planned(&state, &settings())).is_none());
}

#[test]
fn a_rollback_to_an_image_rolled_out_before_rolls_out_again() {
    // GIVEN version 1 on ami-a, then version 2 on ami-b rolled out by a
    // refresh that succeeded, and ami-b now skip-tagged
    let bad = ImageExt::skipped(backup("b", 2));
    let mut state = rolling(State::fixture().image(bad.clone()), 2, "ami-b", &[]);
    state.template.versions = vec![
        ami_reconciler::model::TemplateVersion {
            number: 1,
            image_id: Some("ami-a".into()),
            block_devices: Vec::new(),
            description: None,
            created: Some(support::fixtures::day(1)),
        },
        ami_reconciler::model::TemplateVersion {
            number: 2,
            image_id: Some("ami-b".into()),
            block_devices: Vec::new(),
            description: None,
            created: Some(support::fixtures::day(2)),
        },
    ];
    state.template.default_version = 2;
    state.current_image = CurrentImage::Found(bad);
    state.refreshes.insert(
        "web".into(),
        vec![ami_reconciler::model::Refresh {
            id: "r-1".into(),
            status: "Successful".into(),
            start_time: Some(support::fixtures::day(3)),
            desired: None,
        }],
    );

    // WHEN it plans the rollback to ami-a
    let p = planned(&state, &settings());

    // THEN the new version's refresh is planned: the refresh since version 1
    // rolled out ami-b, not the version this run creates
    assert_eq!(created_image(&p), Some("ami-a"));
    assert_eq!(
        refresh(&p).map(|r| r.image.as_str()),
        Some("ami-a"),
        "{p:#?}"
    );
    assert!(
        !p.warnings
            .iter()
            .any(|w| matches!(w, Warning::RolloutStopped { .. })),
        "{p:#?}"
    );
}

#[test]
fn pruning_keeps_what_a_running_refresh_targets_and_where_its_rollback_returns() {
    // GIVEN versions 1..=6, a rolling group on version 2 whose running
    // refresh targets version 3, both outside the newest 3
    let mut state = rolling(
        State::fixture()
            .versions(&[1, 2, 3, 4, 5, 6])
            .default_version(6),
        2,
        "ami-a",
        &[],
    );
    if let ami_reconciler::model::LaunchSource::Template(spec) = &mut state.managed_groups[0].launch
    {
        spec.version = Some("2".into());
    }
    state.refreshes.insert(
        "web".into(),
        vec![ami_reconciler::model::Refresh {
            id: "r-1".into(),
            status: "InProgress".into(),
            start_time: None,
            desired: Some(ami_reconciler::model::TemplateRef {
                id: Some(TEMPLATE.into()),
                name: None,
                version: Some("3".into()),
            }),
        }],
    );
    let state = state.other_group(group("other", "$Latest"));

    // WHEN it plans
    let p = planned(&state, &settings());

    // THEN only version 1 goes
    assert_eq!(p.deleted_versions(), [1], "{:?}", p.changes);
}

fn refresh_of(version: &str, status: &str) -> ami_reconciler::model::Refresh {
    ami_reconciler::model::Refresh {
        id: "r-1".into(),
        status: status.into(),
        start_time: None,
        desired: Some(ami_reconciler::model::TemplateRef {
            id: Some(TEMPLATE.into()),
            name: None,
            version: Some(version.into()),
        }),
    }
}

#[test]
fn a_rolled_back_image_that_is_gone_is_not_quarantined_and_the_retreat_goes_on() {
    // GIVEN a quarantining group whose rollout of $Latest (version 3) was
    // rolled back, and $Latest's image deregistered since
    let mut state = rolling(
        State::fixture()
            .current(CurrentImage::Missing("ami-a".into()))
            .without_images()
            .image(backup("b", 2)),
        2,
        "ami-a",
        &[("ami-reconciler:rollout-failure", "quarantine")],
    );
    state
        .refreshes
        .insert("web".into(), vec![refresh_of("3", "RollbackSuccessful")]);

    // WHEN it plans
    let p = planned(&state, &settings());

    // THEN no tag is planned on the gone image, and the new version needs
    // nothing that could fail every run
    assert!(
        !p.changes
            .iter()
            .any(|c| matches!(c, Change::QuarantineImage(_))),
        "{:?}",
        p.changes
    );
    let create = p.created().unwrap();
    assert!(create.needs.is_empty());
}

#[test]
fn a_rolled_back_image_that_is_usable_is_quarantined_first_and_the_retreat_waits_for_it() {
    let mut state = rolling(
        State::fixture().image(backup("b", 2)),
        2,
        "ami-a",
        &[("ami-reconciler:rollout-failure", "quarantine")],
    );
    // $Latest (version 3) carries ami-b, which the rollout failed with
    state
        .template
        .versions
        .push(ami_reconciler::model::TemplateVersion {
            number: 4,
            image_id: Some("ami-b".into()),
            block_devices: Vec::new(),
            description: None,
            created: None,
        });
    state.template.default_version = 4;
    state.current_image = CurrentImage::Found(backup("b", 2));
    if let ami_reconciler::model::LaunchSource::Template(spec) = &mut state.managed_groups[0].launch
    {
        spec.version = Some("3".into());
    }
    state
        .refreshes
        .insert("web".into(), vec![refresh_of("4", "RollbackSuccessful")]);

    let p = planned(&state, &settings());

    let order: Vec<&str> = p.changes.iter().map(Change::action).collect();
    assert_eq!(order[0], "quarantine_image", "{order:?}");
    let create = p.created().unwrap();
    assert_eq!(create.to_image, "ami-a");
    assert_eq!(create.needs, [Prerequisite::Quarantined("ami-b".into())]);
}

#[test]
fn a_rolling_group_on_latest_is_pinned_to_the_version_its_behind_instances_run_not_the_target() {
    // GIVEN a group on $Latest whose instances run the default's image
    // (ami-a, version 3) but one, on an older version's image (ami-o, 1)
    let mut state = rolling(State::fixture(), 3, "ami-a", &[]);
    state.template.versions[0].image_id = Some("ami-o".into());
    state.instance_images.insert("i-2".into(), "ami-o".into());

    let p = planned(&state, &settings());

    // THEN it is pinned to version 1, and refreshed to 3 from there
    let pin = placement(&p).unwrap();
    assert_eq!(pin.version, Some(VersionTarget::Number(1)));
    let r = refresh(&p).unwrap();
    assert_eq!((r.version, r.rollback_to), (VersionTarget::Number(3), 1));
    assert!(r.preferences.skip_matching && r.preferences.auto_rollback);
}

#[test]
fn groups_on_a_gone_image_are_named_unless_this_run_takes_them_off_it() {
    // GIVEN $Latest (version 3) on a deregistered image and a newer backup,
    // a managed and an unmanaged group following $Latest, and an unmanaged
    // group pinned to version 2 (the same gone image)
    let state = State::fixture()
        .current(CurrentImage::Missing("ami-a".into()))
        .without_images()
        .image(backup("b", 2))
        .group(group("web", "$Latest"))
        .other_group(group("batch", "$Latest"))
        .other_group(group("legacy", "2"));

    // WHEN it plans
    let p = planned(&state, &settings());

    // THEN only the pinned group is named: the others follow the new version
    let named: Vec<&str> = p
        .warnings
        .iter()
        .filter_map(|w| match w {
            Warning::GroupOnGoneImage { group, .. } => Some(group.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(named, ["legacy"], "{:?}", p.warnings);
    assert!(p.created().is_some());
}

#[test]
fn no_rollback_is_asked_towards_a_version_whose_image_is_an_ssm_parameter() {
    // GIVEN a rolling group pinned to version 1, whose ImageId resolves an
    // SSM parameter (Auto Scaling refuses a rollback to it)
    let mut state = rolling(State::fixture().image(backup("b", 2)), 2, "ami-a", &[]);
    state.template.versions[0].image_id = Some("resolve:ssm:/golden/ami".into());
    if let ami_reconciler::model::LaunchSource::Template(spec) = &mut state.managed_groups[0].launch
    {
        spec.version = Some("1".into());
    }

    let r = planned(&state, &settings());

    // THEN the refresh goes, skipping matching instances, without AutoRollback
    let r = refresh(&r).unwrap();
    assert_eq!(r.rollback_to, 1);
    assert!(r.preferences.skip_matching);
    assert!(!r.preferences.auto_rollback);
}
