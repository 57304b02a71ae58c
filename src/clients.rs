//! AWS configuration and clients, built once per process.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};

/// Attempts per call unless `AWS_MAX_ATTEMPTS` says otherwise: with
/// exponential backoff a throttled run slows down instead of failing.
///
/// The retry mode is `standard`, not `adaptive`: the SDK's adaptive limiter
/// sizes its rate from the traffic it measured, which for a run of a few
/// dozen calls is near zero, so one throttle drops it to 0.5 tokens/s with
/// 5 tokens per retry (measured: a run with 11 throttled calls took 97 s
/// adaptive, 7 s standard). Mutating calls are bounded by `CONCURRENCY`
/// instead. `AWS_RETRY_MODE=adaptive` still selects it.
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
    /// Systems Manager: the parameter naming the template.
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    /// Builds the clients from one shared configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Clients {
            ec2: aws_sdk_ec2::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }
}

/// Loads the standard AWS configuration chain (`AWS_REGION`, `AWS_PROFILE`,
/// `AWS_ENDPOINT_URL`, ...) with the reconciler's retry and timeout defaults.
/// `AWS_RETRY_MODE` / `AWS_MAX_ATTEMPTS`, when set, keep precedence.
pub async fn load_config() -> SdkConfig {
    config_loader().load().await
}

/// The loader behind [`load_config`], for callers that add to it (tests
/// point it at a local endpoint).
pub fn config_loader() -> ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(ATTEMPT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build(),
    );
    let from_env = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if !from_env("AWS_RETRY_MODE") && !from_env("AWS_MAX_ATTEMPTS") {
        loader = loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(DEFAULT_MAX_ATTEMPTS)
                .with_max_backoff(MAX_BACKOFF),
        );
    }
    loader
}
