//! The planner: a pure function from observed [`State`] to a [`Plan`].
//!
//! No clock, no I/O, no SDK type: every rule of the reconciler lives here,
//! one family per file, and is tested with plain data. Each rule gives back
//! a [`Decision`]: what it decided, what it noticed, and the reads it needs.
//! An empty `changes` list means converged. Imports only the model and the
//! policy.
//!
//! - [`change`]: the vocabulary of changes and their prerequisites
//! - [`image`]: which backup is eligible, and whether `$Latest` needs it
//! - [`version`]: the new version, the memory of a refusal, the default
//! - [`groups`]: which managed groups move to `$Latest`
//! - [`rollout`]: rolling groups on numbers, instance refreshes, the hold a
//!   running one puts
//! - [`quarantine`]: the image whose rollout failed, and the retreat from it
//! - [`fleet`]: groups on an image that is gone, instances behind
//! - [`publish`]: the default version's image, published to SSM
//! - [`prune`]: which old versions go
//! - [`reads`]: the reads the planner asks observe for

pub mod change;
pub mod fleet;
pub mod groups;
pub mod image;
mod preferences;
pub mod prune;
pub mod publish;
pub mod quarantine;
pub mod reads;
pub mod rollout;
pub mod version;

use serde::Serialize;

pub use change::{
    Change, CreateVersion, DeleteVersions, ImageSummary, Prerequisite, PutImageParameter,
    QuarantineImage, SetDefaultVersion, StartInstanceRefresh, UpdateGroup, VersionTarget,
};
pub use image::{Eligibility, newest_backup};
pub use reads::Read;
pub use version::{Created, client_token, restore_description};

use crate::model::{DiscoveredTemplate, Group, State, Tag};
use crate::policy::Policy;
use crate::settings::write_tag;
use crate::warning::Warning;

/// What one run intends to change for one template, and what it noticed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The managed launch template.
    pub template_id: String,
    pub template_name: String,
    /// The newest eligible backup AMI, if any.
    pub newest_backup: Option<ImageSummary>,
    /// The changes, in the order they are applied. Empty when converged.
    pub changes: Vec<Change>,
    /// Things an operator should know that the reconciler will not change.
    pub warnings: Vec<Warning>,
    /// What the managed groups run.
    pub fleet: fleet::Fleet,
    /// Reads the plan still needs; observe makes them before the final plan.
    #[serde(skip)]
    pub reads: Vec<Read>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_converged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What a rule decided, what it noticed, and what it needs read first.
#[derive(Debug)]
#[must_use]
pub struct Decision<T> {
    pub made: T,
    pub warnings: Vec<Warning>,
    pub reads: Vec<Read>,
}

impl<T> Decision<T> {
    /// A decision with nothing noticed.
    pub fn made(made: T) -> Self {
        Decision {
            made,
            warnings: Vec::new(),
            reads: Vec::new(),
        }
    }

    /// The same decision, noticing `warnings` too.
    pub fn warn(mut self, warnings: impl IntoIterator<Item = Warning>) -> Self {
        self.warnings.extend(warnings);
        self
    }

    /// The same decision, asking for `read` too.
    pub fn read(mut self, read: Read) -> Self {
        self.reads.push(read);
        self
    }
}

/// The warnings and reads of several decisions, in the order taken.
#[derive(Debug, Default)]
pub struct Notes {
    pub warnings: Vec<Warning>,
    pub reads: Vec<Read>,
}

impl Notes {
    /// Keeps what `decision` noticed and asked for; gives back what it made.
    pub fn take<T>(&mut self, decision: Decision<T>) -> T {
        self.warnings.extend(decision.warnings);
        self.reads.extend(decision.reads);
        decision.made
    }

    /// A decision of `made` with everything taken so far.
    pub fn finish<T>(self, made: T) -> Decision<T> {
        Decision {
            made,
            warnings: self.warnings,
            reads: self.reads,
        }
    }
}

/// Computes the plan of one template with its policy, for groups tagged
/// `managed`. Pure: the same input always gives the same plan.
pub fn plan(state: &State, policy: &Policy, managed: &Tag) -> Plan {
    // A rollout that failed for a group asking for quarantine: its image is
    // planned as skip-tagged, so the template retreats in this same run,
    // once the tag is written.
    let quarantines = quarantine::quarantines(state);
    let quarantined;
    let state = match quarantines.is_empty() {
        true => state,
        false => {
            quarantined = quarantine::as_quarantined(state, &quarantines);
            &quarantined
        }
    };
    let template = &state.template;
    let mut notes = Notes::default();
    let choice = notes.take(image::choose(state, policy));
    let (newest, latest) = (choice.newest, choice.latest);
    let image_change = notes.take(rollout::hold(state, choice));
    let create = notes
        .take(version::create(state, newest, image_change.as_ref()))
        .map(|create| CreateVersion {
            needs: quarantines
                .iter()
                .map(|q| Prerequisite::Quarantined(q.image.clone()))
                .collect(),
            ..create
        });
    let switch = notes.take(version::default_switch(template, create.as_ref(), latest));
    let publish = notes.take(publish::image_parameter(
        state,
        policy,
        create.as_ref(),
        switch.as_ref(),
    ));
    let mut moves = notes.take(groups::moves(state, managed, latest, create.as_ref()));
    let target = rollout::target(state, policy, create.as_ref(), switch.as_ref());
    let placements = notes.take(rollout::placements(state, target));
    let refreshes = notes.take(rollout::refreshes(state, target, &placements));
    moves.extend(placements);
    let fleet = notes.take(fleet::review(
        state,
        create.as_ref(),
        switch.as_ref(),
        &moves,
    ));
    let window = prune::KeepWindow {
        keep: policy.keep_versions as usize,
        create: create.as_ref(),
        switch: switch.as_ref(),
    };
    let delete = notes.take(prune::delete(state, &window, &moves));

    let changes: Vec<Change> = quarantines
        .into_iter()
        .map(Change::QuarantineImage)
        .chain(create.map(Change::CreateVersion))
        .chain(switch.map(Change::SetDefaultVersion))
        .chain(publish.map(Change::PutImageParameter))
        .chain(moves.into_iter().map(Change::UpdateGroup))
        .chain(refreshes.into_iter().map(Change::StartInstanceRefresh))
        .chain(delete.map(Change::DeleteVersions))
        .collect();
    if template.tags.is_none() && changes.iter().any(Change::writes_template) {
        notes.reads.push(Read::TemplateTags);
    }
    notes.take(version::write_tag_warning(
        template,
        &changes,
        write_tag(managed),
    ));
    Plan {
        template_id: template.id.clone(),
        template_name: template.name.clone(),
        newest_backup: newest.map(ImageSummary::from),
        changes,
        warnings: notes.warnings,
        fleet,
        reads: notes.reads,
    }
}

/// What observe hands the planner: each managed template's state with its
/// policy, or why it is skipped, and the managed groups on no managed
/// template.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The templates, by id.
    pub templates: Vec<Observation>,
    /// Managed groups whose launch template is not managed (tag mode).
    pub stray_groups: Vec<Group>,
    /// The discovery tag, in tag mode.
    pub discovery_tag: Option<Tag>,
    /// What observe could not read and the run goes on without.
    pub warnings: Vec<Warning>,
}

/// One managed template as observed.
#[derive(Debug, Clone)]
// Few of these exist per run, each moved once: boxing `Ready` buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    /// Read in full: plan it with this policy.
    Ready {
        state: State,
        /// The run's policy with the template's own tags applied.
        policy: Policy,
    },
    /// Left alone, for the reason the warning gives.
    Skipped {
        template: DiscoveredTemplate,
        warning: Warning,
    },
}

/// The plans of one run: one per managed template, and the run's own warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// One plan per template, in the order observed.
    pub plans: Vec<Plan>,
    /// Warnings about no single template.
    pub warnings: Vec<Warning>,
}

impl RunPlan {
    /// True when no template has anything to do.
    pub fn is_converged(&self) -> bool {
        self.plans.iter().all(Plan::is_converged)
    }
}

/// The policy of each discovered template: the run's, with the template's
/// own tags applied. A template is skipped, with a warning, when a tag is
/// malformed or when several templates are managed and it has no lineage.
pub fn template_policies(
    discovered: &[DiscoveredTemplate],
    policy: &Policy,
) -> Vec<Result<Policy, Warning>> {
    discovered
        .iter()
        .map(|template| {
            let own = policy
                .with_tags(&template.tags)
                .map_err(|err| Warning::BadTemplateTag {
                    template: template.id.clone(),
                    tag: err.setting().to_owned(),
                    problem: err.to_string(),
                })?;
            if discovered.len() > 1 && own.image_tag.is_none() {
                return Err(Warning::NoLineage {
                    template: template.id.clone(),
                    templates: discovered.len(),
                });
            }
            Ok(own)
        })
        .collect()
}

/// Plans every observed template on its own; a skipped one gets a plan with
/// no change and its warning. Pure, like [`plan`].
pub fn plan_run(observed: &Observed, managed: &Tag) -> RunPlan {
    let mut plans: Vec<Plan> = observed
        .templates
        .iter()
        .map(|observation| match observation {
            Observation::Ready { state, policy } => plan(state, policy, managed),
            Observation::Skipped { template, warning } => Plan {
                template_id: template.id.clone(),
                template_name: template.name.clone(),
                newest_backup: None,
                changes: Vec::new(),
                warnings: vec![warning.clone()],
                fleet: fleet::Fleet::default(),
                reads: Vec::new(),
            },
        })
        .collect();
    publish::shared_parameters(&observed.templates, &mut plans);
    let mut notes = Notes {
        warnings: observed.warnings.clone(),
        reads: Vec::new(),
    };
    if let Some(tag) = observed.discovery_tag.as_ref()
        && observed.templates.is_empty()
    {
        notes
            .warnings
            .push(Warning::NoTemplateTagged { tag: tag.clone() });
    }
    notes.take(groups::strays(&observed.stray_groups, managed));
    RunPlan {
        plans,
        warnings: notes.warnings,
    }
}
