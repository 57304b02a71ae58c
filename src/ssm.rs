//! SSM Parameter Store: the parameter that names the managed launch template.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;

use crate::error::Error;
use crate::model::is_launch_template_id;

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
