//! Version creation: the new version's token, description and block device
//! mappings, the memory of a version EC2 warned about, judging a create, and
//! the default switch.

use super::Decision;
use super::change::{Change, CreateVersion, Restore, SetDefaultVersion, VersionTarget};
use super::image::{ImageChange, Latest};
use crate::model::{BlockDevice, Image, State, Tag, Template, TemplateVersion};
use crate::warning::Warning;

/// The version that gives `$Latest` the newest image, when it needs it. A
/// device the template maps to its own snapshot, where the image maps
/// another, is a warning: the template's snapshot wins at launch.
pub fn create(
    state: &State,
    newest: Option<&Image>,
    change: Option<&ImageChange>,
) -> Decision<Option<CreateVersion>> {
    let (Some(change), Some(newest)) = (change, newest) else {
        return Decision::made(None);
    };
    let template = &state.template;
    let source_version = template.latest().map_or(0, |v| v.number);
    let block_devices = template.latest().map(snapshot_mappings).unwrap_or_default();
    let warnings = snapshot_overrides(&template.id, &block_devices, newest);
    let from_image = state.current_image.image_ref().to_owned();
    // An unverified source is no place to return to: the default is.
    let default = template
        .versions
        .iter()
        .find(|v| v.number == template.default_version);
    let restore = match (unverified_latest(template), default) {
        (Some(_), Some(default)) => default.image_id.clone().map(|image| Restore {
            version: default.number,
            image,
            block_devices: snapshot_mappings(default),
        }),
        // No known-good version to copy: a warned version is deleted instead.
        (Some(_), None) => None,
        (None, _) => Some(Restore {
            version: source_version,
            image: from_image.clone(),
            block_devices: block_devices.clone(),
        }),
    };
    Decision::made(Some(CreateVersion {
        template_id: template.id.clone(),
        source_version,
        from_image,
        to_image: newest.id.clone(),
        reason: change.reason.clone(),
        version_description: version_description(newest),
        client_token: client_token(&template.id, source_version, &newest.id),
        restore,
        block_devices,
        needs: Vec::new(),
    }))
    .warn(warnings)
}

/// The default follows the latest version: the one this run creates, else
/// the highest number while `$Latest` is safe.
pub fn default_switch(
    template: &Template,
    create: Option<&CreateVersion>,
    latest_now: Latest,
) -> Decision<Option<SetDefaultVersion>> {
    let latest = template.latest().map_or(0, |v| v.number);
    let default = template.default_version;
    let (to, reason) = if create.is_some() {
        (
            VersionTarget::Created,
            "the default follows the new latest version".to_owned(),
        )
    } else if default != latest && latest_now == Latest::Safe {
        (
            VersionTarget::Number(latest),
            format!("the default ({default}) is not the latest version ({latest})"),
        )
    } else {
        return Decision::made(None);
    };
    Decision::made(Some(SetDefaultVersion {
        template_id: template.id.clone(),
        from: default,
        to,
        reason,
    }))
}

/// A warning when `changes` write to a template that is known to lack the
/// tag the deployed policies' write statements require.
pub fn write_tag_warning(template: &Template, changes: &[Change], tag: Tag) -> Decision<()> {
    let writes = changes.iter().any(Change::writes_template);
    let warning = (writes && template.carries(&tag) == Some(false)).then(|| {
        Warning::TemplateNotTaggedForWrites {
            template: template.id.clone(),
            tag,
        }
    });
    Decision::made(()).warn(warning)
}

/// `$Latest` when it is a version this reconciler created (not a restore)
/// that is not the default: its create answer was never seen, or the default
/// switch after it failed. Either way it is unverified, not good.
pub fn unverified_latest(template: &Template) -> Option<i64> {
    let latest = template.latest()?;
    let ours = latest
        .description
        .as_deref()
        .is_some_and(|d| d.starts_with(CREATED_PREFIX) && refusal(d).is_none());
    (ours && latest.number != template.default_version).then_some(latest.number)
}

/// How the description of a version this reconciler creates begins.
const CREATED_PREFIX: &str = "ami-reconciler: ami-";

fn version_description(image: &Image) -> String {
    // EC2 caps VersionDescription at 255 characters; ours stays far below.
    format!(
        "ami-reconciler: {} (backup created {})",
        image.id,
        image.created.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// A `ClientToken` (at most 64 ASCII characters) that names the template, the
/// source version and the image. The source version is part of it so that a
/// rollback to an image used before creates a new version instead of
/// returning the old one.
pub fn client_token(template_id: &str, source_version: i64, image_id: &str) -> String {
    let readable = format!("{template_id}-v{source_version}-{image_id}");
    if readable.len() <= 64 && readable.is_ascii() {
        return readable;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = readable.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("ami-reconciler-{hash:016x}")
}

/// How a restore version's description begins: `$Latest` is a copy of the
/// version before one that EC2 created with a `Warning`.
const RESTORED_PREFIX: &str = "ami-reconciler: restored after EC2 warned about ";
/// EC2's limit on `VersionDescription`.
const MAX_DESCRIPTION: usize = 255;

/// The description of the version that restores `$Latest` after EC2 created
/// `warned` (with `image`) and answered with `messages`. It is the memory of
/// the refusal: while it describes `$Latest` and `image` is still the newest
/// backup, no run creates a version again ([`Warning::VersionWarned`]).
pub fn restore_description(image: &str, warned: i64, messages: &[String]) -> String {
    let text = format!(
        "{RESTORED_PREFIX}{image} in version {warned}: {}",
        messages.join("; ")
    );
    match text.char_indices().nth(MAX_DESCRIPTION) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

/// A refusal read back from a restore version's description.
pub struct Refusal<'a> {
    pub image: &'a str,
    pub version: i64,
    pub messages: &'a str,
}

/// The refusal a description records, if it is a restore version's.
pub fn refusal(description: &str) -> Option<Refusal<'_>> {
    let rest = description.strip_prefix(RESTORED_PREFIX)?;
    let (image, rest) = rest.split_once(" in version ")?;
    let (version, messages) = rest.split_once(": ")?;
    Some(Refusal {
        image,
        version: version.parse().ok()?,
        messages,
    })
}

/// A version's block device mappings when any names a snapshot (they must
/// be sent, or a version made from it loses the snapshots); otherwise none.
fn snapshot_mappings(version: &TemplateVersion) -> Vec<BlockDevice> {
    if version
        .block_devices
        .iter()
        .any(|d| d.snapshot_id().is_some())
    {
        version.block_devices.clone()
    } else {
        Vec::new()
    }
}

/// A warning per device the template maps to a snapshot while the new image
/// maps it to another: the template's snapshot wins at launch.
fn snapshot_overrides(template: &str, devices: &[BlockDevice], image: &Image) -> Vec<Warning> {
    devices
        .iter()
        .filter_map(|d| {
            let device = d.device_name.as_deref()?;
            let ours = d.snapshot_id()?;
            let theirs = image.snapshots.get(device)?;
            (ours != theirs).then(|| Warning::SnapshotOverridesImage {
                template: template.to_owned(),
                device: device.to_owned(),
                template_snapshot: ours.to_owned(),
                image: image.id.clone(),
                image_snapshot: theirs.clone(),
            })
        })
        .collect()
}

/// What a create achieved, judged from the number EC2 answered and the
/// versions read right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new version from the source: the one this run wanted.
    Fresh,
    /// Another version lies between the source and the created one: another
    /// writer made it after the source was read, so ours lacks its changes.
    Raced,
    /// The number does not exist: EC2 answered the `ClientToken` with a
    /// version made earlier and deleted since (an operator's rollback).
    Replayed,
}

impl CreateVersion {
    /// Judges the created number against the versions read after it
    /// (`None` when that read failed). EC2 never reuses a number, so a gap
    /// alone only means versions were deleted; without the read, a gap is
    /// taken for a race, the safe side.
    pub fn judge(&self, created: i64, existing: Option<&[i64]>) -> Created {
        match existing {
            Some(numbers) if !numbers.contains(&created) => Created::Replayed,
            Some(numbers)
                if numbers
                    .iter()
                    .any(|n| *n > self.source_version && *n < created) =>
            {
                Created::Raced
            }
            Some(_) => Created::Fresh,
            None if created == self.source_version + 1 => Created::Fresh,
            None => Created::Raced,
        }
    }

    /// The first of this run's own versions among those between the source
    /// and `created`, when every one of them is ours: the same image and
    /// description. That is no other writer: an earlier create of this run
    /// that a stale read did not show yet, and `created` is its duplicate.
    pub fn own_duplicate(&self, created: i64, existing: &[TemplateVersion]) -> Option<i64> {
        let between: Vec<&TemplateVersion> = existing
            .iter()
            .filter(|v| v.number > self.source_version && v.number < created)
            .collect();
        let ours = |v: &&TemplateVersion| {
            v.image_id.as_deref() == Some(self.to_image.as_str())
                && v.description.as_deref() == Some(self.version_description.as_str())
        };
        let first = between.iter().map(|v| v.number).min()?;
        between.iter().all(ours).then_some(first)
    }
}
