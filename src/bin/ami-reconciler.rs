//! `ami-reconciler plan|apply`: the reconciler from a terminal, against any
//! AWS endpoint the standard configuration chain points at.

use std::process::ExitCode;

use ami_reconciler::settings::{
    DEFAULT_ASG_TAG, DEFAULT_CONCURRENCY, DEFAULT_KEEP_VERSIONS, DEFAULT_MARKER, env,
};
use std::time::{Duration, Instant};

use ami_reconciler::{Clients, ErrorKind, RawSettings, apply, error_chain, load_config, run_until};
use clap::{Parser, Subcommand, ValueEnum};

/// Keeps Auto Scaling groups launching from the newest backup AMI.
///
/// AWS credentials, region and endpoint come from the standard chain
/// (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...).
///
/// Exit codes: 0 done or nothing to do; 1 some change failed (the others were
/// applied); 2 bad configuration or the state could not be read (nothing changed).
#[derive(Debug, Parser)]
#[command(name = "ami-reconciler", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Report format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[arg(long, global = true, value_name = "SECONDS",
          help = format!("Seconds the run may take: no write starts in its last {} s (one call's full timeout and the report); changes not started are reported skipped [default: no limit]", apply::DEADLINE_RESERVE.as_secs()))]
    time_limit: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what apply would change; change nothing.
    Plan,
    /// Converge: create the version, set the default, move groups, prune.
    Apply,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct SettingsArgs {
    /// SSM parameter holding the launch template id.
    #[arg(long, global = true, env = env::LAUNCH_TEMPLATE_PARAMETER)]
    launch_template_parameter: Option<String>,
    /// The launch template id (instead of the parameter).
    #[arg(long, global = true, env = env::LAUNCH_TEMPLATE_ID)]
    launch_template_id: Option<String>,
    /// Manage every launch template carrying this tag, each with the
    /// settings its ami-reconciler:* tags give (instead of one template).
    #[arg(long, global = true, env = env::LAUNCH_TEMPLATE_TAG, value_name = "KEY=VALUE")]
    launch_template_tag: Option<String>,
    #[arg(long, global = true, env = env::AMI_DESCRIPTION_MARKER,
          help = format!("Text backup AMI descriptions contain [default: {DEFAULT_MARKER}]"))]
    marker: Option<String>,
    #[arg(long, global = true, env = env::ASG_TAG,
          help = format!("Tag KEY=VALUE of the groups to manage [default: {DEFAULT_ASG_TAG}]"))]
    asg_tag: Option<String>,
    #[arg(long, global = true, env = env::KEEP_VERSIONS,
          help = format!("Newest template versions to keep [default: {DEFAULT_KEEP_VERSIONS}]"))]
    keep_versions: Option<String>,
    #[arg(long, global = true, env = env::CONCURRENCY,
          help = format!("Group updates in flight at once [default: {DEFAULT_CONCURRENCY}]"))]
    concurrency: Option<String>,
    #[arg(long, global = true, env = env::IMAGE_TAG, value_name = "KEY=VALUE",
          help = "Only images carrying this tag are backups of this workload, e.g. aws:dlm:lifecycle-policy-id=policy-0abc [default: any backup]")]
    image_tag: Option<String>,
    #[arg(long, global = true, env = env::MIN_IMAGE_AGE, value_name = "AGE",
          help = "How old a backup must be before it is used (30m, 2h, 1d) [default: 0]")]
    min_image_age: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing::level_filters::LevelFilter::WARN.into())
                .from_env_lossy(),
        )
        .init();

    let raw = RawSettings {
        launch_template_parameter: cli.settings.launch_template_parameter,
        launch_template_id: cli.settings.launch_template_id,
        launch_template_tag: cli.settings.launch_template_tag,
        marker: cli.settings.marker,
        asg_tag: cli.settings.asg_tag,
        keep_versions: cli.settings.keep_versions,
        concurrency: cli.settings.concurrency,
        image_tag: cli.settings.image_tag,
        min_image_age: cli.settings.min_image_age,
    };
    let settings = match raw.validate() {
        Ok(settings) => settings,
        Err(err) => return fail(cli.output, ErrorKind::Config, &err),
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
    let dry_run = matches!(cli.command, Command::Plan);
    let writes_until = cli
        .time_limit
        .map(|secs| apply::writes_until(Instant::now() + Duration::from_secs(secs)));
    let result = runtime.block_on(async {
        let config = load_config().await;
        let clients = Clients::new(&config);
        run_until(&clients, &settings, dry_run, writes_until).await
    });
    match result {
        Ok(report) => {
            match cli.output {
                Output::Text => print!("{}", report.to_text()),
                Output::Json => println!("{}", report.to_json()),
            }
            for failed in &report.failed {
                eprintln!("error: {}: {}", failed.change.target(), failed.error);
            }
            ExitCode::from(report.exit_code() as u8)
        }
        Err(err) => fail(cli.output, err.kind(), &err),
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
