//! AWS configuration and clients, built once per process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

use crate::error::ConfigError;
pub use crate::model::Place;

/// Attempts per call unless `AWS_MAX_ATTEMPTS` says otherwise: with
/// exponential backoff a throttled run slows down instead of failing.
///
/// The retry mode is `standard`, not `adaptive`: the SDK's adaptive limiter
/// sizes its rate from the traffic it measured, which for a run of a few
/// dozen calls is near zero, so one throttle drops it to 0.5 tokens/s with
/// 5 tokens per retry (measured: a run with 11 throttled calls took 97 s
/// adaptive, 7 s standard). Mutating calls are bounded by `CONCURRENCY`
/// instead. `AWS_RETRY_MODE=adaptive` still selects it (see [`retry_from_env`]).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Time allowed to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one attempt, so one stuck call cannot eat the whole run.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Time allowed for one call with all its retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The three clients the reconciler uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2: images and launch templates.
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling: groups.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Systems Manager: the parameter naming the template, the image parameters.
    pub ssm: aws_sdk_ssm::Client,
    /// EventBridge: the run's events.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// Where the calls go, as error messages name it.
    endpoint: String,
    /// The longest one call may take with its retries (the operation timeout).
    call_budget: Duration,
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    /// The account, when something other than the credentials named it
    /// (the Lambda function's own ARN).
    account: Arc<OnceLock<String>>,
}

impl Clients {
    /// Builds the clients from one shared configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Clients {
            ec2: aws_sdk_ec2::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
            endpoint: match (config.endpoint_url(), config.region()) {
                (Some(url), _) => url.to_owned(),
                (None, Some(region)) => format!("the AWS endpoints of {region}"),
                (None, None) => "the AWS endpoints (no region set)".to_owned(),
            },
            call_budget: config
                .timeout_config()
                .and_then(|t| t.operation_timeout())
                .unwrap_or(OPERATION_TIMEOUT),
            region: config.region().map(|r| r.to_string()),
            credentials: config.credentials_provider(),
            account: Arc::default(),
        }
    }

    /// Names the account the clients act in, for messages only; the first
    /// name given is kept.
    pub fn know_account(&self, account: &str) {
        if !account.is_empty() {
            let _ = self.account.set(account.to_owned());
        }
    }

    /// Where lookups search. The account comes from the credentials (which
    /// may load them again): only error paths ask.
    pub async fn place(&self) -> Place {
        let mut account = self.account.get().cloned();
        if account.is_none()
            && let Some(provider) = &self.credentials
            && let Ok(credentials) = provider.provide_credentials().await
        {
            account = credentials.account_id().map(|a| a.as_str().to_owned());
        }
        Place {
            region: self.region.clone(),
            account,
        }
    }

    /// The longest one call may take with its retries: what a sequence of
    /// writes must have left before the deadline, per call.
    pub fn call_budget(&self) -> Duration {
        self.call_budget
    }

    /// The endpoint the clients call: `AWS_ENDPOINT_URL` when set, else the
    /// region's AWS endpoints.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Loads the standard AWS configuration chain (`AWS_REGION`, `AWS_PROFILE`,
/// `AWS_ENDPOINT_URL`, ...) with the reconciler's retry and timeout defaults.
/// `AWS_RETRY_MODE` / `AWS_MAX_ATTEMPTS`, when set, keep precedence.
pub async fn load_config() -> SdkConfig {
    config_loader().load().await
}

/// The loader behind [`load_config`], for callers that add to it (tests
/// point it at a local endpoint). A malformed retry variable falls back to
/// the defaults here; the binaries refuse it at start-up through
/// [`retry_from_env`].
pub fn config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(ATTEMPT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(retry_from_env().unwrap_or_else(|_| default_retry()))
}

fn default_retry() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(DEFAULT_MAX_ATTEMPTS)
        .with_max_backoff(MAX_BACKOFF)
}

/// The retry configuration from `AWS_RETRY_MODE` (`standard` or `adaptive`)
/// and `AWS_MAX_ATTEMPTS` (1-20), each defaulting independently (standard,
/// 8 attempts). Malformed values are a configuration error naming the variable.
pub fn retry_from_env() -> Result<RetryConfig, ConfigError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    retry_config(
        var("AWS_RETRY_MODE").as_deref(),
        var("AWS_MAX_ATTEMPTS").as_deref(),
    )
}

/// [`retry_from_env`] on given values.
pub fn retry_config(
    mode: Option<&str>,
    max_attempts: Option<&str>,
) -> Result<RetryConfig, ConfigError> {
    let config = match mode.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
        None | Some("standard") => default_retry(),
        Some("adaptive") => RetryConfig::adaptive()
            .with_max_attempts(DEFAULT_MAX_ATTEMPTS)
            .with_max_backoff(MAX_BACKOFF),
        Some(_) => {
            return Err(ConfigError::Invalid {
                setting: "AWS_RETRY_MODE",
                expected: "standard or adaptive",
                got: mode.unwrap_or_default().to_owned(),
            });
        }
    };
    let Some(raw) = max_attempts else {
        return Ok(config);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_ATTEMPTS_LIMIT).contains(&n) => Ok(config.with_max_attempts(n)),
        _ => Err(ConfigError::Invalid {
            setting: "AWS_MAX_ATTEMPTS",
            expected: "a whole number from 1 to 20",
            got: raw.to_owned(),
        }),
    }
}

/// Largest `AWS_MAX_ATTEMPTS` accepted: more only hides an outage.
pub const MAX_ATTEMPTS_LIMIT: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::retry::RetryMode;

    #[test]
    fn a_place_without_a_known_account_says_how_to_find_it() {
        let place = Place {
            region: Some("eu-west-1".into()),
            account: None,
        };
        assert_eq!(
            place.to_string(),
            "region eu-west-1, the credentials' account (`aws sts get-caller-identity` names it)"
        );
    }

    #[test]
    fn retry_defaults_to_standard_with_eight_attempts() {
        let c = retry_config(None, None).unwrap();
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Standard, 8));
    }

    #[test]
    fn retry_mode_and_attempts_default_independently() {
        let c = retry_config(Some("adaptive"), None).unwrap();
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Adaptive, 8));
        let c = retry_config(None, Some("3")).unwrap();
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Standard, 3));
    }

    #[test]
    fn malformed_retry_variables_name_the_variable() {
        let e = retry_config(Some("legacy"), None).unwrap_err().to_string();
        assert_eq!(
            e,
            "AWS_RETRY_MODE must be standard or adaptive, got \"legacy\""
        );
        for bad in ["0", "ten", "21"] {
            let e = retry_config(None, Some(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("AWS_MAX_ATTEMPTS must be a whole number from 1 to 20"),
                "{e}"
            );
        }
    }
}
