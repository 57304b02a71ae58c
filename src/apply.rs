//! Apply: every write of a run. Independent changes go on when one fails;
//! a change that relies on a failed one is skipped, never attempted on an
//! assumption that no longer holds.

use std::collections::BTreeSet;

use futures_util::{StreamExt, stream};
use tracing::{info, instrument, warn};

use crate::clients::Clients;
use crate::error::AwsError;
use crate::plan::{Change, MAX_DELETE_BATCH, Plan, VersionTarget};
use crate::report::{Applied, Failed, Report, Skipped};
use crate::{autoscaling, ec2};

/// Applies the plan and reports each change. Group updates run at most
/// `concurrency` at a time.
#[instrument(skip_all, fields(template = %plan.template_id, changes = plan.changes.len()))]
pub async fn apply(clients: &Clients, plan: Plan, concurrency: usize) -> Report {
    let mut report = Report::planned(plan, false);
    let changes = report.changes.clone();
    let mut run = Run {
        report: &mut report,
        created: None,
        create_failed: false,
        default_failed: false,
        failed_groups: BTreeSet::new(),
    };

    for change in changes
        .iter()
        .filter(|c| matches!(c, Change::CreateVersion { .. }))
    {
        run.create_version(clients, change).await;
    }
    for change in changes
        .iter()
        .filter(|c| matches!(c, Change::SetDefaultVersion { .. }))
    {
        run.set_default(clients, change).await;
    }
    let groups: Vec<&Change> = changes
        .iter()
        .filter(|c| matches!(c, Change::UpdateGroup { .. }))
        .collect();
    run.update_groups(clients, groups, concurrency.max(1)).await;
    for change in changes
        .iter()
        .filter(|c| matches!(c, Change::DeleteVersions { .. }))
    {
        run.delete_versions(clients, change).await;
    }
    report
}

struct Run<'a> {
    report: &'a mut Report,
    created: Option<i64>,
    create_failed: bool,
    default_failed: bool,
    failed_groups: BTreeSet<String>,
}

impl Run<'_> {
    fn applied(&mut self, change: &Change, result: String) {
        info!(action = action(change), target = %target(change), result = %result, "applied");
        self.report.applied.push(Applied {
            change: change.clone(),
            result,
        });
    }

    fn failed(&mut self, change: &Change, error: AwsError) {
        warn!(action = action(change), target = %target(change), error = %error, "failed");
        self.report.failed.push(Failed {
            change: change.clone(),
            error_code: error.code.clone(),
            error: error.to_string(),
        });
    }

    fn skipped(&mut self, change: &Change, because: String) {
        warn!(action = action(change), target = %target(change), because = %because, "skipped");
        self.report.skipped.push(Skipped {
            change: change.clone(),
            skipped_because: because,
        });
    }

    async fn create_version(&mut self, clients: &Clients, change: &Change) {
        let Change::CreateVersion {
            template_id,
            source_version,
            to_image,
            version_description,
            client_token,
            ..
        } = change
        else {
            return;
        };
        match ec2::create_version(
            &clients.ec2,
            template_id,
            *source_version,
            to_image,
            version_description,
            client_token,
        )
        .await
        {
            Ok(number) => {
                self.created = Some(number);
                self.applied(change, format!("created version {number}"));
            }
            Err(err) => {
                self.create_failed = true;
                self.failed(change, err);
            }
        }
    }

    async fn set_default(&mut self, clients: &Clients, change: &Change) {
        let Change::SetDefaultVersion {
            template_id, to, ..
        } = change
        else {
            return;
        };
        let number = match (to, self.created) {
            (VersionTarget::Number(n), _) => *n,
            (VersionTarget::Created, Some(n)) => n,
            (VersionTarget::Created, None) => {
                self.default_failed = true;
                self.skipped(change, "the new version was not created".to_owned());
                return;
            }
        };
        match ec2::set_default_version(&clients.ec2, template_id, number).await {
            Ok(()) => self.applied(change, format!("default version is {number}")),
            Err(err) => {
                self.default_failed = true;
                self.failed(change, err);
            }
        }
    }

    async fn update_groups(
        &mut self,
        clients: &Clients,
        changes: Vec<&Change>,
        concurrency: usize,
    ) {
        let results: Vec<(&Change, Result<(), AwsError>)> = stream::iter(changes)
            .map(|change| async move {
                let result = match change {
                    Change::UpdateGroup { group, target, .. } => {
                        autoscaling::update_group(&clients.autoscaling, group, target).await
                    }
                    _ => Ok(()),
                };
                (change, result)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        // Report in plan order, whatever order the calls finished in.
        let mut results = results;
        results.sort_by_key(|(change, _)| target(change));
        for (change, result) in results {
            match result {
                Ok(()) => self.applied(change, "now on $Latest".to_owned()),
                Err(err) => {
                    if let Change::UpdateGroup { group, .. } = change {
                        self.failed_groups.insert(group.clone());
                    }
                    self.failed(change, err);
                }
            }
        }
    }

    async fn delete_versions(&mut self, clients: &Clients, change: &Change) {
        let Change::DeleteVersions {
            template_id,
            versions,
            relies_on,
            ..
        } = change
        else {
            return;
        };
        if relies_on.created_version && self.created.is_none() {
            self.skipped(
                change,
                "the keep window counted a version that was not created".to_owned(),
            );
            return;
        }
        let mut held_back = Vec::new();
        let deletable: Vec<i64> = versions
            .iter()
            .copied()
            .filter(|n| {
                let still_default = self.default_failed && relies_on.previous_default == Some(*n);
                let still_pinned = relies_on
                    .released_by
                    .get(n)
                    .is_some_and(|groups| groups.iter().any(|g| self.failed_groups.contains(g)));
                if still_default || still_pinned {
                    held_back.push(*n);
                }
                !(still_default || still_pinned)
            })
            .collect();
        if !held_back.is_empty() {
            self.report.warnings.push(format!(
                "{} of {template_id} kept: the default switch or group update they relied on failed",
                crate::plan::versions_label(&held_back)
            ));
        }
        if deletable.is_empty() {
            self.skipped(
                change,
                "every version relied on a change that failed".to_owned(),
            );
            return;
        }
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for batch in deletable.chunks(MAX_DELETE_BATCH) {
            match ec2::delete_versions(&clients.ec2, template_id, batch).await {
                Ok(outcome) => {
                    deleted.extend(outcome.deleted);
                    for (number, code, message) in outcome.refused {
                        self.report.warnings.push(format!(
                            "launch template {template_id} version {number} was not deleted: {code}: {message}"
                        ));
                    }
                }
                Err(err) => errors.push(err),
            }
        }
        deleted.sort_unstable();
        match errors.into_iter().next() {
            Some(err) => {
                // Other batches may have gone through: say which.
                if !deleted.is_empty() {
                    self.report.warnings.push(format!(
                        "launch template {template_id}: {} deleted before a batch failed",
                        crate::plan::versions_label(&deleted)
                    ));
                }
                self.failed(change, err)
            }
            None => self.applied(change, format!("deleted versions {}", join(&deleted))),
        }
    }
}

fn join(numbers: &[i64]) -> String {
    if numbers.is_empty() {
        return "none".to_owned();
    }
    numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `action` name of a change, as in the JSON report.
pub fn action(change: &Change) -> &'static str {
    match change {
        Change::CreateVersion { .. } => "create_version",
        Change::SetDefaultVersion { .. } => "set_default_version",
        Change::UpdateGroup { .. } => "update_group",
        Change::DeleteVersions { .. } => "delete_versions",
    }
}

/// What a change acts on: a template id or a group name.
pub fn target(change: &Change) -> String {
    match change {
        Change::CreateVersion { template_id, .. }
        | Change::SetDefaultVersion { template_id, .. }
        | Change::DeleteVersions { template_id, .. } => template_id.clone(),
        Change::UpdateGroup { group, .. } => group.clone(),
    }
}
