//! Builders for states and settings, used by the tests of the planner (unit
//! and property tests) so that each test names only what it is about.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::autoscaling::MixedPolicy;
use crate::model::{
    CurrentImage, Group, Image, LaunchSource, State, Template, TemplateRef, TemplateVersion,
};
use crate::settings::{RawSettings, Settings};

/// The template id fixtures use.
pub const TEMPLATE: &str = "lt-0123456789abcdef0";

/// Day `n` of the fixture calendar (backups are made daily at 03:00 UTC).
pub fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 3, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::days(n)
}

/// Default settings for the fixture template.
pub fn settings() -> Settings {
    RawSettings {
        launch_template_id: Some(TEMPLATE.to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap_or_else(|e| panic!("fixture settings are valid: {e}"))
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
    }
}

impl Image {
    /// The same image tagged `ami-reconciler:skip=true`.
    pub fn skipped(mut self) -> Self {
        self.skip_tagged = true;
        self
    }
    /// The same image in another state.
    pub fn in_state(mut self, state: &str) -> Self {
        self.state = state.to_owned();
        self
    }
    /// The same image, owned by another account (shared with this one).
    pub fn owned_elsewhere(mut self) -> Self {
        self.owned_by_account = false;
        self
    }
    /// The same image with another description.
    pub fn described(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }
}

/// A plain group on `version` of the fixture template.
pub fn group(name: &str, version: &str) -> Group {
    Group {
        name: name.to_owned(),
        launch: LaunchSource::Template(spec(version)),
    }
}

/// A mixed instances group on `version`, with overrides on the given versions.
pub fn mixed_group(name: &str, version: &str, overrides: &[&str]) -> Group {
    Group {
        name: name.to_owned(),
        launch: LaunchSource::Mixed {
            spec: spec(version),
            overrides: overrides.iter().map(|v| spec(v)).collect(),
            policy: MixedPolicy::default(),
        },
    }
}

/// A group on a launch configuration.
pub fn legacy_group(name: &str) -> Group {
    Group {
        name: name.to_owned(),
        launch: LaunchSource::LaunchConfiguration(format!("{name}-lc")),
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

/// The name of the fixture template.
pub const TEMPLATE_NAME: &str = "web";

/// A reference to `version` of the fixture template, by name.
pub fn spec_by_name(version: &str) -> TemplateRef {
    TemplateRef {
        id: None,
        name: Some(TEMPLATE_NAME.to_owned()),
        version: Some(version.to_owned()),
    }
}

impl State {
    /// A converged state: versions 1..=3 with image `ami-a` (day 1) at
    /// version 3, the default; no groups.
    pub fn fixture() -> Self {
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
                    })
                    .collect(),
            },
            current_image: CurrentImage::Found(image.clone()),
            images: vec![image],
            managed_groups: Vec::new(),
            other_groups: Some(Vec::new()),
        }
    }

    /// Replaces the versions with these numbers; the highest carries the current image.
    pub fn versions(mut self, numbers: &[i64]) -> Self {
        let image = Some(self.current_image.image_ref().to_owned());
        self.template.versions = numbers
            .iter()
            .map(|&number| TemplateVersion {
                number,
                image_id: image.clone(),
            })
            .collect();
        self.template.versions.sort_by_key(|v| v.number);
        self
    }

    /// Sets the default version.
    pub fn default_version(mut self, number: i64) -> Self {
        self.template.default_version = number;
        self
    }

    /// Sets the image of `$Latest`, and adds it to the images when it is owned.
    pub fn current(mut self, image: CurrentImage) -> Self {
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

    /// Removes every candidate image (the current image stays as it is).
    pub fn without_images(mut self) -> Self {
        self.images.clear();
        self
    }

    /// Adds a candidate image.
    pub fn image(mut self, image: Image) -> Self {
        self.images.push(image);
        self
    }

    /// Adds a managed (tagged) group.
    pub fn group(mut self, group: Group) -> Self {
        self.managed_groups.push(group);
        self
    }

    /// Adds a group without the managed tag.
    pub fn other_group(mut self, group: Group) -> Self {
        self.other_groups.get_or_insert_with(Vec::new).push(group);
        self
    }

    /// Marks the untagged groups as not read.
    pub fn others_unread(mut self) -> Self {
        self.other_groups = None;
        self
    }
}

impl crate::plan::Plan {
    /// The versions the plan deletes, ascending (empty when none).
    pub fn deleted_versions(&self) -> Vec<i64> {
        self.changes
            .iter()
            .find_map(|c| match c {
                crate::plan::Change::DeleteVersions { versions, .. } => Some(versions.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The groups the plan moves to `$Latest`, in plan order.
    pub fn updated_groups(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter_map(|c| match c {
                crate::plan::Change::UpdateGroup { group, .. } => Some(group.as_str()),
                _ => None,
            })
            .collect()
    }
}
