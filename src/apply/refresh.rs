//! Starting one refresh: its record on the group first, then the start, and
//! the record put back when AWS refuses it.

use crate::autoscaling;
use crate::clients::Clients;
use crate::error::AwsError;
use crate::model::{TemplateRef, group_tags};
use crate::plan::StartInstanceRefresh;

/// What became of one refresh.
pub(super) enum RefreshOutcome {
    /// Started, with this id.
    Started(String),
    /// Another run of ours started the same refresh a moment before: a
    /// race lost to ourselves, not a failure. Its record stays.
    StartedByAnother(String),
    /// The tag could not be written: nothing was started.
    NotRecorded(AwsError),
    /// AWS refused the start; `restored` tells whether the tag is as before.
    Refused { error: AwsError, restored: bool },
}

pub(super) async fn start_refresh(
    clients: &Clients,
    change: &StartInstanceRefresh,
    template: &TemplateRef,
) -> RefreshOutcome {
    let client = &clients.autoscaling;
    let tag = group_tags::ROLLOUT_IMAGE;
    if let Err(err) = autoscaling::tag_group(client, &change.group, tag, &change.image).await {
        return RefreshOutcome::NotRecorded(err);
    }
    match autoscaling::start_refresh(client, &change.group, template, &change.preferences).await {
        Ok(id) => RefreshOutcome::Started(id),
        Err(error) => {
            // Another run may have started the same refresh a moment ago:
            // its record is this tag, which must then stay.
            if error.code.as_deref() == Some("InstanceRefreshInProgress")
                && let Ok(found) = autoscaling::describe_refreshes(client, &change.group).await
                && let Some(theirs) = found.iter().find(|r| r.rolls_out(template))
            {
                return RefreshOutcome::StartedByAnother(theirs.id.clone());
            }
            if error.outcome_unknown() {
                // The refresh may be running: its record must stay.
                return RefreshOutcome::Refused {
                    error,
                    restored: true,
                };
            }
            let restore = match &change.previous_rollout_image {
                Some(previous) => {
                    autoscaling::tag_group(client, &change.group, tag, previous).await
                }
                None => autoscaling::untag_group(client, &change.group, tag).await,
            };
            RefreshOutcome::Refused {
                error,
                restored: restore.is_ok(),
            }
        }
    }
}
