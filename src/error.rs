//! Typed errors, named after the step that failed.
//!
//! Reading the state (observe) fails as a whole: nothing was changed and the
//! process exits with 2. Failures while applying are not errors of the run:
//! they are recorded per change in the [`Report`](crate::report::Report).

use std::error::Error as StdError;
use std::fmt;

use crate::model::Place;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A setting is missing or malformed. Detected at start-up, before any AWS call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// More than one template setting is set: each named by its variable,
    /// and by where it was set once the CLI knows ([`ConfigError::set_from`]).
    #[error(
        "set only one of LAUNCH_TEMPLATE_PARAMETER, LAUNCH_TEMPLATE_ID and LAUNCH_TEMPLATE_TAG (flag or environment): {} are set",
        .0.join(" and ")
    )]
    SeveralTemplateSources(Vec<String>),
    /// No template setting is set.
    #[error(
        "set LAUNCH_TEMPLATE_PARAMETER (an SSM parameter holding the launch template id), LAUNCH_TEMPLATE_ID, or LAUNCH_TEMPLATE_TAG (KEY=VALUE: every launch template carrying it)"
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
    /// `apply` was asked for while `DRY_RUN` asks for a dry run: a shell that
    /// copied the function's environment must not write by surprise.
    #[error(
        "DRY_RUN={0} asks for a dry run, and apply writes: run `ami-reconciler plan`, or unset DRY_RUN to apply"
    )]
    DryRunApply(String),
    /// No AWS region is configured anywhere the SDK looks.
    #[error("no AWS region: set AWS_REGION, or a region in your AWS profile (AWS_PROFILE)")]
    NoRegion,
    /// The process environment could not be parsed (a value that is not UTF-8).
    #[error("the environment could not be read: {0}")]
    Environment(String),
    /// A parameter name pattern names a placeholder that does not exist.
    #[error(
        "{setting} names the unknown placeholder {placeholder}: only {{template_name}} and {{template_id}} exist, got {got:?}"
    )]
    UnknownPlaceholder {
        /// The environment variable name (or template tag) of the setting.
        setting: &'static str,
        /// The placeholder as written, braces included.
        placeholder: String,
        /// The value given.
        got: String,
    },
    /// A parameter name pattern cannot give a valid SSM parameter name.
    #[error("{setting} must be an SSM parameter name: {problem}, got {got:?}")]
    BadParameterName {
        /// The environment variable name (or template tag) of the setting.
        setting: &'static str,
        /// Which of SSM's naming rules it breaks.
        problem: String,
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

impl ConfigError {
    /// The same error naming where each conflicting setting was set, as
    /// `origin` describes the setting of that variable (`--launch-template-id
    /// (flag)`, `LAUNCH_TEMPLATE_TAG (environment)`).
    pub fn set_from(self, origin: impl Fn(&str) -> String) -> Self {
        match self {
            ConfigError::SeveralTemplateSources(set) => {
                ConfigError::SeveralTemplateSources(set.iter().map(|v| origin(v)).collect())
            }
            other => other,
        }
    }

    /// The setting at fault (an environment variable or a template tag);
    /// empty when the fault is the choice of template settings.
    pub fn setting(&self) -> &'static str {
        match self {
            ConfigError::Invalid { setting, .. }
            | ConfigError::NotANumber { setting, .. }
            | ConfigError::TooLarge { setting, .. }
            | ConfigError::UnknownPlaceholder { setting, .. }
            | ConfigError::BadParameterName { setting, .. } => setting,
            ConfigError::SeveralTemplateSources(_)
            | ConfigError::NoTemplateSource
            | ConfigError::Environment(_)
            | ConfigError::NoRegion => "",
            ConfigError::DryRunApply(_) => "DRY_RUN",
        }
    }
}

/// An AWS call failed. Its message is the whole story for people: the
/// service's code and message, or what went wrong on the way (no answer, no
/// connection), without the SDK's internals. The SDK error itself is kept for
/// debug logs ([`AwsError::detail`]), not as a `source`, so an error chain
/// ends here.
#[derive(Debug)]
pub struct AwsError {
    /// AWS error code (`RequestLimitExceeded`, `ValidationError`, ...), when the service answered.
    pub code: Option<String>,
    /// A one-line description.
    pub message: String,
    /// The call never reached the service: the connection failed.
    connect_failed: bool,
    /// Where the call went, when known (see [`AwsError::at`]).
    endpoint: Option<String>,
    detail: String,
}

impl AwsError {
    /// An error that did not come from the SDK (e.g. a malformed response).
    pub fn other(message: impl Into<String>) -> Self {
        let message = message.into();
        AwsError {
            code: None,
            detail: message.clone(),
            message,
            connect_failed: false,
            endpoint: None,
        }
    }

    /// An error the service reported in a successful answer (e.g. EC2's
    /// `Warning` on a version it created).
    pub fn answered(code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError {
            code: Some(code.into()),
            ..AwsError::other(message)
        }
    }

    /// The same error naming the endpoint a failed connection went to.
    pub fn at(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    /// True when the call may have been carried out although it failed: no
    /// answer was read, or the service failed inside. A refusal (a client
    /// error, throttling) was not carried out.
    pub fn outcome_unknown(&self) -> bool {
        match self.code.as_deref() {
            None => true,
            // An unreadable 5xx answer (a gateway's) is named HTTP5xx.
            Some(code) => {
                code.starts_with("HTTP5")
                    || matches!(
                        code,
                        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable"
                    )
            }
        }
    }

    /// The SDK's own account of the error, for debug logs.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, self.connect_failed) {
            (Some(code), _) => write!(f, "{code}: {}", self.message),
            (None, true) => write!(
                f,
                "cannot connect to {}: {}",
                self.endpoint.as_deref().unwrap_or("the endpoint"),
                self.message
            ),
            (None, false) => f.write_str(&self.message),
        }
    }
}

impl StdError for AwsError {}

impl<E> From<SdkError<E, HttpResponse>> for AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        let detail = format!("{err:?}");
        let mut code = err.code().map(str::to_owned);
        let mut connect_failed = false;
        let mut message = match &err {
            SdkError::ServiceError(service) if code.is_none() => {
                // The service answered in a shape the SDK could not read
                // (e.g. a 403 from a proxy or an emulator in another
                // protocol's format): read the code and message ourselves.
                let (found_code, found_message) = unparsed_error(service.raw());
                code = Some(found_code);
                found_message
            }
            SdkError::ServiceError(_) => err.message().unwrap_or_default().to_owned(),
            SdkError::TimeoutError(_) => {
                "no answer in time (the operation timeout ran out)".to_owned()
            }
            SdkError::DispatchFailure(failure) if failure.is_timeout() => {
                "no answer in time (the attempt timed out)".to_owned()
            }
            SdkError::DispatchFailure(failure) if failure.is_io() => {
                connect_failed = true;
                innermost(&err)
            }
            SdkError::DispatchFailure(_) => {
                format!("the request was not sent: {}", innermost(&err))
            }
            SdkError::ResponseError(response) if !response.raw().status().is_success() => {
                // An error answer in another protocol's shape (e.g. moto's
                // XML 403 to a JSON service).
                let (found_code, found_message) = unparsed_error(response.raw());
                code = Some(found_code);
                found_message
            }
            SdkError::ResponseError(_) => {
                format!("the answer could not be read: {}", innermost(&err))
            }
            _ => format!("the request could not be built: {}", innermost(&err)),
        };
        if message.is_empty() {
            message = "no message".to_owned();
        }
        AwsError {
            code,
            message,
            connect_failed,
            endpoint: None,
            detail,
        }
    }
}

/// The deepest cause of an error, as people say it: an I/O error by its kind
/// ("connection refused"), anything else by its own message.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut deepest: &(dyn StdError + 'static) = err;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    if let Some(io) = deepest.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
            std::io::ErrorKind::TimedOut => "timed out".to_owned(),
            _ => {
                let text = io.to_string();
                // "... (os error 111)" says nothing more to a person.
                match text.find(" (os error") {
                    Some(cut) => text[..cut].to_owned(),
                    None => text,
                }
            }
        };
    }
    deepest.to_string()
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

fn searched(place: &Option<Place>) -> String {
    place
        .as_ref()
        .map(|p| format!(" in {p}"))
        .unwrap_or_default()
}

/// Reading the state failed, or the configuration is unusable: nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The SSM parameter naming the template does not exist.
    #[error("SSM parameter {name} not found{}", searched(.place))]
    ParameterNotFound {
        /// The parameter name.
        name: String,
        /// Where it was looked for, once known.
        place: Option<Place>,
    },
    /// Reading the SSM parameter failed.
    #[error("failed to read SSM parameter {name}")]
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
    #[error("launch template {id} not found{}", searched(.place))]
    TemplateNotFound {
        /// The template id.
        id: String,
        /// Where it was looked for, once known.
        place: Option<Place>,
    },
    /// Describing the template's versions failed.
    #[error("failed to describe the versions of launch template {id}")]
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
    /// Listing the launch templates that carry the discovery tag failed.
    #[error("failed to describe launch templates")]
    DescribeTemplates {
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// Describing images failed.
    #[error("failed to describe images")]
    DescribeImages {
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// Describing Auto Scaling groups failed.
    #[error("failed to describe Auto Scaling groups")]
    DescribeGroups {
        /// The AWS error.
        #[source]
        source: AwsError,
    },
}

impl Error {
    /// The kind of failure, as the JSON report and the Lambda name it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::ParameterNotFound { .. } => ErrorKind::ParameterNotFound,
            Error::ReadParameter { .. } => ErrorKind::ReadParameterFailed,
            Error::ParameterNotTemplateId { .. } => ErrorKind::ParameterNotTemplateId,
            Error::TemplateNotFound { .. } => ErrorKind::TemplateNotFound,
            Error::DescribeTemplateVersions { .. } => ErrorKind::DescribeTemplateVersionsFailed,
            Error::LatestWithoutImage { .. } => ErrorKind::LatestWithoutImage,
            Error::DescribeTemplates { .. } => ErrorKind::DescribeTemplatesFailed,
            Error::DescribeImages { .. } => ErrorKind::DescribeImagesFailed,
            Error::DescribeGroups { .. } => ErrorKind::DescribeGroupsFailed,
        }
    }

    /// The AWS error underneath, if any.
    pub fn aws(&self) -> Option<&AwsError> {
        match self {
            Error::ReadParameter { source, .. }
            | Error::DescribeTemplateVersions { source, .. }
            | Error::DescribeTemplates { source }
            | Error::DescribeImages { source }
            | Error::DescribeGroups { source } => Some(source),
            _ => None,
        }
    }

    /// The launch template `id` does not exist (where is added later).
    pub fn template_not_found(id: &str) -> Self {
        Error::TemplateNotFound {
            id: id.to_owned(),
            place: None,
        }
    }

    /// True when something the settings name does not exist: the message
    /// should say where it was looked for ([`Error::searched_in`]).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ParameterNotFound { .. } | Error::TemplateNotFound { .. }
        )
    }

    /// The same error naming the region and account a lookup searched.
    pub fn searched_in(self, searched: Place) -> Self {
        match self {
            Error::ParameterNotFound { name, .. } => Error::ParameterNotFound {
                name,
                place: Some(searched),
            },
            Error::TemplateNotFound { id, .. } => Error::TemplateNotFound {
                id,
                place: Some(searched),
            },
            other => other,
        }
    }

    /// The same error naming the endpoint a failed connection went to.
    pub fn at(self, endpoint: &str) -> Self {
        match self {
            Error::ReadParameter { name, source } => Error::ReadParameter {
                name,
                source: source.at(endpoint),
            },
            Error::DescribeTemplateVersions { id, source } => Error::DescribeTemplateVersions {
                id,
                source: source.at(endpoint),
            },
            Error::DescribeTemplates { source } => Error::DescribeTemplates {
                source: source.at(endpoint),
            },
            Error::DescribeImages { source } => Error::DescribeImages {
                source: source.at(endpoint),
            },
            Error::DescribeGroups { source } => Error::DescribeGroups {
                source: source.at(endpoint),
            },
            other => other,
        }
    }
}

/// Every way a run or an invocation can fail as a whole, in one table: the
/// CLI's JSON `error.kind`, the Lambda's `errorType` and docs/report.md all
/// take their names from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A setting is missing or malformed.
    Config,
    /// The SSM parameter naming the template does not exist.
    ParameterNotFound,
    /// Reading the SSM parameter failed.
    ReadParameterFailed,
    /// The SSM parameter does not hold a launch template id.
    ParameterNotTemplateId,
    /// The launch template does not exist.
    TemplateNotFound,
    /// Describing the template's versions failed.
    DescribeTemplateVersionsFailed,
    /// `$Latest` has no `ImageId`.
    LatestWithoutImage,
    /// Listing the tagged launch templates failed (tag mode).
    DescribeTemplatesFailed,
    /// Describing images failed.
    DescribeImagesFailed,
    /// Describing Auto Scaling groups failed.
    DescribeGroupsFailed,
    /// The CLI could not start its async runtime.
    Runtime,
    /// Lambda only: the payload was refused.
    InvalidPayload,
    /// Lambda only: the state was read but some change failed or was skipped.
    ChangesFailed,
}

impl ErrorKind {
    /// Every kind, in the order docs/report.md lists them.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Config,
        ErrorKind::ParameterNotFound,
        ErrorKind::ReadParameterFailed,
        ErrorKind::ParameterNotTemplateId,
        ErrorKind::TemplateNotFound,
        ErrorKind::DescribeTemplateVersionsFailed,
        ErrorKind::LatestWithoutImage,
        ErrorKind::DescribeTemplatesFailed,
        ErrorKind::DescribeImagesFailed,
        ErrorKind::DescribeGroupsFailed,
        ErrorKind::Runtime,
        ErrorKind::InvalidPayload,
        ErrorKind::ChangesFailed,
    ];

    /// The name in JSON and in Lambda diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "ConfigError",
            ErrorKind::ParameterNotFound => "ParameterNotFound",
            ErrorKind::ReadParameterFailed => "ReadParameterFailed",
            ErrorKind::ParameterNotTemplateId => "ParameterNotTemplateId",
            ErrorKind::TemplateNotFound => "TemplateNotFound",
            ErrorKind::DescribeTemplateVersionsFailed => "DescribeTemplateVersionsFailed",
            ErrorKind::LatestWithoutImage => "LatestWithoutImage",
            ErrorKind::DescribeTemplatesFailed => "DescribeTemplatesFailed",
            ErrorKind::DescribeImagesFailed => "DescribeImagesFailed",
            ErrorKind::DescribeGroupsFailed => "DescribeGroupsFailed",
            ErrorKind::Runtime => "RuntimeError",
            ErrorKind::InvalidPayload => "InvalidPayload",
            ErrorKind::ChangesFailed => "ChangesFailed",
        }
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error and its causes on one line, each level saying its own part.
pub fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Error codes of failures a later attempt can fix: throttling, the
/// service failing inside, or no answer at all (no code).
const RETRYABLE: [&str; 18] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    // Auto Scaling's 500 for "a pending update to an Auto Scaling resource".
    "ResourceContention",
    "RequestTimeoutException",
    "EC2ThrottledException",
    // EventBridge's and SSM's 500s.
    "InternalException",
    "InternalServerError",
    // SSM: "There are concurrent updates for a resource that supports one
    // update at a time."
    "TooManyUpdates",
    // SSM, a create (no Overwrite) that found the parameter: another writer,
    // or an earlier attempt of the same call whose answer was lost. The next
    // run reads it and compares.
    "ParameterAlreadyExists",
];

/// True when a later attempt can fix a failure with this error code (none:
/// no answer); otherwise a person must act (a refusal such as AccessDenied).
pub fn retryable_code(code: Option<&str>) -> bool {
    code.is_none_or(|code| code.starts_with("HTTP5") || RETRYABLE.contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_each_level_once() {
        let err = Error::DescribeGroups {
            source: AwsError::other("Throttling: Rate exceeded"),
        };
        assert_eq!(
            error_chain(&err),
            "failed to describe Auto Scaling groups: Throttling: Rate exceeded"
        );
    }

    #[test]
    fn a_refused_connection_names_the_endpoint() {
        let mut err = AwsError::other("connection refused");
        err.connect_failed = true;
        let err = Error::DescribeGroups { source: err }.at("http://127.0.0.1:9");
        assert_eq!(
            error_chain(&err),
            "failed to describe Auto Scaling groups: cannot connect to http://127.0.0.1:9: connection refused"
        );
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
