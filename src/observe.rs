//! Observe: every read of a run, turned into one [`Observed`] for the planner.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, stream};
use tracing::instrument;

use crate::clients::Clients;
use crate::ec2::{BackupQuery, Backups};
use crate::error::{AwsError, Error, Result, error_chain};
use crate::model::{
    CurrentImage, DiscoveredTemplate, Group, Image, ParameterRead, PublishedImage, Refresh, State,
    Tag, Template,
};
use crate::plan::{Observation, Observed, Read, fleet, plan, template_policies};
use crate::policy::Policy;
use crate::settings::{Settings, TemplateSource};
use crate::warning::Warning;
use crate::{autoscaling, ec2, ssm};

/// Reads the state the plans are computed from. A read every template
/// shares (images, groups, the template list) fails the run as a whole: a
/// state read in part is never planned on. In tag mode a read of one
/// template that fails skips that template only.
#[instrument(skip_all, fields(template = tracing::field::Empty))]
pub async fn observe(clients: &Clients, settings: &Settings) -> Result<Observed> {
    match &settings.template {
        TemplateSource::Id(id) => observe_one(clients, settings, id.clone()).await,
        TemplateSource::Parameter(name) => {
            let id = ssm::template_id(&clients.ssm, name).await?;
            observe_one(clients, settings, id).await
        }
        TemplateSource::Tag(tag) => observe_tagged(clients, settings, tag).await,
    }
}

/// A template read in full, with the policy it is planned with.
type Ready = (State, Policy);

/// A state with nothing read beyond the template, its images and the
/// account's groups: `managed_groups` are its own, every other group is in
/// `other_groups`.
fn state_of(
    template: Template,
    current_image: CurrentImage,
    images: Vec<Image>,
    (managed_groups, all): (Vec<Group>, &[Group]),
    observed_at: chrono::DateTime<chrono::Utc>,
) -> State {
    let own: BTreeSet<&str> = managed_groups.iter().map(|g| g.name.as_str()).collect();
    let other_groups = all
        .iter()
        .filter(|g| !own.contains(g.name.as_str()))
        .cloned()
        .collect();
    State {
        template,
        current_image,
        images,
        managed_groups,
        observed_at,
        other_groups: Some(other_groups),
        instance_images: BTreeMap::new(),
        refreshes: BTreeMap::new(),
        rollouts_unread: false,
        referenced_images: None,
        image_parameter: None,
    }
}

/// One named template: every managed group is its concern.
async fn observe_one(
    clients: &Clients,
    settings: &Settings,
    template_id: String,
) -> Result<Observed> {
    tracing::Span::current().record("template", template_id.as_str());
    let policy = &settings.policy;
    let query = BackupQuery::of([(policy.marker.as_str(), policy.image_tag.as_ref())]);
    // The three reads are independent: run them together.
    let (template, backups, groups) = tokio::try_join!(
        ec2::describe_template(&clients.ec2, &template_id),
        backups(clients, &query),
        all_groups(clients),
    )?;
    let current_image = current_image(clients, &template, &backups).await?;
    let managed = managed(&groups, settings);
    // The clock is read here, with the state, never in plan().
    let state = state_of(
        template,
        current_image,
        backups.images,
        (managed, &groups),
        chrono::Utc::now(),
    );
    let mut states = vec![(state, policy.clone())];
    let warnings = read_what_plans_ask(clients, &mut states, settings).await?;
    Ok(Observed {
        templates: states
            .into_iter()
            .map(|(state, policy)| Observation::Ready { state, policy })
            .collect(),
        stray_groups: Vec::new(),
        discovery_tag: None,
        warnings,
    })
}

/// What tag mode reads before any template is planned: the templates
/// carrying the tag with their policies, one image query for all of them,
/// each template's versions (up to `concurrency` at once), and the groups.
struct Listing {
    discovered: Vec<DiscoveredTemplate>,
    policies: Vec<std::result::Result<Policy, Warning>>,
    backups: Backups,
    templates: BTreeMap<String, std::result::Result<Template, Error>>,
    groups: Vec<Group>,
}

async fn list_tagged(clients: &Clients, settings: &Settings, tag: &Tag) -> Result<Listing> {
    let listing = async {
        let discovered = ec2::describe_templates(&clients.ec2, tag)
            .await
            .map_err(|source| Error::DescribeTemplates { source })?;
        let policies = template_policies(&discovered, &settings.policy);
        let ready: Vec<(&DiscoveredTemplate, &Policy)> = discovered
            .iter()
            .zip(&policies)
            .filter_map(|(t, p)| Some((t, p.as_ref().ok()?)))
            .collect();
        let query = BackupQuery::of(
            ready
                .iter()
                .map(|(_, p)| (p.marker.as_str(), p.image_tag.as_ref())),
        );
        let (backups, templates) = tokio::join!(
            async {
                if ready.is_empty() {
                    Ok(Backups::default())
                } else {
                    backups(clients, &query).await
                }
            },
            stream::iter(ready.iter().map(|(t, _)| {
                let id = t.id.clone();
                async move { (id.clone(), ec2::describe_template(&clients.ec2, &id).await) }
            }))
            .buffer_unordered(settings.concurrency.max(1))
            .collect::<BTreeMap<_, _>>(),
        );
        Ok::<_, Error>((discovered, policies, backups?, templates))
    };
    let ((discovered, policies, backups, templates), groups) =
        tokio::try_join!(listing, all_groups(clients))?;
    Ok(Listing {
        discovered,
        policies,
        backups,
        templates,
        groups,
    })
}

/// Every template carrying `tag`, each with its own policy. Calls when
/// converged: the template pages, one version listing per template (up to
/// `concurrency` at once), one image query for all, the group pages.
async fn observe_tagged(clients: &Clients, settings: &Settings, tag: &Tag) -> Result<Observed> {
    let Listing {
        discovered,
        policies,
        backups,
        mut templates,
        groups,
    } = list_tagged(clients, settings, tag).await?;
    let (mut on_template, stray_groups) = assign_groups(managed(&groups, settings), &discovered);
    let observed_at = chrono::Utc::now();
    let mut states = Vec::new();
    let mut skipped = Vec::new();
    for (found, policy) in discovered.iter().zip(policies) {
        let skip = |warning| Observation::Skipped {
            template: found.clone(),
            warning,
        };
        let policy = match policy {
            Ok(policy) => policy,
            Err(warning) => {
                skipped.push(skip(warning));
                continue;
            }
        };
        let Some(read) = templates.remove(&found.id) else {
            continue;
        };
        match ready_template(clients, found, read, &backups).await {
            Ok((template, current_image)) => {
                // Only this template's candidates: memory grows with the
                // backups, not with backups times templates.
                let images = backups
                    .images
                    .iter()
                    .filter(|i| {
                        i.description.contains(&policy.marker)
                            && policy.image_tag.as_ref().is_none_or(|t| i.carries(t))
                    })
                    .cloned()
                    .collect();
                let own = on_template.remove(&found.id).unwrap_or_default();
                let state = state_of(template, current_image, images, (own, &groups), observed_at);
                states.push((state, policy));
            }
            Err(err) => skipped.push(skip(Warning::TemplateNotRead {
                template: found.id.clone(),
                kind: err.kind(),
                error: error_chain(&err),
            })),
        }
    }
    let warnings = read_what_plans_ask(clients, &mut states, settings).await?;
    let mut observations: Vec<Observation> = states
        .into_iter()
        .map(|(state, policy)| Observation::Ready { state, policy })
        .chain(skipped)
        .collect();
    observations.sort_by(|a, b| observation_id(a).cmp(observation_id(b)));
    Ok(Observed {
        templates: observations,
        stray_groups,
        discovery_tag: Some(tag.clone()),
        warnings,
    })
}

/// A discovered template read in full: its tags known, its current image found.
async fn ready_template(
    clients: &Clients,
    found: &DiscoveredTemplate,
    read: std::result::Result<Template, Error>,
    backups: &Backups,
) -> Result<(Template, CurrentImage)> {
    let mut template = read?;
    template.tags = Some(found.tags.clone());
    let image = current_image(clients, &template, backups).await?;
    Ok((template, image))
}

fn observation_id(observation: &Observation) -> &str {
    match observation {
        Observation::Ready { state, .. } => &state.template.id,
        Observation::Skipped { template, .. } => &template.id,
    }
}

/// Each managed group under the discovered template it launches from (by id
/// or name); the rest launch from no managed template.
fn assign_groups(
    groups: Vec<Group>,
    discovered: &[DiscoveredTemplate],
) -> (BTreeMap<String, Vec<Group>>, Vec<Group>) {
    let mut on_template: BTreeMap<String, Vec<Group>> = BTreeMap::new();
    let mut strays = Vec::new();
    for group in groups {
        let home = group
            .launch_ref()
            .and_then(|spec| discovered.iter().find(|t| spec.names(&t.id, &t.name)));
        match home {
            Some(t) => on_template.entry(t.id.clone()).or_default().push(group),
            None => strays.push(group),
        }
    }
    (on_template, strays)
}

async fn backups(clients: &Clients, query: &BackupQuery<'_>) -> Result<Backups> {
    ec2::describe_backups(&clients.ec2, query)
        .await
        .map_err(|source| Error::DescribeImages { source })
}

/// Every group of the account, read once: the managed ones are picked by
/// their tag here, the others pin versions and may launch from a version
/// whose image is gone.
async fn all_groups(clients: &Clients) -> Result<Vec<Group>> {
    autoscaling::describe_groups(&clients.autoscaling, None)
        .await
        .map_err(|source| Error::DescribeGroups { source })
}

fn managed(groups: &[Group], settings: &Settings) -> Vec<Group> {
    groups
        .iter()
        .filter(|g| g.carries(&settings.asg_tag))
        .cloned()
        .collect()
}

/// Where `$Latest` takes its image from. No call when it is a backup.
async fn current_image(
    clients: &Clients,
    template: &Template,
    backups: &Backups,
) -> Result<CurrentImage> {
    let latest = template
        .latest()
        .ok_or_else(|| Error::template_not_found(&template.id))?;
    let image_ref = latest
        .image_id
        .clone()
        .ok_or_else(|| Error::LatestWithoutImage {
            id: template.id.clone(),
            version: latest.number,
        })?;
    if image_ref.starts_with("resolve:ssm:") {
        return Ok(CurrentImage::FromSsm(image_ref));
    }
    if let Some(found) = backups.images.iter().find(|i| i.id == image_ref) {
        return Ok(CurrentImage::Found(found.clone()));
    }
    Ok(
        match ec2::describe_image(&clients.ec2, &image_ref, backups.account.as_deref())
            .await
            .map_err(|source| Error::DescribeImages { source })?
        {
            Some(image) => CurrentImage::Found(image),
            None => CurrentImage::Missing(image_ref),
        },
    )
}

/// The most rounds of asked-for reads: each read is made at most once, and
/// the reads the rules ask for depend on each other at most this deep
/// (instance images with the images read by id, then refreshes, then the
/// template's tags).
const MAX_READ_ROUNDS: usize = 4;

/// Plans each template, makes the reads the plans ask for, and plans again,
/// until no plan asks for a read not made yet. Each read is made once: an
/// account-wide one for every template together.
async fn read_what_plans_ask(
    clients: &Clients,
    states: &mut [Ready],
    settings: &Settings,
) -> Result<Vec<Warning>> {
    let mut made: BTreeSet<(Option<usize>, Read)> = BTreeSet::new();
    let mut warnings = Vec::new();
    for _ in 0..MAX_READ_ROUNDS {
        let wanted: BTreeSet<(Option<usize>, Read)> = states
            .iter()
            .enumerate()
            .flat_map(|(i, (state, policy))| {
                plan(state, policy, &settings.asg_tag)
                    .reads
                    .into_iter()
                    .map(move |read| {
                        let at = (!read.is_account_wide()).then_some(i);
                        (at, read)
                    })
            })
            .filter(|key| !made.contains(key))
            .collect();
        // The template's tags only add a warning: read once nothing else is wanted.
        let (tags, others): (BTreeSet<_>, BTreeSet<_>) = wanted
            .into_iter()
            .partition(|(_, read)| *read == Read::TemplateTags);
        let wanted = if others.is_empty() { tags } else { others };
        if wanted.is_empty() {
            break;
        }
        warnings.extend(make_reads(clients, states, &wanted, settings.concurrency).await?);
        made.extend(wanted);
    }
    Ok(warnings)
}

/// Makes one round of reads into the states. Images read by id must be
/// read (a failure fails the run); a failed instance or refresh read stops
/// rollouts for this run with a warning, and the other reads still happen;
/// a failed tag read only loses the tag warning.
async fn make_reads(
    clients: &Clients,
    states: &mut [Ready],
    wanted: &BTreeSet<(Option<usize>, Read)>,
    concurrency: usize,
) -> Result<Vec<Warning>> {
    let mut refreshes = Vec::new();
    let mut tags = Vec::new();
    for (at, read) in wanted {
        match (read, at) {
            (Read::Refreshes(group), Some(i)) => refreshes.push((*i, group.clone())),
            (Read::TemplateTags, Some(i)) => tags.push(*i),
            _ => {}
        }
    }
    if wanted.contains(&(None, Read::OtherGroups)) {
        read_other_groups(clients, states).await?;
    }
    let mut warnings = Vec::new();
    // Without the instances' images, no refresh is decided on (the
    // rollouts are reported not read); the other reads still happen. The
    // images read by id come after them: the running ones are among them.
    let instances = match wanted.contains(&(None, Read::InstanceImages)) {
        true => read_instance_images(clients, states).await,
        false => Ok(()),
    };
    if wanted.contains(&(None, Read::ReferencedImages)) {
        read_referenced_images(clients, states).await?;
    }
    if wanted.contains(&(None, Read::ImageParameters)) {
        read_image_parameters(clients, states).await;
    }
    let rollouts = match instances {
        Ok(()) => read_refreshes(clients, states, refreshes, concurrency).await,
        Err(warning) => Err(warning),
    };
    warnings.extend(rollouts.err());
    for i in tags {
        let template = &mut states[i].0.template;
        match ec2::describe_template_tags(&clients.ec2, &template.id).await {
            Ok(read) => template.tags = read,
            Err(err) => tracing::debug!(error = %err, "the template's tags could not be read"),
        }
    }
    Ok(warnings)
}

/// Untagged groups can pin versions too. Each template's `other_groups` is
/// every group not in its own managed list.
async fn read_other_groups(clients: &Clients, states: &mut [Ready]) -> Result<()> {
    let all = autoscaling::describe_groups(&clients.autoscaling, None)
        .await
        .map_err(|source| Error::DescribeGroups { source })?;
    for (state, _) in states.iter_mut() {
        let own: BTreeSet<&str> = state
            .managed_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        state.other_groups = Some(
            all.iter()
                .filter(|g| !own.contains(g.name.as_str()))
                .cloned()
                .collect(),
        );
    }
    Ok(())
}

/// Without the rollout reads, whether a refresh runs is unknown: no refresh
/// starts, and a newer image waits (the planner's hold).
fn rollouts_not_read(states: &mut [Ready], error: String) -> Warning {
    let groups = states
        .iter()
        .flat_map(|(s, _)| s.rolling_groups())
        .map(|g| g.name.clone())
        .collect();
    for (state, _) in states.iter_mut() {
        state.refreshes.clear();
        state.rollouts_unread = true;
    }
    Warning::RolloutNotRead { groups, error }
}

/// The image of each in-service instance of the managed groups: one
/// `DescribeInstances` call per 200 instances of all templates together.
async fn read_instance_images(
    clients: &Clients,
    states: &mut [Ready],
) -> std::result::Result<(), Warning> {
    let ids: Vec<String> = states
        .iter()
        .flat_map(|(s, _)| &s.managed_groups)
        .flat_map(|g| g.in_service.iter().chain(&g.protected).cloned())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let images = match ec2::describe_instance_images(&clients.ec2, &ids).await {
        Ok(images) => images,
        Err(err) => {
            let error = format!(
                "failed to describe instances: {}",
                err.at(clients.endpoint())
            );
            return Err(rollouts_not_read(states, error));
        }
    };
    for (state, _) in states.iter_mut() {
        state.instance_images = state
            .managed_groups
            .iter()
            .flat_map(|g| g.in_service.iter().chain(&g.protected))
            .filter_map(|id| Some((id.clone(), images.get(id)?.clone())))
            .collect();
    }
    Ok(())
}

/// The images the states use but no read returned (the versions groups
/// launch from, and the running instances'), of all templates together: one
/// `DescribeImages` per 200 ids. An id EC2 does not return is gone.
async fn read_referenced_images(clients: &Clients, states: &mut [Ready]) -> Result<()> {
    let ids: BTreeSet<String> = states
        .iter()
        .flat_map(|(state, _)| fleet::unknown_images(state))
        .collect();
    let ids: Vec<String> = ids.into_iter().collect();
    // Not candidates: whose they are does not matter here.
    let found = ec2::describe_images_by_id(&clients.ec2, &ids, None)
        .await
        .map_err(|source| Error::DescribeImages { source })?;
    for (state, _) in states.iter_mut() {
        state.referenced_images = Some(found.clone());
    }
    Ok(())
}

/// The parameters the templates' images are published to, of all templates
/// together: one `GetParameters` per ten names. A failed read is the
/// planner's to report: it writes nothing it could not compare.
async fn read_image_parameters(clients: &Clients, states: &mut [Ready]) {
    let name_of = |(state, policy): &Ready| {
        let pattern = policy.image_parameter.as_ref()?;
        pattern
            .name_for(&state.template.id, &state.template.name)
            .ok()
    };
    let names: BTreeSet<String> = states.iter().filter_map(name_of).collect();
    let names: Vec<String> = names.into_iter().collect();
    let read = ssm::image_parameters(&clients.ssm, &names).await;
    for ready in states.iter_mut() {
        if let Some(name) = name_of(ready) {
            let found = read
                .get(&name)
                .cloned()
                .unwrap_or_else(|| ParameterRead::Unread("not in SSM's answer".to_owned()));
            ready.0.image_parameter = Some(PublishedImage { name, read: found });
        }
    }
}

/// The refreshes of the rolling groups that are behind: one
/// `DescribeInstanceRefreshes` call per group, `concurrency` at a time. One
/// read that failed must not look like "no refresh running".
async fn read_refreshes(
    clients: &Clients,
    states: &mut [Ready],
    wanted: Vec<(usize, String)>,
    concurrency: usize,
) -> std::result::Result<(), Warning> {
    let read: Vec<(usize, String, std::result::Result<Vec<Refresh>, AwsError>)> =
        stream::iter(wanted)
            .map(|(i, group)| async move {
                let result = autoscaling::describe_refreshes(&clients.autoscaling, &group).await;
                (i, group, result)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    for (i, group, result) in read {
        match result {
            Ok(refreshes) => {
                states[i].0.refreshes.insert(group, refreshes);
            }
            Err(err) => {
                let error = format!(
                    "failed to describe the instance refreshes of {group}: {}",
                    err.at(clients.endpoint())
                );
                return Err(rollouts_not_read(states, error));
            }
        }
    }
    Ok(())
}
