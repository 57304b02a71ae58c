//! Image eligibility and choice: which backup `$Latest` should carry, and
//! why it needs a new one.

use chrono::{DateTime, Utc};

use super::Decision;
use super::version::{refusal, unverified_latest};
use crate::model::{CurrentImage, Image, SKIP_TAG_KEY, State, Tag, Template};
use crate::policy::Policy;
use crate::warning::Warning;

/// What makes an image a backup this template may launch from.
#[derive(Debug, Clone)]
pub struct Eligibility<'a> {
    /// Text the description contains (`AMI_DESCRIPTION_MARKER`).
    pub marker: &'a str,
    /// The tag every backup of this workload carries (`IMAGE_TAG`).
    pub lineage: Option<&'a Tag>,
    /// The architecture of the template's current image, when known.
    pub architecture: Option<&'a str>,
    /// How old a backup must be (`MIN_IMAGE_AGE`).
    pub min_age: chrono::Duration,
    /// When the state was read: the age is measured against it.
    pub observed_at: DateTime<Utc>,
}

impl<'a> Eligibility<'a> {
    /// The rules for this state and this policy.
    pub fn of(state: &'a State, policy: &'a Policy) -> Self {
        let architecture = match &state.current_image {
            CurrentImage::Found(image) => image.architecture.as_deref(),
            _ => None,
        };
        Eligibility {
            marker: &policy.marker,
            lineage: policy.image_tag.as_ref(),
            architecture,
            min_age: policy.min_image_age,
            observed_at: state.observed_at,
        }
    }

    /// A backup of this workload, whatever its architecture and age:
    /// owned, available, with the marker and the lineage tag, not skip-tagged.
    fn is_backup(&self, image: &Image) -> bool {
        image.owned_by_account
            && image.is_available()
            && image.description.contains(self.marker)
            && !image.skip_tagged
            && self.lineage.is_none_or(|tag| image.carries(tag))
    }

    fn same_architecture(&self, image: &Image) -> bool {
        match (self.architecture, image.architecture.as_deref()) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        }
    }

    fn soaked(&self, image: &Image) -> bool {
        self.min_age.is_zero() || self.usable_from(image) <= self.observed_at
    }

    fn usable_from(&self, image: &Image) -> DateTime<Utc> {
        image.created + self.min_age
    }

    /// True when the template may launch from this image now.
    pub fn admits(&self, image: &Image) -> bool {
        self.is_backup(image) && self.same_architecture(image) && self.soaked(image)
    }
}

/// Newest first by creation date; ties go to the higher id, so the choice
/// never depends on the order the API returned.
fn newer(a: &Image, b: &Image) -> std::cmp::Ordering {
    a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id))
}

/// The newest image the rules admit.
pub fn newest_backup<'a>(images: &'a [Image], rules: &Eligibility) -> Option<&'a Image> {
    images
        .iter()
        .filter(|i| rules.admits(i))
        .max_by(|a, b| newer(a, b))
}

/// The image `$Latest` should carry, and why it needs a change.
#[derive(Debug)]
pub struct ImageChoice<'s> {
    /// The newest backup the rules admit now.
    pub newest: Option<&'s Image>,
    /// Why `$Latest` needs `newest`; `None` when it does not.
    pub change: Option<ImageChange>,
    /// Whether groups may follow `$Latest` as it is now.
    pub latest: Latest,
}

/// Whether groups may follow `$Latest` as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    Safe,
    /// Its image is skip-tagged, gone or broken, or it is a version of ours
    /// whose create answer was never seen: no group moves onto it, and it
    /// never becomes the default; only a new version this run creates lets
    /// groups follow `$Latest` again.
    Unsafe,
}

/// Why `$Latest` needs a new image.
#[derive(Debug)]
pub struct ImageChange {
    pub reason: String,
}

/// A device the template gives a smaller volume than the image's snapshot
/// there: EC2 refuses such a launch ("Volume of size 8GB is smaller than
/// snapshot ..., expect size >= 20GB"). `CreateLaunchTemplateVersion` does
/// not check it, so the planner must.
fn too_small(template: &Template, image: &Image) -> Option<Warning> {
    let latest = template.latest()?;
    latest.block_devices.iter().find_map(|device| {
        let name = device.device_name.as_deref()?;
        let ebs = device.ebs.as_ref().filter(|e| e.snapshot_id.is_none())?;
        let size = ebs.volume_size?;
        let snapshot = *image.volume_sizes.get(name)?;
        (size < snapshot).then(|| Warning::VolumeTooSmall {
            template: template.id.clone(),
            image: image.id.clone(),
            device: name.to_owned(),
            template_size: size,
            image_size: snapshot,
        })
    })
}

/// Devices the template sizes that `image` does not map, while the image
/// being replaced did: the setting no longer reaches an image volume (it
/// makes an extra empty one).
fn devices_not_in(state: &State, image: &Image) -> Vec<Warning> {
    let Some(latest) = state.template.latest() else {
        return Vec::new();
    };
    let before = match &state.current_image {
        CurrentImage::Found(current) => current,
        _ => return Vec::new(),
    };
    latest
        .block_devices
        .iter()
        .filter(|d| {
            d.ebs
                .as_ref()
                .is_some_and(|e| e.volume_size.is_some() && e.snapshot_id.is_none())
        })
        .filter_map(|d| d.device_name.as_deref())
        .filter(|name| before.snapshots.contains_key(*name) && !image.snapshots.contains_key(*name))
        .filter(|_| !image.snapshots.is_empty())
        .map(|name| Warning::DeviceNotInImage {
            template: state.template.id.clone(),
            image: image.id.clone(),
            device: name.to_owned(),
            root_device: image.root_device.clone(),
        })
        .collect()
}

/// Chooses the newest backup the template can launch and judges whether
/// `$Latest` needs it. Newer backups held back (another architecture, not
/// soaked yet, a snapshot larger than the template's volume) are warnings.
pub fn choose<'s>(state: &'s State, policy: &'s Policy) -> Decision<ImageChoice<'s>> {
    let rules = Eligibility::of(state, policy);
    let admitted = newest_backup(&state.images, &rules);
    let misfit = admitted.and_then(|image| too_small(&state.template, image));
    let newest = match misfit {
        None => admitted,
        Some(_) => state
            .images
            .iter()
            .filter(|i| rules.admits(i) && too_small(&state.template, i).is_none())
            .max_by(|a, b| newer(a, b)),
    };
    let Decision {
        made: change,
        warnings,
        ..
    } = change_for(state, newest, &policy.marker);
    let devices = match (&change, newest) {
        (Some(_), Some(image)) => devices_not_in(state, image),
        _ => Vec::new(),
    };
    let latest = match &state.current_image {
        _ if unverified_latest(&state.template).is_some() => Latest::Unsafe,
        CurrentImage::Found(current) if current.skip_tagged || current.is_unusable() => {
            Latest::Unsafe
        }
        CurrentImage::Missing(_) => Latest::Unsafe,
        _ => Latest::Safe,
    };
    Decision::made(ImageChoice {
        newest,
        change,
        latest,
    })
    .warn(misfit)
    .warn(held_back(&state.images, &rules, newest))
    .warn(warnings)
    .warn(devices)
}

/// Warnings for the backups newer than the chosen one that the rules keep
/// out for now: another architecture, or not soaked yet.
fn held_back(images: &[Image], rules: &Eligibility, chosen: Option<&Image>) -> Vec<Warning> {
    let mut newer_backups: Vec<&Image> = images
        .iter()
        .filter(|i| rules.is_backup(i))
        .filter(|i| chosen.is_none_or(|c| newer(i, c).is_gt()))
        .collect();
    newer_backups.sort_by(|a, b| newer(a, b));
    let other: Vec<String> = newer_backups
        .iter()
        .filter(|i| !rules.same_architecture(i))
        .map(|i| i.id.clone())
        .collect();
    let other_architecture = rules
        .architecture
        .filter(|_| !other.is_empty())
        .map(|architecture| Warning::OtherArchitecture {
            images: other,
            architecture: architecture.to_owned(),
        });
    let soaking = newer_backups
        .iter()
        .filter(|i| rules.same_architecture(i) && !rules.soaked(i))
        .map(|i| Warning::Soaking {
            image: i.id.clone(),
            created: i.created,
            usable_from: rules.usable_from(i),
        });
    other_architecture.into_iter().chain(soaking).collect()
}

/// Why `$Latest` needs `newest`, or `None` (with a warning when relevant).
fn change_for(
    state: &State,
    newest: Option<&Image>,
    marker: &str,
) -> Decision<Option<ImageChange>> {
    let template = &state.template.id;
    if let CurrentImage::FromSsm(parameter) = &state.current_image {
        return Decision::made(None).warn([Warning::ImageFromSsm {
            template: template.clone(),
            parameter: parameter.clone(),
        }]);
    }
    let Some(newest) = newest else {
        return Decision::made(None).warn([Warning::NoBackup {
            marker: marker.to_owned(),
        }]);
    };
    let refused = state
        .template
        .latest()
        .and_then(|v| v.description.as_deref())
        .and_then(refusal);
    if let Some(refused) = refused.filter(|r| r.image == newest.id) {
        return Decision::made(None).warn([Warning::VersionWarned {
            template: template.clone(),
            image: refused.image.to_owned(),
            version: refused.version,
            messages: refused.messages.to_owned(),
        }]);
    }
    let change = |reason: String| Decision::made(Some(ImageChange { reason }));
    let unverified = unverified_latest(&state.template);
    match &state.current_image {
        CurrentImage::Found(current) if current.id == newest.id => match unverified {
            // Warnings are deterministic: the same data is judged the same.
            Some(version) => change(format!(
                "version {version} was created by ami-reconciler but EC2's answer to it was never seen (it is not the default): created again from it, so that EC2 judges the same data again"
            )),
            None => Decision::made(None),
        },
        CurrentImage::Found(current) if current.skip_tagged => change(format!(
            "{} is tagged {SKIP_TAG_KEY}=true; {} is the newest good backup ({})",
            current.id, newest.id, newest.created
        )),
        CurrentImage::Found(current) if current.is_unusable() => change(format!(
            "{} is {}; {} is the newest backup ({})",
            current.id, current.state, newest.id, newest.created
        )),
        CurrentImage::Found(current) if current.created < newest.created => change(format!(
            "newer backup: {} ({}) replaces {} ({})",
            newest.id, newest.created, current.id, current.created
        )),
        CurrentImage::Found(current) => Decision::made(None).warn([Warning::NotMovingBackwards {
            template: template.clone(),
            current: current.id.clone(),
            current_created: current.created,
            newest: newest.id.clone(),
            newest_created: newest.created,
        }]),
        CurrentImage::Missing(id) => change(format!(
            "{id} no longer exists; {} is the newest backup ({})",
            newest.id, newest.created
        )),
        CurrentImage::FromSsm(_) => Decision::made(None),
    }
}
