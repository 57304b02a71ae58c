//! The README demo: starts moto on loopback, seeds a realistic drifted
//! account, and runs `ami-reconciler plan`, `apply`, then `plan` again.
//!
//! Run it with `scripts/demo.sh` (which prepares Python and builds the CLI).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;

use support::Moto;

const PARAMETER: &str = "/app/launch-template-id";

fn cli_path() -> PathBuf {
    // target/<profile>/examples/demo -> target/<profile>/ami-reconciler
    let exe = std::env::current_exe().expect("current executable");
    exe.parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("ami-reconciler"))
        .expect("target directory")
}

fn run_cli(moto: &Moto, command: &str) {
    println!("\n$ ami-reconciler {command}\n");
    let status = Command::new(cli_path())
        .arg(command)
        .envs(moto.env())
        .env("LAUNCH_TEMPLATE_PARAMETER", PARAMETER)
        .status()
        .expect("run ami-reconciler (build it first: cargo build --bins)");
    println!("(exit code {})", status.code().unwrap_or(-1));
}

#[tokio::main]
async fn main() {
    let moto = Moto::start();
    let account = moto.account().await;

    // The account as an operator would find it after months of the old
    // event-driven Lambdas losing events.
    let golden = account
        .image("web-golden", "golden image built by Packer", 0)
        .await;
    let mut backups = Vec::new();
    for day in [23, 24, 25] {
        backups.push(account.backup(day).await);
    }
    let template = account.template("web-servers", &golden).await;
    for _ in 2..=8 {
        account.version(&template, &golden).await;
    }
    account.parameter(PARAMETER, &template).await;
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
        "A drifted account on moto (http://127.0.0.1:{}):",
        moto.proxy
    );
    println!(
        "  launch template {template} (web-servers): versions 1-8, default 1, all on the golden image {golden}"
    );
    println!("  SSM parameter {PARAMETER} = {template}");
    println!(
        "  backups (description contains EC2_BACKUP): {}",
        backups.join(", ")
    );
    println!("  group web-a     tagged ami-reconciler:managed=true, pinned to version 1");
    println!("  group web-spot  tagged, mixed instances policy on $Default");
    println!(
        "  group batch     not tagged, pinned to version 2 (never touched, version 2 is protected)"
    );

    run_cli(&moto, "plan");
    run_cli(&moto, "apply");
    run_cli(&moto, "plan");
}
