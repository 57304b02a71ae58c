//! Settings: parsed once from flags and environment variables, validated,
//! then lent to every step.
//!
//! Defaults live here and only here; docs/configuration.md documents them.

use serde::Serialize;

use crate::error::ConfigError;
pub use crate::model::Tag;
use crate::model::{is_launch_template_id, template_tags};

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
/// Upper bound for `MIN_IMAGE_AGE`, in days: DLM keeps daily backups for
/// weeks, and a longer soak would never let one through.
pub const MAX_IMAGE_AGE_DAYS: i64 = 90;
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
    /// its own settings from its tags ([`template_tags`]).
    Tag(Tag),
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
    /// The lineage selector: only images carrying this tag are backups of
    /// the managed template's workload. `None`: any backup.
    pub image_tag: Option<Tag>,
    /// How old a backup must be before it is used (the soak time).
    pub min_image_age: chrono::Duration,
}

/// Settings as given (flags or environment), before validation. `None` and
/// empty strings both mean "unset".
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    /// `LAUNCH_TEMPLATE_PARAMETER`
    pub launch_template_parameter: Option<String>,
    /// `LAUNCH_TEMPLATE_ID`
    pub launch_template_id: Option<String>,
    /// `LAUNCH_TEMPLATE_TAG`
    pub launch_template_tag: Option<String>,
    /// `AMI_DESCRIPTION_MARKER`
    pub marker: Option<String>,
    /// `ASG_TAG`
    pub asg_tag: Option<String>,
    /// `KEEP_VERSIONS`
    pub keep_versions: Option<String>,
    /// `CONCURRENCY`
    pub concurrency: Option<String>,
    /// `IMAGE_TAG`
    pub image_tag: Option<String>,
    /// `MIN_IMAGE_AGE`
    pub min_image_age: Option<String>,
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
            launch_template_tag: var(env::LAUNCH_TEMPLATE_TAG),
            marker: var(env::AMI_DESCRIPTION_MARKER),
            asg_tag: var(env::ASG_TAG),
            keep_versions: var(env::KEEP_VERSIONS),
            concurrency: var(env::CONCURRENCY),
            image_tag: var(env::IMAGE_TAG),
            min_image_age: var(env::MIN_IMAGE_AGE),
        }
    }

    /// Validates the settings; the error names the setting at fault.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let template = match (
            non_empty(self.launch_template_parameter),
            non_empty(self.launch_template_id),
            non_empty(self.launch_template_tag),
        ) {
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
            _ => return Err(ConfigError::SeveralTemplateSources),
        };
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
            image_tag,
            min_image_age,
        })
    }
}

impl Settings {
    /// The settings of one discovered template: each `ami-reconciler:*` tag
    /// it carries ([`template_tags`]) replaces the run's value. The error
    /// names the first malformed tag.
    pub fn for_template(
        &self,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = self.clone();
        let given = |key: &str| tags.get(key).map(String::as_str);
        if let Some(raw) = given(template_tags::IMAGE_TAG) {
            settings.image_tag = Some(parse_tag(template_tags::IMAGE_TAG, raw.trim())?);
        }
        if let Some(raw) = given(template_tags::MARKER) {
            settings.marker = parse_marker(template_tags::MARKER, raw)?;
        }
        if let Some(raw) = given(template_tags::KEEP_VERSIONS) {
            // A tag that is there but empty is a mistake, not "unset".
            if raw.trim().is_empty() {
                return Err(ConfigError::NotANumber {
                    setting: template_tags::KEEP_VERSIONS,
                    got: raw.to_owned(),
                });
            }
            settings.keep_versions = parse_number(
                Some(raw.to_owned()),
                template_tags::KEEP_VERSIONS,
                u64::from(self.keep_versions),
                u64::from(MAX_KEEP_VERSIONS),
            )? as u32;
        }
        if let Some(raw) = given(template_tags::MIN_IMAGE_AGE) {
            settings.min_image_age = parse_age(template_tags::MIN_IMAGE_AGE, raw)?;
        }
        Ok(settings)
    }

    /// The tag the write statements of the deployed policies require on a
    /// launch template: the key is fixed (`aws:ResourceTag/<key>` in
    /// policies/reconciler.json and template.yaml), the value is the group
    /// tag's when the group tag has that key, as template.yaml deploys it.
    pub fn write_tag(&self) -> Tag {
        let (key, value) = DEFAULT_ASG_TAG
            .split_once('=')
            .unwrap_or((DEFAULT_ASG_TAG, ""));
        if self.asg_tag.key == key {
            return self.asg_tag.clone();
        }
        Tag {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    /// True when several templates may be managed, each by its tags.
    pub fn discovers_templates(&self) -> bool {
        matches!(self.template, TemplateSource::Tag(_))
    }
}

/// A marker is non-empty: an empty one would make every image of the
/// account a "backup". Refused rather than guessed.
fn parse_marker(setting: &'static str, raw: &str) -> Result<String, ConfigError> {
    if raw.trim().is_empty() {
        return Err(ConfigError::Invalid {
            setting,
            expected: "non-empty text found in backup AMI descriptions",
            got: raw.to_owned(),
        });
    }
    // EC2 caps a filter value at 255 characters; the marker is sent as
    // `*marker*` with `*`, `?` and `\` escaped, so 120 always fits.
    if raw.chars().count() > MAX_MARKER_CHARS {
        return Err(ConfigError::Invalid {
            setting,
            expected: "at most 120 characters",
            got: raw.to_owned(),
        });
    }
    Ok(raw.to_owned())
}

/// The longest marker accepted.
pub const MAX_MARKER_CHARS: usize = 120;

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// `30m`, `2h`, `1d`, `90s` or `0`, at most `MAX_IMAGE_AGE_DAYS`; `None`
/// when malformed.
pub fn parse_duration(raw: &str) -> Option<chrono::Duration> {
    parse_age("", raw).ok()
}

/// `30m`, `2h`, `1d`, `90s` or `0`: a whole number and a unit.
fn parse_age(setting: &'static str, raw: &str) -> Result<chrono::Duration, ConfigError> {
    let invalid = || ConfigError::Invalid {
        setting,
        expected: "a whole number with a unit s, m, h or d (e.g. 30m, 2h), at most 90d",
        got: raw.to_owned(),
    };
    let text = raw.trim();
    if text == "0" {
        return Ok(chrono::Duration::zero());
    }
    let unit_at = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let n: i64 = digits.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| *s <= MAX_IMAGE_AGE_DAYS * 86_400)
    .ok_or_else(invalid)?;
    Ok(chrono::Duration::seconds(seconds))
}

fn parse_tag(setting: &'static str, raw: &str) -> Result<Tag, ConfigError> {
    let invalid = || ConfigError::Invalid {
        setting,
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
        assert_eq!(s.image_tag, None);
        assert_eq!(s.min_image_age, chrono::Duration::zero());
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
            assert_eq!(s.min_image_age.num_seconds(), seconds, "{age}");
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
        let tag = s.image_tag.unwrap();
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
            .for_template(&tags(&[
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
        assert_eq!(run.for_template(&tags(&[])).unwrap(), run);
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
            let err = run.for_template(&tags(&[(key, value)])).unwrap_err();
            assert!(err.to_string().starts_with(message), "{err}");
            assert_eq!(err.setting(), key);
        }
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
            deployed.write_tag().to_string(),
            "ami-reconciler:managed=prod"
        );
        let custom = RawSettings {
            asg_tag: Some("team=web".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(
            custom.write_tag().to_string(),
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
