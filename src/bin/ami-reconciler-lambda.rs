//! The Lambda function (`provided.al2023`): clients are built once at
//! start-up and lent to every invocation.

use ami_reconciler::lambda::{Function, parse_dry_run};
use ami_reconciler::settings::env;
use ami_reconciler::{Clients, RawSettings, load_config};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Honours AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL.
    lambda_runtime::tracing::init_default_subscriber();

    // A wrong setting fails the start-up, naming the setting.
    let settings = RawSettings::from_env()
        .and_then(RawSettings::validate)
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let dry_run = parse_dry_run(std::env::var(env::DRY_RUN).ok().as_deref())
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    ami_reconciler::clients::retry_from_env()
        .inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let config = load_config().await;
    let function = Function {
        clients: Clients::new(&config),
        settings,
        dry_run,
    };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // arn:aws:lambda:REGION:ACCOUNT:function:NAME: the account a "not
        // found" names, as Lambda's credentials do not carry it.
        if let Some(account) = event.context.invoked_function_arn.split(':').nth(4) {
            function.clients.know_account(account);
        }
        function
            .handle_until(event.payload, Some(deadline(event.context.deadline)))
            .await
    }))
    .await
}

/// The invocation's deadline (milliseconds since the Unix epoch, from the
/// runtime API) as an `Instant` of this process.
fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}
