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
/// or missing (SSM's `InvalidParameters`). A call that fails answers for
/// its ten names with the error.
pub async fn image_parameters(
    client: &Client,
    names: &[String],
) -> BTreeMap<String, ParameterRead> {
    let mut read = BTreeMap::new();
    for batch in names.chunks(GET_PARAMETERS_BATCH) {
        match client
            .get_parameters()
            .set_names(Some(batch.to_vec()))
            .send()
            .await
        {
            Ok(out) => {
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
            }
            Err(err) => {
                let error = AwsError::from(err).to_string();
                for name in batch {
                    read.insert(name.clone(), ParameterRead::Unread(error.clone()));
                }
            }
        }
    }
    read
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
