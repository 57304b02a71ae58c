//! Auto Scaling: reading groups (with pagination) and moving a group to `$Latest`.
//!
//! Owns the conversion from SDK group types to [`Group`].

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{
    AlarmSpecification, AutoScalingGroup, DesiredConfiguration, Filter, LaunchTemplate,
    LaunchTemplateOverrides, LaunchTemplateSpecification, LifecycleState, MixedInstancesPolicy,
    RefreshPreferences, RefreshStrategy, ScaleInProtectedInstances, StandbyInstances,
    Tag as AsgTag,
};

use crate::error::AwsError;
use crate::model::{
    DELETE_IN_PROGRESS, Group, GroupLaunch, LaunchSource, MixedTemplate, Override, Refresh,
    RollingPreferences, Tag, TemplateRef,
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
            .map(override_of)
            .collect(),
    }
}

/// Every field of an override, so that a move sends back what was read;
/// `InstanceRequirements` is not modelled, and a group using it is never
/// written ([`Override::instance_requirements`]).
fn override_of(o: &LaunchTemplateOverrides) -> Override {
    Override {
        template: o.launch_template_specification().map(template_ref),
        instance_type: o.instance_type().map(str::to_owned),
        weighted_capacity: o.weighted_capacity().map(str::to_owned),
        image_id: o.image_id().map(str::to_owned),
        instance_requirements: o.instance_requirements().is_some(),
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
            tags: group
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            desired_capacity: group.desired_capacity().unwrap_or_default(),
            // Protected from scale-in: a refresh leaves them (it is sent with
            // ScaleInProtectedInstances=Ignore), so they are not the
            // rollout's to converge; they still count among those behind.
            in_service: in_service(group, false),
            protected: in_service(group, true),
        }
    }
}

/// The group's in-service instances, protected from scale-in or not.
fn in_service(group: &AutoScalingGroup, protected: bool) -> Vec<String> {
    group
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
        .filter(|i| i.protected_from_scale_in().unwrap_or(false) == protected)
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// Largest page of `DescribeInstanceRefreshes`.
const REFRESH_PAGE: i32 = 100;

/// The group's instance refreshes AWS still describes (six weeks), newest
/// first.
pub async fn describe_refreshes(client: &Client, group: &str) -> Result<Vec<Refresh>, AwsError> {
    let mut refreshes = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .max_records(REFRESH_PAGE)
            .set_next_token(token)
            .send()
            .await?;
        for r in page.instance_refreshes() {
            refreshes.push(Refresh {
                id: r.instance_refresh_id().unwrap_or_default().to_owned(),
                status: r
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                start_time: r
                    .start_time()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                desired: r
                    .desired_configuration()
                    .and_then(|d| d.launch_template())
                    .map(template_ref),
            });
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    refreshes.sort_by_key(|r| std::cmp::Reverse(r.start_time));
    Ok(refreshes)
}

/// Starts the refresh; returns its id. The desired configuration is the
/// template at a version number: on success AWS writes it onto the group,
/// and with `AutoRollback` a failure returns the group to the number it was
/// on, alarms in `ALARM` count as a failure, and the bake time is waited out.
pub async fn start_refresh(
    client: &Client,
    group: &str,
    template: &TemplateRef,
    rolling: &RollingPreferences,
) -> Result<String, AwsError> {
    // Protected and standby instances are left alone rather than waited
    // for: AWS's default (Wait) fails the refresh after an hour.
    let preferences = RefreshPreferences::builder()
        .skip_matching(rolling.skip_matching)
        .scale_in_protected_instances(ScaleInProtectedInstances::Ignore)
        .standby_instances(StandbyInstances::Ignore)
        .set_min_healthy_percentage(rolling.min_healthy_percentage)
        .set_max_healthy_percentage(rolling.max_healthy_percentage)
        .set_checkpoint_percentages(
            (!rolling.checkpoint_percentages.is_empty())
                .then(|| rolling.checkpoint_percentages.clone()),
        )
        .set_checkpoint_delay(
            rolling
                .checkpoint_delay_seconds
                .and_then(|s| i32::try_from(s).ok()),
        )
        .auto_rollback(rolling.auto_rollback)
        .set_alarm_specification((!rolling.alarms.is_empty()).then(|| {
            AlarmSpecification::builder()
                .set_alarms(Some(rolling.alarms.clone()))
                .build()
        }))
        .set_bake_time(
            rolling
                .bake_time_seconds
                .and_then(|s| i32::try_from(s).ok()),
        )
        .build();
    let out = client
        .start_instance_refresh()
        .auto_scaling_group_name(group)
        .strategy(RefreshStrategy::Rolling)
        .desired_configuration(
            DesiredConfiguration::builder()
                .launch_template(to_spec(template))
                .build(),
        )
        .preferences(preferences)
        .send()
        .await?;
    Ok(out.instance_refresh_id().unwrap_or_default().to_owned())
}

/// Sets one tag of a group (not propagated to instances).
pub async fn tag_group(
    client: &Client,
    group: &str,
    key: &str,
    value: &str,
) -> Result<(), AwsError> {
    client
        .create_or_update_tags()
        .tags(
            AsgTag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(key)
                .value(value)
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// Removes one tag of a group.
pub async fn untag_group(client: &Client, group: &str, key: &str) -> Result<(), AwsError> {
    client
        .delete_tags()
        .tags(
            AsgTag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(key)
                .build(),
        )
        .send()
        .await?;
    Ok(())
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
        .set_image_id(o.image_id.clone())
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
                image_id: Some("ami-0arm".into()),
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
        assert_eq!(o.image_id(), Some("ami-0arm"));
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

    #[test]
    fn what_a_group_move_sends_back_carries_every_field_the_sdk_reads() {
        use crate::sdk_fields::assert_carries_every_field;
        assert_carries_every_field(
            &LaunchTemplateSpecification::builder().build(),
            &["launch_template_id", "launch_template_name", "version"],
            &[],
        );
        assert_carries_every_field(
            &LaunchTemplate::builder().build(),
            &["launch_template_specification", "overrides"],
            &[],
        );
        assert_carries_every_field(
            &LaunchTemplateOverrides::builder().build(),
            &[
                "launch_template_specification",
                "instance_type",
                "weighted_capacity",
                "image_id",
            ],
            &["instance_requirements"],
        );
    }

    #[test]
    fn an_override_read_and_sent_back_is_the_same_override() {
        let read = LaunchTemplateOverrides::builder()
            .instance_type("m7g.large")
            .weighted_capacity("2")
            .image_id("ami-0arm")
            .launch_template_specification(
                LaunchTemplateSpecification::builder()
                    .launch_template_id("lt-1")
                    .version("3")
                    .build(),
            )
            .build();

        assert_eq!(to_override(&override_of(&read)), read);
    }
}
