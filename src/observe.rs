//! Observe: every read of a run, turned into one [`State`].

use tracing::instrument;

use crate::clients::Clients;
use crate::error::{Error, Result};
use crate::model::{CurrentImage, State};
use crate::plan::may_delete;
use crate::settings::{Settings, TemplateSource};
use crate::{autoscaling, ec2, ssm};

/// Reads the state the plan is computed from. Fails as a whole: a state read
/// in part is never planned on.
#[instrument(skip_all, fields(template = tracing::field::Empty))]
pub async fn observe(clients: &Clients, settings: &Settings) -> Result<State> {
    let template_id = match &settings.template {
        TemplateSource::Id(id) => id.clone(),
        TemplateSource::Parameter(name) => ssm::template_id(&clients.ssm, name).await?,
    };
    tracing::Span::current().record("template", template_id.as_str());

    // The three reads are independent: run them together.
    let (template, backups, managed_groups) = tokio::try_join!(
        ec2::describe_template(&clients.ec2, &template_id),
        async {
            ec2::describe_backups(&clients.ec2, &settings.marker, settings.image_tag.as_ref())
                .await
                .map_err(|source| Error::DescribeImages { source })
        },
        async {
            autoscaling::describe_groups(&clients.autoscaling, Some(&settings.asg_tag))
                .await
                .map_err(|source| Error::DescribeGroups { source })
        },
    )?;

    let latest = template.latest().ok_or_else(|| Error::TemplateNotFound {
        id: template_id.clone(),
    })?;
    let image_ref = latest
        .image_id
        .clone()
        .ok_or_else(|| Error::LatestWithoutImage {
            id: template_id.clone(),
            version: latest.number,
        })?;
    let current_image = if image_ref.starts_with("resolve:ssm:") {
        CurrentImage::FromSsm(image_ref)
    } else if let Some(found) = backups.images.iter().find(|i| i.id == image_ref) {
        // The usual case: no extra call when the current image is a backup.
        CurrentImage::Found(found.clone())
    } else {
        match ec2::describe_image(&clients.ec2, &image_ref, backups.account.as_deref())
            .await
            .map_err(|source| Error::DescribeImages { source })?
        {
            Some(image) => CurrentImage::Found(image),
            None => CurrentImage::Missing(image_ref),
        }
    };

    let mut state = State {
        template,
        current_image,
        images: backups.images,
        managed_groups,
        // The clock is read here, with the state, never in plan().
        observed_at: chrono::Utc::now(),
        other_groups: None,
    };
    if may_delete(&state, settings) {
        // Untagged groups can pin versions too; read them only when a
        // deletion is possible, so the converged run stays at its floor.
        let managed: std::collections::BTreeSet<String> = state
            .managed_groups
            .iter()
            .map(|g| g.name.clone())
            .collect();
        let all = autoscaling::describe_groups(&clients.autoscaling, None)
            .await
            .map_err(|source| Error::DescribeGroups { source })?;
        state.other_groups = Some(
            all.into_iter()
                .filter(|g| !managed.contains(&g.name))
                .collect(),
        );
    }
    Ok(state)
}
