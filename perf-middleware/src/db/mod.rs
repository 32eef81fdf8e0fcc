//! Database statements inside each request (feature `db`): per-request query count and time,
//! statement fingerprints, N+1 detection, slow statements, `Server-Timing: db`, metrics.
//!
//! Two pieces, no change to the query code and no sqlx dependency:
//!
//! - [`DbCapture`], a `tracing-subscriber` layer with its own per-layer filter, reads sqlx's
//!   statement events (target `sqlx::query`, sqlx 0.8 and 0.9) and pool-acquire events
//!   (`sqlx::pool::acquire`) by field name;
//! - [`DbLayer`], a Tower layer, opens a request span (target `perf_middleware::db`, TRACE)
//!   carrying a collector; the capture gives each statement to the nearest such span above it.
//!   SQLite's worker thread runs each command inside the caller's span, so its statements are
//!   attributed too; so are those of tasks spawned with `.instrument(Span::current())`. Others
//!   are *orphans*: counted ([`CaptureHandle::orphans`], `perf.db.orphans`), fed to the
//!   process-wide metrics, never given to a request.
//!
//! Per request the layer reports a [`DbSummary`] (count, summed time, per-fingerprint count,
//! sum and max, the first [`MAX_STATEMENTS`] statements one by one): into the response
//! extensions when the request ran a statement (an outer `PerfLayer` adds it to its completion
//! record and slow log; `perf-otel`'s `OtelLayer`, feature `db`, to the server span), as
//! `Server-Timing: db;dur=…;desc="12 queries"` (when its [`ServerTiming`](crate::ServerTiming)
//! wants it), and as per-route metrics. It logs N+1 findings ([`NPlusOneProfile`]) and slow
//! statements with target `perf_middleware::db`.
//!
//! ```
//! use axum::{Router, routing::get};
//! use perf_middleware::db::{DbCapture, DbLayer, NPlusOneProfile};
//! use perf_middleware::ServerTiming;
//! use tracing_subscriber::prelude::*;
//!
//! // The subscriber: the fmt layer with its filter, the capture with its own.
//! let (capture, counters) = DbCapture::pair();
//! let _subscriber = tracing_subscriber::registry()
//!     .with(capture.system("sqlite").filtered());
//!
//! // The service: the layer around the router's handlers.
//! let db = DbLayer::builder()
//!     .n_plus_one(NPlusOneProfile::strict())
//!     .server_timing(ServerTiming::Always)
//!     .build()
//!     .expect("valid configuration");
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .layer(db);
//! # let _ = (app, counters);
//! ```
//!
//! # Placement
//!
//! Put [`DbLayer`] with `Router::layer` (it then reads the route template from axum's
//! `MatchedPath`) and *inside* `PerfLayer`, so the timing layer's completion record and slow log
//! get the [`DbSummary`]; around a whole router give it a [`RouteTable`](crate::RouteTable)
//! ([`DbLayerBuilder::route_table`]). Work the handler spawns is the request's only when it
//! carries the span: `tokio::spawn(fut.instrument(Span::current()))`,
//! `let span = Span::current(); spawn_blocking(move || span.in_scope(…))`; otherwise its
//! statements are orphans. In tests, [`NPlusOneProfile::strict`],
//! [`DbLayerBuilder::max_queries`] and [`DbHandle::assert_clean`] fail a test on any N+1 or on
//! too many statements.
//!
//! Statement time is what the caller saw (sqlx's `elapsed_secs`): preparation, waiting behind
//! another command on the connection and result streaming included, pool acquire excluded.
//! `Server-Timing` is written with the response head: statements run while a streaming body is
//! produced are in the metrics and logs only.
//!
//! A request that runs no statement costs the request span (created, entered while its future
//! and body are polled, closed) and its empty collector: no summary is built or inserted, and
//! only the per-route histograms record its 0 (BENCHMARKS.md, "Database capture").
//!
//! sqlx's `disable_statement_logging()` (SeaORM's `sqlx_logging(false)`) removes the events and
//! with them everything here.

mod body;
mod capture;
mod collector;
pub mod fingerprint;
mod future;
mod layer;
pub mod metrics;
mod record;
mod service;
mod summary;
mod violation;

use std::time::Duration;

pub use body::ResponseBody;
pub use capture::{
    CaptureHandle, DbCapture, SQLX_ACQUIRE_TARGET, SQLX_QUERY_TARGET, check_capture,
};
pub use collector::{MAX_FINGERPRINTS, MAX_STATEMENTS};
pub use fingerprint::{Fingerprint, Operation};
pub use future::ResponseFuture;
pub use layer::{DEFAULT_N_PLUS_ONE_COOLDOWN, DbHandle, DbLayer, DbLayerBuilder};
pub use service::Db;
pub use summary::{DbStatement, DbSummary, FingerprintStats, NPlusOneProfile};
pub use violation::{Violation, ViolationKind};

/// Default slow-statement threshold: 500 ms (Sentry's slow-DB default).
pub const DEFAULT_SLOW_STATEMENT: Duration = Duration::from_millis(500);

/// The target of this module's logs (N+1, slow statements, the capture WARN).
pub const TARGET: &str = "perf_middleware::db";

/// The target of the request span [`DbLayer`] opens (TRACE level).
pub const SPAN_TARGET: &str = "perf_middleware::db";

/// A point in time on the clock sqlx measures `elapsed_secs` with.
#[expect(
    clippy::disallowed_types,
    reason = "sqlx times statements with std's Instant; start = end - elapsed must use the same clock (tokio's paused clock would not move with it)"
)]
pub(crate) type Moment = std::time::Instant;

pub(crate) fn now() -> Moment {
    Moment::now()
}
