//! Auto Scaling: reading groups (with pagination) and moving a group to `$Latest`.
//!
//! Owns the conversion from SDK group types to [`Group`].

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Filter, LaunchTemplateSpecification, MixedInstancesPolicy,
};

use crate::error::AwsError;
use crate::model::{Group, LATEST, LaunchSource, TemplateRef};
use crate::plan::GroupTarget;
use crate::settings::Tag;

/// Largest page `DescribeAutoScalingGroups` returns.
const PAGE_SIZE: i32 = 100;

/// A group's `MixedInstancesPolicy` exactly as read, kept opaque so the
/// planner never sees an SDK type; it is sent back whole on update because
/// only then do AWS and its emulations agree on what is left unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedPolicy(MixedInstancesPolicy);

impl Default for MixedPolicy {
    /// An empty policy, for fixtures.
    fn default() -> Self {
        MixedPolicy(MixedInstancesPolicy::builder().build())
    }
}

impl MixedPolicy {
    /// The policy to send: top-level specification by id (or name when no id
    /// is known) at `$Latest`; overrides keep their version but name their
    /// template by id alone, because AWS rejects a specification with both.
    fn to_latest(&self) -> MixedInstancesPolicy {
        let mut policy = self.0.clone();
        if let Some(lt) = policy.launch_template.as_mut() {
            let spec = lt
                .launch_template_specification
                .take()
                .unwrap_or_else(|| LaunchTemplateSpecification::builder().build());
            lt.launch_template_specification = Some(one_identifier(spec, Some(LATEST.to_owned())));
            if let Some(overrides) = lt.overrides.as_mut() {
                for o in overrides.iter_mut() {
                    if let Some(spec) = o.launch_template_specification.take() {
                        let version = spec.version.clone();
                        o.launch_template_specification = Some(one_identifier(spec, version));
                    }
                }
            }
        }
        policy
    }
}

fn one_identifier(
    spec: LaunchTemplateSpecification,
    version: Option<String>,
) -> LaunchTemplateSpecification {
    let name = if spec.launch_template_id.is_some() {
        None
    } else {
        spec.launch_template_name
    };
    LaunchTemplateSpecification::builder()
        .set_launch_template_id(spec.launch_template_id)
        .set_launch_template_name(name)
        .set_version(version)
        .build()
}

/// Reads every group, or with `tag` only those carrying it (filtered server-side).
pub async fn describe_groups(client: &Client, tag: Option<&Tag>) -> Result<Vec<Group>, AwsError> {
    let mut request = client.describe_auto_scaling_groups().max_records(PAGE_SIZE);
    if let Some(tag) = tag {
        request = request.filters(
            Filter::builder()
                .name(format!("tag:{}", tag.key))
                .values(&tag.value)
                .build(),
        );
    }
    let mut pages = request.into_paginator().send();
    let mut groups = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page?;
        for group in page.auto_scaling_groups() {
            // The filter is the contract, but a group that does not carry the
            // tag must never be touched: check again.
            if let Some(tag) = tag
                && !carries(group, tag)
            {
                continue;
            }
            groups.push(Group::from(group));
        }
    }
    Ok(groups)
}

fn carries(group: &AutoScalingGroup, tag: &Tag) -> bool {
    group
        .tags()
        .iter()
        .any(|t| t.key() == Some(tag.key.as_str()) && t.value() == Some(tag.value.as_str()))
}

fn template_ref(spec: &LaunchTemplateSpecification) -> TemplateRef {
    TemplateRef {
        id: spec.launch_template_id.clone(),
        name: spec.launch_template_name.clone(),
        version: spec.version.clone(),
    }
}

impl From<&AutoScalingGroup> for Group {
    fn from(group: &AutoScalingGroup) -> Self {
        let launch = if let Some(spec) = group.launch_template() {
            LaunchSource::Template(template_ref(spec))
        } else if let Some(policy) = group.mixed_instances_policy() {
            let lt = policy.launch_template();
            LaunchSource::Mixed {
                spec: lt
                    .and_then(|lt| lt.launch_template_specification())
                    .map(template_ref)
                    .unwrap_or(TemplateRef {
                        id: None,
                        name: None,
                        version: None,
                    }),
                overrides: lt
                    .map(|lt| lt.overrides())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|o| o.launch_template_specification())
                    .map(template_ref)
                    .collect(),
                policy: MixedPolicy(policy.clone()),
            }
        } else if let Some(name) = group.launch_configuration_name() {
            LaunchSource::LaunchConfiguration(name.to_owned())
        } else {
            LaunchSource::Unknown
        };
        Group {
            name: group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_owned(),
            launch,
        }
    }
}

/// Points a group at `$Latest` of the template it uses.
pub async fn update_group(
    client: &Client,
    group: &str,
    target: &GroupTarget,
) -> Result<(), AwsError> {
    let request = client
        .update_auto_scaling_group()
        .auto_scaling_group_name(group);
    let request = match target {
        GroupTarget::Plain {
            template_id,
            template_name,
        } => request.launch_template(
            LaunchTemplateSpecification::builder()
                .set_launch_template_id(template_id.clone())
                .set_launch_template_name(template_name.clone())
                .version(LATEST)
                .build(),
        ),
        GroupTarget::Mixed(policy) => request.mixed_instances_policy(policy.to_latest()),
    };
    request.send().await?;
    Ok(())
}
