//! `ami-reconciler plan|apply`: the reconciler from a terminal, against any
//! AWS endpoint the standard configuration chain points at.

use std::process::ExitCode;

use std::time::{Duration, Instant};

use ami_reconciler::lambda::parse_dry_run;
use ami_reconciler::settings::env;
use ami_reconciler::{
    Clients, ConfigError, ErrorKind, Mode, RawSettings, apply, error_chain, load_config, run_until,
};
mod progress;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use progress::{Above, Progress};
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Keeps Auto Scaling groups launching from the newest backup AMI.
///
/// AWS credentials, region and endpoint come from the standard chain
/// (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).
///
/// Exit codes: 0 done or nothing to do; 1 some change failed or was skipped
/// (the others were applied), or a condition needs a person (plan too): one
/// line per cause on stderr; 2 bad configuration or the state could not be
/// read (nothing changed).
#[derive(Debug, Parser)]
#[command(name = "ami-reconciler", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: RawSettings,
    /// Report format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[arg(long, global = true, value_name = "SECONDS",
          help = format!("Seconds the run may take: a change starts only when all its calls, each with its full timeout and retries ({} s), can end {} s before the limit; changes not started are reported skipped [default: no limit]", ami_reconciler::clients::OPERATION_TIMEOUT.as_secs(), apply::REPORT_RESERVE.as_secs()))]
    time_limit: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what apply would change; change nothing.
    Plan,
    /// Converge: create the version, set the default, move groups, start
    /// instance refreshes of groups tagged ami-reconciler:rollout=rolling
    /// (they replace running instances), prune. Refused while DRY_RUN=true.
    Apply,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = Progress::on_terminal(
        terminal && matches!(cli.command, Command::Apply) && matches!(cli.output, Output::Text),
    );
    let log = tracing_subscriber::fmt::layer()
        .with_writer(Above(progress.clone()))
        .with_ansi(terminal)
        .with_filter(
            // The SDK's IMDS region probe warns at length when no region is
            // set; the one line that matters is ours (ConfigError::NoRegion).
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,aws_config::imds=error")),
        );
    tracing_subscriber::registry()
        .with(log)
        .with(
            progress
                .clone()
                .with_filter(Targets::new().with_target("ami_reconciler", Level::INFO)),
        )
        .init();

    let settings = match cli.settings.validate() {
        Ok(settings) => settings,
        Err(err) => {
            let err = err.set_from(|variable| origin(&matches, variable));
            return fail(cli.output, ErrorKind::Config, &err);
        }
    };
    if let Err(err) = ami_reconciler::clients::retry_from_env() {
        return fail(cli.output, ErrorKind::Config, &err);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(cli.output, ErrorKind::Runtime, &err),
    };
    let mode = match cli.command {
        Command::Plan => Mode::DryRun,
        Command::Apply => Mode::Apply,
    };
    if let Err(err) = refuse_apply_under_dry_run(mode) {
        return fail(cli.output, ErrorKind::Config, &err);
    }
    let writes_until = cli
        .time_limit
        .map(|secs| apply::writes_until(Instant::now() + Duration::from_secs(secs)));
    let config = runtime.block_on(load_config());
    if config.region().is_none() {
        return fail(cli.output, ErrorKind::Config, &ConfigError::NoRegion);
    }
    let result = runtime.block_on(async {
        let clients = Clients::new(&config);
        run_until(&clients, &settings, mode, writes_until).await
    });
    progress.finish();
    match result {
        Ok(report) => {
            match cli.output {
                Output::Text => print!("{}", report.to_text()),
                Output::Json => println!("{}", report.to_json()),
            }
            for line in report.cause_lines() {
                eprintln!("{line}");
            }
            ExitCode::from(report.exit_code() as u8)
        }
        Err(err) => fail(cli.output, err.kind(), &err),
    }
}

/// Where the setting of environment variable `variable` was given: its
/// flag or the environment (a flag wins over the environment).
fn origin(matches: &ArgMatches, variable: &str) -> String {
    // Each setting's argument id is its field name: the variable in lower case.
    let id = variable.to_ascii_lowercase();
    let given = |m: &ArgMatches| {
        m.try_get_raw(&id)
            .ok()
            .flatten()
            .map(|_| m.value_source(&id))
    };
    let source = matches
        .subcommand()
        .and_then(|(_, sub)| given(sub))
        .or_else(|| given(matches))
        .flatten();
    match source {
        Some(ValueSource::CommandLine) => format!("--{} (flag)", id.replace('_', "-")),
        Some(ValueSource::EnvVariable) => format!("{variable} (environment)"),
        _ => variable.to_owned(),
    }
}

/// `DRY_RUN` belongs to the Lambda; copied into a shell it must not be
/// ignored by `apply`, which would write where a dry run was asked for.
fn refuse_apply_under_dry_run(mode: Mode) -> Result<(), ConfigError> {
    let raw = std::env::var(env::DRY_RUN).ok();
    let dry_run = parse_dry_run(raw.as_deref())?;
    match (mode, dry_run) {
        (Mode::Apply, true) => Err(ConfigError::DryRunApply(raw.unwrap_or_default())),
        _ => Ok(()),
    }
}

/// Nothing was changed: report the error (stderr, and stdout for JSON) and exit 2.
fn fail(output: Output, kind: ErrorKind, err: &dyn std::error::Error) -> ExitCode {
    let message = error_chain(err);
    eprintln!("error: {message}");
    if let Output::Json = output {
        let doc = serde_json::json!({"error": {"kind": kind.as_str(), "message": message}, "changed": false});
        println!("{doc}");
    }
    ExitCode::from(2)
}
