//! Warnings: what an operator should know that the run will not change.
//!
//! Each variant carries its data and renders its own sentence. The JSON
//! report lists the sentences under `warnings` and, in the same order, each
//! warning's stable `code` and data under `warning_details`
//! (docs/report.md lists the codes).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::model::{SKIP_TAG_KEY, Tag};

/// Something the run noticed and left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Warning {
    /// `$Latest` takes its image from an SSM parameter (`resolve:ssm:`).
    ImageFromSsm {
        /// The launch template.
        template: String,
        /// The `resolve:ssm:` reference.
        parameter: String,
    },
    /// No image qualifies as a backup.
    NoBackup {
        /// The description marker searched for.
        marker: String,
    },
    /// `$Latest` already uses an image at least as new as the newest backup.
    NotMovingBackwards {
        /// The launch template.
        template: String,
        /// The image `$Latest` uses.
        current: String,
        /// Its creation date.
        current_created: DateTime<Utc>,
        /// The newest backup.
        newest: String,
        /// Its creation date.
        newest_created: DateTime<Utc>,
    },
    /// A managed group launches from a launch configuration.
    LaunchConfiguration {
        /// The group.
        group: String,
        /// The managed tag it carries.
        tag: Tag,
        /// `LaunchConfigurationName`.
        launch_configuration: String,
    },
    /// A managed group has neither a launch template nor a launch configuration.
    NoLaunchTemplate {
        /// The group.
        group: String,
        /// The managed tag it carries.
        tag: Tag,
    },
    /// A managed group's mixed instances policy has overrides chosen by
    /// instance requirements, which the reconciler cannot send back intact.
    InstanceRequirements {
        /// The group.
        group: String,
    },
    /// A managed group uses a launch template other than the managed one.
    /// Nobody keeps that template's `$Latest` safe, so the group is left alone.
    OtherTemplate {
        /// The group.
        group: String,
        /// The template it uses (id, else name).
        template: String,
    },
    /// A managed group is being deleted; AWS refuses updates to it.
    GroupBeingDeleted {
        /// The group.
        group: String,
    },
    /// Another writer created a version of the template while this run
    /// created its own; the run's version, built from the older `$Latest`,
    /// was deleted again so that the other writer's changes stay `$Latest`.
    RacedAnotherWriter {
        /// The launch template.
        template: String,
        /// The `$Latest` this run built from.
        source_version: i64,
        /// The version this run created (and deleted).
        created: i64,
    },
    /// The template maps a device to a snapshot, and the new image maps the
    /// same device to another: instances get the template's snapshot, not the
    /// backup's.
    SnapshotOverridesImage {
        /// The launch template.
        template: String,
        /// `DeviceName`.
        device: String,
        /// The template's snapshot, kept in the new version.
        template_snapshot: String,
        /// The new image.
        image: String,
        /// The image's snapshot for that device.
        image_snapshot: String,
    },
    /// EC2 created a version with this image but answered with a `Warning`
    /// (invalid parameters); `$Latest` was restored to a copy of the version
    /// before it, and no version is created for this image again until a
    /// person acts. The run counts as failed.
    VersionWarned {
        /// The launch template.
        template: String,
        /// The image of the refused version.
        image: String,
        /// The version EC2 warned about.
        version: i64,
        /// EC2's warnings, `code: message`.
        messages: String,
    },
    /// Backups newer than the chosen one whose architecture differs from
    /// the template's current image: never launched from this template.
    OtherArchitecture {
        /// The images, oldest first.
        images: Vec<String>,
        /// The architecture of the template's current image.
        architecture: String,
    },
    /// A backup newer than the chosen one waits for its soak time
    /// (`MIN_IMAGE_AGE`).
    Soaking {
        /// The image.
        image: String,
        /// Its creation date.
        created: DateTime<Utc>,
        /// When it becomes eligible.
        usable_from: DateTime<Utc>,
    },
    /// Versions could be pruned, but the groups outside the managed tag,
    /// which may pin them, were not read.
    OtherGroupsNotRead {
        /// The launch template.
        template: String,
        /// The versions that could have been pruned.
        versions: Vec<i64>,
    },
    /// Versions kept because the default switch or group update their
    /// deletion relied on failed.
    VersionsKept {
        /// The launch template.
        template: String,
        /// The versions kept.
        versions: Vec<i64>,
    },
    /// EC2 refused to delete one version (the call itself succeeded).
    VersionNotDeleted {
        /// The launch template.
        template: String,
        /// The version.
        version: i64,
        /// EC2's error code.
        error_code: String,
        /// EC2's message.
        error: String,
    },
    /// A deletion batch failed after earlier batches went through.
    DeletedBeforeFailure {
        /// The launch template.
        template: String,
        /// The versions that were deleted.
        versions: Vec<i64>,
    },
    /// No launch template carries the discovery tag (`LAUNCH_TEMPLATE_TAG`).
    NoTemplateTagged {
        /// The discovery tag.
        tag: Tag,
    },
    /// A discovered template's `ami-reconciler:*` tag is malformed: the
    /// template is skipped.
    BadTemplateTag {
        /// The launch template.
        template: String,
        /// The tag key.
        tag: String,
        /// What is wrong, naming the tag, the expected form and the value.
        problem: String,
    },
    /// Several templates are managed and this one has no lineage selector:
    /// it is skipped, as it would take another workload's backup.
    NoLineage {
        /// The launch template.
        template: String,
        /// How many templates are managed.
        templates: usize,
    },
    /// Reading one discovered template failed: it is skipped, the others go on.
    TemplateNotRead {
        /// The launch template.
        template: String,
        /// The error kind (docs/report.md).
        kind: String,
        /// The error.
        error: String,
    },
    /// A newer backup waits: a rolling group's refresh follows `$Latest`
    /// and is not over.
    ImageWaitsForRollout {
        /// The launch template.
        template: String,
        /// The newer backup.
        image: String,
        /// The group whose refresh runs.
        group: String,
        /// The refresh; `None` when the refreshes could not be read, so
        /// one may be running.
        refresh: Option<String>,
    },
    /// The reads rollouts need failed: no refresh is started this run.
    RolloutNotRead {
        /// The rolling groups.
        groups: Vec<String>,
        /// The error.
        error: String,
    },
    /// A rolling group's refresh is still running: the rollout waits.
    RolloutRunning {
        /// The group.
        group: String,
        /// `InstanceRefreshId`.
        refresh: String,
        /// Its status.
        status: String,
        /// In-service instances on another image.
        outdated: usize,
    },
    /// The refresh started for this image is over and instances still run
    /// older images: it is not started again for the same image.
    RolloutStopped {
        /// The group.
        group: String,
        /// The image.
        image: String,
        /// The newest refresh's status, if AWS still describes it.
        last_status: Option<String>,
        /// In-service instances on another image.
        outdated: usize,
    },
    /// A rolling group's rollout tag is malformed: no refresh for it.
    BadRolloutTag {
        /// The group.
        group: String,
        /// The tag key.
        tag: String,
        /// What is wrong.
        problem: String,
    },
    /// A rolling group uses a mixed instances policy: no refresh for it.
    RolloutUnsupported {
        /// The group.
        group: String,
    },
    /// A refresh could not be started and the group's record of it could
    /// not be put back.
    RolloutTagNotRestored {
        /// The group.
        group: String,
        /// The image the tag names now.
        image: String,
    },
    /// Writes are planned on a template that lacks the tag the deployed
    /// policies' write statements require.
    TemplateNotTaggedForWrites {
        /// The launch template.
        template: String,
        /// The tag it lacks.
        tag: Tag,
    },
}

impl Warning {
    /// True when the warning makes the run count as failed (exit 1): the
    /// reconciler is blocked until a person acts.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Warning::VersionWarned { .. }
                | Warning::BadTemplateTag { .. }
                | Warning::NoLineage { .. }
                | Warning::TemplateNotRead { .. }
                | Warning::RolloutStopped { .. }
                | Warning::RolloutNotRead { .. }
                | Warning::BadRolloutTag { .. }
        )
    }

    /// The stable machine code, as in the JSON report: the serde tag, so
    /// the name of each code is written once, by `rename_all`.
    pub fn code(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ImageFromSsm {
                template,
                parameter,
            } => write!(
                f,
                "launch template {template} $Latest takes its image from SSM ({parameter}); the image is left alone"
            ),
            Warning::NoBackup { marker } => write!(
                f,
                "no available AMI owned by this account has {marker:?} in its description (and no {SKIP_TAG_KEY}=true tag); the image is left alone"
            ),
            Warning::NotMovingBackwards {
                template,
                current,
                current_created,
                newest,
                newest_created,
            } => write!(
                f,
                "launch template {template} uses {current} ({current_created}), which is not older than the newest backup {newest} ({newest_created}); not moving backwards"
            ),
            Warning::LaunchConfiguration {
                group,
                tag,
                launch_configuration,
            } => write!(
                f,
                "group {group} is tagged {tag} but uses launch configuration {launch_configuration}; skipped (migrate it to a launch template)"
            ),
            Warning::NoLaunchTemplate { group, tag } => write!(
                f,
                "group {group} is tagged {tag} but has no launch template; skipped"
            ),
            Warning::InstanceRequirements { group } => write!(
                f,
                "group {group} has mixed instances overrides chosen by instance requirements, which the reconciler cannot send back unchanged; skipped (move it to $Latest by hand)"
            ),
            Warning::OtherTemplate { group, template } => write!(
                f,
                "group {group} is managed but uses launch template {template}, not the managed one; skipped (nobody keeps that template's $Latest safe)"
            ),
            Warning::GroupBeingDeleted { group } => write!(
                f,
                "group {group} is being deleted; skipped (the versions it pins stay)"
            ),
            Warning::RacedAnotherWriter {
                template,
                source_version,
                created,
            } => write!(
                f,
                "launch template {template}: another version was created after version {source_version} while this run created version {created}; version {created} lacked those changes and was deleted again, the next run builds from the new $Latest"
            ),
            Warning::SnapshotOverridesImage {
                template,
                device,
                template_snapshot,
                image,
                image_snapshot,
            } => write!(
                f,
                "launch template {template} maps {device} to {template_snapshot}, which overrides {image_snapshot} of {image}: instances get the template's snapshot, not the backup's (remove SnapshotId from the template's mapping to use the image's)"
            ),
            Warning::VersionWarned {
                template,
                image,
                version,
                messages,
            } => write!(
                f,
                "launch template {template}: EC2 warned about version {version} with {image} ({messages}); $Latest is a copy of the version before it, and no version is made for {image} until a person acts (fix the template with a new version, or tag the image ami-reconciler:skip=true)"
            ),
            Warning::OtherArchitecture {
                images,
                architecture,
            } => write!(
                f,
                "{} not {architecture}, the architecture of the template's image; never used by this template",
                match images.as_slice() {
                    [one] => format!("newer backup {one} is"),
                    _ => format!("newer backups {} are", images.join(", ")),
                }
            ),
            Warning::Soaking {
                image,
                created,
                usable_from,
            } => write!(
                f,
                "newer backup {image} (created {created}) waits for MIN_IMAGE_AGE: usable from {usable_from}"
            ),
            Warning::OtherGroupsNotRead { template, versions } => write!(
                f,
                "{} of {template} could be pruned, but the groups outside the managed tag were not read; nothing pruned",
                versions_label(versions)
            ),
            Warning::VersionsKept { template, versions } => write!(
                f,
                "{} of {template} kept: the default switch or group update they relied on failed",
                versions_label(versions)
            ),
            Warning::VersionNotDeleted {
                template,
                version,
                error_code,
                error,
            } => write!(
                f,
                "launch template {template} version {version} was not deleted: {error_code}: {error}"
            ),
            Warning::DeletedBeforeFailure { template, versions } => write!(
                f,
                "launch template {template}: {} deleted before a batch failed",
                versions_label(versions)
            ),
            Warning::NoTemplateTagged { tag } => write!(
                f,
                "no launch template carries the tag {tag}; nothing is managed"
            ),
            Warning::BadTemplateTag {
                template,
                tag: _,
                problem,
            } => write!(f, "launch template {template} skipped: its tag {problem}"),
            Warning::NoLineage {
                template,
                templates,
            } => write!(
                f,
                "launch template {template} skipped: {templates} templates are managed and it has no {} tag, so it could take another workload's backup (tag it with the lineage of its backups, e.g. aws:dlm:lifecycle-policy-id=policy-...)",
                crate::model::template_tags::IMAGE_TAG
            ),
            Warning::TemplateNotRead {
                template,
                kind: _,
                error,
            } => write!(
                f,
                "launch template {template} skipped: {error}; the other templates go on"
            ),
            Warning::ImageWaitsForRollout {
                template,
                image,
                group,
                refresh,
            } => match refresh {
                Some(refresh) => write!(
                    f,
                    "launch template {template}: newer backup {image} waits until instance refresh {refresh} of group {group} is over (a new $Latest now would replace its new instances again)"
                ),
                None => write!(
                    f,
                    "launch template {template}: newer backup {image} waits: the instance refreshes of rolling group {group} could not be read, and one may be running"
                ),
            },
            Warning::RolloutNotRead { groups, error } => write!(
                f,
                "no rollout this run: {error} (rolling groups {}); the rest of the run goes on",
                groups.join(", ")
            ),
            Warning::RolloutRunning {
                group,
                refresh,
                status,
                outdated,
            } => write!(
                f,
                "group {group}: instance refresh {refresh} is {status} ({outdated} in-service instances on another image); the rollout waits for it"
            ),
            Warning::RolloutStopped {
                group,
                image,
                last_status,
                outdated,
            } => write!(
                f,
                "group {group}: the instance refresh for {image} ended ({}) with {outdated} in-service instances on another image; not started again for {image} (a newer backup starts the next one; to retry this one, remove the group's tag {})",
                last_status
                    .as_deref()
                    .unwrap_or("no longer described: older than six weeks"),
                crate::model::group_tags::ROLLOUT_IMAGE
            ),
            Warning::BadRolloutTag {
                group,
                tag: _,
                problem,
            } => write!(f, "group {group}: no rollout: its tag {problem}"),
            Warning::RolloutUnsupported { group } => write!(
                f,
                "group {group} is tagged {}={} but uses a mixed instances policy, which rollouts do not support; no instance refresh",
                crate::model::group_tags::ROLLOUT,
                crate::model::group_tags::ROLLING
            ),
            Warning::RolloutTagNotRestored { group, image } => write!(
                f,
                "group {group}: the instance refresh was not started and its tag {} still names {image}; remove the tag, or no run starts a refresh for {image}",
                crate::model::group_tags::ROLLOUT_IMAGE
            ),
            Warning::TemplateNotTaggedForWrites { template, tag } => write!(
                f,
                "launch template {template} does not carry the tag {tag}: the write statements of the deployed policies (policies/reconciler.json, template.yaml) will deny every change to it (tag it, or grant the writes another way)"
            ),
        }
    }
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
    }
}
