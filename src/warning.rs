//! Warnings: what an operator should know that the run will not change.
//!
//! Each variant is declared once, in the [`warnings!`] list below: its data,
//! its severity and its sentence. Its stable `code` is its name in
//! snake_case. The JSON report lists the sentences under `warnings` and, in
//! the same order, each warning's code and data under `warning_details`
//! (docs/report.md lists the codes).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::error::ErrorKind;
use crate::model::{SKIP_TAG_KEY, Tag};

/// Whether a person must act for the reconciler to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is blocked.
    Notice,
    /// The reconciler is blocked for this target until a person acts.
    NeedsAttention,
}

/// Declares [`Warning`] with, for each variant, its severity and sentence:
/// `Severity Name { fields } => ("format", args...)`. The sentence's format
/// string and arguments may use the fields by name.
macro_rules! warnings {
    ($(
        $(#[$attr:meta])*
        $severity:ident $name:ident {
            $( $(#[$field_attr:meta])* $field:ident : $ty:ty ),* $(,)?
        } => ($($sentence:tt)*)
    ),* $(,)?) => {
        /// Something the run noticed and left alone.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Warning {
            $(
                $(#[$attr])*
                $name { $( $(#[$field_attr])* $field: $ty ),* },
            )*
        }

        impl Warning {
            /// Every code, in declaration order.
            pub const CODES: &[&str] = &[$(stringify!($name)),*];

            /// Whether a person must act.
            pub fn severity(&self) -> Severity {
                match self {
                    $( Warning::$name { .. } => Severity::$severity, )*
                }
            }

            fn name(&self) -> &'static str {
                match self {
                    $( Warning::$name { .. } => stringify!($name), )*
                }
            }
        }

        impl fmt::Display for Warning {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( Warning::$name { $($field),* } => write!(f, $($sentence)*), )*
                }
            }
        }

        /// `{"code": ..., field: value, ...}`, fields in declaration order.
        impl Serialize for Warning {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("code", &self.code())?;
                match self {
                    $( Warning::$name { $($field),* } => {
                        $( map.serialize_entry(stringify!($field), $field)?; )*
                    } )*
                }
                map.end()
            }
        }
    };
}

warnings! {
    /// `$Latest` takes its image from an SSM parameter (`resolve:ssm:`).
    Notice ImageFromSsm {
        template: String,
        /// The `resolve:ssm:` reference.
        parameter: String,
    } => ("launch template {template} $Latest takes its image from SSM ({parameter}); the image is left alone"),
    /// No image qualifies as a backup.
    Notice NoBackup {
        /// The description marker searched for.
        marker: String,
    } => ("no available AMI owned by this account has {marker:?} in its description (and no {SKIP_TAG_KEY}=true tag); the image is left alone"),
    /// `$Latest` already uses an image at least as new as the newest backup.
    Notice NotMovingBackwards {
        template: String,
        /// The image `$Latest` uses.
        current: String,
        /// Its creation date.
        current_created: DateTime<Utc>,
        /// The newest backup.
        newest: String,
        /// Its creation date.
        newest_created: DateTime<Utc>,
    } => ("launch template {template} uses {current} ({current_created}), which is not older than the newest backup {newest} ({newest_created}); not moving backwards"),
    /// A backup's snapshot is larger than the volume the template gives
    /// that device: EC2 would refuse every launch
    /// (`InvalidBlockDeviceMapping`), so the backup is not promoted.
    NeedsAttention VolumeTooSmall {
        template: String,
        image: String,
        /// The device name both map.
        device: String,
        /// The template's `VolumeSize` for it (GiB).
        template_size: i32,
        /// The volume size the image maps there (GiB): its snapshot's size
        /// for a backup made by `CreateImage` or DLM.
        image_size: i32,
    } => ("launch template {template} gives {device} {template_size} GiB, but backup {image} maps {image_size} GiB there: EC2 would refuse every launch from it; not promoted. Raise the template's VolumeSize for {device} to at least {image_size}, or remove it"),
    /// The template sizes a device the chosen backup does not map, while
    /// the backup's root device is another: the setting makes an extra
    /// empty volume, and the root keeps the snapshot's size.
    Notice DeviceNotInImage {
        template: String,
        image: String,
        device: String,
        /// The image's `RootDeviceName`, when EC2 gave it.
        root_device: Option<String>,
    } => ("launch template {template} sizes {device}, which backup {image} does not map{}: instances get an extra empty volume there",
        root_device.as_ref().map(|r| format!(" (its root device is {r})")).unwrap_or_default()),
    /// A group launches from a version whose image is deregistered,
    /// disabled or missing: it cannot launch (scale-out fails).
    NeedsAttention GroupOnGoneImage {
        group: String,
        template: String,
        /// The version the group names (`7`, `$Default`, `$Latest`).
        version: String,
        /// The image that version resolves to, or `None` when the version
        /// itself no longer exists.
        image: Option<String>,
        /// `deregistered`, `disabled`, `missing`, ...
        state: String,
        /// True when the group carries the managed tag (it is moved as
        /// usual); an unmanaged group is never moved.
        managed: bool,
    } => ("group {group} launches from launch template {template} version {version}, {}; it cannot launch instances{}",
        match image {
            Some(image) => format!("whose image {image} is {state}"),
            None => "which no longer exists".to_owned(),
        },
        if *managed { "" } else { " (not managed: move it to a good version by hand)" }),
    /// A managed group launches from a launch configuration.
    Notice LaunchConfiguration {
        group: String,
        /// The managed tag it carries.
        tag: Tag,
        /// `LaunchConfigurationName`.
        launch_configuration: String,
    } => ("group {group} is tagged {tag} but uses launch configuration {launch_configuration}; skipped (migrate it to a launch template)"),
    /// A managed group has neither a launch template nor a launch configuration.
    Notice NoLaunchTemplate {
        group: String,
        /// The managed tag it carries.
        tag: Tag,
    } => ("group {group} is tagged {tag} but has no launch template; skipped"),
    /// A managed group's mixed instances policy has overrides chosen by
    /// instance requirements, which the reconciler cannot send back intact.
    Notice InstanceRequirements {
        group: String,
    } => ("group {group} has mixed instances overrides chosen by instance requirements, which the reconciler cannot send back unchanged; skipped (move it to $Latest by hand)"),
    /// A managed group uses a launch template other than the managed one.
    /// Nobody keeps that template's `$Latest` safe, so the group is left alone.
    Notice OtherTemplate {
        group: String,
        /// The template it uses (id, else name).
        template: String,
    } => ("group {group} is managed but uses launch template {template}, not the managed one; skipped (nobody keeps that template's $Latest safe)"),
    /// A managed group is being deleted; AWS refuses updates to it.
    Notice GroupBeingDeleted {
        group: String,
    } => ("group {group} is being deleted; skipped (the versions it pins stay)"),
    /// Another writer created a version of the template while this run
    /// created its own; the run's version, built from the older `$Latest`,
    /// was deleted again so that the other writer's changes stay `$Latest`.
    Notice RacedAnotherWriter {
        template: String,
        /// The `$Latest` this run built from.
        source_version: i64,
        /// The version this run created (and deleted).
        created: i64,
    } => ("launch template {template}: another version was created after version {source_version} while this run created version {created}; version {created} lacked those changes and was deleted again, the next run builds from the new $Latest"),
    /// The template maps a device to a snapshot, and the new image maps the
    /// same device to another: instances get the template's snapshot, not the
    /// backup's.
    Notice SnapshotOverridesImage {
        template: String,
        /// `DeviceName`.
        device: String,
        /// The template's snapshot, kept in the new version.
        template_snapshot: String,
        /// The new image.
        image: String,
        /// The image's snapshot for that device.
        image_snapshot: String,
    } => ("launch template {template} maps {device} to {template_snapshot}, which overrides {image_snapshot} of {image}: instances get the template's snapshot, not the backup's (remove SnapshotId from the template's mapping to use the image's)"),
    /// EC2 created a version with this image but answered with a `Warning`
    /// (invalid parameters); `$Latest` was restored to a copy of the version
    /// before it, and no version is created for this image again until a
    /// person acts. The run counts as failed.
    NeedsAttention VersionWarned {
        template: String,
        /// The image of the refused version.
        image: String,
        /// The version EC2 warned about.
        version: i64,
        /// EC2's warnings, `code: message`.
        messages: String,
    } => ("launch template {template}: EC2 warned about version {version} with {image} ({messages}); $Latest is a copy of the last good version, and no version is made for {image} until a person acts (fix the template with a new version, or tag the image ami-reconciler:skip=true)"),
    /// Backups newer than the chosen one whose architecture differs from
    /// the template's current image: never launched from this template.
    Notice OtherArchitecture {
        /// The images, oldest first.
        images: Vec<String>,
        /// The architecture of the template's current image.
        architecture: String,
    } => ("{} not {architecture}, the architecture of the template's image; never used by this template",
        match images.as_slice() {
        [one] => format!("newer backup {one} is"),
        _ => format!("newer backups {} are", images.join(", ")),
        }),
    /// A backup newer than the chosen one waits for its soak time
    /// (`MIN_IMAGE_AGE`).
    Notice Soaking {
        image: String,
        /// Its creation date.
        created: DateTime<Utc>,
        /// When it becomes eligible.
        usable_from: DateTime<Utc>,
    } => ("newer backup {image} (created {created}) waits for MIN_IMAGE_AGE: usable from {usable_from}"),
    /// Versions could be pruned, but the groups outside the managed tag,
    /// which may pin them, were not read.
    Notice OtherGroupsNotRead {
        template: String,
        /// The versions that could have been pruned.
        versions: Vec<i64>,
    } => ("{} of {template} could be pruned, but the groups outside the managed tag were not read; nothing pruned",
        versions_label(versions)),
    /// Versions kept because the default switch or group update their
    /// deletion relied on failed.
    Notice VersionsKept {
        template: String,
        /// The versions kept.
        versions: Vec<i64>,
    } => ("{} of {template} kept: the default switch or group update they relied on failed",
        versions_label(versions)),
    /// EC2 refused to delete one version (the call itself succeeded).
    Notice VersionNotDeleted {
        template: String,
        version: i64,
        /// EC2's error code.
        error_code: String,
        /// EC2's message.
        error: String,
    } => ("launch template {template} version {version} was not deleted: {error_code}: {error}"),
    /// A deletion batch failed after earlier batches went through.
    Notice DeletedBeforeFailure {
        template: String,
        /// The versions that were deleted.
        versions: Vec<i64>,
    } => ("launch template {template}: {} deleted before a batch failed",
        versions_label(versions)),
    /// No launch template carries the discovery tag (`LAUNCH_TEMPLATE_TAG`).
    NeedsAttention NoTemplateTagged {
        /// The discovery tag.
        tag: Tag,
    } => ("no launch template carries the tag {tag}; nothing is managed"),
    /// A discovered template's `ami-reconciler:*` tag is malformed: the
    /// template is skipped.
    NeedsAttention BadTemplateTag {
        template: String,
        /// The tag key.
        tag: String,
        /// What is wrong, naming the tag, the expected form and the value.
        problem: String,
    } => ("launch template {template} skipped: its tag {problem}"),
    /// Several templates are managed and this one has no lineage selector:
    /// it is skipped, as it would take another workload's backup.
    NeedsAttention NoLineage {
        template: String,
        /// How many templates are managed.
        templates: usize,
    } => ("launch template {template} skipped: {templates} templates are managed and it has no {} tag, so it could take another workload's backup (tag it with the lineage of its backups: a workload tag DLM copies or adds to them, e.g. workload=web)",
        crate::model::template_tags::IMAGE_TAG),
    /// Reading one discovered template failed: it is skipped, the others go on.
    NeedsAttention TemplateNotRead {
        template: String,
        /// The error kind (docs/report.md).
        kind: ErrorKind,
        error: String,
    } => ("launch template {template} skipped: {error}; the other templates go on"),
    /// A newer backup waits: a rolling group's refresh follows `$Latest`
    /// and is not over.
    Notice ImageWaitsForRollout {
        template: String,
        /// The newer backup.
        image: String,
        /// The group whose refresh runs.
        group: String,
        /// The refresh; `None` when the refreshes could not be read, so
        /// one may be running.
        refresh: Option<String>,
    } => ("launch template {template}: newer backup {image} waits{}", match refresh {
        Some(refresh) => format!(" until instance refresh {refresh} of group {group} is over (one rollout at a time: a new default now would start another rollout over the instances this one is replacing)"),
        None => format!(": the instance refreshes of rolling group {group} could not be read, and one may be running"),
    }),
    /// The reads rollouts need failed: no refresh is started this run.
    NeedsAttention RolloutNotRead {
        /// The rolling groups.
        groups: Vec<String>,
        error: String,
    } => ("no rollout this run: {error} (rolling groups {}); the rest of the run goes on",
        groups.join(", ")),
    /// The image parameter's name, filled in for this template, breaks
    /// SSM's naming rules: nothing is published.
    NeedsAttention BadImageParameter {
        template: String,
        /// The name and the rule it breaks.
        problem: String,
    } => ("launch template {template}: its image parameter would be {problem}; the image is not published (change IMAGE_PARAMETER or the template's ami-reconciler:image-parameter tag)"),
    /// The image parameter could not be read: not written this run.
    NeedsAttention ImageParameterNotRead {
        template: String,
        parameter: String,
        /// What SSM answered.
        error: String,
    } => ("launch template {template}: image parameter {parameter} could not be read ({error}); not written this run"),
    /// The image parameter exists with another type or data type: SSM
    /// cannot change a parameter to `aws:ec2:image`.
    NeedsAttention ImageParameterNotImage {
        template: String,
        parameter: String,
        /// Its `Type`.
        kind: String,
        /// Its `DataType`.
        data_type: String,
    } => ("launch template {template}: image parameter {parameter} exists as a {kind} of data type {data_type}, and SSM cannot change a parameter to aws:ec2:image; not written (delete it, and the next run creates it, or choose another name)"),
    /// The image parameter did not hold the image of the default version
    /// that was already in place: written again. Also on the first run
    /// that publishes it.
    Notice ImageParameterDiffered {
        template: String,
        parameter: String,
        /// The value it held; `None` when it did not exist.
        value: Option<String>,
        /// The default version's image.
        image: String,
    } => ("launch template {template}: image parameter {parameter} held {}, not {image}, the image of the default version already in place; written (if this repeats, SSM's asynchronous validation refuses {image}, or another writer sets the parameter)",
        value.as_deref().unwrap_or("nothing (it did not exist)")),
    /// Several templates would publish to the same parameter: none does.
    NeedsAttention ImageParameterShared {
        template: String,
        parameter: String,
        /// Every template whose image would go there.
        templates: String,
    } => ("launch template {template}: image parameter {parameter} would be the parameter of each of {templates}; none of them is published (put {{template_name}} or {{template_id}} in the name)"),
    /// EventBridge refused some of the run's events (no permission, an
    /// entry too large): they are lost; the run's changes stand. A bus that
    /// does not exist refuses nothing: EventBridge drops the events.
    NeedsAttention EventsRefused {
        /// The bus.
        bus: String,
        /// Events lost.
        lost: usize,
        /// Events the run had.
        events: usize,
        /// The first refusal, `code: message`.
        error: String,
    } => ("event bus {bus}: {lost} of {events} events not delivered, refused ({error}); the run's changes stand"),
    /// Some of the run's events could not be sent after one retry
    /// (throttled, failing inside EventBridge, the deadline): they are lost;
    /// the run's changes stand.
    Notice EventsNotSent {
        bus: String,
        /// Events lost.
        lost: usize,
        /// Events the run had.
        events: usize,
        /// The first failure, `code: message`.
        error: String,
    } => ("event bus {bus}: {lost} of {events} events not delivered after one retry ({error}); the run's changes stand"),
    /// A rolling group's refresh is still running: the rollout waits.
    Notice RolloutRunning {
        group: String,
        /// `InstanceRefreshId`.
        refresh: String,
        /// Its status.
        status: String,
        /// In-service instances on another image.
        outdated: usize,
    } => ("group {group}: instance refresh {refresh} is {status} ({outdated} in-service instances on another image); the rollout waits for it"),
    /// The refresh started for this image is over and instances still run
    /// older images: it is not started again for the same image.
    NeedsAttention RolloutStopped {
        group: String,
        image: String,
        /// The newest refresh's status, if AWS still describes it.
        last_status: Option<String>,
        /// In-service instances on another image.
        outdated: usize,
    } => ("group {group}: the instance refresh for {image} ended ({}) with {outdated} in-service instances on another image; not started again for {image} (a newer backup or a new template version starts the next one; to retry this one, start an instance refresh by hand)",
        last_status
        .as_deref()
        .unwrap_or("no longer described: older than six weeks")),
    /// A rolling group's rollout tag is malformed: no refresh for it.
    NeedsAttention BadRolloutTag {
        group: String,
        /// The tag key.
        tag: String,
        /// What is wrong.
        problem: String,
    } => ("group {group}: no rollout: its tag {problem}"),
    /// A rolling group already carries Auto Scaling's 50 tags, so the record
    /// of a rollout (`ami-reconciler:rollout-image`) cannot be written: no
    /// refresh is started without it.
    NeedsAttention RolloutTagLimit {
        group: String,
        /// The tags it carries.
        tags: usize,
    } => ("group {group}: no rollout: it carries {tags} tags, Auto Scaling's limit, and the rollout's record needs one more ({}); remove a tag", crate::model::group_tags::ROLLOUT_IMAGE),
    /// A rolling group uses a mixed instances policy: no refresh for it.
    Notice RolloutUnsupported {
        group: String,
    } => ("group {group} is tagged {}={} but uses a mixed instances policy, which rollouts do not support; no instance refresh",
        crate::model::group_tags::ROLLOUT,
        crate::model::group_tags::ROLLING),
    /// A refresh could not be started and the group's record of it could
    /// not be put back.
    Notice RolloutTagNotRestored {
        group: String,
        /// The image the tag names now.
        image: String,
    } => ("group {group}: the instance refresh was not started and its tag {} still names {image}; the group's refresh history shows none ran, so the next run starts it",
        crate::model::group_tags::ROLLOUT_IMAGE),
    /// Writes are planned on a template that lacks the tag the deployed
    /// policies' write statements require.
    Notice TemplateNotTaggedForWrites {
        template: String,
        /// The tag it lacks.
        tag: Tag,
    } => ("launch template {template} does not carry the tag {tag}: the write statements of the deployed policies (policies/reconciler.json, template.yaml) will deny every change to it (tag it, or grant the writes another way)"),
}

impl Warning {
    /// The stable machine code, as in the JSON report: the variant's name in
    /// snake_case.
    pub fn code(&self) -> String {
        snake_case(self.name())
    }

    /// Every code, in snake_case.
    pub fn codes() -> Vec<String> {
        Self::CODES.iter().map(|name| snake_case(name)).collect()
    }
}

fn snake_case(name: &str) -> String {
    let mut code = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                code.push('_');
            }
            code.push(c.to_ascii_lowercase());
        } else {
            code.push(c);
        }
    }
    code
}

/// `1, 2, 3`.
pub fn join(numbers: &[i64]) -> String {
    numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `version 3` or `versions 1, 2`.
pub fn versions_label(numbers: &[i64]) -> String {
    match numbers {
        [one] => format!("version {one}"),
        _ => format!("versions {}", join(numbers)),
    }
}

/// Serializes warnings as the report's two keys: `warnings` (the sentences)
/// and `warning_details` (code and data, in the same order). Used with
/// `#[serde(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings(pub Vec<Warning>);

impl Serialize for Warnings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sentences: Vec<String> = self.0.iter().map(Warning::to_string).collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("warnings", &sentences)?;
        map.serialize_entry("warning_details", &self.0)?;
        map.end()
    }
}

impl std::ops::Deref for Warnings {
    type Target = Vec<Warning>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Warnings {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_keys_carry_sentences_and_codes_in_the_same_order() {
        let warnings = Warnings(vec![
            Warning::NoBackup {
                marker: "EC2_BACKUP".into(),
            },
            Warning::VersionsKept {
                template: "lt-1".into(),
                versions: vec![1, 2],
            },
        ]);

        let json = serde_json::to_value(&warnings).unwrap();

        assert_eq!(
            json["warnings"][1],
            "versions 1, 2 of lt-1 kept: the default switch or group update they relied on failed"
        );
        assert_eq!(json["warning_details"][0]["code"], "no_backup");
        assert_eq!(json["warning_details"][1]["code"], "versions_kept");
        assert_eq!(
            json["warning_details"][1]["versions"],
            serde_json::json!([1, 2])
        );
    }

    #[test]
    fn a_code_is_the_variant_name_in_snake_case() {
        let warning = Warning::InstanceRequirements { group: "g".into() };
        assert_eq!(warning.code(), "instance_requirements");
        assert_eq!(snake_case("OtherGroupsNotRead"), "other_groups_not_read");
        assert!(Warning::codes().contains(&"image_waits_for_rollout".to_owned()));
    }

    #[test]
    fn the_details_list_the_fields_in_order_after_the_code() {
        let warning = Warning::TemplateNotRead {
            template: "lt-1".into(),
            kind: ErrorKind::DescribeTemplateVersionsFailed,
            error: "throttled".into(),
        };
        assert_eq!(
            serde_json::to_string(&warning).unwrap(),
            r#"{"code":"template_not_read","template":"lt-1","kind":"DescribeTemplateVersionsFailed","error":"throttled"}"#
        );
    }
}
