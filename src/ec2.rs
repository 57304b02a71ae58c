//! EC2: backup images, the managed launch template and its versions.
//!
//! Owns pagination and the conversion from SDK types to [`Image`] and
//! [`Template`]; the writes take exactly the fields the plan names.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    Filter, Image as SdkImage, LaunchTemplateBlockDeviceMapping,
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    RequestLaunchTemplateData, VolumeType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::error::{AwsError, Error};
use crate::model::{BlockDevice, EbsVolume, Image, SKIP_TAG_KEY, Tag, Template, TemplateVersion};

/// Most versions one `DeleteLaunchTemplateVersions` call accepts.
pub const MAX_DELETE_BATCH: usize = 200;
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
                Error::TemplateNotFound { id: id.to_owned() }
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
            versions.push(TemplateVersion {
                number,
                image_id: v
                    .launch_template_data()
                    .and_then(|d| d.image_id())
                    .map(str::to_owned),
                block_devices: v
                    .launch_template_data()
                    .map(|d| d.block_device_mappings())
                    .unwrap_or_default()
                    .iter()
                    .map(block_device)
                    .collect(),
                description: v.version_description().map(str::to_owned),
            });
        }
    }
    versions.sort_by_key(|v| v.number);
    versions.dedup_by_key(|v| v.number);
    let Some(default_version) = default_version else {
        // A template always has a default version; without one the answer is
        // not something we can plan on.
        return Err(if versions.is_empty() {
            Error::TemplateNotFound { id: id.to_owned() }
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
    })
}

/// The candidate backups and the account that owns them.
#[derive(Debug, Default)]
pub struct Backups {
    /// Images owned by the account, `available`, with the marker in the description.
    pub images: Vec<Image>,
    /// The owner id EC2 reported for them (the account id), if any came back.
    pub account: Option<String>,
}

/// Reads the candidate backups: owned by the account, `available`, with the
/// marker in the description and, given a lineage, carrying its tag (all
/// filtered server-side).
pub async fn describe_backups(
    client: &Client,
    marker: &str,
    lineage: Option<&Tag>,
) -> Result<Backups, AwsError> {
    let lineage = lineage.map(|tag| {
        Filter::builder()
            .name(format!("tag:{}", tag.key))
            .values(escape_filter(&tag.value))
            .build()
    });
    let mut pages = client
        .describe_images()
        .set_filters(lineage.map(|f| vec![f]))
        .owners("self")
        .filters(
            Filter::builder()
                .name("description")
                .values(format!("*{}*", escape_filter(marker)))
                .build(),
        )
        .filters(Filter::builder().name("state").values("available").build())
        .max_results(IMAGES_PAGE)
        .into_paginator()
        .send();
    let mut backups = Backups::default();
    while let Some(page) = pages.next().await {
        let page = page?;
        if backups.account.is_none() {
            backups.account = page
                .images()
                .first()
                .and_then(|i| i.owner_id())
                .map(str::to_owned);
        }
        backups
            .images
            .extend(page.images().iter().map(|i| to_image(i, true)));
    }
    Ok(backups)
}

/// Reads one image by id; `None` when EC2 no longer knows it. `account` is the
/// owner id of the account's own images, when known.
pub async fn describe_image(
    client: &Client,
    id: &str,
    account: Option<&str>,
) -> Result<Option<Image>, AwsError> {
    let result = client.describe_images().image_ids(id).send().await;
    match result {
        Ok(out) => Ok(out
            .images()
            .iter()
            .find(|i| i.image_id() == Some(id))
            .map(|i| {
                let owned = account.is_some() && i.owner_id() == account;
                to_image(i, owned)
            })),
        Err(err)
            if matches!(
                err.code(),
                Some(
                    "InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable" | "InvalidAMIID.Malformed"
                )
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

fn to_image(image: &SdkImage, owned_by_account: bool) -> Image {
    Image {
        id: image.image_id().unwrap_or_default().to_owned(),
        // An image without a readable date sorts as the oldest: it never wins
        // the "newest" choice, and as the current image it is replaced.
        created: image
            .creation_date()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(DateTime::UNIX_EPOCH),
        state: image
            .state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        description: image.description().unwrap_or_default().to_owned(),
        owned_by_account,
        skip_tagged: image.tags().iter().any(|t| {
            t.key() == Some(SKIP_TAG_KEY)
                && t.value().is_some_and(|v| v.eq_ignore_ascii_case("true"))
        }),
        architecture: image.architecture().map(|a| a.as_str().to_owned()),
        tags: image
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect(),
        snapshots: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let snapshot = m.ebs().and_then(|e| e.snapshot_id())?;
                Some((m.device_name()?.to_owned(), snapshot.to_owned()))
            })
            .collect(),
    }
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

/// Creates the version.
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
