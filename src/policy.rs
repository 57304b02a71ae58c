//! A template's policy: which backups it launches from and how many versions
//! it keeps. The run's settings give the default policy; in tag mode each
//! template's `ami-reconciler:*` tags ([`template_tags`]) override it. The
//! parsers here serve both, so a setting and its tag fail alike.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::ConfigError;
use crate::model::{Tag, template_tags};

/// Default marker that DLM backups carry in their description.
pub const DEFAULT_MARKER: &str = "EC2_BACKUP";
/// Default number of newest template versions kept.
pub const DEFAULT_KEEP_VERSIONS: u32 = 3;
/// Upper bound for `KEEP_VERSIONS`: EC2 allows 10,000 versions per template.
pub const MAX_KEEP_VERSIONS: u32 = 10_000;
/// Upper bound for `MIN_IMAGE_AGE`, in days: DLM keeps daily backups for
/// weeks, and a longer soak would never let one through.
pub const MAX_IMAGE_AGE_DAYS: i64 = 90;
/// The longest marker accepted.
pub const MAX_MARKER_CHARS: usize = 120;

/// What one template launches from and keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Text a backup AMI's description must contain.
    pub marker: String,
    /// The lineage selector: only images carrying this tag are backups of
    /// the template's workload. `None`: any backup.
    pub image_tag: Option<Tag>,
    /// How many of the newest versions to keep (>= 1).
    pub keep_versions: u32,
    /// How old a backup must be before it is used (the soak time).
    pub min_image_age: chrono::Duration,
    /// The SSM parameter the default version's image is published to.
    pub image_parameter: Option<ParameterPattern>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            marker: DEFAULT_MARKER.to_owned(),
            image_tag: None,
            keep_versions: DEFAULT_KEEP_VERSIONS,
            min_image_age: chrono::Duration::zero(),
            image_parameter: None,
        }
    }
}

impl Policy {
    /// This policy with each `ami-reconciler:*` tag the template carries
    /// applied. The error names the first malformed tag.
    pub fn with_tags(&self, tags: &BTreeMap<String, String>) -> Result<Policy, ConfigError> {
        let mut policy = self.clone();
        let given = |key: &str| tags.get(key).map(String::as_str);
        if let Some(raw) = given(template_tags::IMAGE_TAG) {
            policy.image_tag = Some(parse_tag(template_tags::IMAGE_TAG, raw.trim())?);
        }
        if let Some(raw) = given(template_tags::MARKER) {
            policy.marker = parse_marker(template_tags::MARKER, raw)?;
        }
        if let Some(raw) = given(template_tags::KEEP_VERSIONS) {
            // A tag that is there but empty is a mistake, not "unset".
            if raw.trim().is_empty() {
                return Err(ConfigError::NotANumber {
                    setting: template_tags::KEEP_VERSIONS,
                    got: raw.to_owned(),
                });
            }
            policy.keep_versions = parse_number(
                Some(raw),
                template_tags::KEEP_VERSIONS,
                u64::from(self.keep_versions),
                u64::from(MAX_KEEP_VERSIONS),
            )? as u32;
        }
        if let Some(raw) = given(template_tags::MIN_IMAGE_AGE) {
            policy.min_image_age = parse_age(template_tags::MIN_IMAGE_AGE, raw)?;
        }
        // Empty: this template publishes nothing, whatever the run's setting.
        if let Some(raw) = given(template_tags::IMAGE_PARAMETER) {
            policy.image_parameter = match raw.trim().is_empty() {
                true => None,
                false => Some(ParameterPattern::parse(
                    template_tags::IMAGE_PARAMETER,
                    raw,
                )?),
            };
        }
        Ok(policy)
    }
}

/// A marker is non-empty: an empty one would make every image of the
/// account a "backup". Refused rather than guessed.
pub fn parse_marker(setting: &'static str, raw: &str) -> Result<String, ConfigError> {
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

/// `30m`, `2h`, `1d`, `90s` or `0`: a whole number and a unit, at most
/// [`MAX_IMAGE_AGE_DAYS`].
pub fn parse_age(setting: &'static str, raw: &str) -> Result<chrono::Duration, ConfigError> {
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

/// `KEY=VALUE` with a non-empty key; the value may hold `=`.
pub fn parse_tag(setting: &'static str, raw: &str) -> Result<Tag, ConfigError> {
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

/// A whole number from 1 to `max`; unset or blank gives `default`.
pub fn parse_number(
    raw: Option<&str>,
    setting: &'static str,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(default);
    };
    let digits = raw.trim();
    let not_a_number = || ConfigError::NotANumber {
        setting,
        got: raw.to_owned(),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    match digits.parse::<u64>() {
        Ok(0) => Err(not_a_number()),
        Ok(n) if n <= max => Ok(n),
        // Too many digits for u64 is "too large" too.
        _ => Err(ConfigError::TooLarge {
            setting,
            max,
            got: raw.to_owned(),
        }),
    }
}

/// The placeholders a parameter name pattern may use.
pub const PLACEHOLDERS: [&str; 2] = ["{template_name}", "{template_id}"];
/// SSM's longest parameter name: "The maximum length for a parameter name,
/// including the full length of the parameter ARN, is 1011 characters"
/// (AWS::SSM::Parameter), less the longest ARN prefix
/// (`arn:aws-us-gov:ssm:ap-southeast-4:123456789012:parameter/`, 57).
/// The API reference's "1011 characters" for the name alone is the laxer
/// reading; this is the harsher.
pub const MAX_PARAMETER_NAME_CHARS: usize = 1011 - 57;
/// SSM's deepest parameter hierarchy.
pub const MAX_PARAMETER_LEVELS: usize = 15;

/// An SSM parameter name with `{template_name}` and `{template_id}` in it:
/// each template gets its own parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ParameterPattern(String);

impl ParameterPattern {
    /// Refuses a pattern naming an unknown placeholder, or one that gives an
    /// invalid name whatever the template (before any call is made).
    pub fn parse(setting: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let pattern = raw.trim();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            let placeholder = &rest[open..close];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(ConfigError::UnknownPlaceholder {
                    setting,
                    placeholder: placeholder.to_owned(),
                    got: raw.to_owned(),
                });
            }
            rest = &rest[close..];
        }
        // Placeholders are filled with a short valid stand-in: what remains
        // is the pattern's own text, which must obey SSM's rules already.
        let sample = Self(pattern.to_owned()).render("lt-0", "x");
        if let Some(problem) = parameter_name_problem(&sample) {
            return Err(ConfigError::BadParameterName {
                setting,
                problem,
                got: raw.to_owned(),
            });
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The parameter of one template, or which naming rule its name breaks
    /// (a template name may hold `(` and `)`, which SSM refuses).
    pub fn name_for(&self, template_id: &str, template_name: &str) -> Result<String, String> {
        let name = self.render(template_id, template_name);
        match parameter_name_problem(&name) {
            None => Ok(name),
            Some(problem) => Err(format!("{name:?}: {problem}")),
        }
    }

    fn render(&self, template_id: &str, template_name: &str) -> String {
        self.0
            .replace("{template_id}", template_id)
            .replace("{template_name}", template_name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which of SSM's naming rules `name` breaks, if any: "Parameter names can
/// include only the following symbols and letters: a-zA-Z0-9_.-", the slash
/// delineating hierarchies, "you must include a leading forward slash
/// character (/)" for a name in a hierarchy, "can't be prefixed with aws or
/// ssm (case-insensitive)", at most fifteen levels and
/// [`MAX_PARAMETER_NAME_CHARS`] characters.
pub fn parameter_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if name.chars().count() > MAX_PARAMETER_NAME_CHARS {
        return Some(format!(
            "it is longer than {MAX_PARAMETER_NAME_CHARS} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Some(format!(
            "{bad:?} is not allowed (only letters, digits, _ . - and /)"
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Some("a name in a hierarchy must begin with /".to_owned());
    }
    let levels: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    if levels.iter().any(|level| level.is_empty()) {
        return Some("it has an empty level (// or a trailing /)".to_owned());
    }
    if levels.len() > MAX_PARAMETER_LEVELS {
        return Some(format!(
            "it has {} levels, more than {MAX_PARAMETER_LEVELS}",
            levels.len()
        ));
    }
    let first = levels[0].to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Some("it must not begin with aws or ssm (any case)".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_gives_each_template_its_own_name() {
        let pattern =
            ParameterPattern::parse("IMAGE_PARAMETER", "/ami/{template_name}/{template_id}")
                .unwrap();
        assert_eq!(
            pattern.name_for("lt-0abc", "web").unwrap(),
            "/ami/web/lt-0abc"
        );
        let plain = ParameterPattern::parse("IMAGE_PARAMETER", "web-image").unwrap();
        assert_eq!(plain.name_for("lt-0abc", "web").unwrap(), "web-image");
    }

    #[test]
    fn a_template_name_ssm_refuses_is_named_with_the_rule_it_breaks() {
        let pattern = ParameterPattern::parse("IMAGE_PARAMETER", "/ami/{template_name}").unwrap();
        let problem = pattern.name_for("lt-0abc", "web (old)").unwrap_err();
        assert!(problem.contains("\"/ami/web (old)\""), "{problem}");
        assert!(problem.contains("' ' is not allowed"), "{problem}");
    }

    #[test]
    fn ssm_naming_rules_are_checked() {
        let deep = format!("/{}", vec!["a"; 16].join("/"));
        let long = format!("/{}", "a".repeat(MAX_PARAMETER_NAME_CHARS));
        for (name, problem) in [
            ("", "it is empty"),
            ("/a//b", "it has an empty level (// or a trailing /)"),
            ("/a/b/", "it has an empty level (// or a trailing /)"),
            ("a/b", "a name in a hierarchy must begin with /"),
            ("/SSM/x", "it must not begin with aws or ssm (any case)"),
            ("awsimage", "it must not begin with aws or ssm (any case)"),
            (deep.as_str(), "it has 16 levels, more than 15"),
            (long.as_str(), "it is longer than 954 characters"),
        ] {
            assert_eq!(
                parameter_name_problem(name).as_deref(),
                Some(problem),
                "{name}"
            );
        }
        let fifteen = format!("/{}", vec!["a"; 15].join("/"));
        for name in ["/images/web", "web.image_1-a", fifteen.as_str()] {
            assert_eq!(parameter_name_problem(name), None, "{name}");
        }
    }
}
