//! The domain model: what the reconciler observes, as plain data.
//!
//! No SDK type and no I/O: the service adapters (`ec2`, `autoscaling`, `ssm`)
//! convert SDK responses into these types and these types into requests.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The tag that, set to `true`, removes an AMI from consideration (the rollback path).
pub const SKIP_TAG_KEY: &str = "ami-reconciler:skip";
/// Written with [`SKIP_TAG_KEY`] when the reconciler quarantines an image:
/// which group's rollout of it failed, which refresh, with what status.
pub const SKIP_REASON_TAG_KEY: &str = "ami-reconciler:skip-reason";
/// EC2's longest tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// The tags through which a discovered template overrides the run's
/// settings (tag mode only).
pub mod template_tags {
    /// Its lineage selector, `KEY=VALUE` (as `IMAGE_TAG`).
    pub const IMAGE_TAG: &str = "ami-reconciler:image-tag";
    /// Its backup marker (as `AMI_DESCRIPTION_MARKER`).
    pub const MARKER: &str = "ami-reconciler:marker";
    /// Its number of versions kept (as `KEEP_VERSIONS`).
    pub const KEEP_VERSIONS: &str = "ami-reconciler:keep-versions";
    /// Its soak time (as `MIN_IMAGE_AGE`).
    pub const MIN_IMAGE_AGE: &str = "ami-reconciler:min-image-age";
    /// The SSM parameter its image is published to (as `IMAGE_PARAMETER`).
    pub const IMAGE_PARAMETER: &str = "ami-reconciler:image-parameter";
    /// All of them, in the order they are checked.
    pub const ALL: [&str; 5] = [
        IMAGE_TAG,
        MARKER,
        KEEP_VERSIONS,
        MIN_IMAGE_AGE,
        IMAGE_PARAMETER,
    ];
}

/// The tags through which a managed group asks for, tunes and records
/// rollouts of new images to its running instances (instance refreshes).
pub mod group_tags {
    /// `rolling` opts the group in.
    pub const ROLLOUT: &str = "ami-reconciler:rollout";
    /// The value of [`ROLLOUT`] that opts in.
    pub const ROLLING: &str = "rolling";
    /// `MinHealthyPercentage`, 0 to 100 (default 90).
    pub const MIN_HEALTHY: &str = "ami-reconciler:min-healthy";
    /// `CheckpointPercentages`, ascending, e.g. `25,50,100`.
    pub const CHECKPOINTS: &str = "ami-reconciler:checkpoints";
    /// `CheckpointDelay`, as an age (`30m`, `1h`), at most 2 days.
    pub const CHECKPOINT_DELAY: &str = "ami-reconciler:checkpoint-delay";
    /// Written by the reconciler: the image of the last refresh it started.
    /// Remove it to let a failed image be rolled out again.
    pub const ROLLOUT_IMAGE: &str = "ami-reconciler:rollout-image";
    /// CloudWatch alarm names, comma-separated, at most 10: any in `ALARM`
    /// fails the refresh, and Auto Scaling rolls it back.
    pub const ROLLOUT_ALARMS: &str = "ami-reconciler:rollout-alarms";
    /// `BakeTime`, as an age (`30m`, `2h`), at most 48 hours.
    pub const ROLLOUT_BAKE_TIME: &str = "ami-reconciler:rollout-bake-time";
    /// What a failed or rolled-back rollout does to its image:
    /// [`HOLD`] (the default) or [`QUARANTINE`].
    pub const ROLLOUT_FAILURE: &str = "ami-reconciler:rollout-failure";
    /// The image stays where it is; the group is not refreshed to it again.
    pub const HOLD: &str = "hold";
    /// The image is tagged `ami-reconciler:skip=true`, and the template
    /// retreats to the newest good backup.
    pub const QUARANTINE: &str = "quarantine";
}

/// The preferences of an instance refresh the reconciler starts (always
/// `Rolling`, protected and standby instances left alone; the warm-up is
/// the group's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollingPreferences {
    /// `MinHealthyPercentage`: the group's `ami-reconciler:min-healthy`, or
    /// 100 for a one-instance group; `None` sends nothing, so AWS takes the
    /// group's instance maintenance policy, else 90.
    pub min_healthy_percentage: Option<i32>,
    /// `MaxHealthyPercentage`: 200 for a one-instance group, which then
    /// launches the new instance before it terminates the old one.
    pub max_healthy_percentage: Option<i32>,
    /// `CheckpointPercentages`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_percentages: Vec<i32>,
    /// `CheckpointDelay`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_delay_seconds: Option<i64>,
    /// `AlarmSpecification.Alarms`: the group's `ami-reconciler:rollout-alarms`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// `BakeTime`, seconds: the group's `ami-reconciler:rollout-bake-time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake_time_seconds: Option<i64>,
    /// `SkipMatching`: false only when the group is on the target version
    /// already (Auto Scaling compares versions, so it would keep every
    /// instance).
    pub skip_matching: bool,
    /// `AutoRollback`: true when the group is on another version to return
    /// to, whose image is not an SSM parameter.
    pub auto_rollback: bool,
    /// What a failure of this rollout does to its image.
    pub on_failure: OnFailure,
}

/// What a failed or rolled-back rollout does to its image
/// (`ami-reconciler:rollout-failure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The group is not refreshed to the image again; the template keeps it.
    #[default]
    Hold,
    /// The image is tagged `ami-reconciler:skip=true` and the template
    /// retreats to the newest good backup.
    Quarantine,
}

/// An instance refresh as `DescribeInstanceRefreshes` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refresh {
    /// `InstanceRefreshId`.
    pub id: String,
    /// `Status`.
    pub status: String,
    /// `StartTime`.
    pub start_time: Option<DateTime<Utc>>,
    /// The launch template of its `DesiredConfiguration`, if it has one.
    pub desired: Option<TemplateRef>,
}

impl Refresh {
    /// Statuses of a refresh that is not over: AWS refuses another one
    /// meanwhile (`InstanceRefreshInProgress`).
    pub const ACTIVE: [&str; 5] = [
        "Pending",
        "InProgress",
        "Cancelling",
        "RollbackInProgress",
        "Baking",
    ];

    /// True while the refresh is not over.
    pub fn is_active(&self) -> bool {
        Self::ACTIVE.contains(&self.status.as_str())
    }

    /// True while it runs toward `template` at the same version: what the
    /// reconciler would have started.
    pub fn rolls_out(&self, template: &TemplateRef) -> bool {
        let Some(desired) = self
            .desired
            .as_ref()
            .filter(|d| d.version == template.version)
        else {
            return false;
        };
        let same = match (&desired.id, &template.id) {
            (Some(a), Some(b)) => a == b,
            _ => desired.name.is_some() && desired.name == template.name,
        };
        self.is_active() && same
    }
}

/// An Amazon Machine Image as far as the reconciler cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// `ami-...`
    pub id: String,
    /// `CreationDate` as reported by EC2.
    pub created: DateTime<Utc>,
    /// `available`, `pending`, `failed`, `disabled`, ...
    pub state: String,
    /// The image description (may be empty).
    pub description: String,
    /// Whether the image belongs to the account the reconciler runs in.
    pub owned_by_account: bool,
    /// Whether the image carries `ami-reconciler:skip=true`.
    pub skip_tagged: bool,
    /// The snapshot of each EBS device the image maps, by device name.
    pub snapshots: BTreeMap<String, String>,
    /// The size of each EBS device the image maps with a snapshot (GiB),
    /// by device name: a launch may not make that volume smaller.
    pub volume_sizes: BTreeMap<String, i32>,
    /// `RootDeviceName`.
    pub root_device: Option<String>,
    /// `x86_64`, `arm64`, ...; `None` when EC2 did not say.
    pub architecture: Option<String>,
    /// The image's tags (DLM's `aws:dlm:*` ones among them).
    pub tags: BTreeMap<String, String>,
}

impl Image {
    /// True when the image carries the tag `KEY=VALUE`.
    pub fn carries(&self, tag: &Tag) -> bool {
        self.tags.get(&tag.key) == Some(&tag.value)
    }

    /// True when instances can be launched from this image.
    pub fn is_available(&self) -> bool {
        self.state == "available"
    }

    /// True when the image can never become usable again (`available` and
    /// `pending` images are usable or about to be).
    pub fn is_unusable(&self) -> bool {
        matches!(
            self.state.as_str(),
            "failed" | "error" | "deregistered" | "disabled" | "invalid" | "transient"
        )
    }
}

/// Where the `$Latest` version of the managed template takes its image from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentImage {
    /// A plain AMI id that EC2 still describes.
    Found(Image),
    /// A plain AMI id that EC2 no longer knows (deregistered or never shared).
    Missing(String),
    /// `resolve:ssm:...`: the image is managed through Parameter Store.
    FromSsm(String),
}

impl CurrentImage {
    /// The value of `ImageId` in the version.
    pub fn image_ref(&self) -> &str {
        match self {
            CurrentImage::Found(image) => &image.id,
            CurrentImage::Missing(id) | CurrentImage::FromSsm(id) => id,
        }
    }
}

/// One version of the managed launch template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    /// The version number (never reused by EC2).
    pub number: i64,
    /// The `ImageId` field of the version data, if set.
    pub image_id: Option<String>,
    /// `BlockDeviceMappings` of the version data, as read.
    pub block_devices: Vec<BlockDevice>,
    /// `VersionDescription`, if set.
    pub description: Option<String>,
    /// `CreateTime`, when EC2 said.
    pub created: Option<DateTime<Utc>>,
}

/// One entry of a launch template's `BlockDeviceMappings`, every field as
/// read, so that it can be sent back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `VirtualName`.
    pub virtual_name: Option<String>,
    /// `NoDevice`.
    pub no_device: Option<String>,
    /// `Ebs`.
    pub ebs: Option<EbsVolume>,
}

impl BlockDevice {
    /// The snapshot the mapping names, if any.
    pub fn snapshot_id(&self) -> Option<&str> {
        self.ebs.as_ref().and_then(|e| e.snapshot_id.as_deref())
    }
}

/// `Ebs` of a launch template block device mapping, every field as read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EbsVolume {
    /// `Encrypted`.
    pub encrypted: Option<bool>,
    /// `DeleteOnTermination`.
    pub delete_on_termination: Option<bool>,
    /// `Iops`.
    pub iops: Option<i32>,
    /// `KmsKeyId`.
    pub kms_key_id: Option<String>,
    /// `SnapshotId`.
    pub snapshot_id: Option<String>,
    /// `VolumeSize` (GiB).
    pub volume_size: Option<i32>,
    /// `VolumeType`.
    pub volume_type: Option<String>,
    /// `Throughput` (MiB/s).
    pub throughput: Option<i32>,
    /// `VolumeInitializationRate` (MiB/s).
    pub volume_initialization_rate: Option<i32>,
    /// `EbsCardIndex`.
    pub ebs_card_index: Option<i32>,
}

/// The managed launch template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `lt-...`
    pub id: String,
    /// The template name.
    pub name: String,
    /// The version currently marked default.
    pub default_version: i64,
    /// Every version that exists, ascending by number.
    pub versions: Vec<TemplateVersion>,
    /// The template's own tags, when read (always in tag mode; in the other
    /// modes only before a write, to explain a denial in advance).
    pub tags: Option<BTreeMap<String, String>>,
}

/// A launch template found by its tag (`DescribeLaunchTemplates`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTemplate {
    /// `lt-...`
    pub id: String,
    /// The template name.
    pub name: String,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
}

impl Template {
    /// True when the template is known to carry `tag`; `None` when its tags
    /// were not read.
    pub fn carries(&self, tag: &Tag) -> Option<bool> {
        self.tags
            .as_ref()
            .map(|tags| tags.get(&tag.key) == Some(&tag.value))
    }

    /// The `$Latest` version: the highest number.
    pub fn latest(&self) -> Option<&TemplateVersion> {
        self.versions.iter().max_by_key(|v| v.number)
    }

    /// The version with this number, if it exists.
    pub fn version(&self, number: i64) -> Option<&TemplateVersion> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// The image of the version with this number, if it has a plain one.
    pub fn image_of(&self, number: i64) -> Option<&str> {
        self.version(number).and_then(|v| v.image_id.as_deref())
    }
}

/// A launch template reference as written in a group (`LaunchTemplateSpecification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRef {
    /// `LaunchTemplateId`, when present.
    pub id: Option<String>,
    /// `LaunchTemplateName`, when present.
    pub name: Option<String>,
    /// `Version`: a number, `$Latest` or `$Default`; AWS treats an absent version as `$Default`.
    pub version: Option<String>,
}

impl TemplateRef {
    /// True when this reference points at the given template.
    pub fn points_at(&self, template: &Template) -> bool {
        self.names(&template.id, &template.name)
    }

    /// True when this reference names the template with this id and name.
    pub fn names(&self, template_id: &str, template_name: &str) -> bool {
        match (&self.id, &self.name) {
            (Some(id), _) => id == template_id,
            (None, Some(name)) => name == template_name,
            (None, None) => false,
        }
    }

    /// The version number this reference pins, if it pins one.
    pub fn pinned_number(&self) -> Option<i64> {
        self.version.as_deref().and_then(|v| v.trim().parse().ok())
    }

    /// True when the reference already follows `$Latest`.
    pub fn is_latest(&self) -> bool {
        self.version.as_deref() == Some(LATEST)
    }

    /// How the version reads in reports: `$Default` when AWS would assume it.
    pub fn version_label(&self) -> String {
        self.version.clone().unwrap_or_else(|| DEFAULT.to_owned())
    }

    /// The template as named in reports: the id, else the name.
    pub fn template_label(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_default()
    }

    /// The same template at `$Latest`, named by id alone when the id is
    /// known (AWS rejects a specification with both id and name).
    pub fn at_latest(&self) -> TemplateRef {
        TemplateRef {
            version: Some(LATEST.to_owned()),
            ..self.one_identifier()
        }
    }

    /// The same template at version `number`, by one identifier.
    pub fn at_number(&self, number: i64) -> TemplateRef {
        TemplateRef {
            version: Some(number.to_string()),
            ..self.one_identifier()
        }
    }

    /// The same reference with only one identifier: the id when known.
    pub fn one_identifier(&self) -> TemplateRef {
        TemplateRef {
            id: self.id.clone(),
            name: if self.id.is_some() {
                None
            } else {
                self.name.clone()
            },
            version: self.version.clone(),
        }
    }
}

/// EC2's most versions per `DeleteLaunchTemplateVersions` call.
pub const MAX_DELETE_BATCH: usize = 200;

/// The `$Latest` version alias.
pub const LATEST: &str = "$Latest";
/// The `$Default` version alias.
pub const DEFAULT: &str = "$Default";

/// One entry of `MixedInstancesPolicy.LaunchTemplate.Overrides`, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Override {
    /// The override's own `LaunchTemplateSpecification`, when it has one.
    pub template: Option<TemplateRef>,
    /// `InstanceType`.
    pub instance_type: Option<String>,
    /// `WeightedCapacity`.
    pub weighted_capacity: Option<String>,
    /// `ImageId`: an AMI for this instance type alone, which Auto Scaling
    /// launches instead of the template's (arm64 beside x86_64).
    pub image_id: Option<String>,
    /// True when the override selects instances by `InstanceRequirements`,
    /// which the reconciler does not model and so cannot send back.
    pub instance_requirements: bool,
}

/// `MixedInstancesPolicy.LaunchTemplate`: the part of a mixed instances
/// policy the reconciler reads and writes. The instances distribution is
/// never read, so it is never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MixedTemplate {
    /// `LaunchTemplateSpecification`.
    pub spec: TemplateRef,
    /// `Overrides`, in the order read.
    pub overrides: Vec<Override>,
}

impl MixedTemplate {
    /// The same launch template at `$Latest`, overrides as read.
    pub fn at_latest(&self) -> MixedTemplate {
        MixedTemplate {
            spec: self.spec.at_latest(),
            overrides: self.overrides.clone(),
        }
    }
}

/// How an Auto Scaling group launches instances.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchSource {
    /// `LaunchTemplate` on the group.
    Template(TemplateRef),
    /// `MixedInstancesPolicy`.
    Mixed(MixedTemplate),
    /// A launch configuration (legacy): not managed.
    LaunchConfiguration(String),
    /// Neither (should not happen on AWS).
    Unknown,
}

/// What a group update sends, at `$Latest`.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupLaunch {
    /// `LaunchTemplate {LaunchTemplateId | LaunchTemplateName, Version}`.
    Plain(TemplateRef),
    /// `MixedInstancesPolicy.LaunchTemplate` alone: the specification and
    /// the overrides as read, never the instances distribution.
    Mixed(MixedTemplate),
}

/// An Auto Scaling group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// `AutoScalingGroupName`.
    pub name: String,
    /// How it launches instances.
    pub launch: LaunchSource,
    /// `Status` is `Delete in progress`: AWS refuses any update.
    pub being_deleted: bool,
    /// All its tags.
    pub tags: BTreeMap<String, String>,
    /// `DesiredCapacity`.
    pub desired_capacity: i32,
    /// Its instances whose `LifecycleState` is `InService` and that are not
    /// protected from scale-in, by id.
    pub in_service: Vec<String>,
    /// Its in-service instances protected from scale-in: a refresh leaves
    /// them, but they count among the instances behind.
    pub protected: Vec<String>,
}

/// The `Status` of a group that is being deleted.
pub const DELETE_IN_PROGRESS: &str = "Delete in progress";

impl Group {
    /// True when the group asks for rolling rollouts
    /// (`ami-reconciler:rollout=rolling`).
    pub fn is_rolling(&self) -> bool {
        self.tags.get(group_tags::ROLLOUT).map(String::as_str) == Some(group_tags::ROLLING)
    }

    /// The reference the group launches from (plain, or its mixed
    /// instances policy's), if it uses a launch template.
    pub fn launch_ref(&self) -> Option<&TemplateRef> {
        match &self.launch {
            LaunchSource::Template(spec) => Some(spec),
            LaunchSource::Mixed(mixed) => Some(&mixed.spec),
            LaunchSource::LaunchConfiguration(_) | LaunchSource::Unknown => None,
        }
    }

    /// True when the group carries the tag `KEY=VALUE`.
    pub fn carries(&self, tag: &Tag) -> bool {
        self.tags.get(&tag.key) == Some(&tag.value)
    }

    /// Every template reference the group holds (top-level and overrides).
    pub fn template_refs(&self) -> Vec<&TemplateRef> {
        match &self.launch {
            LaunchSource::Template(spec) => vec![spec],
            LaunchSource::Mixed(mixed) => std::iter::once(&mixed.spec)
                .chain(mixed.overrides.iter().filter_map(|o| o.template.as_ref()))
                .collect(),
            LaunchSource::LaunchConfiguration(_) | LaunchSource::Unknown => Vec::new(),
        }
    }
}

/// A tag `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// The tag key.
    pub key: String,
    /// The tag value.
    pub value: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// True for `lt-` followed by hex digits, the form EC2 gives launch template ids.
pub fn is_launch_template_id(s: &str) -> bool {
    s.strip_prefix("lt-").is_some_and(|hex| {
        !hex.is_empty() && hex.len() <= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl State {
    /// The managed groups of this template tagged
    /// `ami-reconciler:rollout=rolling`, by name. A group on another
    /// template is that template's concern (with one named template,
    /// `managed_groups` holds every managed group).
    pub fn rolling_groups(&self) -> Vec<&Group> {
        let mut rolling: Vec<&Group> = self
            .managed_groups
            .iter()
            .filter(|g| g.is_rolling())
            .filter(|g| g.launch_ref().is_some_and(|s| s.points_at(&self.template)))
            .collect();
        rolling.sort_by(|a, b| a.name.cmp(&b.name));
        rolling
    }
}

/// Everything one run observed.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The managed launch template, with all its versions.
    pub template: Template,
    /// Where `$Latest` takes its image from.
    pub current_image: CurrentImage,
    /// Images returned by the backup query (owned by the account, marker in the
    /// description, state `available`); the planner checks every rule again.
    pub images: Vec<Image>,
    /// Groups carrying the managed tag.
    pub managed_groups: Vec<Group>,
    /// When the state was read: backups are aged against it (the soak time).
    pub observed_at: DateTime<Utc>,
    /// Groups without the managed tag (their references protect versions,
    /// and may name a version whose image is gone); `None` when not read.
    pub other_groups: Option<Vec<Group>>,
    /// The `ImageId` of each in-service instance of the managed groups.
    pub instance_images: BTreeMap<String, String>,
    /// The refreshes of the rolling groups that may need one, newest first;
    /// a group not listed was not read.
    pub refreshes: BTreeMap<String, Vec<Refresh>>,
    /// The reads of rollouts failed: whether a refresh runs is unknown.
    pub rollouts_unread: bool,
    /// Images read by id because a group's version or a running instance
    /// uses them and no other read returned them; an id asked for and
    /// absent is gone. `None` when not read.
    pub referenced_images: Option<Vec<Image>>,
    /// The SSM parameter the template's image is published to, as read;
    /// `None` when not read (or none is configured).
    pub image_parameter: Option<PublishedImage>,
}

/// A template's image parameter as `GetParameters` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedImage {
    /// The parameter's name.
    pub name: String,
    pub read: ParameterRead,
}

/// What the read of a parameter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterRead {
    /// SSM lists it among the `InvalidParameters`: it does not exist.
    Missing,
    Found {
        value: String,
        /// `DataType`: `aws:ec2:image` for one this tool wrote.
        data_type: String,
        /// `Type`: `String`, `StringList` or `SecureString`.
        kind: String,
    },
    /// The read failed: what SSM answered.
    Unread(String),
}

/// The `DataType` of an image parameter.
pub const IMAGE_DATA_TYPE: &str = "aws:ec2:image";

/// The region and account a lookup searched, as a "not found" names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// The region the clients call.
    pub region: Option<String>,
    /// The account of the credentials, when they or the function's ARN say.
    pub account: Option<String>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let region = self.region.as_deref().unwrap_or("no region");
        match &self.account {
            Some(account) => write!(f, "region {region}, account {account}"),
            None => write!(
                f,
                "region {region}, the credentials' account (`aws sts get-caller-identity` names it)"
            ),
        }
    }
}
