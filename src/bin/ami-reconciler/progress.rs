//! A terminal's view of a long apply: one line that counts finished changes
//! per stage (versions 1/1 · default 1/1 · groups 3/8 · refreshes 0/2 ·
//! prune 0/1), drawn on stderr only when stderr is a terminal and the report
//! is text. It listens to the run's own `planned` / `applied` / `failed` /
//! `skipped` events, so the library knows nothing of it.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;

/// The stages in the order apply runs them, by the action each counts.
const STAGES: [(&str, &str); 5] = [
    ("create_version", "versions"),
    ("set_default_version", "default"),
    ("update_group", "groups"),
    ("start_instance_refresh", "refreshes"),
    ("delete_versions", "prune"),
];

/// Finished and planned changes per stage.
#[derive(Debug, Default)]
struct Counts {
    done: [u64; STAGES.len()],
    total: [u64; STAGES.len()],
}

impl Counts {
    fn line(&self) -> String {
        STAGES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.total[*i] > 0)
            .map(|(i, (_, name))| format!("{name} {}/{}", self.done[i], self.total[i]))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The progress line; hidden unless [`Progress::on_terminal`] drew it.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    counts: Arc<Mutex<Counts>>,
}

impl Progress {
    /// A line drawn on stderr when `shown`, else one that never draws.
    pub fn on_terminal(shown: bool) -> Self {
        let bar = if shown {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} applying: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            counts: Arc::default(),
        }
    }

    /// Removes the line before the report is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn count(&self, message: &str, action: &str) {
        let Some(stage) = STAGES.iter().position(|(a, _)| *a == action) else {
            return;
        };
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        match message {
            "planned" => counts.total[stage] += 1,
            "applied" | "failed" | "skipped" => {
                counts.done[stage] += 1;
                // A restore reports a change of its own: never show 2/1.
                counts.total[stage] = counts.total[stage].max(counts.done[stage]);
            }
            _ => return,
        }
        self.bar.set_message(counts.line());
        self.bar.tick();
    }
}

/// The run event's message and its `action` field.
#[derive(Default)]
struct Fields {
    message: String,
    action: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "action" {
            self.action = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "action" => self.action = format!("{value:?}").trim_matches('"').to_owned(),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Progress {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !fields.action.is_empty() {
            self.count(&fields.message, &fields.action);
        }
    }
}

/// Log lines written above the progress line, never through it.
pub struct Above(pub Progress);

impl<'a> MakeWriter<'a> for Above {
    type Writer = AboveWriter;

    fn make_writer(&'a self) -> Self::Writer {
        AboveWriter(self.0.bar.clone())
    }
}

/// One log line's writer: stderr, with the progress line lifted meanwhile.
pub struct AboveWriter(ProgressBar);

impl Write for AboveWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
