//! The planner's safety rules as properties over generated states: versions
//! with gaps and the default anywhere, groups of every shape (managed and
//! not, plain and mixed, by number, `$Latest`, `$Default` or no version, on
//! this template or another), images of every date, state, owner and tag,
//! and `KEEP_VERSIONS` from 1 to 10.
//!
//! Convergence is checked against `Account`, a small model of the account
//! written for these tests: the plan's writes act on a few maps as EC2 and
//! Auto Scaling would, and the account is observed again as `observe` does.
//!
//! Tag mode is checked over generated fleets: up to three templates, each
//! of its own lineage (or none), over one pool of images of several
//! lineages and architectures, a database's included.
//!
//! Each property runs 1,000 generated cases; `PROPTEST_CASES` overrides.

use std::collections::{BTreeMap, BTreeSet};

mod support;

use ami_reconciler::model::{
    CurrentImage, DEFAULT, DiscoveredTemplate, Group, Image, LATEST, LaunchSource, MixedTemplate,
    Override, State, Tag, Template, TemplateRef, TemplateVersion,
};
use ami_reconciler::plan::{
    Change, CreateVersion, DeleteVersions, Observation, Observed, Plan, Prerequisite, Read,
    SetDefaultVersion, UpdateGroup, VersionTarget, client_token, plan, plan_run, template_policies,
};
use ami_reconciler::policy::Policy;
use ami_reconciler::settings::Settings;
use proptest::prelude::*;
use proptest::sample::Index;
use support::fixtures::{
    ImageExt, PlanExt, StateExt, backup, group, mixed_group, planned, settings, settings_with,
    spec, spec_by_name,
};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 1_000;
/// Another template in the same region, which groups may use too.
const OTHER_TEMPLATE: &str = "lt-0ffffffffffffffff";
const MARKER: &str = "EC2_BACKUP";
/// The lineage tag key generated images may carry, and the workload's value.
const LINEAGE_KEY: &str = "aws:dlm:lifecycle-policy-id";
const LINEAGE: &str = "policy-web";

fn config() -> ProptestConfig {
    // proptest reads PROPTEST_CASES into its default configuration.
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        default
    } else {
        ProptestConfig {
            cases: CASES,
            ..default
        }
    }
}

// --- generated states ----------------------------------------------------

/// One generated state and the settings it is planned with.
#[derive(Debug, Clone)]
struct Case {
    state: State,
    settings: Settings,
}

fn image_state() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => Just("available"),
        1 => Just("pending"),
        1 => Just("failed"),
        1 => Just("deregistered"),
        1 => Just("disabled"),
    ]
}

/// An image `ami-<name>` from a day in the first two weeks (same days are
/// likely, to exercise ties), in any state, owned or not, a backup or not,
/// skip-tagged or not.
fn image(name: String) -> impl Strategy<Value = Image> {
    (
        0i64..14,
        image_state(),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        prop_oneof![Just(None), Just(Some(LINEAGE)), Just(Some("policy-other"))],
    )
        .prop_map(move |(day, state, owned, marked, skipped, arm, lineage)| {
            let mut image = backup(&name, day).in_state(state);
            if arm {
                image.architecture = Some("arm64".to_owned());
            }
            if let Some(policy) = lineage {
                image.tags.insert(LINEAGE_KEY.to_owned(), policy.to_owned());
            }
            if !owned {
                image = image.owned_elsewhere();
            }
            if !marked {
                image = image.described("golden image, made by hand");
            }
            if skipped {
                image = image.skipped();
            }
            image
        })
}

fn images() -> impl Strategy<Value = Vec<Image>> {
    (0usize..7).prop_flat_map(|n| (0..n).map(|i| image(format!("{i:02}"))).collect::<Vec<_>>())
}

/// A version as a group writes it: a number (existing or not), `$Latest`,
/// `$Default`, or none at all (AWS reads that as `$Default`).
fn version(highest: i64) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        5 => (1..=highest + 1).prop_map(|n| Some(n.to_string())),
        2 => Just(Some(LATEST.to_owned())),
        1 => Just(Some(DEFAULT.to_owned())),
        1 => Just(None),
    ]
}

/// A reference to the managed template by id or by name, or to another template.
fn template_ref(highest: i64) -> impl Strategy<Value = TemplateRef> {
    (0u8..10, version(highest)).prop_map(|(target, version)| {
        let mut r = match target {
            0..=5 => spec(""),
            6 | 7 => spec_by_name(""),
            _ => TemplateRef {
                id: Some(OTHER_TEMPLATE.to_owned()),
                name: None,
                version: None,
            },
        };
        r.version = version;
        r
    })
}

fn launch(highest: i64) -> impl Strategy<Value = LaunchSource> {
    prop_oneof![
        5 => template_ref(highest).prop_map(LaunchSource::Template),
        3 => (template_ref(highest), prop::collection::vec(template_ref(highest), 0..3)).prop_map(
            |(spec, overrides)| LaunchSource::Mixed(MixedTemplate {
                spec,
                overrides: overrides
                    .into_iter()
                    .map(|template| Override {
                        template: Some(template),
                        ..Override::default()
                    })
                    .collect(),
            })
        ),
        1 => Just(LaunchSource::LaunchConfiguration("legacy-lc".to_owned())),
        1 => Just(LaunchSource::Unknown),
    ]
}

/// Groups with distinct names; `true` marks a managed (tagged) group.
fn groups(highest: i64) -> impl Strategy<Value = Vec<(bool, Group)>> {
    prop::collection::vec((prop::bool::ANY, launch(highest)), 0..7).prop_map(|gs| {
        gs.into_iter()
            .enumerate()
            .map(|(i, (managed, launch))| {
                let name = format!("{}-{i}", if managed { "web" } else { "batch" });
                (
                    managed,
                    Group {
                        name,
                        launch,
                        being_deleted: false,
                        tags: Default::default(),
                        desired_capacity: 0,
                        in_service: Vec::new(),
                        protected: Vec::new(),
                    },
                )
            })
            .collect()
    })
}

/// Where `$Latest` takes its image from.
#[derive(Debug, Clone)]
enum Current {
    /// One of the candidate images.
    Candidate(Index),
    /// An image EC2 knows that the backup query did not return.
    Elsewhere(Image),
    Missing,
    FromSsm,
}

fn current() -> impl Strategy<Value = Current> {
    prop_oneof![
        6 => any::<Index>().prop_map(Current::Candidate),
        2 => image("elsewhere".to_owned()).prop_map(Current::Elsewhere),
        1 => Just(Current::Missing),
        1 => Just(Current::FromSsm),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (1i64..=15)
        .prop_flat_map(|highest| {
            (
                Just(highest),
                prop::collection::vec(prop::bool::weighted(0.7), highest as usize),
                any::<Index>(),
                images(),
                current(),
                groups(highest),
                1u32..=10,
                prop::bool::ANY,
                prop_oneof![Just(0i64), Just(18), Just(20)],
            )
        })
        .prop_map(
            |(highest, present, default, images, current, groups, keep, lineage, soak_days)| {
                // Versions 1..=highest with gaps; the highest always exists.
                let numbers: Vec<i64> = (1..=highest)
                    .filter(|n| *n == highest || present[(*n - 1) as usize])
                    .collect();
                let default = numbers[default.index(numbers.len())];
                let current = match current {
                    Current::Candidate(i) if !images.is_empty() => {
                        CurrentImage::Found(images[i.index(images.len())].clone())
                    }
                    Current::Elsewhere(image) => CurrentImage::Found(image),
                    Current::FromSsm => CurrentImage::FromSsm("resolve:ssm:/golden/ami".into()),
                    _ => CurrentImage::Missing("ami-gone".to_owned()),
                };
                let mut state = State::fixture()
                    .without_images()
                    .versions(&numbers)
                    .default_version(default);
                for image in images {
                    state = state.image(image);
                }
                let mut state = state.current(current);
                for (managed, group) in groups {
                    state = if managed {
                        state.group(group)
                    } else {
                        state.other_group(group)
                    };
                }
                Case {
                    state,
                    settings: settings_with(|p| {
                        p.keep_versions = keep;
                        p.image_tag = lineage.then(|| Tag {
                            key: LINEAGE_KEY.to_owned(),
                            value: LINEAGE.to_owned(),
                        });
                        p.min_image_age = chrono::Duration::days(soak_days);
                    }),
                }
            },
        )
}

// --- reading a plan ------------------------------------------------------

/// The rule as the README states it, written out again rather than borrowed
/// from the planner: owned by the account, available, the marker in the
/// description, not skip-tagged, in the lineage (`IMAGE_TAG`), of the current
/// image's architecture when known, and soaked (`MIN_IMAGE_AGE`).
fn eligible(image: &Image, state: &State, settings: &Settings) -> bool {
    let architecture = match &state.current_image {
        CurrentImage::Found(current) => current.architecture.as_deref(),
        _ => None,
    };
    image.owned_by_account
        && image.state == "available"
        && image.description.contains(MARKER)
        && !image.skip_tagged
        && settings
            .policy
            .image_tag
            .as_ref()
            .is_none_or(|t| image.tags.get(&t.key) == Some(&t.value))
        && (architecture.is_none() || image.architecture.as_deref() == architecture)
        && image.created + settings.policy.min_image_age <= state.observed_at
}

fn created(p: &Plan) -> Option<(&str, i64)> {
    p.changes.iter().find_map(|c| match c {
        Change::CreateVersion(CreateVersion {
            to_image,
            source_version,
            ..
        }) => Some((to_image.as_str(), *source_version)),
        _ => None,
    })
}

fn deletion(p: &Plan) -> Option<&DeleteVersions> {
    p.changes.iter().find_map(|c| match c {
        Change::DeleteVersions(d) => Some(d),
        _ => None,
    })
}

/// True when `observe` would read the untagged groups for this state, were
/// they not read yet.
fn asks_for_other_groups(state: &State, policy: &Policy) -> bool {
    let unread = State {
        other_groups: None,
        ..state.clone()
    };
    plan(&unread, policy, &settings().asg_tag)
        .reads
        .contains(&Read::OtherGroups)
}

fn highest(state: &State) -> i64 {
    state.template.latest().map_or(0, |v| v.number)
}

/// The default version once the plan is applied.
fn default_after(state: &State, p: &Plan) -> i64 {
    p.changes
        .iter()
        .find_map(|c| match c {
            Change::SetDefaultVersion(SetDefaultVersion { to, .. }) => Some(match to {
                VersionTarget::Created => highest(state) + 1,
                VersionTarget::Number(n) => *n,
            }),
            _ => None,
        })
        .unwrap_or(state.template.default_version)
}

fn all_groups(state: &State) -> impl Iterator<Item = (&Group, bool)> {
    let managed = state.managed_groups.iter().map(|g| (g, true));
    let others = state.other_groups.iter().flatten().map(|g| (g, false));
    managed.chain(others)
}

// --- the model -----------------------------------------------------------

/// The account the plan acts on, as plain maps: the template's versions and
/// their images, the default, the images EC2 knows, and the groups. Each
/// write does what EC2 or Auto Scaling would do, and refuses what they refuse.
#[derive(Debug, Clone)]
struct Account {
    template: Template,
    /// Version number -> `ImageId`.
    versions: BTreeMap<i64, Option<String>>,
    default: i64,
    /// EC2 never reuses a version number.
    next_number: i64,
    /// Every image `DescribeImages` by id can answer.
    known_images: Vec<Image>,
    /// What the backup query returns.
    backups: Vec<Image>,
    managed: Vec<Group>,
    others: Vec<Group>,
    observed_at: chrono::DateTime<chrono::Utc>,
}

impl Account {
    fn from_state(state: &State) -> Self {
        let versions: BTreeMap<i64, Option<String>> = state
            .template
            .versions
            .iter()
            .map(|v| (v.number, v.image_id.clone()))
            .collect();
        let mut known_images = state.images.clone();
        if let CurrentImage::Found(image) = &state.current_image {
            known_images.push(image.clone());
        }
        Account {
            template: state.template.clone(),
            next_number: versions.keys().max().map_or(1, |n| n + 1),
            versions,
            default: state.template.default_version,
            known_images,
            backups: state.images.clone(),
            managed: state.managed_groups.clone(),
            others: state.other_groups.clone().unwrap_or_default(),
            observed_at: state.observed_at,
        }
    }

    /// Applies every change in order; `Err` is what AWS would have refused.
    fn apply(&mut self, plan: &Plan) -> Result<(), String> {
        let mut created = None;
        for change in &plan.changes {
            match change {
                Change::CreateVersion(CreateVersion {
                    source_version,
                    to_image,
                    ..
                }) => {
                    if !self.versions.contains_key(source_version) {
                        return Err(format!("source version {source_version} does not exist"));
                    }
                    let number = self.next_number;
                    self.next_number += 1;
                    self.versions.insert(number, Some(to_image.clone()));
                    created = Some(number);
                }
                Change::SetDefaultVersion(SetDefaultVersion { to, .. }) => {
                    let number = match to {
                        VersionTarget::Created => created.ok_or("no version was created")?,
                        VersionTarget::Number(n) => *n,
                    };
                    if !self.versions.contains_key(&number) {
                        return Err(format!("default {number} does not exist"));
                    }
                    self.default = number;
                }
                Change::UpdateGroup(UpdateGroup { group, .. }) => {
                    let Some(g) = self.managed.iter_mut().find(|g| g.name == *group) else {
                        return Err(format!("{group} is not a managed group"));
                    };
                    match &mut g.launch {
                        LaunchSource::Template(spec)
                        | LaunchSource::Mixed(MixedTemplate { spec, .. }) => {
                            spec.version = Some(LATEST.to_owned());
                        }
                        other => return Err(format!("{group} has no launch template: {other:?}")),
                    }
                }
                // Generated groups are never rolling: no refresh is planned,
                // and no rollout failed to quarantine an image.
                Change::StartInstanceRefresh(c) => {
                    return Err(format!("{} is not a rolling group", c.group));
                }
                Change::QuarantineImage(c) => {
                    return Err(format!("{} was never rolled out", c.image));
                }
                // Generated policies publish no image.
                Change::PutImageParameter(c) => {
                    return Err(format!("{} is not configured", c.parameter));
                }
                Change::DeleteVersions(DeleteVersions { versions, .. }) => {
                    for n in versions {
                        if *n == self.default {
                            return Err(format!("version {n} is the default"));
                        }
                        if self.versions.remove(n).is_none() {
                            return Err(format!("version {n} does not exist"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the account as `observe` does: groups outside the managed tag
    /// only when a deletion is possible.
    fn observe(&self, policy: &Policy) -> State {
        let (&latest, image_ref) = self.versions.last_key_value().expect("a version exists");
        let image_ref = image_ref.clone().expect("$Latest has an ImageId");
        let current_image = if image_ref.starts_with("resolve:ssm:") {
            CurrentImage::FromSsm(image_ref)
        } else {
            match self.known_images.iter().find(|i| i.id == image_ref) {
                Some(image) => CurrentImage::Found(image.clone()),
                None => CurrentImage::Missing(image_ref),
            }
        };
        let mut state = State {
            template: Template {
                default_version: self.default,
                versions: self
                    .versions
                    .iter()
                    .map(|(&number, image_id)| TemplateVersion {
                        number,
                        image_id: image_id.clone(),
                        block_devices: Vec::new(),
                        description: None,
                        created: None,
                    })
                    .collect(),
                tags: None,
                ..self.template.clone()
            },
            current_image,
            images: self.backups.clone(),
            managed_groups: self.managed.clone(),
            observed_at: self.observed_at,
            other_groups: None,
            instance_images: Default::default(),
            refreshes: Default::default(),
            rollouts_unread: false,
            referenced_images: Some(Vec::new()),
            image_parameter: None,
        };
        debug_assert_eq!(state.template.latest().map(|v| v.number), Some(latest));
        if asks_for_other_groups(&state, policy) {
            state.other_groups = Some(self.others.clone());
        }
        state
    }
}

// --- the model's own tests -------------------------------------------------

#[test]
fn the_model_creates_a_version_with_the_next_number_and_makes_it_the_default() {
    let state = State::fixture()
        .versions(&[1, 3])
        .default_version(1)
        .image(backup("b", 2));
    let p = planned(&state, &settings());
    let mut account = Account::from_state(&state);

    account.apply(&p).unwrap();

    assert_eq!(account.versions.get(&4), Some(&Some("ami-b".to_owned())));
    assert_eq!(account.default, 4);
    let again = account.observe(&settings().policy);
    assert_eq!(again.current_image, CurrentImage::Found(backup("b", 2)));
}

#[test]
fn the_model_refuses_to_delete_the_default_version_as_ec2_does() {
    let state = State::fixture().versions(&[1, 2, 3, 4]).default_version(4);
    let mut p = planned(&state, &settings());
    assert_eq!(p.deleted_versions(), vec![1]);
    if let Some(Change::DeleteVersions(DeleteVersions { versions, .. })) = p.changes.last_mut() {
        versions.push(4);
    }

    let refused = Account::from_state(&state).apply(&p).unwrap_err();

    assert_eq!(refused, "version 4 is the default");
}

#[test]
fn the_model_moves_only_the_top_level_reference_of_a_mixed_group() {
    let state = State::fixture().group(mixed_group("spot", "1", &["2"]));
    let mut account = Account::from_state(&state);

    account.apply(&planned(&state, &settings())).unwrap();

    let LaunchSource::Mixed(MixedTemplate { spec, overrides }) = &account.managed[0].launch else {
        panic!("still mixed")
    };
    assert_eq!(spec.version.as_deref(), Some(LATEST));
    let override_version = overrides[0]
        .template
        .as_ref()
        .and_then(|t| t.version.as_deref());
    assert_eq!(override_version, Some("2"));
}

#[test]
fn the_model_reads_other_groups_only_when_a_deletion_is_possible() {
    let converged = State::fixture().other_group(group("batch", "1"));
    assert_eq!(
        Account::from_state(&converged)
            .observe(&settings().policy)
            .other_groups,
        None
    );

    let prunable = converged.versions(&[1, 2, 3, 4]).default_version(4);
    assert_eq!(
        Account::from_state(&prunable)
            .observe(&settings().policy)
            .other_groups
            .map(|g| g.len()),
        Some(1)
    );
}

#[test]
fn the_model_refuses_a_group_update_of_an_untagged_group() {
    let state = State::fixture().other_group(group("batch", "1"));
    let mut p = planned(&state, &settings());
    let mut moved = planned(&State::fixture().group(group("batch", "1")), &settings());
    p.changes.append(&mut moved.changes);

    let refused = Account::from_state(&state).apply(&p).unwrap_err();

    assert_eq!(refused, "batch is not a managed group");
}

// --- properties ------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// The default after the planned switch is never deleted; the default
    /// before it only when the switch happens, and the deletion says it
    /// relies on that switch.
    #[test]
    fn the_default_is_never_deleted(case in case()) {
        let Case { state, settings } = case;
        let p = planned(&state, &settings);
        let gone = p.deleted_versions();
        prop_assert!(!gone.contains(&default_after(&state, &p)), "{p:#?}");
        let current = state.template.default_version;
        if gone.contains(&current) {
            let needs = &deletion(&p).unwrap().each_needs;
            prop_assert!(
                needs.get(&current).is_some_and(|n| n.contains(&Prerequisite::DefaultSwitched)),
                "{:#?}", p
            );
        }
    }

    /// A version any group references by number (top level, mixed or
    /// override; managed or not) is never deleted, except a managed group's
    /// top-level reference that its planned move releases, and then the
    /// deletion names that group as what it relies on.
    #[test]
    fn a_version_a_group_pins_is_deleted_only_when_the_groups_move_releases_it(case in case()) {
        let Case { state, settings } = case;
        let p = planned(&state, &settings);
        let gone = p.deleted_versions();
        let moving = p.updated_groups();
        for (group, managed) in all_groups(&state) {
            for (index, r) in group.template_refs().into_iter().enumerate() {
                let Some(n) = r.pinned_number() else { continue };
                if !r.points_at(&state.template) || !gone.contains(&n) {
                    continue;
                }
                prop_assert!(
                    managed && index == 0 && moving.contains(&group.name.as_str()),
                    "version {} deleted while {} pins it: {:#?}", n, group.name, p
                );
                let needs = &deletion(&p).unwrap().each_needs;
                let moved = Prerequisite::GroupMoved(group.name.clone());
                prop_assert!(
                    needs.get(&n).is_some_and(|n| n.contains(&moved)),
                    "version {} relies on {} moving: {:#?}", n, group.name, needs
                );
            }
        }
    }

    /// Counting the version the plan creates, the newest `KEEP_VERSIONS`
    /// versions are never deleted; every deleted version exists.
    #[test]
    fn the_newest_keep_versions_are_never_deleted(case in case()) {
        let Case { state, settings } = case;
        let p = planned(&state, &settings);
        let mut after: Vec<i64> = state.template.versions.iter().map(|v| v.number).collect();
        if created(&p).is_some() {
            after.push(highest(&state) + 1);
        }
        after.sort_unstable_by(|a, b| b.cmp(a));
        let gone = p.deleted_versions();
        for kept in after.iter().take(settings.policy.keep_versions as usize) {
            prop_assert!(!gone.contains(kept), "version {} is among the newest {}: {:#?}", kept, settings.policy.keep_versions, p);
        }
        prop_assert!(gone.iter().all(|n| after.contains(n)), "{:#?}", p);
        if let Some(deletion) = deletion(&p) {
            prop_assert_eq!(
                deletion.needs.contains(&Prerequisite::VersionCreated),
                created(&p).is_some()
            );
        }
    }

    /// The image a new version gets is the newest eligible backup, and it is
    /// never older than a current image that is neither skip-tagged nor unusable.
    #[test]
    fn the_chosen_image_is_eligible_and_never_older_than_a_usable_current_image(case in case()) {
        let Case { state, settings } = case;
        let p = planned(&state, &settings);
        let Some((to_image, source)) = created(&p) else { return Ok(()) };
        prop_assert_eq!(source, highest(&state));
        let chosen = state.images.iter().find(|i| i.id == to_image);
        prop_assert!(
            chosen.is_some_and(|i| eligible(i, &state, &settings)),
            "{} is not eligible: outside the lineage, of another architecture, not soaked, or not a backup",
            to_image
        );
        let chosen = chosen.unwrap();
        prop_assert!(
            state
                .images
                .iter()
                .filter(|i| eligible(i, &state, &settings))
                .all(|i| i.created <= chosen.created),
            "{} is not the newest backup", to_image
        );
        prop_assert!(!matches!(state.current_image, CurrentImage::FromSsm(_)));
        if let CurrentImage::Found(current) = &state.current_image
            && !current.skip_tagged
            && !current.is_unusable()
        {
            prop_assert!(chosen.created > current.created, "{} replaces the newer {}", to_image, current.id);
        }
    }

    /// Applying the plan to the model and observing again plans nothing: one
    /// run converges. Every write is one AWS would accept.
    #[test]
    fn applying_the_plan_converges_in_one_step(case in case()) {
        let Case { state, settings } = case;
        let first = planned(&state, &settings);
        let mut account = Account::from_state(&state);

        let applied = account.apply(&first);

        prop_assert_eq!(applied, Ok(()), "{:#?}", first);
        let second = planned(&account.observe(&settings.policy), &settings);
        prop_assert!(second.is_converged(), "first {:#?}\nthen {:#?}", first, second.changes);
    }

    /// The plan depends on the state only: planning twice, or with the images
    /// and groups in another order (as the APIs may return them), gives the same plan.
    #[test]
    fn planning_twice_or_in_another_order_gives_the_same_plan(
        case in case(),
        seed in any::<u64>(),
    ) {
        let Case { state, settings } = case;
        let p = planned(&state, &settings);
        prop_assert_eq!(&p, &planned(&state, &settings));

        let mut shuffled = state.clone();
        let rotate = |len: usize| if len == 0 { 0 } else { (seed % len as u64) as usize };
        let k = rotate(shuffled.images.len());
        shuffled.images.rotate_left(k);
        shuffled.images.reverse();
        let k = rotate(shuffled.managed_groups.len());
        shuffled.managed_groups.rotate_left(k);
        shuffled.managed_groups.reverse();
        if let Some(others) = shuffled.other_groups.as_mut() {
            others.reverse();
        }
        prop_assert_eq!(&p, &planned(&shuffled, &settings));
    }

    /// Groups without the managed tag, and managed groups without a launch
    /// template, are never changed.
    #[test]
    fn untagged_groups_never_appear_in_the_plan(case in case()) {
        let Case { state, settings } = case;
        let p = planned(&state, &settings);
        let movable: BTreeSet<&str> = state
            .managed_groups
            .iter()
            .filter(|g| matches!(g.launch, LaunchSource::Template(_) | LaunchSource::Mixed { .. }))
            .map(|g| g.name.as_str())
            .collect();
        for name in p.updated_groups() {
            prop_assert!(movable.contains(name), "{} is not a managed group with a template", name);
        }
    }

    /// The untagged groups matter to a deletion only: without them no other
    /// change differs (they add warnings, a group on a gone image).
    #[test]
    fn untagged_groups_change_no_change_but_a_deletion(case in case()) {
        let Case { state, settings } = case;
        let read = planned(&state, &settings);
        if !asks_for_other_groups(&state, &settings.policy) {
            let unread = planned(&State { other_groups: None, ..state.clone() }, &settings);
            prop_assert_eq!(&read.changes, &unread.changes);
            prop_assert!(deletion(&read).is_none());
        }
    }

    /// Whatever the template id and image, the `ClientToken` fits EC2's limit
    /// (64 ASCII characters) and names the source version and the image.
    #[test]
    fn client_tokens_fit_ec2s_limit_and_differ_per_source_and_image(
        template in "lt-[0-9a-f]{1,40}",
        source in 1i64..100_000,
        image in "ami-[0-9a-f]{1,40}",
    ) {
        let token = client_token(&template, source, &image);
        prop_assert!(token.len() <= 64 && token.is_ascii(), "{}", token);
        prop_assert_ne!(&token, &client_token(&template, source + 1, &image));
        prop_assert_ne!(&token, &client_token(&template, source, &format!("{image}0")));
    }
}

// --- many templates (tag mode) --------------------------------------------

/// Several templates over one pool of images, as tag mode observes them:
/// template `i` of lineage `policy-i` (unless its tag is missing), its
/// `$Latest` on an image of the pool, one managed group on version 1.
#[derive(Debug, Clone)]
struct Fleet {
    discovered: Vec<DiscoveredTemplate>,
    states: Vec<State>,
}

/// Images of the lineages `policy-0` to `policy-2` and a database's.
fn pool() -> impl Strategy<Value = Vec<Image>> {
    (0usize..10).prop_flat_map(|n| {
        (0..n)
            .map(|i| (image(format!("{i:02}")), 0usize..4))
            .collect::<Vec<_>>()
            .prop_map(|images| {
                images
                    .into_iter()
                    .map(|(mut image, lineage)| {
                        let policy = match lineage {
                            3 => "policy-db".to_owned(),
                            k => format!("policy-{k}"),
                        };
                        image.tags.insert(LINEAGE_KEY.to_owned(), policy);
                        image
                    })
                    .collect()
            })
    })
}

fn fleet() -> impl Strategy<Value = Fleet> {
    (
        pool(),
        prop::collection::vec(
            (prop::bool::weighted(0.85), any::<Index>(), 1i64..=4),
            1..=3,
        ),
    )
        .prop_map(|(pool, templates)| {
            let mut discovered = Vec::new();
            let mut states = Vec::new();
            for (i, (has_lineage, current, highest)) in templates.into_iter().enumerate() {
                let id = format!("lt-{i}");
                let lineage = format!("{LINEAGE_KEY}=policy-{i}");
                let mut tags = BTreeMap::new();
                if has_lineage {
                    tags.insert("ami-reconciler:image-tag".to_owned(), lineage);
                }
                discovered.push(DiscoveredTemplate {
                    id: id.clone(),
                    name: format!("fleet-{i}"),
                    tags,
                });
                let current = if pool.is_empty() {
                    CurrentImage::Missing("ami-gone".to_owned())
                } else {
                    CurrentImage::Found(pool[current.index(pool.len())].clone())
                };
                let mut g = group(&format!("fleet-{i}-web"), "1");
                if let LaunchSource::Template(spec) = &mut g.launch {
                    spec.id = Some(id.clone());
                }
                let mut state = State::fixture()
                    .without_images()
                    .versions(&(1..=highest).collect::<Vec<_>>())
                    .default_version(1)
                    .current(current)
                    .group(g);
                state.template.id = id;
                state.template.name = format!("fleet-{i}");
                for image in &pool {
                    state = state.image(image.clone());
                }
                states.push(state);
            }
            Fleet { discovered, states }
        })
}

/// What tag mode's observe hands the planner for these states.
fn observed(discovered: &[DiscoveredTemplate], states: &[State], run: &Settings) -> Observed {
    let own = template_policies(discovered, &run.policy);
    Observed {
        templates: discovered
            .iter()
            .zip(states)
            .zip(own)
            .map(|((template, state), own)| match own {
                Ok(policy) => Observation::Ready {
                    state: state.clone(),
                    policy,
                },
                Err(warning) => Observation::Skipped {
                    template: template.clone(),
                    warning,
                },
            })
            .collect(),
        stray_groups: Vec::new(),
        discovery_tag: Some(Tag {
            key: "ami-reconciler:managed".into(),
            value: "true".into(),
        }),
        warnings: Vec::new(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// No template gets an image outside its own lineage or of another
    /// architecture than its current image; among several templates none
    /// is planned without a lineage.
    #[test]
    fn no_template_gets_another_lineages_or_architectures_image(fleet in fleet()) {
        let run = plan_run(&observed(&fleet.discovered, &fleet.states, &settings()), &settings().asg_tag);
        let several = fleet.states.len() > 1;
        for (i, (p, state)) in run.plans.iter().zip(&fleet.states).enumerate() {
            let has_lineage = fleet.discovered[i].tags.contains_key("ami-reconciler:image-tag");
            if several && !has_lineage {
                prop_assert!(p.is_converged());
                let skipped = matches!(p.warnings[..], [ami_reconciler::warning::Warning::NoLineage { .. }]);
                prop_assert!(skipped, "{:?}", p.warnings);
                continue;
            }
            let Some((to_image, _)) = created(p) else { continue };
            let chosen = state.images.iter().find(|img| img.id == to_image).unwrap();
            if has_lineage {
                let policy = format!("policy-{i}");
                prop_assert_eq!(chosen.tags.get(LINEAGE_KEY), Some(&policy), "{} of another lineage", to_image);
            }
            if let CurrentImage::Found(current) = &state.current_image
                && let (Some(ours), Some(theirs)) = (&current.architecture, &chosen.architecture)
            {
                prop_assert_eq!(ours, theirs);
            }
        }
    }

    /// Applying every template's plan and observing again plans nothing.
    #[test]
    fn a_fleet_converges_in_one_step(fleet in fleet()) {
        let run = settings();
        let first = plan_run(&observed(&fleet.discovered, &fleet.states, &run), &run.asg_tag);
        let own = template_policies(&fleet.discovered, &run.policy);
        let mut after = Vec::new();
        for ((state, p), own) in fleet.states.iter().zip(&first.plans).zip(&own) {
            let mut account = Account::from_state(state);
            prop_assert_eq!(account.apply(p), Ok(()), "{:#?}", p);
            after.push(account.observe(own.as_ref().unwrap_or(&run.policy)));
        }
        let second = plan_run(&observed(&fleet.discovered, &after, &run), &run.asg_tag);
        prop_assert!(second.is_converged(), "first {:#?}\nthen {:#?}", first.plans, second.plans);
    }
}
