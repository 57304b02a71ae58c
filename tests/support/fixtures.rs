//! Builders of planner states and settings, so each planner and property
//! test names only what it is about. Extension traits, because the types
//! they build belong to the library and carry no test-only methods there.

use ami_reconciler::model::{
    CurrentImage, Group, Image, LaunchSource, MixedTemplate, Override, State, Template,
    TemplateRef, TemplateVersion,
};
use ami_reconciler::plan::{Change, CreateVersion, Plan, plan};
use ami_reconciler::settings::{Policy, RawSettings, Settings};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The template id fixtures use.
pub const TEMPLATE: &str = "lt-0123456789abcdef0";
/// The name of the fixture template.
pub const TEMPLATE_NAME: &str = "web";

/// Day `n` of the test calendar, 03:00 UTC (DLM's usual hour).
pub fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 3, 0, 0).unwrap() + Duration::days(n)
}

/// Default settings for the fixture template.
pub fn settings() -> Settings {
    RawSettings {
        launch_template_id: Some(TEMPLATE.to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap()
}

/// Default settings with the policy changed by `change`.
pub fn settings_with(change: impl FnOnce(&mut Policy)) -> Settings {
    let mut settings = settings();
    change(&mut settings.policy);
    settings
}

/// The plan of `state` under the run's `settings`: their policy and managed tag.
pub fn planned(state: &State, settings: &Settings) -> Plan {
    plan(state, &settings.policy, &settings.asg_tag)
}

/// A backup image `ami-<name>` from day `n`, available, owned, with the marker.
pub fn backup(name: &str, n: i64) -> Image {
    Image {
        id: format!("ami-{name}"),
        created: day(n),
        state: "available".to_owned(),
        description: format!("Created for policy: policy-1 EC2_BACKUP {name}"),
        owned_by_account: true,
        skip_tagged: false,
        snapshots: Default::default(),
        volume_sizes: Default::default(),
        root_device: None,
        architecture: Some("x86_64".to_owned()),
        tags: Default::default(),
    }
}

/// Variations of an image.
pub trait ImageExt {
    /// The same image tagged `ami-reconciler:skip=true`.
    fn skipped(self) -> Self;
    /// The same image in another state.
    fn in_state(self, state: &str) -> Self;
    /// The same image, owned by another account (shared with this one).
    fn owned_elsewhere(self) -> Self;
    /// The same image with another description.
    fn described(self, description: &str) -> Self;
}

impl ImageExt for Image {
    fn skipped(mut self) -> Self {
        self.skip_tagged = true;
        self
    }
    fn in_state(mut self, state: &str) -> Self {
        self.state = state.to_owned();
        self
    }
    fn owned_elsewhere(mut self) -> Self {
        self.owned_by_account = false;
        self
    }
    fn described(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }
}

/// A plain group on `version` of the fixture template.
pub fn group(name: &str, version: &str) -> Group {
    Group {
        name: name.to_owned(),
        launch: LaunchSource::Template(spec(version)),
        being_deleted: false,
        tags: Default::default(),
        desired_capacity: 0,
        in_service: Vec::new(),
        protected: Vec::new(),
    }
}

/// A mixed instances group on `version`, with an override per entry of
/// `overrides`, each on that version of the fixture template.
pub fn mixed_group(name: &str, version: &str, overrides: &[&str]) -> Group {
    Group {
        name: name.to_owned(),
        launch: LaunchSource::Mixed(MixedTemplate {
            spec: spec(version),
            overrides: overrides
                .iter()
                .map(|v| Override {
                    template: Some(spec(v)),
                    instance_type: Some("t3.micro".to_owned()),
                    weighted_capacity: Some("1".to_owned()),
                    ..Override::default()
                })
                .collect(),
        }),
        being_deleted: false,
        tags: Default::default(),
        desired_capacity: 0,
        in_service: Vec::new(),
        protected: Vec::new(),
    }
}

/// A group on a launch configuration.
pub fn legacy_group(name: &str) -> Group {
    Group {
        name: name.to_owned(),
        launch: LaunchSource::LaunchConfiguration(format!("{name}-lc")),
        being_deleted: false,
        tags: Default::default(),
        desired_capacity: 0,
        in_service: Vec::new(),
        protected: Vec::new(),
    }
}

/// A reference to `version` of the fixture template, by id.
pub fn spec(version: &str) -> TemplateRef {
    TemplateRef {
        id: Some(TEMPLATE.to_owned()),
        name: None,
        version: Some(version.to_owned()),
    }
}

/// A reference to `version` of the fixture template, by name.
pub fn spec_by_name(version: &str) -> TemplateRef {
    TemplateRef {
        id: None,
        name: Some(TEMPLATE_NAME.to_owned()),
        version: Some(version.to_owned()),
    }
}

/// Builders of a [`State`].
pub trait StateExt: Sized {
    /// A converged state: versions 1..=3 with image `ami-a` (day 1) at
    /// version 3, the default; no groups.
    fn fixture() -> Self;
    /// Replaces the versions with these numbers; the highest carries the current image.
    fn versions(self, numbers: &[i64]) -> Self;
    /// Sets the default version.
    fn default_version(self, number: i64) -> Self;
    /// Sets the image of `$Latest`, and adds it to the images when it is owned.
    fn current(self, image: CurrentImage) -> Self;
    /// Removes every candidate image (the current image stays as it is).
    fn without_images(self) -> Self;
    /// Adds a candidate image.
    fn image(self, image: Image) -> Self;
    /// Adds a managed (tagged) group.
    fn group(self, group: Group) -> Self;
    /// Adds a group without the managed tag.
    fn other_group(self, group: Group) -> Self;
    /// Marks the untagged groups as not read.
    fn others_unread(self) -> Self;
}

impl StateExt for State {
    /// A converged state: versions 1..=3 with image `ami-a` (day 1) at
    fn fixture() -> Self {
        let image = backup("a", 1);
        State {
            template: Template {
                id: TEMPLATE.to_owned(),
                name: TEMPLATE_NAME.to_owned(),
                default_version: 3,
                versions: (1..=3)
                    .map(|n| TemplateVersion {
                        number: n,
                        image_id: Some(image.id.clone()),
                        block_devices: Vec::new(),
                        description: None,
                        created: None,
                    })
                    .collect(),
                tags: None,
            },
            current_image: CurrentImage::Found(image.clone()),
            images: vec![image],
            managed_groups: Vec::new(),
            observed_at: day(30),
            other_groups: Some(Vec::new()),
            instance_images: Default::default(),
            refreshes: Default::default(),
            rollouts_unread: false,
            referenced_images: Some(Vec::new()),
            image_parameter: None,
        }
    }

    fn versions(mut self, numbers: &[i64]) -> Self {
        let image = Some(self.current_image.image_ref().to_owned());
        self.template.versions = numbers
            .iter()
            .map(|&number| TemplateVersion {
                number,
                image_id: image.clone(),
                block_devices: Vec::new(),
                description: None,
                created: None,
            })
            .collect();
        self.template.versions.sort_by_key(|v| v.number);
        self
    }

    fn default_version(mut self, number: i64) -> Self {
        self.template.default_version = number;
        self
    }

    fn current(mut self, image: CurrentImage) -> Self {
        if let CurrentImage::Found(img) = &image
            && img.owned_by_account
            && !self.images.contains(img)
        {
            self.images.push(img.clone());
        }
        let id = image.image_ref().to_owned();
        if let Some(latest) = self.template.versions.iter_mut().max_by_key(|v| v.number) {
            latest.image_id = Some(id);
        }
        self.current_image = image;
        self
    }

    fn without_images(mut self) -> Self {
        self.images.clear();
        self
    }

    fn image(mut self, image: Image) -> Self {
        self.images.push(image);
        self
    }

    fn group(mut self, group: Group) -> Self {
        self.managed_groups.push(group);
        self
    }

    fn other_group(mut self, group: Group) -> Self {
        self.other_groups.get_or_insert_with(Vec::new).push(group);
        self
    }

    fn others_unread(mut self) -> Self {
        self.other_groups = None;
        self
    }
}

/// What a plan does, for assertions.
pub trait PlanExt {
    /// The versions the plan deletes, ascending (empty when none).
    fn deleted_versions(&self) -> Vec<i64>;
    /// The groups the plan moves to `$Latest`, in plan order.
    fn updated_groups(&self) -> Vec<&str>;
    /// The version the plan creates, if any.
    fn created(&self) -> Option<&CreateVersion>;
}

impl PlanExt for Plan {
    fn created(&self) -> Option<&CreateVersion> {
        self.changes.iter().find_map(|c| match c {
            Change::CreateVersion(c) => Some(c),
            _ => None,
        })
    }

    fn deleted_versions(&self) -> Vec<i64> {
        self.changes
            .iter()
            .find_map(|c| match c {
                Change::DeleteVersions(d) => Some(d.versions.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn updated_groups(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                Change::UpdateGroup(u) => Some(u.group.as_str()),
                _ => None,
            })
            .collect()
    }
}
