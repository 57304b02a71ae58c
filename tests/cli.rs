//! The `ami-reconciler` binary: output, exit codes and settings, against moto.

mod support;

use std::process::{Command, Output};

use serde_json::{Value, json};
use support::Moto;

fn cli(moto: &Moto, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ami-reconciler")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn drifted(moto: &Moto) -> String {
    let account = moto.account().await;
    let old = account.backup(1).await;
    account.backup(2).await;
    let template = account.template("web", &old).await;
    account.group("web", &template, "1", true).await;
    account
        .parameter("/app/launch-template-id", &template)
        .await;
    template
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_each_change_with_its_target_and_reason_and_changes_nothing() {
    let moto = Moto::start();
    let template = drifted(&moto).await;

    let out = cli(
        &moto,
        &["plan"],
        &[("LAUNCH_TEMPLATE_PARAMETER", "/app/launch-template-id")],
    );

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "+ launch template {template}: new version from version 1 ($Latest)"
        )),
        "{text}"
    );
    assert!(
        text.contains("~ auto scaling group web: launch template version"),
        "{text}"
    );
    assert!(text.contains(&format!("{template} 1 -> $Latest")), "{text}");
    assert!(text.contains("why"), "{text}");
    assert!(
        text.contains("Plan: 1 version to create, 1 default to set, 1 group to update, 0 versions to delete. Dry run: nothing was changed."),
        "{text}"
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_json_output_then_plan_shows_nothing_left_to_do() {
    let moto = Moto::start();
    let template = drifted(&moto).await;

    let out = cli(
        &moto,
        &[
            "apply",
            "--output",
            "json",
            "--launch-template-id",
            &template,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["changes"].as_array().unwrap().len(), 3);
    assert_eq!(report["applied"].as_array().unwrap().len(), 3);
    assert_eq!(report["applied"][0]["result"], "created version 2");
    assert_eq!(report["failed"], json!([]));
    assert_eq!(report["warnings"], json!([]));

    moto.reset();
    let again = cli(&moto, &["plan", "--launch-template-id", &template], &[]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_change_exits_1_after_applying_the_rest() {
    let moto = Moto::start();
    let template = drifted(&moto).await;
    moto.faults(json!([{
        "action": "UpdateAutoScalingGroup", "fault": "error", "status": 400,
        "code": "ValidationError", "message": "AutoScalingGroup name not found - web"
    }]));

    let out = cli(&moto, &["apply", "--launch-template-id", &template], &[]);

    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("[FAILED: ValidationError: AutoScalingGroup name not found - web]"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("error: web: ValidationError"),
        "{}",
        stderr(&out)
    );
    // The last line agrees with the exit code and says why.
    let last = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("Apply: 2 of 3 changes applied, 1 failed, 0 skipped")
            && last.ends_with("Exit 1: 1 failed; see above."),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_win_over_environment_variables() {
    let moto = Moto::start();
    let template = drifted(&moto).await;
    let out = cli(
        &moto,
        &[
            "plan",
            "--keep-versions",
            "3",
            "--launch-template-id",
            &template,
        ],
        &[
            ("KEEP_VERSIONS", "three"),
            ("LAUNCH_TEMPLATE_ID", "lt-0000000000000000f"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_negative_number_gets_the_settings_own_message_not_an_unexpected_argument() {
    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args([
            "plan",
            "--keep-versions",
            "-1",
            "--launch-template-id",
            "lt-0abc",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"KEEP_VERSIONS must be a whole number >= 1, got "-1""#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_a_region_one_line_says_to_set_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["plan", "--launch-template-id", "lt-0abc"])
        .env_clear()
        .envs([
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: no AWS region: set AWS_REGION, or a region in your AWS profile (AWS_PROFILE)\n"
    );
}

#[test]
fn apply_help_says_it_starts_refreshes_that_replace_instances() {
    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["apply", "--help"])
        .env_clear()
        .output()
        .unwrap();
    let help = stdout(&out);
    assert!(help.contains("instance refreshes"), "{help}");
    assert!(help.contains("replace running instances"), "{help}");
    assert!(help.contains("DRY_RUN"), "{help}");
}

#[test]
fn an_endpoint_that_refuses_connections_is_named_in_one_readable_line() {
    // GIVEN an endpoint where nothing listens (port 9, discard) and one attempt
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"))
        .args(["plan", "--output", "json"])
        .env_clear()
        .envs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_MAX_ATTEMPTS", "1"),
            ("LAUNCH_TEMPLATE_ID", "lt-0123456789abcdef0"),
        ])
        .output()
        .expect("run ami-reconciler");

    // THEN it exits 2 at once with the cause people need, no SDK internals
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(": cannot connect to http://127.0.0.1:9: connection refused"),
        "{message}"
    );
    assert!(!message.contains("DispatchFailure"), "{message}");
    assert_eq!(
        stderr(&out).trim(),
        format!("error: {message}"),
        "one line on stderr"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_shorter_than_the_reserve_starts_no_write_and_exits_1() {
    let moto = Moto::start();
    let template = drifted(&moto).await;

    let out = cli(
        &moto,
        &[
            "apply",
            "--launch-template-id",
            &template,
            "--time-limit",
            "30",
        ],
        &[],
    );

    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let last = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("Apply: 0 of 3 changes applied, 0 failed, 3 skipped")
            && last.ends_with("Exit 1: 3 skipped; see above."),
        "{last}"
    );
    assert_eq!(
        stderr(&out).matches("skipped: ").count(),
        3,
        "one stderr line per cause: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("[skipped: the run's deadline is near: not started]"),
        "{}",
        stdout(&out)
    );
    assert_eq!(moto.mutating_calls(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_line_agrees_with_the_exit_code_and_stderr_names_each_cause() {
    // GIVEN two tagged templates without a lineage, and backups for both
    let moto = Moto::start();
    let account = moto.account().await;
    let old = account.backup(1).await;
    account.backup(2).await;
    let tag = [("ami-reconciler:managed", "true")];
    account.tagged_template("web", &old, &tag).await;
    account.tagged_template("api", &old, &tag).await;

    // WHEN plan runs in tag mode
    let out = cli(
        &moto,
        &[
            "plan",
            "--launch-template-tag",
            "ami-reconciler:managed=true",
        ],
        &[],
    );

    // THEN it exits 1, its last line says so and why, and stderr has one
    // line per template saying what a person should do
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let last = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(!last.contains("up to date"), "{last}");
    assert!(
        last.ends_with("Exit 1: 2 conditions a person must clear; see above."),
        "{last}"
    );
    let causes: Vec<&str> = stderr_lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("needs attention: "))
        .collect();
    assert_eq!(causes.len(), 2, "{}", stderr(&out));
    assert!(
        causes.iter().all(|l| l.contains("tag it with the lineage")),
        "{causes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_that_matches_nothing_says_so_instead_of_up_to_date() {
    let moto = Moto::start();
    let template = drifted(&moto).await;

    let out = cli(
        &moto,
        &[
            "plan",
            "--launch-template-id",
            &template,
            "--marker",
            "NOPE_NOTHING",
        ],
        &[],
    );

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let last = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(!last.contains("up to date"), "{last}");
    assert!(
        last.ends_with(
            "No backup matches the marker and lineage of the launch template (see the warnings above)."
        ),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_tag_that_matches_nothing_exits_1_and_says_so() {
    let moto = Moto::start();
    drifted(&moto).await;

    let out = cli(
        &moto,
        &["plan", "--launch-template-tag", "ami-reconciler:managed="],
        &[],
    );

    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "needs attention: no launch template carries the tag ami-reconciler:managed=; nothing is managed"
        ),
        "{}",
        stderr(&out)
    );
}

fn stderr_lines(out: &Output) -> Vec<&str> {
    std::str::from_utf8(&out.stderr)
        .unwrap_or_default()
        .lines()
        .collect()
}

/// A pseudo-terminal: the child writes to `terminal`, the test reads `reader`.
fn pseudo_terminal() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the two integers; null
    // name, settings and window size are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(controller),
            std::fs::File::from_raw_fd(terminal),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_apply_shows_its_progress_per_stage_on_a_terminal_and_nowhere_else() {
    let moto = Moto::start();
    drifted(&moto).await;
    let setting = ("LAUNCH_TEMPLATE_PARAMETER", "/app/launch-template-id");

    // WHEN apply runs with stderr on a terminal
    let (mut reader, terminal) = pseudo_terminal();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ami-reconciler"));
    cmd.arg("apply")
        .env_clear()
        .envs(moto.env())
        .env("TERM", "xterm")
        .env(setting.0, setting.1);
    let out = cmd.stderr(terminal).output().expect("run ami-reconciler");
    drop(cmd);
    let mut seen = Vec::new();
    // The child is gone and the test's copy of the terminal closed with
    // `cmd`: reading ends with EIO once the buffer is drained.
    let _ = std::io::Read::read_to_end(&mut reader, &mut seen);
    let seen = String::from_utf8_lossy(&seen);

    // THEN the terminal showed the stages counting up, the report on stdout
    // has no trace of it
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(seen.contains("applying: versions "), "{seen}");
    assert!(seen.contains("groups "), "{seen}");
    assert!(!stdout(&out).contains("applying:"), "{}", stdout(&out));

    // AND with stderr not a terminal, or a JSON report, nothing is drawn
    moto.account().await.backup(3).await;
    for args in [&["apply"][..], &["apply", "--output", "json"]] {
        let out = cli(&moto, args, &[setting]);
        assert!(!stderr(&out).contains("applying:"), "{}", stderr(&out));
    }
}
