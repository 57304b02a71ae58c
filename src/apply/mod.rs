//! Apply: every write of a run. Independent changes go on when one fails;
//! a change that relies on a failed one is skipped, never attempted on an
//! assumption that no longer holds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use tracing::{debug, info, instrument};

use crate::clients::Clients;
use crate::error::AwsError;
use crate::model::{GroupLaunch, LATEST, SKIP_REASON_TAG_KEY, SKIP_TAG_KEY, TemplateVersion};
use crate::plan::{
    Change, CreateVersion, Created, DeleteVersions, Plan, Prerequisite, QuarantineImage,
    SetDefaultVersion, StartInstanceRefresh, UpdateGroup, VersionTarget, client_token,
    restore_description,
};
use crate::report::{Applied, Failed, Skipped, TemplateReport};
use crate::settings::Mode;
use crate::warning::{Warning, versions_label};
use crate::{autoscaling, ec2};

mod publish;
mod refresh;
use refresh::{RefreshOutcome, start_refresh};

/// Time kept back from a deadline to write the report and the metrics line.
pub const REPORT_RESERVE: Duration = Duration::from_secs(2);

/// The moment every write must be over, for a run that must end by
/// `deadline`. A sequence of writes starts only when its worst case (each
/// call's full timeout with retries: [`Clients::call_budget`]) ends by then.
pub fn writes_until(deadline: Instant) -> Instant {
    deadline
        .checked_sub(REPORT_RESERVE)
        .unwrap_or_else(Instant::now)
}

pub use crate::report::DEADLINE_REACHED;

/// Applies the plan and reports each change. Group updates run at most
/// `concurrency` at a time. No write starts after `writes_until`; those
/// changes are reported skipped.
#[instrument(skip_all, fields(template = %plan.template_id, changes = plan.changes.len()))]
pub async fn apply(
    clients: &Clients,
    plan: Plan,
    concurrency: usize,
    writes_until: Option<Instant>,
) -> TemplateReport {
    let changes = plan.changes.clone();
    let mut run = Outcomes {
        report: TemplateReport::planned(plan, Mode::Apply),
        endpoint: clients.endpoint().to_owned(),
        deadline: Deadline {
            writes_until,
            call_budget: clients.call_budget(),
        },
        done: BTreeSet::from([Prerequisite::LatestSafe]),
        created: None,
    };
    // Each kind relies on the ones before it: quarantines, versions,
    // default, groups, refreshes, prune.
    let (mut quarantines, mut creates, mut defaults, mut updates, mut refreshes, mut deletes) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut publishes = vec![];
    for change in &changes {
        match change {
            Change::QuarantineImage(c) => quarantines.push(c),
            Change::CreateVersion(c) => creates.push(c),
            Change::SetDefaultVersion(c) => defaults.push(c),
            Change::PutImageParameter(c) => publishes.push(c),
            Change::UpdateGroup(c) => updates.push(c),
            Change::StartInstanceRefresh(c) => refreshes.push(c),
            Change::DeleteVersions(c) => deletes.push(c),
        }
    }
    for change in quarantines {
        run.quarantine(clients, change).await;
    }
    for change in creates {
        run.create_version(clients, change).await;
    }
    for change in defaults {
        run.set_default(clients, change).await;
    }
    for change in publishes {
        run.publish(clients, change).await;
    }
    run.update_groups(clients, updates, concurrency.max(1))
        .await;
    run.start_refreshes(clients, refreshes, concurrency.max(1))
        .await;
    for change in deletes {
        run.delete_versions(clients, change).await;
    }
    run.report
}

/// When every write must be over, if the run has a deadline, and how long
/// one call may take.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    writes_until: Option<Instant>,
    call_budget: Duration,
}

impl Deadline {
    /// The one deadline check: true when `change`'s whole sequence of calls
    /// could not end in time, so it must not start. A sequence cut in the
    /// middle would leave a record without its refresh, or a warned version
    /// without its restore.
    fn leaves_no_room_for(self, change: &Change) -> bool {
        let worst_case = self.call_budget * change.worst_case_calls();
        self.writes_until
            .is_some_and(|until| Instant::now() + worst_case > until)
    }
}

/// What happened so far in this run: the report, and the facts later changes
/// rely on.
struct Outcomes {
    report: TemplateReport,
    endpoint: String,
    deadline: Deadline,
    /// What succeeded so far: every skip is derived from what is missing.
    done: BTreeSet<Prerequisite>,
    /// The number of the version this run created.
    created: Option<i64>,
}

/// What a deletion may still do, given what succeeded before it.
#[derive(Debug, PartialEq, Eq)]
pub enum Deletable {
    /// Delete these (perhaps none); the others are kept because what they
    /// needed did not succeed.
    Versions {
        /// The versions to delete, ascending.
        delete: Vec<i64>,
        /// The versions kept, ascending.
        kept: Vec<i64>,
    },
    /// Delete nothing, because this prerequisite of the whole deletion is missing.
    Nothing(Prerequisite),
}

/// The versions of a planned deletion whose prerequisites all succeeded:
/// the keep window counted a version that exists, the old default was
/// switched away from, and the groups that pinned a version have moved off it.
pub fn deletable(change: &DeleteVersions, done: &BTreeSet<Prerequisite>) -> Deletable {
    if let Some(missing) = missing(&change.needs, done) {
        return Deletable::Nothing(missing.clone());
    }
    let held = |n: &i64| {
        change
            .each_needs
            .get(n)
            .is_some_and(|needs| missing(needs, done).is_some())
    };
    let (kept, delete): (Vec<i64>, Vec<i64>) = change.versions.iter().partition(|n| held(n));
    Deletable::Versions { delete, kept }
}

/// The versions of a template as read now; `None` when the read failed.
async fn read_versions(clients: &Clients, template: &str) -> Option<Vec<TemplateVersion>> {
    ec2::describe_template(&clients.ec2, template)
        .await
        .ok()
        .map(|t| t.versions)
}

fn numbers(versions: &Option<Vec<TemplateVersion>>) -> Option<Vec<i64>> {
    versions
        .as_ref()
        .map(|vs| vs.iter().map(|v| v.number).collect())
}

/// The failure of a create EC2 answered with warnings.
fn warned(number: i64, warnings: &[String]) -> AwsError {
    let (code, message) = warnings[0]
        .split_once(": ")
        .unwrap_or(("Warning", warnings[0].as_str()));
    let more = match warnings.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    AwsError::answered(
        code,
        format!("EC2 created version {number} with a warning: {message}{more}"),
    )
}

/// The number `version` names: the version this run created, or an
/// existing one.
fn number_of(version: VersionTarget, created: Option<i64>) -> Option<i64> {
    match version {
        VersionTarget::Number(n) => Some(n),
        VersionTarget::Created => created,
    }
}

/// What a group update sends, with the number of a version this run
/// created put in, and where it leaves the group (`$Latest`, `version 7`).
fn resolved_launch(change: &UpdateGroup, created: Option<i64>) -> Option<(GroupLaunch, String)> {
    let Some(version) = change.version else {
        return Some((change.launch.clone(), LATEST.to_owned()));
    };
    let number = number_of(version, created)?;
    let launch = match &change.launch {
        GroupLaunch::Plain(spec) => GroupLaunch::Plain(spec.at_number(number)),
        GroupLaunch::Mixed(_) => return None,
    };
    Some((launch, format!("version {number}")))
}

/// The first of `needs` that did not succeed.
fn missing<'n>(
    needs: &'n [Prerequisite],
    done: &BTreeSet<Prerequisite>,
) -> Option<&'n Prerequisite> {
    needs.iter().find(|need| !done.contains(need))
}

impl Outcomes {
    /// True when `change` may start: everything it needs succeeded and the
    /// deadline is not near. Otherwise it is reported skipped, saying why.
    fn ready(&mut self, change: &Change) -> bool {
        if !self.prerequisites_met(change) {
            return false;
        }
        if self.deadline.leaves_no_room_for(change) {
            self.skipped(change.clone(), DEADLINE_REACHED);
            return false;
        }
        true
    }

    /// True when everything `change` needs succeeded; otherwise it is
    /// reported skipped for the first prerequisite missing.
    fn prerequisites_met(&mut self, change: &Change) -> bool {
        match missing(&change.needs(), &self.done) {
            Some(missing) => {
                let because = change.skipped_because(missing);
                self.skipped(change.clone(), because);
                false
            }
            None => true,
        }
    }

    fn applied(&mut self, change: Change, result: String) {
        self.applied_made(change, result, None);
    }

    /// An applied change whose write made something with an id.
    fn applied_made(&mut self, change: Change, result: String, made: Option<String>) {
        info!(action = change.action(), target = %change.target(), result = %result, "applied");
        self.report.applied.push(Applied {
            change,
            result,
            made,
        });
    }

    fn failed(&mut self, change: Change, error: AwsError) {
        let error = error.at(&self.endpoint);
        debug!(
            action = change.action(),
            detail = error.detail(),
            "failed: the SDK's account"
        );
        // At INFO: the report and the CLI's cause lines say it once.
        info!(action = change.action(), target = %change.target(), error = %error, "failed");
        self.report.failed.push(Failed {
            change,
            error_code: error.code.clone(),
            error: error.to_string(),
        });
    }

    fn skipped(&mut self, change: Change, because: &str) {
        info!(action = change.action(), target = %change.target(), because, "skipped");
        self.report.skipped.push(Skipped {
            change,
            skipped_because: because.to_owned(),
        });
    }

    async fn create_version(&mut self, clients: &Clients, change: &CreateVersion) {
        let change_ = Change::CreateVersion(change.clone());
        if !self.ready(&change_) {
            return;
        }
        let (created, verdict) = match self.create_and_judge(clients, change).await {
            Ok(judged) => judged,
            Err(err) => {
                if err.outcome_unknown() {
                    // A version may exist whose answer was never seen.
                    self.done.remove(&Prerequisite::LatestSafe);
                }
                return self.failed(change_, err);
            }
        };
        let number = created.number;
        match verdict {
            Created::Fresh if !created.warnings.is_empty() => {
                self.restore(clients, change, number, &created.warnings)
                    .await;
                self.failed(change_, warned(number, &created.warnings));
            }
            Created::Fresh => {
                self.created = Some(number);
                self.done.insert(Prerequisite::VersionCreated);
                self.applied_made(
                    change_,
                    format!("created version {number}"),
                    Some(number.to_string()),
                );
            }
            Created::Raced => {
                if !self.undo_raced(clients, change, number).await {
                    // Our raced version is $Latest, unjudged.
                    self.done.remove(&Prerequisite::LatestSafe);
                }
                self.failed(
                    change_,
                    AwsError::other(format!(
                        "another writer created a version of {} meanwhile; version {number} was built from an older $Latest and deleted again",
                        change.template_id
                    )),
                );
            }
            Created::Replayed => {
                // A version may exist that no read has shown yet.
                self.done.remove(&Prerequisite::LatestSafe);
                self.failed(
                    change_,
                    AwsError::other(format!(
                        "EC2 answered with version {number}, which does not exist"
                    )),
                )
            }
        }
    }

    /// Creates the version and judges it against the versions read right
    /// after. A number the read does not show is a token replayed for a
    /// deleted version, or a read not yet consistent: the create is sent
    /// again under a token of the SDK's making, and should the first turn up
    /// after all, the second is its duplicate and is deleted.
    async fn create_and_judge(
        &mut self,
        clients: &Clients,
        change: &CreateVersion,
    ) -> Result<(ec2::CreatedVersion, Created), AwsError> {
        let mut new = ec2::NewVersion {
            template_id: &change.template_id,
            source_version: change.source_version,
            image_id: &change.to_image,
            description: &change.version_description,
            client_token: Some(&change.client_token),
            block_devices: &change.block_devices,
        };
        let created = ec2::create_version(&clients.ec2, new).await?;
        let existing = read_versions(clients, &change.template_id).await;
        let verdict = change.judge(created.number, numbers(&existing).as_deref());
        if verdict != Created::Replayed {
            return Ok((created, verdict));
        }
        new.client_token = None;
        let again = ec2::create_version(&clients.ec2, new)
            .await
            .inspect_err(|_| {
                // The first version, unseen by the read, is $Latest unjudged.
                self.done.remove(&Prerequisite::LatestSafe);
            })?;
        let existing = read_versions(clients, &change.template_id).await;
        let verdict = change.judge(again.number, numbers(&existing).as_deref());
        let first = existing
            .as_deref()
            .and_then(|versions| change.own_duplicate(again.number, versions));
        match (verdict, first) {
            (Created::Raced, Some(first)) => {
                self.undo(&change.template_id, clients, again.number).await;
                let warnings = if first == created.number {
                    created.warnings
                } else {
                    again.warnings
                };
                Ok((
                    ec2::CreatedVersion {
                        number: first,
                        warnings,
                    },
                    Created::Fresh,
                ))
            }
            _ => Ok((again, verdict)),
        }
    }

    /// After EC2 created `warned` with a `Warning`: makes `$Latest` a copy of
    /// the last good version again (the source, or the default when the
    /// source was itself unverified), with a description that keeps later
    /// runs from creating a version for the same image (see
    /// `plan::restore_description`). Should that fail, the warned version is
    /// deleted instead, so that it never reaches a group; should that fail
    /// too, `$Latest` is not safe for the rest of the run, and the next run
    /// finds the version unverified and judges it again.
    async fn restore(
        &mut self,
        clients: &Clients,
        change: &CreateVersion,
        warned: i64,
        messages: &[String],
    ) {
        self.report.warnings.push(Warning::VersionWarned {
            template: change.template_id.clone(),
            image: change.to_image.clone(),
            version: warned,
            messages: messages.join("; "),
        });
        let restored = match &change.restore {
            Some(restore) => {
                let description = restore_description(&change.to_image, warned, messages);
                let token = client_token(&change.template_id, warned, &restore.image);
                let copy = ec2::NewVersion {
                    template_id: &change.template_id,
                    source_version: restore.version,
                    image_id: &restore.image,
                    description: &description,
                    client_token: Some(&token),
                    block_devices: &restore.block_devices,
                };
                ec2::create_version(&clients.ec2, copy).await.is_ok()
            }
            None => false,
        };
        if !restored && !self.undo(&change.template_id, clients, warned).await {
            self.done.remove(&Prerequisite::LatestSafe);
        }
    }

    /// Deletes the version this run just created from a `$Latest` that was
    /// no longer the latest, so the other writer's version stays `$Latest`.
    async fn undo_raced(
        &mut self,
        clients: &Clients,
        change: &CreateVersion,
        created: i64,
    ) -> bool {
        self.report.warnings.push(Warning::RacedAnotherWriter {
            template: change.template_id.clone(),
            source_version: change.source_version,
            created,
        });
        self.undo(&change.template_id, clients, created).await
    }

    /// Deletes a version this run created; a refusal becomes a warning.
    /// True when it is gone.
    async fn undo(&mut self, template: &str, clients: &Clients, version: i64) -> bool {
        let refused = match ec2::delete_versions(&clients.ec2, template, &[version]).await {
            Ok(outcome) if outcome.deleted.contains(&version) => return true,
            Ok(outcome) => outcome
                .refused
                .into_iter()
                .next()
                .map(|r| (r.code, r.message))
                .unwrap_or_default(),
            Err(err) => (err.code.clone().unwrap_or_default(), err.message.clone()),
        };
        self.report.warnings.push(Warning::VersionNotDeleted {
            template: template.to_owned(),
            version,
            error_code: refused.0,
            error: refused.1,
        });
        false
    }

    /// Tags the image skipped, with the reason: the run's retreat from it
    /// (the create that replaces it) waits for this tag, so that a later run
    /// never creates a version from the image again.
    async fn quarantine(&mut self, clients: &Clients, change: &QuarantineImage) {
        let change_ = Change::QuarantineImage(change.clone());
        if !self.ready(&change_) {
            return;
        }
        let tags = [
            (SKIP_TAG_KEY, "true"),
            (SKIP_REASON_TAG_KEY, change.skip_reason.as_str()),
        ];
        match ec2::tag_image(&clients.ec2, &change.image, &tags).await {
            Ok(()) => {
                self.done
                    .insert(Prerequisite::Quarantined(change.image.clone()));
                self.applied(change_, format!("tagged {SKIP_TAG_KEY}=true"));
            }
            Err(err) => self.failed(change_, err),
        }
    }

    async fn set_default(&mut self, clients: &Clients, change: &SetDefaultVersion) {
        let change_ = Change::SetDefaultVersion(change.clone());
        if !self.ready(&change_) {
            return;
        }
        let number = match (change.to, self.created) {
            (VersionTarget::Number(n), _) | (VersionTarget::Created, Some(n)) => n,
            // Ready only once the version was created.
            (VersionTarget::Created, None) => return,
        };
        match ec2::set_default_version(&clients.ec2, &change.template_id, number).await {
            Ok(()) => {
                self.done.insert(Prerequisite::DefaultSwitched);
                self.applied_made(
                    change_,
                    format!("default version is {number}"),
                    Some(number.to_string()),
                );
            }
            Err(err) => self.failed(change_, err),
        }
    }

    async fn update_groups(
        &mut self,
        clients: &Clients,
        changes: Vec<&UpdateGroup>,
        concurrency: usize,
    ) {
        let ready: Vec<&UpdateGroup> = changes
            .into_iter()
            .filter(|c| self.prerequisites_met(&Change::UpdateGroup((*c).clone())))
            .collect();
        let deadline = self.deadline;
        let created = self.created;
        let mut results: Vec<(&UpdateGroup, Option<Result<String, AwsError>>)> =
            stream::iter(ready)
                .map(|change| async move {
                    // Checked as each update starts: the ones in flight finish.
                    if deadline.leaves_no_room_for(&Change::UpdateGroup(change.clone())) {
                        return (change, None);
                    }
                    // Ready only once a version this change names was created.
                    let Some((launch, on)) = resolved_launch(change, created) else {
                        return (change, None);
                    };
                    let result =
                        autoscaling::update_group(&clients.autoscaling, &change.group, &launch)
                            .await;
                    (change, Some(result.map(|()| on)))
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        // Report in plan order, whatever order the calls finished in.
        results.sort_by(|(a, _), (b, _)| a.group.cmp(&b.group));
        for (change, result) in results {
            let change_ = Change::UpdateGroup(change.clone());
            match result {
                Some(Ok(on)) => {
                    self.done
                        .insert(Prerequisite::GroupMoved(change.group.clone()));
                    let version = on.strip_prefix("version ").unwrap_or(&on).to_owned();
                    self.applied_made(change_, format!("now on {on}"), Some(version));
                }
                None => self.skipped(change_, DEADLINE_REACHED),
                Some(Err(err)) => self.failed(change_, err),
            }
        }
    }

    /// Each refresh: first the group's `ami-reconciler:rollout-image` tag
    /// names the image, then the refresh starts. Recorded first, so that a
    /// refresh that starts is always remembered: a later run never starts
    /// it again for the same image (no loops), also after AWS forgets the
    /// refresh. When the start fails, the tag is put back as it was.
    async fn start_refreshes(
        &mut self,
        clients: &Clients,
        changes: Vec<&StartInstanceRefresh>,
        concurrency: usize,
    ) {
        let ready: Vec<&StartInstanceRefresh> = changes
            .into_iter()
            .filter(|c| self.prerequisites_met(&Change::StartInstanceRefresh((*c).clone())))
            .collect();
        let deadline = self.deadline;
        let created = self.created;
        let mut results: Vec<(&StartInstanceRefresh, Option<RefreshOutcome>)> = stream::iter(ready)
            .map(|change| async move {
                if deadline.leaves_no_room_for(&Change::StartInstanceRefresh(change.clone())) {
                    return (change, None);
                }
                let Some(number) = number_of(change.version, created) else {
                    return (change, None);
                };
                let template = change.template.at_number(number);
                (
                    change,
                    Some(start_refresh(clients, change, &template).await),
                )
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        results.sort_by(|(a, _), (b, _)| a.group.cmp(&b.group));
        for (change, outcome) in results {
            let change_ = Change::StartInstanceRefresh(change.clone());
            match outcome {
                None => self.skipped(change_, DEADLINE_REACHED),
                Some(RefreshOutcome::Started(id)) => {
                    let result = format!("started instance refresh {id}");
                    self.applied_made(change_, result, Some(id))
                }
                Some(RefreshOutcome::StartedByAnother(id)) => self.applied_made(
                    change_,
                    format!("instance refresh {id}, started by another run a moment before"),
                    Some(id),
                ),
                Some(RefreshOutcome::NotRecorded(err)) => self.failed(change_, err),
                Some(RefreshOutcome::Refused { error, restored }) => {
                    if !restored {
                        self.report.warnings.push(Warning::RolloutTagNotRestored {
                            group: change.group.clone(),
                            image: change.image.clone(),
                        });
                    }
                    self.failed(change_, error);
                }
            }
        }
    }

    async fn delete_versions(&mut self, clients: &Clients, change: &DeleteVersions) {
        let change_ = Change::DeleteVersions(change.clone());
        let template = &change.template_id;
        let delete = match deletable(change, &self.done) {
            Deletable::Nothing(missing) => {
                return self.skipped(change_.clone(), change_.skipped_because(&missing));
            }
            Deletable::Versions { delete, kept } => {
                if !kept.is_empty() {
                    self.report.warnings.push(Warning::VersionsKept {
                        template: template.clone(),
                        versions: kept,
                    });
                }
                delete
            }
        };
        if delete.is_empty() {
            return self.skipped(change_, "every version relied on a change that failed");
        }
        if self.deadline.leaves_no_room_for(&change_) {
            return self.skipped(change_, DEADLINE_REACHED);
        }
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for batch in delete.chunks(ec2::MAX_DELETE_BATCH) {
            match ec2::delete_versions(&clients.ec2, template, batch).await {
                Ok(outcome) => {
                    deleted.extend(outcome.deleted);
                    for refused in outcome.refused {
                        self.report.warnings.push(Warning::VersionNotDeleted {
                            template: template.clone(),
                            version: refused.version,
                            error_code: refused.code,
                            error: refused.message,
                        });
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
                    self.report.warnings.push(Warning::DeletedBeforeFailure {
                        template: template.clone(),
                        versions: deleted,
                    });
                }
                self.failed(change_, err)
            }
            None if deleted.is_empty() => self.applied(change_, "deleted no version".to_owned()),
            None => self.applied(change_, format!("deleted {}", versions_label(&deleted))),
        }
    }
}

#[cfg(test)]
mod tests;
