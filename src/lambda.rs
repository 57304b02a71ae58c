//! The Lambda entry: which payloads start a run, and how results and errors
//! are returned to the Lambda runtime.
//!
//! Every accepted payload runs the same full reconcile; the trigger only
//! decides whether it is a dry run.

use lambda_runtime::Diagnostic;
use serde_json::Value;
use tracing::info;

use crate::clients::Clients;
use crate::error::{ConfigError, Error, ErrorKind, error_chain};
use crate::settings::{Mode, Settings, env};

/// Why the function was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `{}` (or no payload): the schedule.
    Schedule,
    /// An EventBridge event envelope, e.g. CloudTrail `CreateImage`.
    Event {
        /// `source`, e.g. `aws.ec2`.
        source: String,
        /// `detail-type`.
        detail_type: String,
    },
    /// `{"dry_run": bool}`: a manual invoke.
    Manual {
        /// Overrides `DRY_RUN`.
        dry_run: bool,
    },
}

/// The payload is not one the function accepts. Nothing was changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid payload: {0}; expected {{}}, {{\"dry_run\": true|false}} or an EventBridge event")]
pub struct PayloadError(String);

/// Classifies a payload. Unknown keys and wrong types are refused so that a
/// typo (`{"dryrun": true}`) never turns into a real run.
pub fn parse_payload(payload: &Value) -> Result<Trigger, PayloadError> {
    let object = match payload {
        Value::Null => return Ok(Trigger::Schedule),
        Value::Object(object) => object,
        Value::Array(_) => return Err(PayloadError("a JSON array".into())),
        Value::String(_) => return Err(PayloadError("a JSON string".into())),
        other => {
            return Err(PayloadError(format!(
                "the JSON value {}",
                truncate(&other.to_string())
            )));
        }
    };
    if object.is_empty() {
        return Ok(Trigger::Schedule);
    }
    if object.contains_key("detail-type") || object.contains_key("source") {
        let text = |key: &str| match object.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(PayloadError(format!(
                "an EventBridge event without a string {key:?}"
            ))),
        };
        if !object.get("detail").is_some_and(Value::is_object) {
            return Err(PayloadError(
                "an EventBridge event without an object \"detail\"".into(),
            ));
        }
        return Ok(Trigger::Event {
            source: text("source")?,
            detail_type: text("detail-type")?,
        });
    }
    if let Some(unknown) = object.keys().find(|k| k.as_str() != "dry_run") {
        return Err(PayloadError(format!("unknown key {:?}", truncate(unknown))));
    }
    match object.get("dry_run") {
        Some(Value::Bool(dry_run)) => Ok(Trigger::Manual { dry_run: *dry_run }),
        Some(other) => Err(PayloadError(format!(
            "\"dry_run\" must be true or false, got {}",
            truncate(&other.to_string())
        ))),
        None => Ok(Trigger::Schedule),
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// Parses `DRY_RUN`: unset or empty is false.
pub fn parse_dry_run(raw: Option<&str>) -> Result<bool, ConfigError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(_) => Err(ConfigError::Invalid {
            setting: env::DRY_RUN,
            expected: "true or false",
            got: raw.unwrap_or_default().to_owned(),
        }),
    }
}

/// What the function holds between invocations: clients built once at start-up.
#[derive(Debug, Clone)]
pub struct Function {
    /// AWS clients.
    pub clients: Clients,
    /// Validated settings.
    pub settings: Settings,
    /// `DRY_RUN`.
    pub dry_run: bool,
}

/// An invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The payload was refused; nothing ran.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The state could not be read; nothing was changed.
    #[error(transparent)]
    Reconcile(#[from] Error),
    /// Changes failed that a retry can fix. The message is one sentence;
    /// the report is logged on its own line and kept here.
    #[error("{summary}")]
    Incomplete { summary: String, report: Box<Value> },
}

impl InvocationError {
    /// The kind, as the Lambda's `errorType`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            InvocationError::Payload(_) => ErrorKind::InvalidPayload,
            InvocationError::Reconcile(e) => e.kind(),
            InvocationError::Incomplete { .. } => ErrorKind::ChangesFailed,
        }
    }

    /// The run's JSON report, when the run got that far.
    pub fn report(&self) -> Option<&Value> {
        match self {
            InvocationError::Incomplete { report, .. } => Some(report),
            _ => None,
        }
    }

    /// Logs the error as one structured line, before it is handed back:
    /// the runtime does not log a handler's error itself.
    fn log(&self) {
        let code = match self {
            InvocationError::Reconcile(err) => err.aws().and_then(|aws| aws.code.clone()),
            _ => None,
        };
        tracing::error!(
            kind = self.kind().as_str(),
            error_code = code.as_deref().unwrap_or(""),
            error = %error_chain(self),
            "the run failed"
        );
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(err: InvocationError) -> Self {
        Diagnostic {
            error_type: err.kind().as_str().to_owned(),
            error_message: error_chain(&err),
        }
    }
}

impl Function {
    /// Handles one invocation: returns the JSON report, or an error when the
    /// payload is refused, the state could not be read, or a change failed
    /// (then the error message carries the report).
    pub async fn handle(&self, payload: Value) -> Result<Value, InvocationError> {
        self.handle_until(payload, None).await
    }

    /// [`Function::handle`] for an invocation that must end by `deadline`:
    /// a change starts only when all its calls can end
    /// [`crate::apply::REPORT_RESERVE`] before it, so the report and the
    /// metrics line are always written.
    pub async fn handle_until(
        &self,
        payload: Value,
        deadline: Option<std::time::Instant>,
    ) -> Result<Value, InvocationError> {
        self.invoke(payload, deadline)
            .await
            .inspect_err(InvocationError::log)
    }

    async fn invoke(
        &self,
        payload: Value,
        deadline: Option<std::time::Instant>,
    ) -> Result<Value, InvocationError> {
        let trigger = parse_payload(&payload)?;
        let dry_run = match trigger {
            Trigger::Manual { dry_run } => dry_run,
            _ => self.dry_run,
        };
        info!(trigger = ?trigger, dry_run, "invoked");
        let writes_until = deadline.map(crate::apply::writes_until);
        // Boxed: unboxed, the run's future nests deeper than the compiler's
        // type-depth limit once wrapped by the Lambda runtime.
        let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
        let report = Box::pin(crate::run_until(
            &self.clients,
            &self.settings,
            mode,
            writes_until,
        ))
        .await?;
        // EMF lines on stdout (the totals, then one per template):
        // CloudWatch Logs turns them into the metrics the template's alarms
        // watch (no API call, no permission needed).
        let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
        for line in crate::report::emf::emf_lines(&report, chrono::Utc::now(), &function_name) {
            println!("{line}");
        }
        let json = serde_json::to_value(&report).unwrap_or_default();
        info!(report = %json, "report");
        // Only what a retry can fix fails the invocation (Lambda retries it);
        // a condition that needs a person is in the report and the
        // NeedsAttention metric, and the invocation succeeds.
        if report.retry_can_fix() {
            return Err(InvocationError::Incomplete {
                summary: report.summary(),
                report: Box::new(json),
            });
        }
        Ok(json)
    }
}
