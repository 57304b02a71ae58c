//! Quarantine: an image whose rollout failed or was rolled back, in a
//! rolling group tagged `ami-reconciler:rollout-failure=quarantine`, is
//! tagged `ami-reconciler:skip=true`, and the template retreats from it in
//! the same run.

use super::change::QuarantineImage;
use super::preferences::on_failure;
use super::rollout::placed;
use crate::model::{CurrentImage, MAX_TAG_VALUE_CHARS, OnFailure, State, TemplateRef, group_tags};

/// Statuses of a refresh that failed or was rolled back: with
/// `ami-reconciler:rollout-failure=quarantine` they quarantine its image.
/// `Cancelled` is a person's choice and never does.
pub const FAILED_STATUSES: [&str; 3] = ["Failed", "RollbackSuccessful", "RollbackFailed"];

/// The images to quarantine: a rolling group that asks for it, whose newest
/// refresh rolled out `$Latest` or the default by number and failed or was
/// rolled back. The image is then planned as if already skip-tagged
/// ([`as_quarantined`]). Once a newer version is created from the image
/// again (an operator cleared the tags), the old refresh no longer names
/// `$Latest` and quarantines nothing.
pub fn quarantines(state: &State) -> Vec<QuarantineImage> {
    let template = &state.template;
    let current: Vec<i64> = template
        .latest()
        .map(|v| v.number)
        .into_iter()
        .chain([template.default_version])
        .collect();
    let usable = |id: &str| {
        state.images.iter().any(|i| i.id == id && !i.is_unusable())
            || matches!(&state.current_image, CurrentImage::Found(i) if i.id == id && !i.is_unusable())
    };
    let skip_tagged = |id: &str| {
        state.images.iter().any(|i| i.id == id && i.skip_tagged)
            || matches!(&state.current_image, CurrentImage::Found(i) if i.id == id && i.skip_tagged)
    };
    let mut found: Vec<QuarantineImage> = Vec::new();
    for group in state.rolling_groups() {
        if placed(group, state).is_none() || on_failure(group) != Some(OnFailure::Quarantine) {
            continue;
        }
        let Some(newest) = state.refreshes.get(&group.name).and_then(|r| r.first()) else {
            continue;
        };
        let Some(number) = newest
            .desired
            .as_ref()
            .filter(|d| d.points_at(template))
            .and_then(TemplateRef::pinned_number)
            .filter(|n| current.contains(n))
        else {
            continue;
        };
        let Some(image) = template.image_of(number) else {
            continue;
        };
        // Only an image EC2 describes as usable: tagging one that is gone
        // would fail every run and hold the retreat that it needs anyway.
        if !FAILED_STATUSES.contains(&newest.status.as_str())
            || !usable(image)
            || skip_tagged(image)
            || found.iter().any(|q| q.image == image)
        {
            continue;
        }
        let skip_reason = truncate(
            &format!(
                "rollout failed: group {}, instance refresh {}, {}",
                group.name, newest.id, newest.status
            ),
            MAX_TAG_VALUE_CHARS,
        );
        found.push(QuarantineImage {
            image: image.to_owned(),
            group: group.name.clone(),
            refresh: newest.id.clone(),
            status: newest.status.clone(),
            reason: format!(
                "group {} is tagged {}={} and its instance refresh {} of version {number} ended {}",
                group.name,
                group_tags::ROLLOUT_FAILURE,
                group_tags::QUARANTINE,
                newest.id,
                newest.status
            ),
            skip_reason,
        });
    }
    found
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The state as it will be once the quarantines are written: the images
/// skip-tagged, so that the template retreats from them in this same run.
pub fn as_quarantined(state: &State, quarantines: &[QuarantineImage]) -> State {
    let mut state = state.clone();
    let quarantined = |id: &str| quarantines.iter().any(|q| q.image == id);
    for image in &mut state.images {
        image.skip_tagged |= quarantined(&image.id);
    }
    if let CurrentImage::Found(image) = &mut state.current_image {
        image.skip_tagged |= quarantined(&image.id);
    }
    state
}
