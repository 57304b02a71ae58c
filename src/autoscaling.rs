//! Auto Scaling: reading groups (with pagination) and moving a group to `$Latest`.
//!
//! Owns the conversion from SDK group types to [`Group`].

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Filter, LaunchTemplate, LaunchTemplateOverrides, LaunchTemplateSpecification,
    MixedInstancesPolicy,
};

use crate::error::AwsError;
use crate::model::{
    DELETE_IN_PROGRESS, Group, GroupLaunch, LaunchSource, MixedTemplate, Override, Tag, TemplateRef,
};

/// Largest page `DescribeAutoScalingGroups` returns.
const PAGE_SIZE: i32 = 100;

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

fn to_spec(spec: &TemplateRef) -> LaunchTemplateSpecification {
    // AWS rejects a specification naming both id and name: send one.
    let spec = spec.one_identifier();
    LaunchTemplateSpecification::builder()
        .set_launch_template_id(spec.id)
        .set_launch_template_name(spec.name)
        .set_version(spec.version)
        .build()
}

fn mixed_template(policy: &MixedInstancesPolicy) -> MixedTemplate {
    let lt = policy.launch_template();
    MixedTemplate {
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
            .map(|o| Override {
                template: o.launch_template_specification().map(template_ref),
                instance_type: o.instance_type().map(str::to_owned),
                weighted_capacity: o.weighted_capacity().map(str::to_owned),
                instance_requirements: o.instance_requirements().is_some(),
            })
            .collect(),
    }
}

impl From<&AutoScalingGroup> for Group {
    fn from(group: &AutoScalingGroup) -> Self {
        let launch = if let Some(spec) = group.launch_template() {
            LaunchSource::Template(template_ref(spec))
        } else if let Some(policy) = group.mixed_instances_policy() {
            LaunchSource::Mixed(mixed_template(policy))
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
            being_deleted: group.status() == Some(DELETE_IN_PROGRESS),
        }
    }
}

/// Sets what a group launches from. A mixed instances policy is sent as its
/// `LaunchTemplate` alone: AWS leaves the properties not sent unchanged, and
/// an `InstancesDistribution` sent back would be validated again as a whole.
pub async fn update_group(
    client: &Client,
    group: &str,
    launch: &GroupLaunch,
) -> Result<(), AwsError> {
    let request = client
        .update_auto_scaling_group()
        .auto_scaling_group_name(group);
    let request = match launch {
        GroupLaunch::Plain(spec) => request.launch_template(to_spec(spec)),
        GroupLaunch::Mixed(mixed) => request.mixed_instances_policy(mixed_policy(mixed)),
    };
    request.send().await?;
    Ok(())
}

/// The `MixedInstancesPolicy` of an update: its `LaunchTemplate` alone.
fn mixed_policy(mixed: &MixedTemplate) -> MixedInstancesPolicy {
    MixedInstancesPolicy::builder()
        .launch_template(
            LaunchTemplate::builder()
                .launch_template_specification(to_spec(&mixed.spec))
                .set_overrides(Some(mixed.overrides.iter().map(to_override).collect()))
                .build(),
        )
        .build()
}

fn to_override(o: &Override) -> LaunchTemplateOverrides {
    LaunchTemplateOverrides::builder()
        .set_launch_template_specification(o.template.as_ref().map(to_spec))
        .set_instance_type(o.instance_type.clone())
        .set_weighted_capacity(o.weighted_capacity.clone())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mixed_update_sends_the_launch_template_alone_by_id_with_the_overrides_as_read() {
        let spec = |version: &str| TemplateRef {
            id: Some("lt-1".into()),
            name: Some("web".into()),
            version: Some(version.into()),
        };
        let mixed = MixedTemplate {
            spec: spec("$Latest"),
            overrides: vec![Override {
                template: Some(spec("2")),
                instance_type: Some("t3.micro".into()),
                weighted_capacity: Some("2".into()),
                instance_requirements: false,
            }],
        };

        let policy = mixed_policy(&mixed);

        // No InstancesDistribution: AWS would validate a sent one as a whole.
        assert!(policy.instances_distribution().is_none());
        let lt = policy.launch_template().unwrap();
        let top = lt.launch_template_specification().unwrap();
        assert_eq!(
            (
                top.launch_template_id(),
                top.launch_template_name(),
                top.version()
            ),
            (Some("lt-1"), None, Some("$Latest"))
        );
        let o = &lt.overrides()[0];
        assert_eq!(o.instance_type(), Some("t3.micro"));
        assert_eq!(o.weighted_capacity(), Some("2"));
        let spec = o.launch_template_specification().unwrap();
        assert_eq!(
            (
                spec.launch_template_id(),
                spec.launch_template_name(),
                spec.version()
            ),
            (Some("lt-1"), None, Some("2"))
        );
    }
}
