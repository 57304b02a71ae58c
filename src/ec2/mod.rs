//! EC2: backup images, the managed launch template and its versions.
//!
//! Owns pagination and the conversion from SDK types to [`Image`] and
//! [`Template`]; the writes take exactly the fields the plan names.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, LaunchTemplateBlockDeviceMapping, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, RequestLaunchTemplateData, VolumeType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::DateTime;

use crate::error::{AwsError, Error};
use std::collections::BTreeMap;

use crate::model::{BlockDevice, DiscoveredTemplate, EbsVolume, Tag, Template, TemplateVersion};

mod images;

pub use crate::model::MAX_DELETE_BATCH;
pub use images::*;
/// Largest page of `DescribeLaunchTemplateVersions`.
const VERSIONS_PAGE: i32 = 200;
/// Largest page of `DescribeImages`.
const IMAGES_PAGE: i32 = 1000;

/// Escapes `*`, `?` and `\` so an EC2 filter matches the marker literally.
pub fn escape_filter(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads the template and every version of it.
pub async fn describe_template(client: &Client, id: &str) -> Result<Template, Error> {
    let mut pages = client
        .describe_launch_template_versions()
        .launch_template_id(id)
        .max_results(VERSIONS_PAGE)
        .into_paginator()
        .send();
    let mut name = String::new();
    let mut default_version = None;
    let mut versions = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            if matches!(
                err.code(),
                Some("InvalidLaunchTemplateId.NotFound" | "InvalidLaunchTemplateId.Malformed")
            ) {
                Error::template_not_found(id)
            } else {
                Error::DescribeTemplateVersions {
                    id: id.to_owned(),
                    source: err.into(),
                }
            }
        })?;
        for v in page.launch_template_versions() {
            let Some(number) = v.version_number() else {
                continue;
            };
            if v.default_version() == Some(true) {
                default_version = Some(number);
            }
            if let Some(n) = v.launch_template_name() {
                name = n.to_owned();
            }
            versions.push(template_version(number, v));
        }
    }
    versions.sort_by_key(|v| v.number);
    versions.dedup_by_key(|v| v.number);
    let Some(default_version) = default_version else {
        // A template always has a default version; without one the answer is
        // not something we can plan on.
        return Err(if versions.is_empty() {
            Error::template_not_found(id)
        } else {
            Error::DescribeTemplateVersions {
                id: id.to_owned(),
                source: AwsError::other("no version is marked default"),
            }
        });
    };
    Ok(Template {
        id: id.to_owned(),
        name,
        default_version,
        versions,
        tags: None,
    })
}

fn template_version(number: i64, v: &aws_sdk_ec2::types::LaunchTemplateVersion) -> TemplateVersion {
    let data = v.launch_template_data();
    TemplateVersion {
        number,
        image_id: data.and_then(|d| d.image_id()).map(str::to_owned),
        block_devices: data
            .map(|d| d.block_device_mappings())
            .unwrap_or_default()
            .iter()
            .map(block_device)
            .collect(),
        description: v.version_description().map(str::to_owned),
        created: v
            .create_time()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
    }
}

/// Largest page of `DescribeLaunchTemplates`.
const TEMPLATES_PAGE: i32 = 200;

/// Every launch template carrying `tag`, with all its tags.
pub async fn describe_templates(
    client: &Client,
    tag: &Tag,
) -> Result<Vec<DiscoveredTemplate>, AwsError> {
    let mut pages = client
        .describe_launch_templates()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tag.key))
                .values(escape_filter(&tag.value))
                .build(),
        )
        .max_results(TEMPLATES_PAGE)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        for t in page?.launch_templates() {
            let Some(id) = t.launch_template_id() else {
                continue;
            };
            found.push(DiscoveredTemplate {
                id: id.to_owned(),
                name: t.launch_template_name().unwrap_or_default().to_owned(),
                tags: tag_map(t.tags()),
            });
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    Ok(found)
}

/// The tags of one launch template; `None` when EC2 does not know it.
pub async fn describe_template_tags(
    client: &Client,
    id: &str,
) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let result = client
        .describe_launch_templates()
        .launch_template_ids(id)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out
            .launch_templates()
            .iter()
            .find(|t| t.launch_template_id() == Some(id))
            .map(|t| tag_map(t.tags()))),
        Err(err)
            if matches!(
                err.code(),
                Some("InvalidLaunchTemplateId.NotFound" | "InvalidLaunchTemplateId.Malformed")
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn block_device(m: &LaunchTemplateBlockDeviceMapping) -> BlockDevice {
    BlockDevice {
        device_name: m.device_name().map(str::to_owned),
        virtual_name: m.virtual_name().map(str::to_owned),
        no_device: m.no_device().map(str::to_owned),
        ebs: m.ebs().map(|e| EbsVolume {
            encrypted: e.encrypted(),
            delete_on_termination: e.delete_on_termination(),
            iops: e.iops(),
            kms_key_id: e.kms_key_id().map(str::to_owned),
            snapshot_id: e.snapshot_id().map(str::to_owned),
            volume_size: e.volume_size(),
            volume_type: e.volume_type().map(|t| t.as_str().to_owned()),
            throughput: e.throughput(),
            volume_initialization_rate: e.volume_initialization_rate(),
            ebs_card_index: e.ebs_card_index(),
        }),
    }
}

fn block_device_request(d: &BlockDevice) -> LaunchTemplateBlockDeviceMappingRequest {
    LaunchTemplateBlockDeviceMappingRequest::builder()
        .set_device_name(d.device_name.clone())
        .set_virtual_name(d.virtual_name.clone())
        .set_no_device(d.no_device.clone())
        .set_ebs(d.ebs.as_ref().map(|e| {
            LaunchTemplateEbsBlockDeviceRequest::builder()
                .set_encrypted(e.encrypted)
                .set_delete_on_termination(e.delete_on_termination)
                .set_iops(e.iops)
                .set_kms_key_id(e.kms_key_id.clone())
                .set_snapshot_id(e.snapshot_id.clone())
                .set_volume_size(e.volume_size)
                .set_volume_type(e.volume_type.as_deref().map(VolumeType::from))
                .set_throughput(e.throughput)
                .set_volume_initialization_rate(e.volume_initialization_rate)
                .set_ebs_card_index(e.ebs_card_index)
                .build()
        }))
        .build()
}

/// A version to create from `source_version` with only `ImageId` changed.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    /// `LaunchTemplateId`.
    pub template_id: &'a str,
    /// `SourceVersion`.
    pub source_version: i64,
    /// `LaunchTemplateData.ImageId`.
    pub image_id: &'a str,
    /// `VersionDescription`.
    pub description: &'a str,
    /// `ClientToken`; `None` lets the SDK make a fresh one.
    pub client_token: Option<&'a str>,
    /// `BlockDeviceMappings` to send; empty sends none (the source's are
    /// inherited, without their snapshots).
    pub block_devices: &'a [BlockDevice],
}

/// What `CreateLaunchTemplateVersion` answered.
#[derive(Debug)]
pub struct CreatedVersion {
    /// The new version's number.
    pub number: i64,
    /// `Warning.Errors`: parameters EC2 found invalid in the version it
    /// created anyway, as `code: message`.
    pub warnings: Vec<String>,
}

/// Creates the version. The SDK retries it under the same `ClientToken`;
/// that a retried token's answer repeats the first one's `Warning` is not
/// documented (see docs/testing.md).
pub async fn create_version(
    client: &Client,
    new: NewVersion<'_>,
) -> Result<CreatedVersion, AwsError> {
    let out = client
        .create_launch_template_version()
        .launch_template_id(new.template_id)
        .source_version(new.source_version.to_string())
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(new.image_id)
                .set_block_device_mappings(
                    (!new.block_devices.is_empty())
                        .then(|| new.block_devices.iter().map(block_device_request).collect()),
                )
                .build(),
        )
        .version_description(new.description)
        .set_client_token(new.client_token.map(str::to_owned))
        .send()
        .await?;
    let number = out
        .launch_template_version()
        .and_then(|v| v.version_number())
        .ok_or_else(|| {
            AwsError::other("CreateLaunchTemplateVersion answered without a version number")
        })?;
    let warnings = out
        .warning()
        .map(|w| w.errors())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.code().unwrap_or("Warning"),
                e.message().unwrap_or_default()
            )
        })
        .collect();
    Ok(CreatedVersion { number, warnings })
}

/// Makes `version` (a number, as AWS documents) the default.
pub async fn set_default_version(
    client: &Client,
    template_id: &str,
    version: i64,
) -> Result<(), AwsError> {
    client
        .modify_launch_template()
        .launch_template_id(template_id)
        .default_version(version.to_string())
        .send()
        .await?;
    Ok(())
}

/// What one `DeleteLaunchTemplateVersions` call achieved.
#[derive(Debug, Default)]
pub struct Deletion {
    /// Versions deleted.
    pub deleted: Vec<i64>,
    /// Versions AWS refused.
    pub refused: Vec<Refused>,
}

/// A version EC2 did not delete, with its per-version error.
#[derive(Debug)]
pub struct Refused {
    /// The version.
    pub version: i64,
    /// `ResponseError.Code`.
    pub code: String,
    /// `ResponseError.Message`.
    pub message: String,
}

/// Deletes up to [`MAX_DELETE_BATCH`] versions in one call.
pub async fn delete_versions(
    client: &Client,
    template_id: &str,
    versions: &[i64],
) -> Result<Deletion, AwsError> {
    let out = client
        .delete_launch_template_versions()
        .launch_template_id(template_id)
        .set_versions(Some(versions.iter().map(i64::to_string).collect()))
        .send()
        .await?;
    Ok(Deletion {
        deleted: out
            .successfully_deleted_launch_template_versions()
            .iter()
            .filter_map(|v| v.version_number())
            .collect(),
        refused: out
            .unsuccessfully_deleted_launch_template_versions()
            .iter()
            .map(|v| {
                let err = v.response_error();
                Refused {
                    version: v.version_number().unwrap_or_default(),
                    code: err
                        .and_then(|e| e.code())
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                    message: err.and_then(|e| e.message()).unwrap_or_default().to_owned(),
                }
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::LaunchTemplateEbsBlockDevice;

    use super::*;
    use crate::sdk_fields::assert_carries_every_field;

    const MAPPING: [&str; 4] = ["device_name", "virtual_name", "no_device", "ebs"];
    const EBS: [&str; 10] = [
        "encrypted",
        "delete_on_termination",
        "iops",
        "kms_key_id",
        "snapshot_id",
        "volume_size",
        "volume_type",
        "throughput",
        "volume_initialization_rate",
        "ebs_card_index",
    ];

    #[test]
    fn block_device_mappings_carry_every_field_the_sdk_reads_and_sends() {
        assert_carries_every_field(
            &LaunchTemplateBlockDeviceMapping::builder().build(),
            &MAPPING,
            &[],
        );
        assert_carries_every_field(
            &LaunchTemplateBlockDeviceMappingRequest::builder().build(),
            &MAPPING,
            &[],
        );
        assert_carries_every_field(&LaunchTemplateEbsBlockDevice::builder().build(), &EBS, &[]);
        assert_carries_every_field(
            &LaunchTemplateEbsBlockDeviceRequest::builder().build(),
            &EBS,
            &[],
        );
    }

    #[test]
    fn a_mapping_read_and_sent_back_keeps_every_value() {
        let read = LaunchTemplateBlockDeviceMapping::builder()
            .device_name("/dev/xvda")
            .virtual_name("ephemeral0")
            .no_device("")
            .ebs(
                LaunchTemplateEbsBlockDevice::builder()
                    .encrypted(true)
                    .delete_on_termination(false)
                    .iops(3000)
                    .kms_key_id("arn:aws:kms:eu-west-1:111122223333:key/k")
                    .snapshot_id("snap-0abc")
                    .volume_size(20)
                    .volume_type(VolumeType::Gp3)
                    .throughput(250)
                    .volume_initialization_rate(300)
                    .ebs_card_index(1)
                    .build(),
            )
            .build();

        let sent = block_device_request(&block_device(&read));

        // The request type differs from the read one: compare field by field
        // through their Debug renderings, which name the type only once.
        let strip = |text: String| text.replace("Request", "");
        assert_eq!(strip(format!("{sent:?}")), strip(format!("{read:?}")));
    }
}
