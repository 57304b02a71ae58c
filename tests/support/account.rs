//! Seeding a realistic account through the real AWS SDK, straight to moto.

use ami_reconciler::Report;
use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate as AsgLaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, MixedInstancesPolicy, Tag as AsgTag,
};
use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};

use super::fixtures::day;
use super::moto::Moto;
use super::{MANAGED, REGION};

/// Seeds one moto account through the EC2, Auto Scaling and SSM APIs.
pub struct Account<'a> {
    moto: &'a Moto,
    /// EC2 client (direct to moto).
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling client (direct to moto).
    pub asg: aws_sdk_autoscaling::Client,
    /// SSM client (direct to moto).
    pub ssm: aws_sdk_ssm::Client,
}

impl<'a> Account<'a> {
    pub(super) fn new(moto: &'a Moto, config: &aws_config::SdkConfig) -> Account<'a> {
        Account {
            moto,
            ec2: aws_sdk_ec2::Client::new(config),
            asg: aws_sdk_autoscaling::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }

    /// Registers an image with this description, created on day `n`.
    pub async fn image(&self, name: &str, description: &str, n: i64) -> String {
        self.register(
            self.ec2
                .register_image()
                .name(name)
                .description(description),
            n,
        )
        .await
    }

    /// Registers an image built by hand (no backup marker) of an architecture.
    pub async fn golden(&self, name: &str, n: i64, architecture: &str) -> String {
        self.register(
            self.ec2
                .register_image()
                .name(name)
                .description("golden image built by Packer")
                .architecture(aws_sdk_ec2::types::ArchitectureValues::from(architecture)),
            n,
        )
        .await
    }

    /// Registers a DLM-like backup of a policy's lineage from day `n`: the
    /// `aws:dlm:lifecycle-policy-id` tag DLM puts on its images, and an
    /// architecture.
    pub async fn backup_of(&self, policy: &str, n: i64, architecture: &str) -> String {
        let lineage = Tag::builder()
            .key("aws:dlm:lifecycle-policy-id")
            .value(policy)
            .build();
        let request = self
            .ec2
            .register_image()
            .name(format!("{policy}-{architecture}-{n}"))
            .description(format!(
                "Created for policy: {policy} schedule: daily EC2_BACKUP day {n}"
            ))
            .architecture(aws_sdk_ec2::types::ArchitectureValues::from(architecture))
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .tags(lineage)
                    .build(),
            );
        self.register(request, n).await
    }

    async fn register(
        &self,
        request: aws_sdk_ec2::operation::register_image::builders::RegisterImageFluentBuilder,
        n: i64,
    ) -> String {
        let id = request.send().await.unwrap().image_id.unwrap();
        self.moto.set_image(&id, None, Some(day(n)));
        id
    }

    /// Deletes one version, as an operator would.
    pub async fn delete_version(&self, template: &str, version: i64) {
        self.ec2
            .delete_launch_template_versions()
            .launch_template_id(template)
            .versions(version.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Registers a DLM-like backup (`EC2_BACKUP` in the description) from day `n`.
    pub async fn backup(&self, n: i64) -> String {
        self.image(
            &format!("web-backup-{n}"),
            &format!("Created for policy: policy-0abc schedule: daily EC2_BACKUP day {n}"),
            n,
        )
        .await
    }

    /// Registers a backup from day `n` whose root device `/dev/xvda` is a
    /// snapshot of `size` GiB (a server whose disk was grown).
    pub async fn backup_with_root(&self, n: i64, size: i32) -> String {
        let volume = self
            .ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(size)
            .send()
            .await
            .unwrap()
            .volume_id
            .unwrap();
        let snapshot = self
            .ec2
            .create_snapshot()
            .volume_id(volume)
            .send()
            .await
            .unwrap()
            .snapshot_id
            .unwrap();
        self.register(
            self.ec2
                .register_image()
                .name(format!("web-backup-{n}"))
                .description(format!(
                    "Created for policy: policy-0abc schedule: daily EC2_BACKUP day {n}"
                ))
                .root_device_name("/dev/xvda")
                .block_device_mappings(
                    aws_sdk_ec2::types::BlockDeviceMapping::builder()
                        .device_name("/dev/xvda")
                        .ebs(
                            aws_sdk_ec2::types::EbsBlockDevice::builder()
                                .snapshot_id(snapshot)
                                .build(),
                        )
                        .build(),
                ),
            n,
        )
        .await
    }

    /// Tags an image `ami-reconciler:skip=true`.
    pub async fn skip(&self, image: &str) {
        self.tag_image(image, "ami-reconciler:skip", "true").await;
    }

    /// Tags an image `key=value`.
    pub async fn tag_image(&self, image: &str, key: &str, value: &str) {
        self.ec2
            .create_tags()
            .resources(image)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }

    /// Creates a launch template whose version 1 uses `image`; returns its id.
    /// It carries `ami-reconciler:managed=true`, as the deployed write
    /// statements require.
    pub async fn template(&self, name: &str, image: &str) -> String {
        self.tagged_template(name, image, &[("ami-reconciler:managed", "true")])
            .await
    }

    /// A template as [`Account::template`] makes it, with exactly these
    /// tags besides `app=web`.
    pub async fn tagged_template(&self, name: &str, image: &str, tags: &[(&str, &str)]) -> String {
        self.create_template(name, image, tags, None).await
    }

    /// A template as [`Account::template`] makes it whose `/dev/xvda` is a
    /// volume of `size` GiB (`Ebs.VolumeSize`, no snapshot).
    pub async fn sized_template(&self, name: &str, image: &str, size: i32) -> String {
        let root = aws_sdk_ec2::types::LaunchTemplateBlockDeviceMappingRequest::builder()
            .device_name("/dev/xvda")
            .ebs(
                aws_sdk_ec2::types::LaunchTemplateEbsBlockDeviceRequest::builder()
                    .volume_size(size)
                    .build(),
            )
            .build();
        self.create_template(name, image, &[MANAGED], Some(root))
            .await
    }

    async fn create_template(
        &self,
        name: &str,
        image: &str,
        tags: &[(&str, &str)],
        device: Option<aws_sdk_ec2::types::LaunchTemplateBlockDeviceMappingRequest>,
    ) -> String {
        let tags = [("app", "web")]
            .iter()
            .chain(tags)
            .map(|(key, value)| Tag::builder().key(*key).value(*value).build());
        self.ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(image)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .user_data("IyEvYmluL2Jhc2gKZWNobyBoZWxsbw==")
                    .set_block_device_mappings(device.map(|d| vec![d]))
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(tags.collect()))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .launch_template
            .unwrap()
            .launch_template_id
            .unwrap()
    }

    /// Adds a version from `$Latest` with this image; returns its number.
    pub async fn version(&self, template: &str, image: &str) -> i64 {
        self.ec2
            .create_launch_template_version()
            .launch_template_id(template)
            .source_version("$Latest")
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(image).build())
            .send()
            .await
            .unwrap()
            .launch_template_version
            .unwrap()
            .version_number
            .unwrap()
    }

    /// Makes `version` the default.
    pub async fn set_default(&self, template: &str, version: i64) {
        self.ec2
            .modify_launch_template()
            .launch_template_id(template)
            .default_version(version.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Stores the template id in an SSM parameter.
    pub async fn parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }

    fn spec(template: &str, version: &str) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .launch_template_id(template)
            .version(version)
            .build()
    }

    fn tags(name: &str, managed: bool) -> Vec<AsgTag> {
        let mut tags = vec![
            AsgTag::builder()
                .key("app")
                .value("web")
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(true)
                .build(),
        ];
        if managed {
            tags.push(
                AsgTag::builder()
                    .key(MANAGED.0)
                    .value(MANAGED.1)
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(false)
                    .build(),
            );
        }
        tags
    }

    /// Creates a group on `version` of `template`, tagged managed or not.
    pub async fn group(&self, name: &str, template: &str, version: &str, managed: bool) {
        self.new_group(name, managed)
            .launch_template(Self::spec(template, version))
            .send()
            .await
            .unwrap();
    }

    /// A managed group tagged `ami-reconciler:rollout=rolling` (and `tags`)
    /// on `$Latest`, with `instances` in-service instances running `image`.
    pub async fn rolling_group(
        &self,
        name: &str,
        template: &str,
        instances: i32,
        image: &str,
        tags: &[(&str, &str)],
    ) {
        let extra = [("ami-reconciler:rollout", "rolling")]
            .iter()
            .chain(tags)
            .map(|(key, value)| {
                AsgTag::builder()
                    .key(*key)
                    .value(*value)
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(false)
                    .build()
            });
        let mut all = Self::tags(name, true);
        all.extend(extra);
        self.new_group(name, true)
            .set_tags(Some(all))
            .desired_capacity(instances)
            .launch_template(Self::spec(template, "$Latest"))
            .send()
            .await
            .unwrap();
        self.run_instances(name, image, instances);
    }

    /// Replaces the group's instances with `count` running `image` (test set-up).
    pub fn run_instances(&self, group: &str, image: &str, count: i32) {
        let answer = self.moto.control(
            "POST",
            &format!("/_harness/groups/{group}/instances"),
            &serde_json::json!({"image_id": image, "count": count}),
        );
        assert_eq!(answer["ok"], true, "{answer}");
    }

    /// A group request with what every test group shares: no instances, one
    /// zone, the `app` tag and, if `managed`, the managed tag.
    fn new_group(
        &self,
        name: &str,
        managed: bool,
    ) -> aws_sdk_autoscaling::operation::create_auto_scaling_group::builders::CreateAutoScalingGroupFluentBuilder{
        self.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(0)
            .max_size(4)
            .desired_capacity(0)
            .availability_zones(format!("{REGION}a"))
            .set_tags(Some(Self::tags(name, managed)))
    }

    /// Creates a mixed instances group: top-level `version`, and an override
    /// per entry of `overrides` (instance type, template version).
    pub async fn mixed_group(
        &self,
        name: &str,
        template: &str,
        version: &str,
        overrides: &[(&str, Option<&str>)],
        managed: bool,
    ) {
        let overrides = overrides
            .iter()
            .map(|(instance_type, v)| {
                let mut o = LaunchTemplateOverrides::builder()
                    .instance_type(*instance_type)
                    .weighted_capacity("1");
                if let Some(v) = v {
                    o = o.launch_template_specification(Self::spec(template, v));
                }
                o.build()
            })
            .collect();
        self.mixed_group_of(name, template, version, overrides, managed)
            .await;
    }

    /// Creates a mixed instances group with these overrides, as given.
    pub async fn mixed_group_of(
        &self,
        name: &str,
        template: &str,
        version: &str,
        overrides: Vec<LaunchTemplateOverrides>,
        managed: bool,
    ) {
        self.new_group(name, managed)
            .mixed_instances_policy(
                MixedInstancesPolicy::builder()
                    .launch_template(
                        AsgLaunchTemplate::builder()
                            .launch_template_specification(Self::spec(template, version))
                            .set_overrides(Some(overrides))
                            .build(),
                    )
                    .instances_distribution(
                        InstancesDistribution::builder()
                            .on_demand_base_capacity(1)
                            .on_demand_percentage_above_base_capacity(25)
                            .spot_allocation_strategy("price-capacity-optimized")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The group as AWS describes it now.
    pub async fn describe_group(&self, name: &str) -> aws_sdk_autoscaling::types::AutoScalingGroup {
        self.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .unwrap()
            .auto_scaling_groups
            .unwrap_or_default()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("group {name} exists"))
    }

    /// The launch template version a plain group uses.
    pub async fn group_version(&self, name: &str) -> String {
        let g = self.describe_group(name).await;
        match g.launch_template() {
            Some(spec) => spec.version().unwrap_or_default().to_owned(),
            None => g
                .mixed_instances_policy()
                .and_then(|p| p.launch_template())
                .and_then(|lt| lt.launch_template_specification())
                .and_then(|s| s.version())
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// The template's version numbers (ascending) and its default.
    pub async fn versions(&self, template: &str) -> (Vec<i64>, i64) {
        let mut numbers = Vec::new();
        let mut default = 0;
        let mut pages = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(template)
            .max_results(200)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for v in page.unwrap().launch_template_versions() {
                numbers.push(v.version_number().unwrap());
                if v.default_version() == Some(true) {
                    default = v.version_number().unwrap();
                }
            }
        }
        numbers.sort_unstable();
        (numbers, default)
    }

    /// The full data of one version.
    pub async fn version_data(
        &self,
        template: &str,
        version: &str,
    ) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
        self.ec2
            .describe_launch_template_versions()
            .launch_template_id(template)
            .versions(version)
            .send()
            .await
            .unwrap()
            .launch_template_versions()[0]
            .launch_template_data()
            .cloned()
            .unwrap()
    }
}

/// A drifted account: the golden image at version 1 (the default), three
/// daily backups, versions 2..=6 made by hand with older images, a managed
/// group pinned to 1, an untagged group pinned to 2, a managed mixed
/// instances group on `$Default` whose override pins 3.
///
/// One run converges it to versions 2, 3, 5, 6 and 7 (the newest backup,
/// the default), both managed groups on `$Latest`.
pub struct Drifted {
    /// The template id.
    pub template: String,
    /// The backups, oldest first.
    pub backups: Vec<String>,
}

/// What one run applies to [`Drifted`], in order: the new version, the
/// default, the two managed groups off `$Latest`, the old versions.
pub const DRIFT_REPAIR: [&str; 5] = [
    "create_version",
    "set_default_version",
    "update_group",
    "update_group",
    "delete_versions",
];

/// Seeds [`Drifted`].
pub async fn drifted(moto: &Moto) -> Drifted {
    let account = moto.account().await;
    let golden = account.image("golden", "golden image, hand made", 0).await;
    let mut backups = Vec::new();
    for n in 1..=3 {
        backups.push(account.backup(n).await);
    }
    let template = account.template("web", &golden).await;
    for _ in 2..=6 {
        account.version(&template, &golden).await;
    }
    account.group("web", &template, "1", true).await;
    account.group("batch", &template, "2", false).await;
    account
        .mixed_group(
            "spot",
            &template,
            "$Default",
            &[("t3.micro", None), ("t3a.micro", Some("3"))],
            true,
        )
        .await;
    Drifted { template, backups }
}

/// Actions of a report's applied changes.
pub fn applied_actions(report: &Report) -> Vec<&'static str> {
    report.applied.iter().map(|a| a.change.action()).collect()
}
