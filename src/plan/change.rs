//! The change vocabulary: what a plan asks apply to do, and what each change
//! needs to have succeeded before it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{
    BlockDevice, GroupLaunch, Image, MAX_DELETE_BATCH, RollingPreferences, TemplateRef,
};

/// An image as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// `ami-...`
    pub image_id: String,
    /// Its `CreationDate`.
    pub creation_date: chrono::DateTime<chrono::Utc>,
}

impl From<&Image> for ImageSummary {
    fn from(image: &Image) -> Self {
        ImageSummary {
            image_id: image.id.clone(),
            creation_date: image.created,
        }
    }
}

/// Something a change needs to have succeeded earlier in the same run.
/// Apply keeps the set of what succeeded; a change whose prerequisite is
/// missing is skipped, never attempted on an assumption that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prerequisite {
    /// `$Latest` is known to be safe after this run's create: the create was
    /// refused outright or answered cleanly, or a version EC2 warned about was
    /// taken back. Holds from the start of a run.
    LatestSafe,
    /// The version this run creates exists, and EC2 answered it cleanly.
    VersionCreated,
    /// The default moved off the version it was.
    DefaultSwitched,
    /// This group moved to the version its change named.
    GroupMoved(String),
    /// This image was tagged `ami-reconciler:skip=true` by this run.
    Quarantined(String),
}

/// The version a default switch targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionTarget {
    /// The version created earlier in the same run (`"created"`).
    Created,
    /// An existing version number.
    #[serde(untagged)]
    Number(i64),
}

/// One change. Serialized with an `action` tag (see docs/report.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Tag an image whose rollout failed `ami-reconciler:skip=true`.
    QuarantineImage(QuarantineImage),
    /// Create a version from `$Latest` with only `ImageId` changed.
    CreateVersion(CreateVersion),
    /// Make a version the default.
    SetDefaultVersion(SetDefaultVersion),
    /// Publish the default version's image to the template's SSM parameter.
    PutImageParameter(PutImageParameter),
    /// Make a managed group use `$Latest`, or a rolling group a number.
    UpdateGroup(UpdateGroup),
    /// Replace a rolling group's instances that run an older image.
    StartInstanceRefresh(StartInstanceRefresh),
    /// Delete old versions.
    DeleteVersions(DeleteVersions),
}

/// Create a version from `$Latest` with only `ImageId` changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateVersion {
    pub template_id: String,
    /// The `$Latest` number the version is based on (`SourceVersion`).
    pub source_version: i64,
    /// The image `$Latest` has now.
    pub from_image: String,
    pub to_image: String,
    pub reason: String,
    /// `VersionDescription` of the new version.
    pub version_description: String,
    /// `ClientToken`: the same source version and image give the same
    /// token, so retries and concurrent runs create one version.
    pub client_token: String,
    /// What a restore copies should EC2 warn about the new version: the
    /// source, or the default when the source is itself unverified; `None`
    /// when there is no good version to copy (the warned one is deleted).
    #[serde(skip)]
    pub restore: Option<Restore>,
    /// The source's block device mappings, sent as they are when one names
    /// a snapshot: EC2 drops snapshots a new version would otherwise inherit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<BlockDevice>,
    /// The quarantine of `$Latest`'s image, when this version retreats from it.
    #[serde(skip)]
    pub needs: Vec<Prerequisite>,
}

/// Tag an image `ami-reconciler:skip=true` and `ami-reconciler:skip-reason`:
/// a rolling group asked for it (`ami-reconciler:rollout-failure=quarantine`)
/// and its rollout of the image failed or was rolled back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantineImage {
    /// `ami-...`
    pub image: String,
    /// The group whose rollout failed.
    pub group: String,
    /// The refresh that failed.
    pub refresh: String,
    /// Its status: `Failed`, `RollbackSuccessful` or `RollbackFailed`.
    pub status: String,
    /// The value of `ami-reconciler:skip-reason`.
    pub skip_reason: String,
    pub reason: String,
}

/// The version a restore copies, with its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub version: i64,
    pub image: String,
    /// That version's mappings when one names a snapshot (see
    /// [`CreateVersion::block_devices`]).
    pub block_devices: Vec<BlockDevice>,
}

/// Make a version the default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetDefaultVersion {
    pub template_id: String,
    /// The current default.
    pub from: i64,
    pub to: VersionTarget,
    pub reason: String,
}

/// Publish the image of the default version (after this run) to the
/// template's SSM parameter, `String` with `DataType` `aws:ec2:image`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PutImageParameter {
    pub template_id: String,
    /// The parameter's name.
    pub parameter: String,
    /// The value it holds; `None` when it does not exist.
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    /// True when it exists (`Overwrite`): a create must not overwrite a
    /// parameter another writer made since it was read.
    #[serde(skip)]
    pub overwrite: bool,
    /// The default switch, when the image is the new default's.
    #[serde(skip)]
    pub needs: Vec<Prerequisite>,
}

/// Make a managed group use `$Latest`; a rolling group, a version number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateGroup {
    /// `AutoScalingGroupName`.
    pub group: String,
    /// The template the group uses (id, else name).
    pub template: String,
    /// The version the group uses now.
    pub from: String,
    /// `$Latest`; for a rolling group a version number, or `created`.
    pub to: String,
    /// True when the group uses a `MixedInstancesPolicy`.
    pub mixed_instances_policy: bool,
    pub reason: String,
    /// What to send; for the version this run creates, apply puts its number in.
    #[serde(skip)]
    pub launch: GroupLaunch,
    /// The number a rolling group moves to; `None` for `$Latest`.
    #[serde(skip)]
    pub version: Option<VersionTarget>,
    /// `VersionCreated` when `$Latest`'s image is unusable until the version
    /// this run creates exists: without it the group stays where it is.
    #[serde(skip)]
    pub needs: Vec<Prerequisite>,
}

/// Start an instance refresh of a rolling group (`ami-reconciler:rollout=rolling`)
/// whose in-service instances do not all run `image`. The desired
/// configuration is the group's template at the default version by number,
/// and the group is on a number too, so Auto Scaling can roll it back
/// (`AutoRollback`); on success the group is left on the new number.
/// With `SkipMatching`, Auto Scaling keeps the instances that already use
/// the desired version and instance types (it compares versions, not
/// images: `outdated` counts by image and is a lower bound).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartInstanceRefresh {
    /// `AutoScalingGroupName`.
    pub group: String,
    /// The template the group launches from (apply puts the number in).
    #[serde(skip)]
    pub template: TemplateRef,
    /// The version rolled out: the default after this run.
    pub version: VersionTarget,
    /// The version the group is on when the refresh starts: where a
    /// rollback returns it.
    pub rollback_to: i64,
    /// The image of `version`: what the refresh rolls out.
    pub image: String,
    /// In-service instances on another image, of `in_service`.
    pub outdated: usize,
    pub in_service: usize,
    /// How instances are replaced.
    #[serde(flatten)]
    pub preferences: RollingPreferences,
    pub reason: String,
    /// The group's `ami-reconciler:rollout-image` before this run: restored
    /// if the start fails.
    #[serde(skip)]
    pub previous_rollout_image: Option<String>,
    /// The version this run creates, when the image is its; the group's
    /// move, when it reaches `$Latest` by this run.
    #[serde(skip)]
    pub needs: Vec<Prerequisite>,
}

/// Delete old versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeleteVersions {
    pub template_id: String,
    /// Version numbers, ascending.
    pub versions: Vec<i64>,
    pub reason: String,
    /// What the whole deletion needs: the version the keep window counted.
    #[serde(skip)]
    pub needs: Vec<Prerequisite>,
    /// What single versions need: the old default needs the switch away
    /// from it; a version only some groups pin needs their moves.
    #[serde(skip)]
    pub each_needs: BTreeMap<i64, Vec<Prerequisite>>,
}

impl Change {
    /// The `action` name, as in the JSON report.
    pub fn action(&self) -> &'static str {
        match self {
            Change::QuarantineImage(_) => "quarantine_image",
            Change::CreateVersion(_) => "create_version",
            Change::SetDefaultVersion(_) => "set_default_version",
            Change::PutImageParameter(_) => "put_image_parameter",
            Change::UpdateGroup(_) => "update_group",
            Change::StartInstanceRefresh(_) => "start_instance_refresh",
            Change::DeleteVersions(_) => "delete_versions",
        }
    }

    /// True when the change writes to the launch template (the writes the
    /// template's `ami-reconciler:managed` tag must allow).
    pub fn writes_template(&self) -> bool {
        matches!(
            self,
            Change::CreateVersion(_) | Change::SetDefaultVersion(_) | Change::DeleteVersions(_)
        )
    }

    /// What the change acts on: a template id or a group name.
    pub fn target(&self) -> &str {
        match self {
            Change::QuarantineImage(c) => &c.image,
            Change::CreateVersion(c) => &c.template_id,
            Change::SetDefaultVersion(c) => &c.template_id,
            Change::PutImageParameter(c) => &c.parameter,
            Change::DeleteVersions(c) => &c.template_id,
            Change::UpdateGroup(c) => &c.group,
            Change::StartInstanceRefresh(c) => &c.group,
        }
    }

    /// The most calls the change can make: it starts only when all of them
    /// fit before the deadline. A create may be judged, sent again, judged
    /// again, its duplicate deleted, then restored or taken back; a refresh
    /// records the image, starts, reads, and puts the record back; a
    /// deletion sends a batch per 200 versions.
    pub fn worst_case_calls(&self) -> u32 {
        match self {
            Change::CreateVersion(_) => 7,
            Change::QuarantineImage(_)
            | Change::SetDefaultVersion(_)
            | Change::PutImageParameter(_)
            | Change::UpdateGroup(_) => 1,
            Change::StartInstanceRefresh(_) => 4,
            Change::DeleteVersions(c) => c.versions.len().div_ceil(MAX_DELETE_BATCH).max(1) as u32,
        }
    }

    /// What the change as a whole needs to have succeeded before it.
    pub fn needs(&self) -> Vec<Prerequisite> {
        match self {
            Change::QuarantineImage(_) => Vec::new(),
            Change::CreateVersion(c) => c.needs.clone(),
            Change::SetDefaultVersion(c) => match c.to {
                VersionTarget::Created => vec![Prerequisite::VersionCreated],
                VersionTarget::Number(_) => Vec::new(),
            },
            Change::PutImageParameter(c) => c.needs.clone(),
            Change::UpdateGroup(c) => c.needs.clone(),
            Change::StartInstanceRefresh(c) => c.needs.clone(),
            Change::DeleteVersions(c) => c.needs.clone(),
        }
    }

    /// Why the change is skipped when `missing` did not succeed.
    pub fn skipped_because(&self, missing: &Prerequisite) -> &'static str {
        match (self, missing) {
            (Change::UpdateGroup(c), Prerequisite::VersionCreated) if c.version.is_none() => {
                "$Latest's image is unusable and the version that replaces it was not created"
            }
            (Change::DeleteVersions(_), Prerequisite::VersionCreated) => {
                "the keep window counted a version that was not created"
            }
            (_, Prerequisite::VersionCreated) => "the new version was not created",
            (_, Prerequisite::LatestSafe) => {
                "$Latest is not known to be safe: EC2's answer to the new version was not seen, or it warned and the version could not be taken back"
            }
            (_, Prerequisite::DefaultSwitched) => "the default switch failed",
            (_, Prerequisite::GroupMoved(_)) => "the group's move failed",
            (_, Prerequisite::Quarantined(_)) => {
                "the image whose rollout failed could not be quarantined"
            }
        }
    }
}
