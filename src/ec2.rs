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
use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    BlockDevice, DiscoveredTemplate, EbsVolume, Image, SKIP_TAG_KEY, Tag, Template, TemplateVersion,
};

pub use crate::model::MAX_DELETE_BATCH;
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
                Error::TemplateNotFound {
                    id: id.to_owned(),
                    place: None,
                }
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
                created: v
                    .create_time()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
            });
        }
    }
    versions.sort_by_key(|v| v.number);
    versions.dedup_by_key(|v| v.number);
    let Some(default_version) = default_version else {
        // A template always has a default version; without one the answer is
        // not something we can plan on.
        return Err(if versions.is_empty() {
            Error::TemplateNotFound {
                id: id.to_owned(),
                place: None,
            }
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

/// The candidate backups and the account that owns them.
#[derive(Debug, Default)]
pub struct Backups {
    /// Images owned by the account, `available`, with the marker in the description.
    pub images: Vec<Image>,
    /// The owner id EC2 reported for them (the account id), if any came back.
    pub account: Option<String>,
}

/// Which backups to ask EC2 for: descriptions containing any marker and,
/// given a lineage, the tag `key` with any of `values`.
#[derive(Debug, Clone, Default)]
pub struct BackupQuery<'a> {
    /// Each template's marker; one call asks for all of them.
    pub markers: Vec<&'a str>,
    /// A lineage filter EC2 can apply: one key, any of the values. `None`
    /// when some template has no lineage or the keys differ (the planner
    /// checks each template's lineage anyway).
    pub lineage: Option<(&'a str, Vec<&'a str>)>,
}

impl<'a> BackupQuery<'a> {
    /// The query for these templates' markers and lineages.
    pub fn of(templates: impl IntoIterator<Item = (&'a str, Option<&'a Tag>)>) -> Self {
        let mut markers = Vec::new();
        let mut keys = BTreeSet::new();
        let mut values = Vec::new();
        let mut every_template_has_one = true;
        for (marker, lineage) in templates {
            markers.push(marker);
            match lineage {
                Some(tag) => {
                    keys.insert(tag.key.as_str());
                    values.push(tag.value.as_str());
                }
                None => every_template_has_one = false,
            }
        }
        markers.sort_unstable();
        markers.dedup();
        values.sort_unstable();
        values.dedup();
        // The lineage filter is dropped rather than split: it only narrows
        // the answer, and the planner checks each lineage anyway.
        // One value of the `state` filter besides the markers and lineages.
        let state_filter = 1;
        let fits =
            markers.len().min(MARKERS_PER_CALL) + values.len() + state_filter <= MAX_FILTER_VALUES;
        let lineage = match (every_template_has_one && fits, keys.len()) {
            (true, 1) => keys.into_iter().next().map(|key| (key, values)),
            _ => None,
        };
        BackupQuery { markers, lineage }
    }
}

/// EC2's limit on the filter values of one call, all filters together:
/// "The maximum number of filter values specified on a single call is 200"
/// (its `FilterLimitExceeded` message; the reference names the code only).
pub const MAX_FILTER_VALUES: usize = 200;
/// Markers per `DescribeImages` call: half the limit, so a lineage filter
/// of as many values still fits. More markers (tag mode beyond 100 distinct
/// markers) take more calls.
const MARKERS_PER_CALL: usize = 100;

/// Reads the candidate backups: owned by the account, `available`, and
/// matching the query (all filtered server-side).
pub async fn describe_backups(
    client: &Client,
    query: &BackupQuery<'_>,
) -> Result<Backups, AwsError> {
    let mut backups = Backups::default();
    for markers in query.markers.chunks(MARKERS_PER_CALL) {
        describe_backups_of(client, markers, query, &mut backups).await?;
    }
    let mut seen = BTreeSet::new();
    backups.images.retain(|i| seen.insert(i.id.clone()));
    Ok(backups)
}

async fn describe_backups_of(
    client: &Client,
    markers: &[&str],
    query: &BackupQuery<'_>,
    backups: &mut Backups,
) -> Result<(), AwsError> {
    let lineage = query.lineage.as_ref().map(|(key, values)| {
        Filter::builder()
            .name(format!("tag:{key}"))
            .set_values(Some(values.iter().map(|v| escape_filter(v)).collect()))
            .build()
    });
    let mut pages = client
        .describe_images()
        .set_filters(lineage.map(|f| vec![f]))
        .owners("self")
        .filters(
            Filter::builder()
                .name("description")
                .set_values(Some(
                    markers
                        .iter()
                        .map(|m| format!("*{}*", escape_filter(m)))
                        .collect(),
                ))
                .build(),
        )
        .filters(Filter::builder().name("state").values("available").build())
        .max_results(IMAGES_PAGE)
        .into_paginator()
        .send();
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
            .extend(page.images().iter().map(|i| to_image(i, Owner::TheAccount)));
    }
    Ok(())
}

/// Instance ids per `DescribeInstances` call. The `instance-id` filter is
/// used, not `InstanceIds`: an id terminated since the group was read would
/// fail the whole call ("If you specify an instance ID that is not valid,
/// an error is returned"), a filter value only matches nothing. 200 values
/// is EC2's limit per call ([`MAX_FILTER_VALUES`]).
pub const INSTANCE_BATCH: usize = MAX_FILTER_VALUES;

/// The `ImageId` of each of these instances that EC2 still describes.
pub async fn describe_instance_images(
    client: &Client,
    ids: &[String],
) -> Result<BTreeMap<String, String>, AwsError> {
    let mut images = BTreeMap::new();
    for batch in ids.chunks(INSTANCE_BATCH) {
        let mut pages = client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(batch.to_vec()))
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for instance in page?.reservations().iter().flat_map(|r| r.instances()) {
                if let (Some(id), Some(image)) = (instance.instance_id(), instance.image_id()) {
                    images.insert(id.to_owned(), image.to_owned());
                }
            }
        }
    }
    Ok(images)
}

/// The images with these ids that EC2 still describes, 200 ids per call.
/// The `image-id` filter is used, not `ImageIds`: an id that is gone would
/// fail the whole call, a filter value only matches nothing. `account` is
/// the owner id of the account's own images, when known.
pub async fn describe_images_by_id(
    client: &Client,
    ids: &[String],
    account: Option<&str>,
) -> Result<Vec<Image>, AwsError> {
    let mut images = Vec::new();
    for batch in ids.chunks(MAX_FILTER_VALUES) {
        let mut pages = client
            .describe_images()
            .filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(batch.to_vec()))
                    .build(),
            )
            .max_results(IMAGES_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            images.extend(
                page?
                    .images()
                    .iter()
                    .map(|i| to_image(i, Owner::Id(account))),
            );
        }
    }
    Ok(images)
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
            .map(|i| to_image(i, Owner::Id(account)))),
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

/// Whose an image is, as far as the query that found it says.
#[derive(Debug, Clone, Copy)]
enum Owner<'a> {
    /// Found with `Owners=self`.
    TheAccount,
    /// Found by id: the account's when its owner is this id (when known).
    Id(Option<&'a str>),
}

fn to_image(image: &SdkImage, owner: Owner<'_>) -> Image {
    let owned_by_account = match owner {
        Owner::TheAccount => true,
        Owner::Id(account) => account.is_some() && image.owner_id() == account,
    };
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
        volume_sizes: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let ebs = m.ebs().filter(|e| e.snapshot_id().is_some())?;
                Some((m.device_name()?.to_owned(), ebs.volume_size()?))
            })
            .collect(),
        root_device: image.root_device_name().map(str::to_owned),
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

/// Sets tags on an image (`CreateTags` overwrites a key already there).
pub async fn tag_image(
    client: &Client,
    image: &str,
    tags: &[(&str, &str)],
) -> Result<(), AwsError> {
    client
        .create_tags()
        .resources(image)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
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
