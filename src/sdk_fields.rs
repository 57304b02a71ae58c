//! The round-trip guard: a structure read from AWS and sent back must carry
//! every field the SDK crate has, or a write silently drops what it did not
//! model. Each adapter's tests list the fields it maps for each such
//! structure; [`assert_carries_every_field`] fails when the SDK has more.

use std::collections::BTreeSet;
use std::fmt::Debug;

/// The field names of an SDK structure, from the `Debug` rendering of an
/// empty value (`Name { a: None, b: None }`): the SDK derives `Debug` with
/// every field, so a field added by a newer crate shows up here.
pub fn field_names(empty: &impl Debug) -> BTreeSet<String> {
    let text = format!("{empty:?}");
    let Some(body) = text
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(body, _)| body)
    else {
        return BTreeSet::new();
    };
    body.split(", ")
        .filter_map(|field| {
            field
                .split_once(':')
                .map(|(name, _)| name.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Fails, naming the fields, when `empty`'s type has a field that is neither
/// in `carried` (read and sent back) nor in `refused` (read, and a structure
/// using it is never written).
pub fn assert_carries_every_field(empty: &impl Debug, carried: &[&str], refused: &[&str]) {
    let known: BTreeSet<String> = carried
        .iter()
        .chain(refused)
        .map(|s| (*s).to_owned())
        .collect();
    let fields = field_names(empty);
    let dropped: Vec<&String> = fields.difference(&known).collect();
    let stale: Vec<&String> = known.difference(&fields).collect();
    assert!(
        dropped.is_empty() && stale.is_empty(),
        "{}: the SDK has fields the model does not carry: {dropped:?}; listed but gone from the SDK: {stale:?}",
        std::any::type_name_of_val(empty)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    #[allow(dead_code)]
    struct Two {
        first: Option<String>,
        second: Option<Vec<i32>>,
    }

    #[test]
    fn the_names_come_from_an_empty_values_debug() {
        assert_eq!(
            field_names(&Two::default()),
            BTreeSet::from(["first".to_owned(), "second".to_owned()])
        );
    }

    #[test]
    #[should_panic(expected = "[\"second\"]")]
    fn a_field_not_listed_fails_the_guard() {
        assert_carries_every_field(&Two::default(), &["first"], &[]);
    }
}
