//! Typed errors, named after the step that failed.
//!
//! Reading the state (observe) fails as a whole: nothing was changed and the
//! process exits with 2. Failures while applying are not errors of the run:
//! they are recorded per change in the [`Report`](crate::report::Report).

use std::error::Error as StdError;
use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A setting is missing or malformed. Detected at start-up, before any AWS call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Both template settings are set.
    #[error("set only one of LAUNCH_TEMPLATE_PARAMETER and LAUNCH_TEMPLATE_ID, not both")]
    BothTemplateSources,
    /// Neither template setting is set.
    #[error(
        "set LAUNCH_TEMPLATE_PARAMETER (an SSM parameter holding the launch template id) or LAUNCH_TEMPLATE_ID"
    )]
    NoTemplateSource,
    /// A setting has the wrong form.
    #[error("{setting} must be {expected}, got {got:?}")]
    Invalid {
        /// The environment variable name of the setting.
        setting: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
        /// The value given.
        got: String,
    },
    /// A numeric setting is not a whole number of at least 1.
    #[error("{setting} must be a whole number >= 1, got {got:?}")]
    NotANumber {
        /// The environment variable name of the setting.
        setting: &'static str,
        /// The value given.
        got: String,
    },
    /// A numeric setting is larger than makes sense.
    #[error("{setting} must be at most {max}, got {got:?}")]
    TooLarge {
        /// The environment variable name of the setting.
        setting: &'static str,
        /// The largest accepted value.
        max: u64,
        /// The value given.
        got: String,
    },
}

/// An AWS call failed: the service's error code and message, and the SDK error
/// as source (for the full chain: timeouts, connection errors, ...).
#[derive(Debug)]
pub struct AwsError {
    /// AWS error code (`RequestLimitExceeded`, `ValidationError`, ...), when the service answered.
    pub code: Option<String>,
    /// A one-line description.
    pub message: String,
    source: Box<dyn StdError + Send + Sync>,
}

impl AwsError {
    /// An error that did not come from the SDK (e.g. a malformed response).
    pub fn other(message: impl Into<String>) -> Self {
        let message = message.into();
        AwsError {
            code: None,
            source: message.clone().into(),
            message,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl StdError for AwsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

impl<E> From<SdkError<E, HttpResponse>> for AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        let mut code = err.code().map(str::to_owned);
        let mut message = match (&err, err.message()) {
            (SdkError::ServiceError(_), Some(m)) => m.to_owned(),
            // Timeouts, connection and dispatch failures: the context chain
            // is the only place the cause is written down.
            _ => DisplayErrorContext(&err).to_string(),
        };
        if let (None, SdkError::ServiceError(service)) = (&code, &err) {
            // The service answered in a shape the SDK could not read (e.g. a
            // 403 from a proxy or an emulator in another protocol's format):
            // read the code and message ourselves, or at least name the status.
            let (found_code, found_message) = unparsed_error(service.raw());
            code = Some(found_code);
            message = found_message;
        }
        AwsError {
            code,
            message,
            source: Box::new(err),
        }
    }
}

/// The code and message of an error response the SDK could not parse: the
/// `<Code>` and `<Message>` of an XML body, else the HTTP status.
fn unparsed_error(raw: &HttpResponse) -> (String, String) {
    let status = raw.status().as_u16();
    let body = raw
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{tag}>"))? + start;
        Some(xml_unescape(body[start..end].trim()))
    };
    match element("Code") {
        Some(code) => {
            let message = element("Message").unwrap_or_else(|| format!("HTTP {status}"));
            (code, message)
        }
        None => (
            format!("HTTP{status}"),
            format!("HTTP {status} with an error body the SDK could not read"),
        ),
    }
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Reading the state failed, or the configuration is unusable: nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The SSM parameter naming the template does not exist.
    #[error("SSM parameter {name} not found")]
    ParameterNotFound {
        /// The parameter name.
        name: String,
    },
    /// Reading the SSM parameter failed.
    #[error("failed to read SSM parameter {name}: {source}")]
    ReadParameter {
        /// The parameter name.
        name: String,
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// The SSM parameter does not hold a launch template id.
    #[error("SSM parameter {name} holds {value:?}, which is not a launch template id (lt-...)")]
    ParameterNotTemplateId {
        /// The parameter name.
        name: String,
        /// What it holds.
        value: String,
    },
    /// The launch template does not exist.
    #[error("launch template {id} not found")]
    TemplateNotFound {
        /// The template id.
        id: String,
    },
    /// Describing the template's versions failed.
    #[error("failed to describe the versions of launch template {id}: {source}")]
    DescribeTemplateVersions {
        /// The template id.
        id: String,
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// `$Latest` has no `ImageId`: there is no image to compare or replace.
    #[error(
        "launch template {id} version {version} ($Latest) has no ImageId; give it one before the reconciler manages it"
    )]
    LatestWithoutImage {
        /// The template id.
        id: String,
        /// The `$Latest` version number.
        version: i64,
    },
    /// Describing images failed.
    #[error("failed to describe images: {source}")]
    DescribeImages {
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// Describing Auto Scaling groups failed.
    #[error("failed to describe Auto Scaling groups: {source}")]
    DescribeGroups {
        /// The AWS error.
        #[source]
        source: AwsError,
    },
}

impl Error {
    /// A short machine-readable kind, used in JSON output and Lambda diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "ConfigError",
            Error::ParameterNotFound { .. } => "ParameterNotFound",
            Error::ReadParameter { .. } => "ReadParameterFailed",
            Error::ParameterNotTemplateId { .. } => "ParameterNotTemplateId",
            Error::TemplateNotFound { .. } => "TemplateNotFound",
            Error::DescribeTemplateVersions { .. } => "DescribeTemplateVersionsFailed",
            Error::LatestWithoutImage { .. } => "LatestWithoutImage",
            Error::DescribeImages { .. } => "DescribeImagesFailed",
            Error::DescribeGroups { .. } => "DescribeGroupsFailed",
        }
    }
}
