//! Metric names, label keys, bucket advice and the pool sampler.
//!
//! Labels are bounded: `db.system.name` and the pool name come from configuration,
//! `db.operation.name` from a fixed list, `http.route` is a route template or
//! [`UNMATCHED_ROUTE`](crate::UNMATCHED_ROUTE). No label ever carries SQL text or a hash.

use std::future::Future;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};
use opentelemetry_semantic_conventions::{attribute, metric};

use super::fingerprint::Operation;

/// `db.client.operation.duration` — histogram, seconds, per statement, labels
/// [`LABEL_SYSTEM`] and [`LABEL_OPERATION`] (Prometheus: `db_client_operation_duration_seconds`).
pub const OPERATION_DURATION: &str = metric::DB_CLIENT_OPERATION_DURATION;
/// `db.client.connection.wait_time` — histogram, seconds, from sqlx's acquire events (only when
/// the pool logs them), label [`LABEL_POOL`].
pub const CONNECTION_WAIT_TIME: &str = metric::DB_CLIENT_CONNECTION_WAIT_TIME;
/// `perf.db.client.connections` — gauge, connections by [`LABEL_STATE`] (`idle`, `used`), from
/// [`sample_pool`]. The semantic-convention name `db.client.connection.count` would become
/// `db_client_connection_count` in Prometheus, which `promtool check metrics` rejects for a gauge
/// (a `_count` suffix belongs to histograms and summaries).
pub const CONNECTION_COUNT: &str = "perf.db.client.connections";
/// `db.client.connection.pending_requests` — gauge, requests waiting for a connection, from
/// [`sample_pool`] when the pool says (deadpool `waiting`, bb8 started − finished gets; sqlx
/// does not).
pub const CONNECTION_PENDING: &str = metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS;
/// `db.client.connection.max` — gauge, the pool's cap, from [`sample_pool`].
pub const CONNECTION_MAX: &str = metric::DB_CLIENT_CONNECTION_MAX;
/// `perf.db.request.queries` — histogram, statements per request, label `http.route`.
pub const REQUEST_QUERIES: &str = "perf.db.request.queries";
/// `perf.db.request.duration` — histogram, seconds, summed statement time per request, label
/// `http.route`.
pub const REQUEST_DURATION: &str = "perf.db.request.duration";
/// `perf.db.n_plus_one` — counter of N+1 findings, label `http.route`.
pub const N_PLUS_ONE: &str = "perf.db.n_plus_one";
/// `perf.db.orphans` — counter of sqlx events outside any request.
pub const ORPHANS: &str = "perf.db.orphans";
/// `perf.db.capture.events` — counter of sqlx events the capture heard: flat while queries run
/// means the capture hears nothing.
pub const CAPTURE_EVENTS: &str = "perf.db.capture.events";
/// `perf.db.capture.enabled` — gauge, 1 when sqlx's statement events reach a subscriber, 0 when
/// a filter drops them (see [`check_capture`](super::check_capture)).
pub const CAPTURE_ENABLED: &str = "perf.db.capture.enabled";

/// Label key `db.system.name`.
pub const LABEL_SYSTEM: &str = attribute::DB_SYSTEM_NAME;
/// Label key `db.operation.name`.
pub const LABEL_OPERATION: &str = attribute::DB_OPERATION_NAME;
/// Label key `db.client.connection.pool.name`.
pub const LABEL_POOL: &str = attribute::DB_CLIENT_CONNECTION_POOL_NAME;
/// Label key `db.client.connection.state`.
pub const LABEL_STATE: &str = attribute::DB_CLIENT_CONNECTION_STATE;
/// Label key `http.route`.
pub const LABEL_ROUTE: &str = attribute::HTTP_ROUTE;

/// The OpenTelemetry advisory buckets of `db.client.operation.duration`, in seconds (give them
/// to the exporter, e.g. `PrometheusBuilder::set_buckets_for_metric`).
pub const OPERATION_DURATION_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
/// Buckets of `perf.db.request.duration`, in seconds: the OpenTelemetry advisory buckets of
/// `http.server.request.duration`, so query time compares with request time bucket by bucket.
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Suggested buckets of `perf.db.request.queries`.
pub const REQUEST_QUERIES_BUCKETS: &[f64] =
    &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];

/// The bucket lists of the database histograms (the Prometheus install helper of feature
/// `prometheus` applies them): semantic-convention buckets for the statement and wait times,
/// HTTP-duration buckets for the summed time per request.
pub const BUCKETS: &[(&str, &[f64])] = &[
    (OPERATION_DURATION, OPERATION_DURATION_BUCKETS),
    (CONNECTION_WAIT_TIME, OPERATION_DURATION_BUCKETS),
    (REQUEST_QUERIES, REQUEST_QUERIES_BUCKETS),
    (REQUEST_DURATION, REQUEST_DURATION_BUCKETS),
];

/// Emits the descriptions (units) of the database metrics; the Prometheus exporter needs them
/// for the `_seconds` suffix. Called by the layer and the capture on first use.
pub fn describe() {
    metrics::describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Duration of database client operations."
    );
    metrics::describe_histogram!(
        CONNECTION_WAIT_TIME,
        Unit::Seconds,
        "The time it took to obtain an open connection from the pool."
    );
    metrics::describe_gauge!(
        CONNECTION_COUNT,
        "The number of connections that are currently in state described by the state attribute."
    );
    metrics::describe_gauge!(
        CONNECTION_MAX,
        "The maximum number of open connections allowed."
    );
    metrics::describe_histogram!(
        REQUEST_QUERIES,
        Unit::Count,
        "Database statements per HTTP request."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Summed database statement time per HTTP request."
    );
    metrics::describe_gauge!(
        CONNECTION_PENDING,
        "The number of current pending requests for an open connection."
    );
    metrics::describe_counter!(N_PLUS_ONE, "N+1 query patterns detected.");
    metrics::describe_counter!(ORPHANS, "Database statements run outside any HTTP request.");
    metrics::describe_counter!(CAPTURE_EVENTS, "sqlx events heard by the database capture.");
    metrics::describe_gauge!(
        CAPTURE_ENABLED,
        "1 when sqlx's statement events reach the capture, 0 when a filter drops them."
    );
}

/// The handles the capture records into.
pub(crate) struct CaptureMetrics {
    ops: [Histogram; Operation::ALL.len()],
    pub(crate) wait_time: Histogram,
    pub(crate) orphans: Counter,
    pub(crate) events: Counter,
}

impl CaptureMetrics {
    pub(crate) fn new(system: &'static str, pool: &'static str) -> Self {
        describe();
        Self {
            ops: Operation::ALL.map(|op| {
                metrics::histogram!(OPERATION_DURATION, LABEL_SYSTEM => system, LABEL_OPERATION => op.as_str())
            }),
            wait_time: metrics::histogram!(CONNECTION_WAIT_TIME, LABEL_POOL => pool),
            orphans: metrics::counter!(ORPHANS),
            events: metrics::counter!(CAPTURE_EVENTS),
        }
    }

    pub(crate) fn operation(&self, op: Operation) -> &Histogram {
        &self.ops[op.index()]
    }
}

/// The handles of one route.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    pub(crate) queries: Histogram,
    pub(crate) duration: Histogram,
    pub(crate) n_plus_one: Counter,
}

impl RouteMetrics {
    pub(crate) fn new(route: &str) -> Self {
        let route = route.to_owned();
        Self {
            queries: metrics::histogram!(REQUEST_QUERIES, LABEL_ROUTE => route.clone()),
            duration: metrics::histogram!(REQUEST_DURATION, LABEL_ROUTE => route.clone()),
            n_plus_one: metrics::counter!(N_PLUS_ONE, LABEL_ROUTE => route),
        }
    }
}

/// A connection pool's state at one moment, read from the pool's own status API: sqlx
/// (`size()`, `num_idle()`, `options().get_max_connections()`), deadpool (`status()`), bb8
/// (`state()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Open connections, idle ones included.
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// The cap.
    pub max: u32,
    /// Requests waiting for a connection, when the pool reports it.
    pub pending: Option<u32>,
}

impl PoolStatus {
    /// A status of `size` open connections, `idle` of them idle, at most `max`.
    pub fn new(size: u32, idle: u32, max: u32) -> Self {
        Self {
            size,
            idle,
            max,
            pending: None,
        }
    }

    /// With `n` requests waiting for a connection (deadpool's `waiting`).
    pub fn pending(mut self, n: u32) -> Self {
        self.pending = Some(n);
        self
    }
}

/// Samples a pool every `interval` into `perf.db.client.connections{state=idle|used}` and
/// `db.client.connection.max` (and `db.client.connection.pending_requests` when the status has
/// it), labelled `db.client.connection.pool.name = name`: off the request
/// path. Spawn the returned future; it runs until dropped.
///
/// ```no_run
/// # async fn demo() {
/// use std::time::Duration;
/// use perf_middleware::db::metrics::{PoolStatus, sample_pool};
/// # struct Pool; impl Pool { fn size(&self) -> u32 { 1 } fn num_idle(&self) -> usize { 1 } }
/// let pool = Pool; // a `sqlx::Pool<_>`
/// tokio::spawn(sample_pool("main", Duration::from_secs(5), move || {
///     PoolStatus::new(pool.size(), pool.num_idle() as u32, 10)
/// }));
/// # }
/// ```
pub fn sample_pool<F>(name: &'static str, interval: Duration, status: F) -> impl Future<Output = ()>
where
    F: Fn() -> PoolStatus + Send + 'static,
{
    describe();
    let idle: Gauge = metrics::gauge!(CONNECTION_COUNT, LABEL_POOL => name, LABEL_STATE => "idle");
    let used: Gauge = metrics::gauge!(CONNECTION_COUNT, LABEL_POOL => name, LABEL_STATE => "used");
    let max: Gauge = metrics::gauge!(CONNECTION_MAX, LABEL_POOL => name);
    let pending: Gauge = metrics::gauge!(CONNECTION_PENDING, LABEL_POOL => name);
    async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = status();
            idle.set(f64::from(s.idle));
            used.set(f64::from(s.size.saturating_sub(s.idle)));
            max.set(f64::from(s.max));
            if let Some(n) = s.pending {
                pending.set(f64::from(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use perf_test_support::TestRecorder;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pool_is_sampled_into_gauges() {
        let recorder = TestRecorder::new();
        let sampler = {
            let _local = recorder.local();
            sample_pool("main", Duration::from_secs(5), || {
                PoolStatus::new(5, 2, 10).pending(3)
            })
        };
        // The first tick is immediate; the sampler then waits 5 s of paused time.
        let _ = tokio::time::timeout(Duration::from_secs(1), sampler).await;
        let snap = recorder.snapshot();
        let pool = (LABEL_POOL, "main");
        assert_eq!(
            snap.gauge(CONNECTION_COUNT, &[pool, (LABEL_STATE, "idle")]),
            2.0
        );
        assert_eq!(
            snap.gauge(CONNECTION_COUNT, &[pool, (LABEL_STATE, "used")]),
            3.0
        );
        assert_eq!(snap.gauge(CONNECTION_MAX, &[pool]), 10.0);
        assert_eq!(snap.gauge(CONNECTION_PENDING, &[pool]), 3.0);
    }
}
