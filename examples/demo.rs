//! The README demo: starts moto on loopback, seeds a realistic drifted
//! account, and runs `ami-reconciler plan`, `apply`, then `plan` again.
//!
//! Run it with `scripts/demo.sh` (which prepares Python and builds the CLI).
//! By default the reconciler runs in tag mode over two fleets, each with
//! its own backups, beside a database server whose newer backups carry the
//! same marker and must never be picked. `scripts/demo.sh single` seeds the
//! web fleet alone and names its template through the SSM parameter;
//! `--json` prints the reports as JSON (docs/report.md shows one).
//!
//! `sandbox` (run by `scripts/sandbox.sh`) seeds the same account, prints
//! the `export` lines that point the CLI at it, and stays up until Ctrl-C,
//! so the reconciler can be tried by hand against the emulator with its gaps
//! filled (a plain `moto.server` lacks calls the reconciler makes).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Account, Moto};

const PARAMETER: &str = "/app/launch-template-id";
const MANAGED: (&str, &str) = ("ami-reconciler:managed", "true");

fn cli_path() -> PathBuf {
    // target/<profile>/examples/demo -> target/<profile>/ami-reconciler
    let exe = std::env::current_exe().expect("current executable");
    exe.parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("ami-reconciler"))
        .expect("target directory")
}

/// The environment a command runs with: the emulator's, and the setting
/// that names the templates.
fn environment(moto: &Moto, source: (&str, &str)) -> Vec<(String, String)> {
    moto.env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([(source.0.to_owned(), source.1.to_owned())])
        .collect()
}

fn run_cli(moto: &Moto, command: &str, source: (&str, &str), json: bool) {
    let env: Vec<String> = environment(moto, source)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let output = if json { " --output json" } else { "" };
    println!("\n$ {} ami-reconciler {command}{output}\n", env.join(" "));
    let mut cli = Command::new(cli_path());
    cli.arg(command).envs(moto.env()).env(source.0, source.1);
    if json {
        cli.args(["--output", "json"]);
    }
    let status = cli
        .status()
        .expect("run ami-reconciler (build it first: cargo build --bins)");
    println!("(exit code {})", status.code().unwrap_or(-1));
}

/// The web fleet as an operator would find it after months of the old
/// event-driven Lambdas losing events.
async fn web_fleet(account: &Account<'_>, tags: &[(&str, &str)]) -> String {
    let golden = account.golden("web-golden", 0, "x86_64").await;
    let mut backups = Vec::new();
    for day in [23, 24, 25] {
        backups.push(account.backup_of("policy-web", day, "x86_64").await);
    }
    let template = account.tagged_template("web-servers", &golden, tags).await;
    for _ in 2..=8 {
        account.version(&template, &golden).await;
    }
    account.group("web-a", &template, "1", true).await;
    account.group("batch", &template, "2", false).await;
    account
        .mixed_group(
            "web-spot",
            &template,
            "$Default",
            &[("t3.micro", None), ("t3a.micro", None)],
            true,
        )
        .await;
    println!(
        "  launch template {template} (web-servers, x86_64): versions 1-8, default 1, all on the golden image {golden}"
    );
    println!(
        "  web backups (DLM policy-web, EC2_BACKUP): {}",
        backups.join(", ")
    );
    println!("  group web-a     tagged ami-reconciler:managed=true, pinned to version 1");
    println!("  group web-spot  tagged, mixed instances policy on $Default");
    println!(
        "  group batch     not tagged, pinned to version 2 (never touched, version 2 is protected)"
    );
    template
}

/// What the arguments ask for.
struct Mode {
    single: bool,
    json: bool,
    sandbox: bool,
}

fn mode(args: &[String]) -> Result<Mode, String> {
    let mut mode = Mode {
        single: false,
        json: false,
        sandbox: false,
    };
    for arg in args {
        match arg.as_str() {
            "single" => mode.single = true,
            "--json" => mode.json = true,
            "sandbox" => mode.sandbox = true,
            other => return Err(other.to_owned()),
        }
    }
    Ok(mode)
}

/// Prints how to reach the seeded account, then waits: Ctrl-C ends the
/// process, and the emulator with it (it exits when its stdin closes).
fn serve(moto: &Moto, source: (&str, &str)) -> ! {
    println!("\nThe sandbox is up. In another shell:\n");
    for (k, v) in environment(moto, source) {
        println!("export {k}='{v}'");
    }
    println!("{}", cli_path().display());
    println!("\n  then: ami-reconciler plan (or apply); Ctrl-C here stops the sandbox.");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Mode {
        single,
        json,
        sandbox,
    } = match mode(&args) {
        Ok(mode) => mode,
        Err(unknown) => {
            eprintln!(
                "demo: unknown argument {unknown:?}; expected any of: single, --json, sandbox"
            );
            std::process::exit(2);
        }
    };
    let moto = Moto::start();
    let account = moto.account().await;
    println!(
        "A drifted account on moto (http://127.0.0.1:{}):",
        moto.proxy
    );

    if single {
        let template = web_fleet(&account, &[MANAGED]).await;
        account.parameter(PARAMETER, &template).await;
        println!("  SSM parameter {PARAMETER} = {template}");
        if sandbox {
            serve(&moto, ("LAUNCH_TEMPLATE_PARAMETER", PARAMETER));
        }
        for command in ["plan", "apply", "plan"] {
            run_cli(
                &moto,
                command,
                ("LAUNCH_TEMPLATE_PARAMETER", PARAMETER),
                json,
            );
        }
        return;
    }

    let web_lineage = "aws:dlm:lifecycle-policy-id=policy-web";
    web_fleet(
        &account,
        &[MANAGED, ("ami-reconciler:image-tag", web_lineage)],
    )
    .await;
    let api_golden = account.golden("api-golden", 0, "arm64").await;
    let mut api_backups = Vec::new();
    for day in [24, 25] {
        api_backups.push(account.backup_of("policy-api", day, "arm64").await);
    }
    let api = account
        .tagged_template(
            "api-servers",
            &api_golden,
            &[
                MANAGED,
                (
                    "ami-reconciler:image-tag",
                    "aws:dlm:lifecycle-policy-id=policy-api",
                ),
            ],
        )
        .await;
    account.group("api-a", &api, "$Default", true).await;
    let db = account.backup_of("policy-db", 26, "x86_64").await;
    println!(
        "  launch template {api} (api-servers, arm64): version 1 on the golden image {api_golden}"
    );
    println!(
        "  api backups (DLM policy-api, EC2_BACKUP): {}",
        api_backups.join(", ")
    );
    println!("  group api-a     tagged, on $Default");
    println!(
        "  database backup (DLM policy-db, EC2_BACKUP, the newest of all): {db}: no template may take it"
    );
    println!(
        "  both templates are tagged ami-reconciler:managed=true and ami-reconciler:image-tag=<their DLM policy>"
    );

    let source = ("LAUNCH_TEMPLATE_TAG", "ami-reconciler:managed=true");
    if sandbox {
        serve(&moto, source);
    }
    for command in ["plan", "apply", "plan"] {
        run_cli(&moto, command, source, json);
    }
}
