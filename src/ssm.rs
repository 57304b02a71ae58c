//! SSM Parameter Store: the parameter that names the managed launch
//! template, and those the templates' images are published to.

use std::collections::BTreeMap;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::types::ParameterType;

use crate::error::{AwsError, Error};
use crate::model::{IMAGE_DATA_TYPE, ParameterRead, is_launch_template_id};

/// Reads the launch template id from `name`.
pub async fn template_id(client: &Client, name: &str) -> Result<String, Error> {
    let out = client
        .get_parameter()
        .name(name)
        // A SecureString holding the id is read as plainly as a String.
        .with_decryption(true)
        .send()
        .await
        .map_err(|err| {
            if matches!(
                err.as_service_error(),
                Some(GetParameterError::ParameterNotFound(_))
            ) {
                Error::ParameterNotFound {
                    name: name.to_owned(),
                    place: None,
                }
            } else {
                Error::ReadParameter {
                    name: name.to_owned(),
                    source: err.into(),
                }
            }
        })?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !is_launch_template_id(&value) {
        return Err(Error::ParameterNotTemplateId {
            name: name.to_owned(),
            value,
        });
    }
    Ok(value)
}

/// Most names one `GetParameters` call takes.
pub const GET_PARAMETERS_BATCH: usize = 10;

/// Reads `names`, ten per call: each name found with its value and types,
/// or missing (SSM's `InvalidParameters`). A call refused for a reason a
/// retry cannot fix (a name the role may not read) is made again for each
/// of its names alone, so that one name does not leave nine unread; what
/// still fails answers for its names with the error.
pub async fn image_parameters(
    client: &Client,
    names: &[String],
) -> BTreeMap<String, ParameterRead> {
    let mut read = BTreeMap::new();
    for batch in names.chunks(GET_PARAMETERS_BATCH) {
        match get_parameters(client, batch).await {
            Err(err) if batch.len() > 1 && !crate::error::retryable_code(err.code.as_deref()) => {
                for name in batch {
                    let alone = std::slice::from_ref(name);
                    read.extend(
                        get_parameters(client, alone)
                            .await
                            .unwrap_or_else(|err| unread(alone, &err)),
                    );
                }
            }
            Err(err) => read.extend(unread(batch, &err)),
            Ok(found) => read.extend(found),
        }
    }
    read
}

fn unread(names: &[String], err: &AwsError) -> BTreeMap<String, ParameterRead> {
    names
        .iter()
        .map(|name| (name.clone(), ParameterRead::Unread(err.to_string())))
        .collect()
}

/// One `GetParameters` call. A name the answer lists nowhere is not taken
/// for missing: only `InvalidParameters` says a parameter does not exist.
async fn get_parameters(
    client: &Client,
    names: &[String],
) -> Result<BTreeMap<String, ParameterRead>, AwsError> {
    let out = client
        .get_parameters()
        .set_names(Some(names.to_vec()))
        .send()
        .await?;
    let mut read = BTreeMap::new();
    for p in out.parameters() {
        let found = ParameterRead::Found {
            value: p.value().unwrap_or_default().to_owned(),
            data_type: p.data_type().unwrap_or("text").to_owned(),
            kind: p
                .r#type()
                .map(|t| t.as_str())
                .unwrap_or_default()
                .to_owned(),
        };
        read.insert(p.name().unwrap_or_default().to_owned(), found);
    }
    for name in out.invalid_parameters() {
        read.insert(name.clone(), ParameterRead::Missing);
    }
    for name in names {
        read.entry(name.clone()).or_insert_with(|| {
            ParameterRead::Unread("SSM's answer named it neither found nor missing".to_owned())
        });
    }
    Ok(read)
}

/// Writes an image id as a `String` of `DataType` `aws:ec2:image`;
/// `overwrite` false creates it only if it does not exist. Gives the
/// parameter's new version.
pub async fn put_image_parameter(
    client: &Client,
    (name, image): (&str, &str),
    overwrite: bool,
    description: &str,
) -> Result<i64, AwsError> {
    let out = client
        .put_parameter()
        .name(name)
        .value(image)
        .r#type(ParameterType::String)
        .data_type(IMAGE_DATA_TYPE)
        .overwrite(overwrite)
        .description(description)
        .send()
        .await?;
    Ok(out.version())
}
