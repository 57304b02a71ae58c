//! Settings: each declared once, in [`RawSettings`], with its flag,
//! environment variable, default and help; parsed by the CLI from flags and
//! environment, by the Lambda from its environment; validated into
//! [`Settings`], then lent to every step.
//!
//! docs/configuration.md documents them.

use clap::Parser;
use serde::Serialize;

use crate::error::ConfigError;
pub use crate::model::Tag;
use crate::model::is_launch_template_id;
pub use crate::policy::{
    DEFAULT_KEEP_VERSIONS, DEFAULT_MARKER, MAX_IMAGE_AGE_DAYS, MAX_KEEP_VERSIONS, MAX_MARKER_CHARS,
    ParameterPattern, Policy,
};
use crate::policy::{parse_age, parse_marker, parse_number, parse_tag};

/// Default tag that marks a group as managed.
pub const DEFAULT_ASG_TAG: &str = "ami-reconciler:managed=true";
/// Default number of group updates in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Upper bound for `CONCURRENCY`; more only earns throttling.
pub const MAX_CONCURRENCY: usize = 32;

/// Which launch templates are managed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// The one whose id this SSM parameter holds (`LAUNCH_TEMPLATE_PARAMETER`).
    Parameter(String),
    /// This one (`LAUNCH_TEMPLATE_ID`).
    Id(String),
    /// Every template carrying this tag (`LAUNCH_TEMPLATE_TAG`), each with
    /// its own policy from its tags ([`crate::model::template_tags`]).
    Tag(Tag),
}

/// Whether a run writes: `apply` converges, `plan` (dry run) only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    DryRun,
}

impl Mode {
    pub fn is_dry_run(self) -> bool {
        self == Mode::DryRun
    }
}

/// Validated settings of one reconciler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Which launch templates are managed.
    pub template: TemplateSource,
    /// The tag that marks managed groups.
    pub asg_tag: Tag,
    /// How many group updates may be in flight at once (>= 1).
    pub concurrency: usize,
    /// The policy of every template, unless its own tags say otherwise.
    pub policy: Policy,
    /// The EventBridge bus (name or ARN) the run's events go to.
    pub event_bus: Option<String>,
}

/// Environment variable names, in one place.
pub mod env {
    /// SSM parameter holding the launch template id.
    pub const LAUNCH_TEMPLATE_PARAMETER: &str = "LAUNCH_TEMPLATE_PARAMETER";
    /// Launch template id.
    pub const LAUNCH_TEMPLATE_ID: &str = "LAUNCH_TEMPLATE_ID";
    /// Tag of the managed launch templates.
    pub const LAUNCH_TEMPLATE_TAG: &str = "LAUNCH_TEMPLATE_TAG";
    /// Backup marker.
    pub const AMI_DESCRIPTION_MARKER: &str = "AMI_DESCRIPTION_MARKER";
    /// Managed group tag.
    pub const ASG_TAG: &str = "ASG_TAG";
    /// Versions to keep.
    pub const KEEP_VERSIONS: &str = "KEEP_VERSIONS";
    /// Concurrent group updates.
    pub const CONCURRENCY: &str = "CONCURRENCY";
    /// Lineage selector of backup images.
    pub const IMAGE_TAG: &str = "IMAGE_TAG";
    /// Soak time of a backup.
    pub const MIN_IMAGE_AGE: &str = "MIN_IMAGE_AGE";
    /// SSM parameter the default version's image is published to.
    pub const IMAGE_PARAMETER: &str = "IMAGE_PARAMETER";
    /// EventBridge bus the run's events go to.
    pub const EVENT_BUS: &str = "EVENT_BUS";
    /// Lambda only: plan without applying.
    pub const DRY_RUN: &str = "DRY_RUN";
}

/// Every setting as given, by flag or environment variable (the flag wins),
/// before validation: the one declaration of each setting. `None` and blank
/// both mean "unset". Numbers are read as text, so that `-1` gets the
/// setting's own message.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RawSettings {
    /// SSM parameter holding the launch template id.
    #[arg(long, global = true, env = env::LAUNCH_TEMPLATE_PARAMETER, value_name = "NAME")]
    pub launch_template_parameter: Option<String>,
    /// The launch template id (instead of the parameter).
    #[arg(long, global = true, env = env::LAUNCH_TEMPLATE_ID, value_name = "ID")]
    pub launch_template_id: Option<String>,
    /// Manage every launch template carrying this tag, each with the
    /// settings its ami-reconciler:* tags give (instead of one template).
    #[arg(long, global = true, env = env::LAUNCH_TEMPLATE_TAG, value_name = "KEY=VALUE")]
    pub launch_template_tag: Option<String>,
    #[arg(long, global = true, env = env::AMI_DESCRIPTION_MARKER, value_name = "TEXT",
          help = format!("Text backup AMI descriptions contain [default: {DEFAULT_MARKER}]"))]
    pub marker: Option<String>,
    #[arg(long, global = true, env = env::ASG_TAG, value_name = "KEY=VALUE",
          help = format!("Tag of the groups to manage [default: {DEFAULT_ASG_TAG}]"))]
    pub asg_tag: Option<String>,
    #[arg(long, global = true, env = env::KEEP_VERSIONS, value_name = "N", allow_hyphen_values = true,
          help = format!("Newest template versions to keep [default: {DEFAULT_KEEP_VERSIONS}]"))]
    pub keep_versions: Option<String>,
    #[arg(long, global = true, env = env::CONCURRENCY, value_name = "N", allow_hyphen_values = true,
          help = format!("Group updates in flight at once [default: {DEFAULT_CONCURRENCY}]"))]
    pub concurrency: Option<String>,
    /// Only images carrying this tag are backups of this workload, e.g.
    /// Name=web [default: any backup]
    #[arg(long, global = true, env = env::IMAGE_TAG, value_name = "KEY=VALUE")]
    pub image_tag: Option<String>,
    /// How old a backup must be before it is used (30m, 2h, 1d) [default: 0]
    #[arg(long, global = true, env = env::MIN_IMAGE_AGE, value_name = "AGE")]
    pub min_image_age: Option<String>,
    /// SSM parameter to publish the default version's image to, e.g.
    /// /ami-reconciler/{template_name}/image [default: none]
    #[arg(long, global = true, env = env::IMAGE_PARAMETER, value_name = "NAME")]
    pub image_parameter: Option<String>,
    /// EventBridge bus (name or ARN) to send an event to for each change,
    /// failed write and new condition [default: none]
    #[arg(long, global = true, env = env::EVENT_BUS, value_name = "BUS")]
    pub event_bus: Option<String>,
}

/// The settings alone, parsed from the environment (the Lambda's input).
#[derive(Debug, Parser)]
#[command(name = "ami-reconciler-lambda")]
struct Environment {
    #[command(flatten)]
    settings: RawSettings,
}

impl RawSettings {
    /// Reads every setting from the process environment, as the CLI does.
    pub fn from_env() -> Result<Self, ConfigError> {
        Environment::try_parse_from(["ami-reconciler-lambda"])
            .map(|e| e.settings)
            .map_err(|err| ConfigError::Environment(err.to_string()))
    }

    /// Validates the settings; the error names the setting at fault.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let template = template_source(
            non_empty(self.launch_template_parameter),
            non_empty(self.launch_template_id),
            non_empty(self.launch_template_tag),
        )?;
        let marker = match self.marker {
            None => DEFAULT_MARKER.to_owned(),
            Some(m) => parse_marker(env::AMI_DESCRIPTION_MARKER, &m)?,
        };
        let asg_tag = parse_tag(
            env::ASG_TAG,
            non_empty(self.asg_tag)
                .as_deref()
                .unwrap_or(DEFAULT_ASG_TAG),
        )?;
        let image_tag = non_empty(self.image_tag)
            .map(|raw| parse_tag(env::IMAGE_TAG, &raw))
            .transpose()?;
        let min_image_age = match non_empty(self.min_image_age) {
            None => chrono::Duration::zero(),
            Some(raw) => parse_age(env::MIN_IMAGE_AGE, &raw)?,
        };
        let keep_versions = parse_number(
            self.keep_versions.as_deref(),
            env::KEEP_VERSIONS,
            u64::from(DEFAULT_KEEP_VERSIONS),
            u64::from(MAX_KEEP_VERSIONS),
        )? as u32;
        let concurrency = parse_number(
            self.concurrency.as_deref(),
            env::CONCURRENCY,
            DEFAULT_CONCURRENCY as u64,
            MAX_CONCURRENCY as u64,
        )? as usize;
        let image_parameter = non_empty(self.image_parameter)
            .map(|raw| ParameterPattern::parse(env::IMAGE_PARAMETER, &raw))
            .transpose()?;
        let event_bus = non_empty(self.event_bus)
            .map(|raw| parse_event_bus(&raw))
            .transpose()?;
        Ok(Settings {
            template,
            asg_tag,
            concurrency,
            policy: Policy {
                marker,
                image_tag,
                keep_versions,
                min_image_age,
                image_parameter,
            },
            event_bus,
        })
    }
}

/// A bus name as EventBridge's `EventBusName` pattern allows
/// (`[/\.\-_A-Za-z0-9]+`, at most 256 characters), or a bus ARN.
fn parse_event_bus(raw: &str) -> Result<String, ConfigError> {
    let bus = raw.trim();
    let valid = if bus.starts_with("arn:") {
        bus.contains(":events:") && bus.contains(":event-bus/") && bus.len() <= 1600
    } else {
        bus.len() <= 256
            && bus
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
    };
    match valid {
        true => Ok(bus.to_owned()),
        false => Err(ConfigError::Invalid {
            setting: env::EVENT_BUS,
            expected: "an event bus name (letters, digits, / . - _, at most 256) or an event bus ARN",
            got: raw.to_owned(),
        }),
    }
}

fn template_source(
    parameter: Option<String>,
    id: Option<String>,
    tag: Option<String>,
) -> Result<TemplateSource, ConfigError> {
    Ok(match (parameter, id, tag) {
        (None, None, None) => return Err(ConfigError::NoTemplateSource),
        (Some(name), None, None) => TemplateSource::Parameter(name.trim().to_owned()),
        (None, Some(id), None) => {
            let id = id.trim().to_owned();
            if !is_launch_template_id(&id) {
                return Err(ConfigError::Invalid {
                    setting: env::LAUNCH_TEMPLATE_ID,
                    expected: "a launch template id like lt-0123456789abcdef0",
                    got: id,
                });
            }
            TemplateSource::Id(id)
        }
        (None, None, Some(tag)) => {
            TemplateSource::Tag(parse_tag(env::LAUNCH_TEMPLATE_TAG, tag.trim())?)
        }
        (parameter, id, tag) => {
            let set = [
                (env::LAUNCH_TEMPLATE_PARAMETER, parameter.is_some()),
                (env::LAUNCH_TEMPLATE_ID, id.is_some()),
                (env::LAUNCH_TEMPLATE_TAG, tag.is_some()),
            ];
            return Err(ConfigError::SeveralTemplateSources(
                set.into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(n, _)| n.to_owned())
                    .collect(),
            ));
        }
    })
}

/// The tag the write statements of the deployed policies require on a
/// launch template, for groups managed by `asg_tag`: the key is fixed
/// (`aws:ResourceTag/<key>` in policies/reconciler.json and template.yaml),
/// the value is the group tag's when the group tag has that key, as
/// template.yaml deploys it.
pub fn write_tag(asg_tag: &Tag) -> Tag {
    let (key, value) = DEFAULT_ASG_TAG
        .split_once('=')
        .unwrap_or((DEFAULT_ASG_TAG, ""));
    if asg_tag.key == key {
        return asg_tag.clone();
    }
    Tag {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

impl Settings {
    /// True when several templates may be managed, each by its tags.
    pub fn discovers_templates(&self) -> bool {
        matches!(self.template, TemplateSource::Tag(_))
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            launch_template_id: Some("lt-0abc".into()),
            ..RawSettings::default()
        }
    }

    #[test]
    fn defaults_apply_when_only_the_template_is_given() {
        let s = raw().validate().unwrap();
        assert_eq!(s.policy.marker, "EC2_BACKUP");
        assert_eq!(s.asg_tag.to_string(), "ami-reconciler:managed=true");
        assert_eq!(s.policy.keep_versions, 3);
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.template, TemplateSource::Id("lt-0abc".into()));
        assert_eq!(s.policy.image_tag, None);
        assert_eq!(s.policy.min_image_age, chrono::Duration::zero());
        assert_eq!(s.policy, Policy::default());
    }

    #[test]
    fn a_soak_time_is_a_whole_number_and_a_unit() {
        for (age, seconds) in [
            ("0", 0),
            ("90s", 90),
            ("30m", 1_800),
            ("2h", 7_200),
            ("1d", 86_400),
        ] {
            let s = RawSettings {
                min_image_age: Some(age.into()),
                ..raw()
            }
            .validate()
            .unwrap();
            assert_eq!(s.policy.min_image_age.num_seconds(), seconds, "{age}");
        }
    }

    #[test]
    fn a_lineage_selector_is_a_tag() {
        let s = RawSettings {
            image_tag: Some("aws:dlm:lifecycle-policy-id=policy-0abc".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        let tag = s.policy.image_tag.unwrap();
        assert_eq!(
            (tag.key.as_str(), tag.value.as_str()),
            ("aws:dlm:lifecycle-policy-id", "policy-0abc")
        );
    }

    #[test]
    fn an_empty_template_variable_counts_as_unset() {
        let s = RawSettings {
            launch_template_parameter: Some("/app/lt".into()),
            launch_template_id: Some("".into()),
            ..RawSettings::default()
        }
        .validate()
        .unwrap();
        assert_eq!(s.template, TemplateSource::Parameter("/app/lt".into()));
    }

    fn tags(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_templates_tags_replace_the_runs_settings_and_the_rest_stay() {
        let run = raw().validate().unwrap();
        let own = run
            .policy
            .with_tags(&tags(&[
                (
                    "ami-reconciler:image-tag",
                    "aws:dlm:lifecycle-policy-id=policy-api",
                ),
                ("ami-reconciler:marker", "API_BACKUP"),
                ("ami-reconciler:keep-versions", "5"),
                ("ami-reconciler:min-image-age", "2h"),
                ("team", "api"),
            ]))
            .unwrap();
        assert_eq!(
            own.image_tag.unwrap().to_string(),
            "aws:dlm:lifecycle-policy-id=policy-api"
        );
        assert_eq!(own.marker, "API_BACKUP");
        assert_eq!(own.keep_versions, 5);
        assert_eq!(own.min_image_age.num_seconds(), 7_200);
        assert_eq!(run.policy.with_tags(&tags(&[])).unwrap(), run.policy);
    }

    #[test]
    fn a_malformed_template_tag_is_refused_naming_the_tag() {
        let run = raw().validate().unwrap();
        for (key, value, message) in [
            (
                "ami-reconciler:image-tag",
                "policy-api",
                r#"ami-reconciler:image-tag must be KEY=VALUE with a non-empty key, got "policy-api""#,
            ),
            (
                "ami-reconciler:marker",
                " ",
                r#"ami-reconciler:marker must be non-empty text found in backup AMI descriptions, got " ""#,
            ),
            (
                "ami-reconciler:keep-versions",
                "",
                r#"ami-reconciler:keep-versions must be a whole number >= 1, got """#,
            ),
            (
                "ami-reconciler:keep-versions",
                "0",
                r#"ami-reconciler:keep-versions must be a whole number >= 1, got "0""#,
            ),
            (
                "ami-reconciler:marker",
                &"x".repeat(121),
                "ami-reconciler:marker must be at most 120 characters",
            ),
            (
                "ami-reconciler:min-image-age",
                "2 hours",
                r#"ami-reconciler:min-image-age must be a whole number with a unit s, m, h or d (e.g. 30m, 2h), at most 90d, got "2 hours""#,
            ),
        ] {
            let err = run.policy.with_tags(&tags(&[(key, value)])).unwrap_err();
            assert!(err.to_string().starts_with(message), "{err}");
            assert_eq!(err.setting(), key);
        }
    }

    #[test]
    fn an_empty_image_parameter_tag_turns_publishing_off_for_its_template() {
        let run = RawSettings {
            image_parameter: Some("/ami/{template_name}".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        assert!(run.policy.image_parameter.is_some());
        let own = run
            .policy
            .with_tags(&tags(&[("ami-reconciler:image-parameter", "")]))
            .unwrap();
        assert_eq!(own.image_parameter, None);
        let other = run
            .policy
            .with_tags(&tags(&[(
                "ami-reconciler:image-parameter",
                "/web/{template_id}",
            )]))
            .unwrap();
        assert_eq!(
            other.image_parameter.unwrap().name_for("lt-0abc", "web"),
            Ok("/web/lt-0abc".to_owned())
        );
    }

    #[test]
    fn the_write_tag_follows_the_group_tags_value_when_it_has_the_fixed_key() {
        let deployed = RawSettings {
            asg_tag: Some("ami-reconciler:managed=prod".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(
            write_tag(&deployed.asg_tag).to_string(),
            "ami-reconciler:managed=prod"
        );
        let custom = RawSettings {
            asg_tag: Some("team=web".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(
            write_tag(&custom.asg_tag).to_string(),
            "ami-reconciler:managed=true"
        );
    }

    #[test]
    fn an_asg_tag_value_may_contain_equals_signs() {
        // Refused settings are a table in tests/bad_input.rs.
        let tag = RawSettings {
            asg_tag: Some("team=web=1".into()),
            ..raw()
        }
        .validate()
        .unwrap()
        .asg_tag;
        assert_eq!((tag.key.as_str(), tag.value.as_str()), ("team", "web=1"));
    }
}
