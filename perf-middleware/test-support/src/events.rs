//! [`Events`]: a `tracing` layer that captures events with their fields.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// Captures the events whose target is `target` or below it (`perf_middleware::slow` matches
/// `perf_middleware::slow` and `perf_middleware::slow::x`). Clones share the captured events.
///
/// ```
/// use perf_test_support::Events;
///
/// let events = Events::for_target("my_crate::slow");
/// let _guard = events.set_default();
/// tracing::warn!(target: "my_crate::slow", latency_ms = 12.5, route = "/a", "slow request");
/// tracing::warn!(target: "other", "not captured");
/// let ev = events.events();
/// assert_eq!(ev.len(), 1);
/// assert_eq!(ev[0].f64("latency_ms"), Some(12.5));
/// assert_eq!(ev[0].str("route"), Some("/a"));
/// assert_eq!(ev[0].str("message"), Some("slow request"));
/// ```
#[derive(Clone)]
pub struct Events {
    target: Arc<str>,
    events: Arc<Mutex<Vec<Event>>>,
}

/// One captured event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its level.
    pub level: Level,
    /// Its target.
    pub target: String,
    /// Its fields in order, the message as field `message`.
    pub fields: Vec<(String, FieldValue)>,
}

/// The value of a captured field, as the event recorded it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// An unsigned integer.
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A string, or a value recorded with `%` (`Display`) or `?` (`Debug`), formatted.
    Str(String),
}

impl Event {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Field `name` when it is a string (or was recorded with `%` or `?`).
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.field(name)? {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Field `name` when it is an unsigned integer.
    pub fn u64(&self, name: &str) -> Option<u64> {
        match self.field(name)? {
            FieldValue::U64(v) => Some(*v),
            _ => None,
        }
    }

    /// Field `name` when it is a float.
    pub fn f64(&self, name: &str) -> Option<f64> {
        match self.field(name)? {
            FieldValue::F64(v) => Some(*v),
            _ => None,
        }
    }
}

impl Events {
    /// Captures the events of `target` and the targets below it.
    pub fn for_target(target: &str) -> Self {
        Self {
            target: target.into(),
            events: Arc::default(),
        }
    }

    /// Makes a subscriber with only this layer the default of the current thread until the
    /// guard drops (use a current-thread runtime in async tests).
    pub fn set_default(&self) -> DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    /// The events captured so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wants(&self, target: &str) -> bool {
        target
            .strip_prefix(&*self.target)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("target", &self.target)
            .field("events", &*self.lock())
            .finish()
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wants(meta.target()) {
            return;
        }
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.lock().push(Event {
            level: *meta.level(),
            target: meta.target().to_owned(),
            fields: fields.0,
        });
    }
}

struct Fields(Vec<(String, FieldValue)>);

impl Fields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        self.0.push((field.name().to_owned(), value));
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, FieldValue::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Str(value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }
}
