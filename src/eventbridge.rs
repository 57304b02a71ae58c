//! EventBridge: the run's events, sent with `PutEvents` in calls of at most
//! ten entries and 256 KB. A sending that fails, wholly or for some
//! entries, never undoes or fails the run's changes: the caller reports it.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::AwsError;

/// Most entries one `PutEvents` call takes ("Array Members: Minimum number
/// of 1 item. Maximum number of 10 items.").
pub const MAX_ENTRIES: usize = 10;
/// The limit on a call's total entry size: "The total entry size must be
/// less than 256KB".
pub const MAX_CALL_BYTES: usize = 256 * 1024;

/// One event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub detail_type: String,
    /// JSON.
    pub detail: String,
}

impl Entry {
    /// Its size as EventBridge counts it: "The Source and DetailType
    /// parameters are the number of bytes for their UTF-8 encoded forms",
    /// and "the Detail parameter is the number of bytes for its UTF-8
    /// encoded form" (no `Time`, no `Resources` are sent).
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// An entry EventBridge did not take, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSent {
    /// Its place in the call.
    pub index: usize,
    /// `ErrorCode` of the entry, or the code of the call that failed.
    pub code: Option<String>,
    pub message: String,
}

/// Groups `entries` into calls: at most [`MAX_ENTRIES`] each and their sizes
/// under [`MAX_CALL_BYTES`]. An entry too large alone is given back apart.
pub fn batches(entries: Vec<Entry>) -> (Vec<Vec<Entry>>, Vec<Entry>) {
    let mut calls: Vec<Vec<Entry>> = Vec::new();
    let mut too_large = Vec::new();
    let mut size = 0;
    for entry in entries {
        if entry.size() >= MAX_CALL_BYTES {
            too_large.push(entry);
            continue;
        }
        match calls.last_mut() {
            Some(call) if call.len() < MAX_ENTRIES && size + entry.size() < MAX_CALL_BYTES => {
                size += entry.size();
                call.push(entry);
            }
            _ => {
                size = entry.size();
                calls.push(vec![entry]);
            }
        }
    }
    (calls, too_large)
}

/// Sends one call's entries to `bus`; gives back those not taken. The
/// answer's entries match the request's in order: "The response Entries
/// array always includes the same number of entries as the request array."
pub async fn put_events(client: &Client, bus: &str, entries: &[Entry]) -> Vec<NotSent> {
    let request: Vec<PutEventsRequestEntry> = entries
        .iter()
        .map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(&e.source)
                .detail_type(&e.detail_type)
                .detail(&e.detail)
                .build()
        })
        .collect();
    match client.put_events().set_entries(Some(request)).send().await {
        Ok(out) if out.failed_entry_count() == 0 => Vec::new(),
        Ok(out) => (0..entries.len())
            .filter_map(|index| {
                let answer = out.entries().get(index);
                // An answer missing for an entry is not proof it was taken.
                let failed = answer.is_none_or(|a| a.event_id().is_none());
                failed.then(|| NotSent {
                    index,
                    code: answer.and_then(|a| a.error_code()).map(str::to_owned),
                    message: answer
                        .and_then(|a| a.error_message())
                        .unwrap_or("no event id in the answer")
                        .to_owned(),
                })
            })
            .collect(),
        Err(err) => {
            let err = AwsError::from(err);
            (0..entries.len())
                .map(|index| NotSent {
                    index,
                    code: err.code.clone(),
                    message: err.message.clone(),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_bytes: usize) -> Entry {
        Entry {
            source: "ami-reconciler".to_owned(),
            detail_type: "Groups Moved".to_owned(),
            detail: "x".repeat(detail_bytes),
        }
    }

    fn sizes(calls: &[Vec<Entry>]) -> Vec<usize> {
        calls.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_call_takes_at_most_ten_entries() {
        let (calls, too_large) = batches((0..23).map(|_| entry(10)).collect());
        assert_eq!(sizes(&calls), [10, 10, 3]);
        assert!(too_large.is_empty());
    }

    #[test]
    fn a_call_stays_under_256_kb_however_few_its_entries() {
        // Three entries of 100 KB: two fit under 256 KB, the third does not.
        let (calls, _) = batches((0..3).map(|_| entry(100 * 1024)).collect());
        assert_eq!(sizes(&calls), [2, 1]);
        for call in &calls {
            assert!(call.iter().map(Entry::size).sum::<usize>() < MAX_CALL_BYTES);
        }
    }

    #[test]
    fn an_entry_too_large_alone_is_set_apart_and_the_others_go() {
        let (calls, too_large) = batches(vec![entry(10), entry(MAX_CALL_BYTES), entry(10)]);
        assert_eq!(sizes(&calls), [2]);
        assert_eq!(too_large.len(), 1);
    }
}
