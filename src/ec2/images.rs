//! Images and instances: the backups, images by id, instances' images, and
//! the quarantine tags.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Image as SdkImage};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::{IMAGES_PAGE, escape_filter};
use crate::error::AwsError;
use crate::model::{Image, SKIP_TAG_KEY, Tag};

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
            // A deprecated AMI still launches, and a disabled one is not
            // gone: neither appears by default ("Default: No deprecated
            // AMIs are included in the response"; "A disabled AMI does not
            // appear in DescribeImages API calls by default").
            .include_deprecated(true)
            .include_disabled(true)
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
    let result = client
        .describe_images()
        .image_ids(id)
        .include_deprecated(true)
        .include_disabled(true)
        .send()
        .await;
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
