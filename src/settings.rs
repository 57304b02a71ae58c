//! Settings: parsed once from flags and environment variables, validated,
//! then lent to every step.
//!
//! Defaults live here and only here; docs/configuration.md documents them.

use serde::Serialize;

use crate::error::ConfigError;
pub use crate::model::Tag;
use crate::model::is_launch_template_id;

/// Default marker that DLM backups carry in their description.
pub const DEFAULT_MARKER: &str = "EC2_BACKUP";
/// Default tag that marks a group as managed.
pub const DEFAULT_ASG_TAG: &str = "ami-reconciler:managed=true";
/// Default number of newest template versions kept.
pub const DEFAULT_KEEP_VERSIONS: u32 = 3;
/// Default number of group updates in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Upper bound for `KEEP_VERSIONS`: EC2 allows 10,000 versions per template.
pub const MAX_KEEP_VERSIONS: u32 = 10_000;
/// Upper bound for `CONCURRENCY`; more only earns throttling.
pub const MAX_CONCURRENCY: usize = 32;

/// Where the id of the managed launch template comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// Read it from this SSM parameter (`LAUNCH_TEMPLATE_PARAMETER`).
    Parameter(String),
    /// Use this id (`LAUNCH_TEMPLATE_ID`).
    Id(String),
}

/// Validated settings of one reconciler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Which launch template is managed.
    pub template: TemplateSource,
    /// Text a backup AMI's description must contain.
    pub marker: String,
    /// The tag that marks managed groups.
    pub asg_tag: Tag,
    /// How many of the newest versions to keep (>= 1).
    pub keep_versions: u32,
    /// How many group updates may be in flight at once (>= 1).
    pub concurrency: usize,
}

/// Settings as given (flags or environment), before validation. `None` and
/// empty strings both mean "unset".
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    /// `LAUNCH_TEMPLATE_PARAMETER`
    pub launch_template_parameter: Option<String>,
    /// `LAUNCH_TEMPLATE_ID`
    pub launch_template_id: Option<String>,
    /// `AMI_DESCRIPTION_MARKER`
    pub marker: Option<String>,
    /// `ASG_TAG`
    pub asg_tag: Option<String>,
    /// `KEEP_VERSIONS`
    pub keep_versions: Option<String>,
    /// `CONCURRENCY`
    pub concurrency: Option<String>,
}

/// Environment variable names, in one place.
pub mod env {
    /// SSM parameter holding the launch template id.
    pub const LAUNCH_TEMPLATE_PARAMETER: &str = "LAUNCH_TEMPLATE_PARAMETER";
    /// Launch template id.
    pub const LAUNCH_TEMPLATE_ID: &str = "LAUNCH_TEMPLATE_ID";
    /// Backup marker.
    pub const AMI_DESCRIPTION_MARKER: &str = "AMI_DESCRIPTION_MARKER";
    /// Managed group tag.
    pub const ASG_TAG: &str = "ASG_TAG";
    /// Versions to keep.
    pub const KEEP_VERSIONS: &str = "KEEP_VERSIONS";
    /// Concurrent group updates.
    pub const CONCURRENCY: &str = "CONCURRENCY";
    /// Lambda only: plan without applying.
    pub const DRY_RUN: &str = "DRY_RUN";
}

impl RawSettings {
    /// Reads every setting from the process environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        RawSettings {
            launch_template_parameter: var(env::LAUNCH_TEMPLATE_PARAMETER),
            launch_template_id: var(env::LAUNCH_TEMPLATE_ID),
            marker: var(env::AMI_DESCRIPTION_MARKER),
            asg_tag: var(env::ASG_TAG),
            keep_versions: var(env::KEEP_VERSIONS),
            concurrency: var(env::CONCURRENCY),
        }
    }

    /// Validates the settings; the error names the setting at fault.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let template = match (
            non_empty(self.launch_template_parameter),
            non_empty(self.launch_template_id),
        ) {
            (Some(_), Some(_)) => return Err(ConfigError::BothTemplateSources),
            (None, None) => return Err(ConfigError::NoTemplateSource),
            (Some(name), None) => TemplateSource::Parameter(name.trim().to_owned()),
            (None, Some(id)) => {
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
        };
        let marker = match self.marker {
            None => DEFAULT_MARKER.to_owned(),
            Some(m) if m.trim().is_empty() => {
                // An empty marker would make every image of the account a
                // "backup": refuse rather than guess.
                return Err(ConfigError::Invalid {
                    setting: env::AMI_DESCRIPTION_MARKER,
                    expected: "non-empty text found in backup AMI descriptions",
                    got: m,
                });
            }
            Some(m) => m,
        };
        let asg_tag = parse_tag(
            non_empty(self.asg_tag)
                .as_deref()
                .unwrap_or(DEFAULT_ASG_TAG),
        )?;
        let keep_versions = parse_number(
            self.keep_versions,
            env::KEEP_VERSIONS,
            DEFAULT_KEEP_VERSIONS as u64,
            MAX_KEEP_VERSIONS as u64,
        )? as u32;
        let concurrency = parse_number(
            self.concurrency,
            env::CONCURRENCY,
            DEFAULT_CONCURRENCY as u64,
            MAX_CONCURRENCY as u64,
        )? as usize;
        Ok(Settings {
            template,
            marker,
            asg_tag,
            keep_versions,
            concurrency,
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn parse_tag(raw: &str) -> Result<Tag, ConfigError> {
    let invalid = || ConfigError::Invalid {
        setting: env::ASG_TAG,
        expected: "KEY=VALUE with a non-empty key",
        got: raw.to_owned(),
    };
    let (key, value) = raw.split_once('=').ok_or_else(invalid)?;
    if key.trim().is_empty() {
        return Err(invalid());
    }
    Ok(Tag {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_number(
    raw: Option<String>,
    setting: &'static str,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = non_empty(raw) else {
        return Ok(default);
    };
    let digits = raw.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::NotANumber { setting, got: raw });
    }
    match digits.parse::<u64>() {
        Ok(0) => Err(ConfigError::NotANumber { setting, got: raw }),
        Ok(n) if n <= max => Ok(n),
        // Too many digits for u64 is "too large" too.
        _ => Err(ConfigError::TooLarge {
            setting,
            max,
            got: raw,
        }),
    }
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
        assert_eq!(s.marker, "EC2_BACKUP");
        assert_eq!(s.asg_tag.to_string(), "ami-reconciler:managed=true");
        assert_eq!(s.keep_versions, 3);
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.template, TemplateSource::Id("lt-0abc".into()));
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
