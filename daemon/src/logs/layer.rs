//! The tracing layer that feeds the hub: turns each event into a [`LogRecord`] and
//! files it under the run whose span it happened in (the runner opens a span `run`
//! with the fields `CAIRN_JOB` and `CAIRN_RUN`; the engine's worker threads run inside
//! it too).

use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::LogHub;
use crate::store::{LogRecord, now_ms};

/// The span fields that name a run, as the journal shows them too.
pub const JOB_FIELD: &str = "CAIRN_JOB";
pub const RUN_FIELD: &str = "CAIRN_RUN";

#[derive(Debug)]
pub struct HubLayer {
    hub: Arc<LogHub>,
}

impl HubLayer {
    pub fn new(hub: Arc<LogHub>) -> Self {
        HubLayer { hub }
    }
}

/// The run a span belongs to, kept in the span's extensions.
#[derive(Debug, Default, Clone)]
struct RunTag {
    job: String,
    run: u64,
}

impl Visit for RunTag {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == RUN_FIELD {
            self.run = value;
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == JOB_FIELD {
            self.job = value.to_owned();
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            JOB_FIELD => self.job = format!("{value:?}"),
            RUN_FIELD => self.run = format!("{value:?}").parse().unwrap_or(0),
            _ => {}
        }
    }
}

/// The message and the other fields of one event, as text.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.push((field.name().to_owned(), text));
        }
    }
}

/// The API's level numbers: 1 trace .. 5 error.
pub fn level_number(level: &Level) -> u8 {
    match *level {
        Level::TRACE => 1,
        Level::DEBUG => 2,
        Level::INFO => 3,
        Level::WARN => 4,
        Level::ERROR => 5,
    }
}

impl<S> tracing_subscriber::Layer<S> for HubLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut tag = RunTag::default();
        attrs.record(&mut tag);
        if (tag.run != 0 || !tag.job.is_empty())
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(tag);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The innermost span that names a run.
        let tag = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<RunTag>().cloned())
            })
            .unwrap_or_default();
        let metadata = event.metadata();
        self.hub.publish(LogRecord {
            seq: 0,
            time: now_ms(),
            level: level_number(metadata.level()),
            target: metadata.target().to_owned(),
            message: fields.message,
            fields: fields.fields,
            job: tag.job,
            run: tag.run,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_carry_their_fields_and_the_run_of_their_span_also_on_other_threads() {
        let hub = LogHub::new();
        let subscriber = tracing_subscriber::registry().with(HubLayer::new(hub.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(socket = "/run/x.sock", "daemon-wide");
            let span = tracing::info_span!("run", CAIRN_JOB = %"web", CAIRN_RUN = 12u64);
            let _entered = span.enter();
            let inner = tracing::info_span!("phase", name = "walk");
            inner.in_scope(|| tracing::warn!(path = "/srv/a", files = 3, "file skipped"));
            std::thread::scope(|scope| {
                cairn_engine::threads::spawn_scoped(scope, "worker", || {
                    tracing::error!("from a worker")
                })
                .unwrap()
                .join()
                .unwrap();
            });
        });
        let lines = hub.recent();
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0].run, lines[0].job.as_str()), (0, ""));
        assert_eq!(lines[0].message, "daemon-wide");
        assert_eq!(
            lines[0].fields,
            vec![("socket".to_owned(), "/run/x.sock".to_owned())]
        );
        assert_eq!((lines[1].run, lines[1].job.as_str()), (12, "web"));
        assert_eq!(lines[1].level, 4);
        assert_eq!(lines[1].message, "file skipped");
        assert_eq!(
            lines[1].fields,
            vec![
                ("path".to_owned(), "/srv/a".to_owned()),
                ("files".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!((lines[2].run, lines[2].level), (12, 5));
    }
}
