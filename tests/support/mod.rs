//! Test support, by concern:
//!
//! - [`moto`]: a moto server per test behind the counting, fault-injecting
//!   proxy (both started by `tests/support/harness.py`), and clients of it;
//! - [`account`]: seeding a realistic account through the real AWS SDK;
//! - [`iam`]: IAM users and enforcement in moto;
//! - [`fixtures`]: builders of planner states, for tests that need no server.
//!
//! moto's gaps are filled in `tests/support/moto_gaps.py`; docs/testing.md
//! lists what is emulated and why.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod account;
pub mod fixtures;
pub mod iam;
pub mod moto;

#[allow(unused_imports)]
pub use account::{Account, DRIFT_REPAIR, Drifted, applied_actions, drifted};
#[allow(unused_imports)]
pub use fixtures::day;
#[allow(unused_imports)]
pub use moto::{Call, Key, Moto};

use std::path::PathBuf;

use ami_reconciler::settings::{RawSettings, Settings};

/// The region every test account lives in.
pub const REGION: &str = "us-east-1";
/// The managed tag, as the default `ASG_TAG`.
pub const MANAGED: (&str, &str) = ("ami-reconciler:managed", "true");

/// Settings for a template id, everything else default.
pub fn settings_for(template_id: &str) -> Settings {
    RawSettings {
        launch_template_id: Some(template_id.to_owned()),
        ..RawSettings::default()
    }
    .validate()
    .unwrap()
}

/// The repository: where template.yaml, policies/ and docs/ are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter that has moto and PyYAML: `AMI_RECONCILER_PYTHON`,
/// else the repository's `.venv` (created by `scripts/test.sh`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AMI_RECONCILER_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with moto: run scripts/test.sh (it creates .venv), or set AMI_RECONCILER_PYTHON"
    );
    venv
}
