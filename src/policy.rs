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
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            marker: DEFAULT_MARKER.to_owned(),
            image_tag: None,
            keep_versions: DEFAULT_KEEP_VERSIONS,
            min_image_age: chrono::Duration::zero(),
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
