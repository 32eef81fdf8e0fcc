//! The live `/perf` page (feature `page`): one instance's view of its own traffic, with no
//! infrastructure.
//!
//! - **Routes table:** rate, error ratio, p50/p95/p99/max over the last minute or five, the cache
//!   hit ratio where a cache saw the route (`—` where none did), and a sparkline of the rate, per
//!   route template; a route view with its p95 over time and its slowest requests. The hit ratio
//!   is read from the RFC 9211 `Cache-Status` field of each response as it leaves the layer: a
//!   hit when the member nearest the client (the last one: the cache between the layer and the
//!   app, e.g. `perf-cache-layer`) has `hit`; any RFC 9211 cache works. The cache must be
//!   inside the timing layer: one outside it answers hits before the layer runs, and appends
//!   its member after the layer has read the response.
//! - **Recent slow requests** (those past the layer's slow threshold of their route): duration,
//!   time to headers, status, outcome (including cancelled), trace id (a link when
//!   [`PerfPageBuilder::trace_url`] is set), and a phase bar from the `Server-Timing` phases
//!   (`cache`, `db`, `app`, `budget`) the response carried when its head left the layer.
//! - **Queries card** (with the `db` feature too): the top `TOP_FINGERPRINTS` (20) statement
//!   fingerprints by summed time since start (count, total, max), and the last
//!   `N_PLUS_ONE_RING` (20) N+1 detections (route, fingerprint, count, summed time, when, trace
//!   id), from the `db::DbSummary` an inner `DbLayer` puts in the response
//!   extensions (a response without one ran no query). The top list is a space-saving top-k: a
//!   new fingerprint replaces the one with the smallest summed time and inherits its figures
//!   (shown as `≤`), so a heavy statement is never pushed out by a stream of rare ones.
//! - **Cards** the app registers ([`PerfPageBuilder::card`]): e.g. the cache's statistics and the
//!   budget report. Other crates of the family depend on this one, so they come in as providers.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use axum::{Router, routing::get};
//! use perf_middleware::{PerfLayer, page::{PerfPage, Protection}};
//!
//! let page = PerfPage::builder(Protection::token())
//!     .card("build", || serde_json::json!({ "version": "1.2.3" }))
//!     // The header's link to the fleet view: the shipped dashboard's uid is `tower-perf`.
//!     .dashboard_url("http://localhost:3000/d/tower-perf/tower-perf")
//!     .build()
//!     .expect("valid configuration");
//! let perf = PerfLayer::builder().page(&page).build().expect("valid configuration");
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .layer(perf)
//!     // After `.layer`: the page's own requests are not measured.
//!     .merge(page.router());
//! println!("perf page: http://127.0.0.1:8080{}", page.url_path());
//! assert_eq!(page.dashboard_url(), Some("http://localhost:3000/d/tower-perf/tower-perf"));
//! # let _ = app;
//! # }
//! ```
//!
//! # Memory ceiling
//!
//! Everything is in process, in fixed-size structures allocated when a route is first seen:
//!
//! | store | bound | size |
//! |---|---|---|
//! | per-route ring | [`MAX_ROUTES`] rows (+1 shared [`OTHER_ROUTES`] row) × 60 slots of 5 s | 80 histogram buckets + 4 counters per slot: ≈ 20 KiB per row, ≈ 1.3 MiB in all |
//! | slow requests | the last [`SLOW_RING`] | ≈ 120 B each |
//! | slowest per route | [`WORST`] per row, within the last 5 minutes | ≈ 120 B each |
//! | top statements (`db`) | `TOP_FINGERPRINTS` (20) | ≈ 64 B each + a shared fingerprint text of ≤ 1 KiB (`db::fingerprint::MAX_TEXT`) |
//! | N+1 detections (`db`) | the last `N_PLUS_ONE_RING` (20) | ≈ 90 B each + a shared fingerprint text of ≤ 1 KiB |
//!
//! Route rows are keyed by the layer's `http.route` label, which the layer already bounds
//! (unmatched paths share one label), so a flood of random paths adds nothing; nor does a flood
//! of distinct statements: the query stores hold at most 40 fingerprint texts, ≈ 45 KiB. The
//! `page_stores` test holds the ceiling under such floods.
//!
//! # Request path
//!
//! The layer records from the completion record it already has: the end time is its start plus
//! the duration it measured (no second clock read), the route name is the row's shared `Arc`,
//! and the rings and lists are preallocated, so recording allocates nothing after a route's
//! first request. It takes short, uncontended-in-practice locks: a read lock on the route map and
//! the row's mutex.
//!
//! # Protection and headers
//!
//! [`PerfPage::builder`] requires a [`Protection`]. Every response carries
//! `Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src
//! 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action
//! 'none'`, `X-Content-Type-Options: nosniff`, and `Cache-Control: no-store`, except the
//! content-hashed script and stylesheet, which are `immutable`. Requests to the page's path and
//! under it are never recorded, even when the layer wraps the page's router. The page loads nothing from
//! elsewhere: charts are inline SVG drawn by its own script.
//!
//! # Updates
//!
//! The page polls `data?since=N` every 2 s: route rows in full (they are small), slow requests
//! newer than `N` only. Polling stops while the tab is hidden (`document.visibilityState`).

mod builder;
mod cache_status;
mod json;
mod phases;
mod protection;
#[cfg(feature = "db")]
mod queries;
#[cfg(feature = "db")]
mod queries_json;
mod ring;
mod router;
pub(crate) mod store;

pub use builder::{Card, Footprint, PerfPage, PerfPageBuilder};
pub use protection::Protection;
#[cfg(feature = "db")]
pub use queries::{N_PLUS_ONE_RING, TOP_FINGERPRINTS};
pub use store::{MAX_ROUTES, OTHER_ROUTES, SLOW_RING, WORST};

pub(crate) use phases::{Marks, marks as read_marks};
pub(crate) use store::Ended;
