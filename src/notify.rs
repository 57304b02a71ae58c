//! Telling the rest of the account: the run's events ([`report::events`])
//! sent to the configured bus once the run's writes are over. What could
//! not be sent becomes a warning in the report; the changes stand.

use std::time::Instant;

use tracing::info;

use crate::clients::Clients;
use crate::error::retryable_code;
use crate::eventbridge::{self, Entry, NotSent};
use crate::report::Report;
use crate::report::events::{self, SOURCE};
use crate::warning::Warning;

/// Sends the run's events to `bus`: nothing when the run has none (a
/// converged run). An entry refused for a reason a retry can fix is sent
/// once more; no call starts that could end after `until`.
pub async fn send_events(
    clients: &Clients,
    bus: &str,
    report: &mut Report,
    until: Option<Instant>,
) {
    let entries: Vec<Entry> = events::events(report)
        .into_iter()
        .map(|e| Entry {
            source: SOURCE.to_owned(),
            detail_type: e.detail_type.to_owned(),
            detail: e.detail.to_string(),
        })
        .collect();
    let total = entries.len();
    if total == 0 {
        return;
    }
    let budget = clients.call_budget();
    let room = || until.is_none_or(|until| Instant::now() + budget <= until);
    let mut lost: Vec<NotSent> = Vec::new();
    let mut pending = entries;
    for attempt in 0..2 {
        let (calls, too_large) = eventbridge::batches(std::mem::take(&mut pending));
        lost.extend(too_large.iter().map(|_| NotSent {
            index: 0,
            code: Some("EntryTooLarge".to_owned()),
            message: "larger than 256 KB".to_owned(),
        }));
        for call in calls {
            if !room() {
                lost.extend((0..call.len()).map(|index| NotSent {
                    index,
                    code: None,
                    message: "the run's deadline is near: not sent".to_owned(),
                }));
                continue;
            }
            for not_sent in eventbridge::put_events(&clients.eventbridge, bus, &call).await {
                match attempt == 0 && retryable_code(not_sent.code.as_deref()) {
                    true => pending.push(call[not_sent.index].clone()),
                    false => lost.push(not_sent),
                }
            }
        }
    }
    info!(bus, events = total, not_sent = lost.len(), "events sent");
    if let Some(warning) = lost_warning(bus, total, &lost) {
        report.add_run_warning(warning);
    }
}

/// A refusal a retry cannot fix needs a person; a loss to throttling or to
/// the deadline is a notice.
fn lost_warning(bus: &str, events: usize, lost: &[NotSent]) -> Option<Warning> {
    let describe = |n: &NotSent| match &n.code {
        Some(code) => format!("{code}: {}", n.message),
        None => n.message.clone(),
    };
    let first = lost.first()?;
    let refused: Vec<&NotSent> = lost
        .iter()
        .filter(|n| !retryable_code(n.code.as_deref()))
        .collect();
    Some(match refused.first() {
        Some(refusal) => Warning::EventsRefused {
            bus: bus.to_owned(),
            lost: lost.len(),
            events,
            error: describe(refusal),
        },
        None => Warning::EventsNotSent {
            bus: bus.to_owned(),
            lost: lost.len(),
            events,
            error: describe(first),
        },
    })
}
