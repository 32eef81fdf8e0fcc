//! [`DbCapture`]: the `tracing-subscriber` layer that hears sqlx's statement and pool-acquire
//! events and hands each one to the request in progress.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::collector::{Collector, Statement};
use super::fingerprint::{Fingerprint, Fingerprints};
use super::metrics::CaptureMetrics;
use super::{DEFAULT_SLOW_STATEMENT, SPAN_TARGET, TARGET, now};

/// sqlx's per-statement event target (0.8 and 0.9).
pub const SQLX_QUERY_TARGET: &str = "sqlx::query";
/// sqlx's pool-acquire event target.
pub const SQLX_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// A `tracing-subscriber` layer that reads sqlx's statement events (target `sqlx::query`) and
/// pool-acquire events (`sqlx::pool::acquire`) by field name, with no sqlx dependency, so sqlx
/// 0.8 and 0.9 both work.
///
/// Each event goes to the request in progress: the nearest enclosing span that a
/// [`DbLayer`](super::DbLayer) opened. That includes SQLite's worker thread, which runs each
/// command inside the caller's span, and tasks spawned with `.instrument(Span::current())`.
/// Events outside any request are *orphans*: counted, fed to the process-wide metrics and the
/// slow-statement log, never given to a request.
///
/// Install it with its own per-layer filter ([`DbCapture::filtered`]), next to the fmt layer, so
/// a fmt filter at `info` does not starve it:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use perf_middleware::db::DbCapture;
///
/// let (capture, handle) = DbCapture::pair();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO))
///     .with(capture.system("sqlite").filtered());
/// tracing::subscriber::with_default(subscriber, || {
///     assert!(perf_middleware::db::check_capture(), "sqlx's events reach the capture");
/// });
/// assert_eq!(handle.events(), 0);
/// ```
///
/// Clones share the fingerprint cache and the counters (and so do the [`CaptureHandle`]s taken
/// before or after the settings).
#[derive(Clone)]
#[must_use]
pub struct DbCapture {
    system: &'static str,
    pool_name: &'static str,
    slow: Option<Duration>,
    shared: Arc<CaptureShared>,
}

/// The counters of a [`DbCapture`]: they tell "no queries" (events heard, none in this request)
/// apart from "the capture hears nothing" ([`events`](CaptureHandle::events) stays 0).
#[derive(Clone)]
pub struct CaptureHandle {
    shared: Arc<CaptureShared>,
}

struct CaptureShared {
    fingerprints: Fingerprints,
    events: AtomicU64,
    attributed: AtomicU64,
    orphans: AtomicU64,
    unrecognized: AtomicU64,
    metrics: OnceLock<CaptureMetrics>,
}

impl fmt::Debug for DbCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCapture")
            .field("system", &self.system)
            .field("slow", &self.slow)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for CaptureHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureHandle")
            .field("events", &self.events())
            .field("attributed", &self.attributed())
            .field("orphans", &self.orphans())
            .field("unrecognized", &self.unrecognized())
            .finish()
    }
}

impl Default for DbCapture {
    fn default() -> Self {
        Self::new()
    }
}

impl DbCapture {
    /// A capture with the defaults: `db.system.name` `other_sql`, pool name `default`,
    /// orphan statements logged as slow from [`DEFAULT_SLOW_STATEMENT`], a fingerprint cache of
    /// [`DEFAULT_CACHE_CAPACITY`](super::fingerprint::DEFAULT_CACHE_CAPACITY) texts.
    pub fn new() -> Self {
        Self {
            system: "other_sql",
            pool_name: "default",
            slow: Some(DEFAULT_SLOW_STATEMENT),
            shared: Arc::new(CaptureShared {
                fingerprints: Fingerprints::default(),
                events: AtomicU64::new(0),
                attributed: AtomicU64::new(0),
                orphans: AtomicU64::new(0),
                unrecognized: AtomicU64::new(0),
                metrics: OnceLock::new(),
            }),
        }
    }

    /// A capture and the handle that reads its counters.
    pub fn pair() -> (Self, CaptureHandle) {
        let capture = Self::new();
        let handle = capture.handle();
        (capture, handle)
    }

    /// A handle on the counters of this capture (and its clones).
    pub fn handle(&self) -> CaptureHandle {
        CaptureHandle {
            shared: self.shared.clone(),
        }
    }

    /// The `db.system.name` label value: `postgresql`, `mysql`, `sqlite`, … (sqlx's events do
    /// not say). Defaults to `other_sql`.
    pub fn system(mut self, system: &'static str) -> Self {
        self.system = system;
        self
    }

    /// The `db.client.connection.pool.name` label of the acquire-wait histogram. Defaults to
    /// `default`.
    pub fn pool_name(mut self, name: &'static str) -> Self {
        self.pool_name = name;
        self
    }

    /// The slow-statement threshold for statements outside any request (requests use their
    /// [`DbLayer`](super::DbLayer)'s). Defaults to [`DEFAULT_SLOW_STATEMENT`].
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow = Some(threshold);
        self
    }

    /// No slow-statement log for statements outside any request.
    pub fn no_slow_log(mut self) -> Self {
        self.slow = None;
        self
    }

    /// The per-layer filter the capture needs: sqlx's two targets and this crate's request span,
    /// at every level.
    pub fn targets() -> Targets {
        Targets::new()
            .with_target(SQLX_QUERY_TARGET, Level::TRACE)
            .with_target(SQLX_ACQUIRE_TARGET, Level::TRACE)
            .with_target(SPAN_TARGET, Level::TRACE)
    }

    /// This capture with its own per-layer filter ([`DbCapture::targets`]): add it to a
    /// `tracing_subscriber::registry()`.
    pub fn filtered<S>(self) -> Filtered<Self, Targets, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(Self::targets())
    }
}

impl CaptureHandle {
    /// sqlx events heard (statements and acquires). Stays 0 when a filter starves the capture.
    pub fn events(&self) -> u64 {
        self.shared.events.load(Ordering::Relaxed)
    }

    /// Events given to a request.
    pub fn attributed(&self) -> u64 {
        self.shared.attributed.load(Ordering::Relaxed)
    }

    /// Statements outside any request (background tasks, un-instrumented spawns).
    pub fn orphans(&self) -> u64 {
        self.shared.orphans.load(Ordering::Relaxed)
    }

    /// sqlx events whose fields were not recognized (a new sqlx shape): skipped, never guessed.
    pub fn unrecognized(&self) -> u64 {
        self.shared.unrecognized.load(Ordering::Relaxed)
    }

    /// Distinct statement texts in the fingerprint cache.
    pub fn cached_fingerprints(&self) -> usize {
        self.shared.fingerprints.len()
    }
}

/// Probes whether sqlx's statement events reach a subscriber (the current default dispatcher):
/// `false` when a filter drops them, and then logs a WARN (target `perf_middleware::db`, once per
/// process) saying how to fix the filter, and sets the `perf.db.capture.enabled` gauge to 0 (on
/// every call). Call it once after installing the subscriber; [`DbLayer`](super::DbLayer) also
/// calls it on its first request, without a second WARN.
pub fn check_capture() -> bool {
    /// Whether this process has said it; the gauge keeps telling after that.
    static WARNED: AtomicBool = AtomicBool::new(false);
    let hears = tracing::enabled!(target: "sqlx::query", Level::DEBUG);
    metrics::gauge!(super::metrics::CAPTURE_ENABLED).set(if hears { 1.0 } else { 0.0 });
    if !hears && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: TARGET,
            "sqlx's statement events (target `sqlx::query`, DEBUG) are filtered out, so no query is \
             captured: give the DbCapture its own per-layer filter (`DbCapture::new().filtered()`) \
             instead of a global filter such as `fmt().with_env_filter(\"info\")`, or add the \
             directive `sqlx::query=debug` to the global filter"
        );
    }
    hears
}

impl<S> Layer<S> for DbCapture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        let acquire = match target {
            SQLX_QUERY_TARGET => false,
            SQLX_ACQUIRE_TARGET => true,
            _ => return,
        };
        let shared = &*self.shared;
        shared.events.fetch_add(1, Ordering::Relaxed);
        let metrics = shared
            .metrics
            .get_or_init(|| CaptureMetrics::new(self.system, self.pool_name));
        metrics.events.increment(1);
        let mut fields = Fields::new(&shared.fingerprints);
        event.record(&mut fields);
        let collector = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<Arc<Collector>>().cloned())
        });
        if acquire {
            let Some(wait) = fields.acquired_after else {
                shared.unrecognized.fetch_add(1, Ordering::Relaxed);
                return;
            };
            metrics.wait_time.record(wait.as_secs_f64());
            // An acquire outside any request feeds the wait-time histogram only.
            if let Some(c) = &collector {
                c.add_wait(wait);
                shared.attributed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let (Some(fingerprint), Some(elapsed)) = (fields.fingerprint.take(), fields.elapsed) else {
            shared.unrecognized.fetch_add(1, Ordering::Relaxed);
            return;
        };
        metrics
            .operation(fingerprint.operation())
            .record(elapsed.as_secs_f64());
        let statement = Statement {
            fingerprint,
            elapsed,
            end: now(),
            rows: fields.rows_returned.max(fields.rows_affected),
            rows_returned: fields.rows_returned,
            system: self.system,
        };
        match collector {
            Some(c) => {
                shared.attributed.fetch_add(1, Ordering::Relaxed);
                if c.slow.is_some_and(|t| elapsed >= t) {
                    log_slow(&statement, &fields, Some(&c));
                }
                c.add(statement);
            }
            None => {
                self.orphan(metrics);
                if self.slow.is_some_and(|t| elapsed >= t) {
                    log_slow(&statement, &fields, None);
                }
            }
        }
    }
}

impl DbCapture {
    fn orphan(&self, metrics: &CaptureMetrics) {
        self.shared.orphans.fetch_add(1, Ordering::Relaxed);
        metrics.orphans.increment(1);
    }
}

fn log_slow(statement: &Statement, fields: &Fields<'_>, collector: Option<&Collector>) {
    let fp = &statement.fingerprint;
    tracing::warn!(
        target: TARGET,
        route = collector.map(|c| &*c.route),
        trace_id = collector.and_then(|c| c.trace_id).map(tracing::field::display),
        elapsed_ms = round_ms(statement.elapsed),
        rows_returned = fields.rows_returned,
        rows_affected = fields.rows_affected,
        fingerprint = %fp,
        statement = fp.text(),
        "slow statement"
    );
}

/// Milliseconds rounded to three decimals (microseconds), as logs print them.
pub(crate) fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The fields of one sqlx event. The SQL is fingerprinted in place (through the cache), never
/// copied; bound values are not in the event.
struct Fields<'a> {
    fingerprints: &'a Fingerprints,
    fingerprint: Option<Arc<Fingerprint>>,
    elapsed: Option<Duration>,
    rows_returned: u64,
    rows_affected: u64,
    acquired_after: Option<Duration>,
}

impl<'a> Fields<'a> {
    fn new(fingerprints: &'a Fingerprints) -> Self {
        Self {
            fingerprints,
            fingerprint: None,
            elapsed: None,
            rows_returned: 0,
            rows_affected: 0,
            acquired_after: None,
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            // The first four words; the whole statement when it does not end with ` …`.
            "summary" if !value.ends_with(" …") => {
                self.fingerprint = Some(self.fingerprints.get(value.trim()));
            }
            // The whole statement (after two newlines), or empty when `summary` is all of it.
            "db.statement" => {
                let sql = value.trim();
                if !sql.is_empty() {
                    self.fingerprint = Some(self.fingerprints.get(sql));
                }
            }
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_returned" => self.rows_returned = value,
            "rows_affected" => self.rows_affected = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let secs = || Duration::try_from_secs_f64(value).ok();
        match field.name() {
            "elapsed_secs" => self.elapsed = secs(),
            // sqlx 0.8 spells it `aquired_after_secs`, 0.9 `acquired_after_secs`.
            "acquired_after_secs" | "aquired_after_secs" => self.acquired_after = secs(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}
