//! Publishing the default version's image to its SSM parameter.

use super::Outcomes;
use crate::clients::Clients;
use crate::plan::{Change, PutImageParameter};
use crate::ssm;

impl Outcomes {
    /// Publishes the default version's image. SSM validates an
    /// `aws:ec2:image` value after answering: the next run's read confirms it.
    pub(super) async fn publish(&mut self, clients: &Clients, change: &PutImageParameter) {
        let change_ = Change::PutImageParameter(change.clone());
        if !self.ready(&change_) {
            return;
        }
        let description = format!(
            "The image of launch template {}'s default version, published by ami-reconciler",
            change.template_id
        );
        match ssm::put_image_parameter(
            &clients.ssm,
            (&change.parameter, &change.to),
            change.overwrite,
            &description,
        )
        .await
        {
            Ok(version) => self.applied_made(
                change_,
                format!(
                    "parameter version {version} holds {} once SSM's validation of the image passes",
                    change.to
                ),
                Some(version.to_string()),
            ),
            Err(err) => self.failed(change_, err),
        }
    }
}
