//! Live per-route performance budgets for Tower and axum services: `p95 < 200ms`,
//! `error_rate < 1%`, judged over a sliding window with evidence, enforced by one layer, and
//! the same file drives Prometheus alert rules and a CI gate (`perf-budget` CLI).
//!
//! # How it decides
//!
//! "p95 < 200 ms" is the same statement as "at most 5 % of requests take 200 ms or longer". Each
//! route keeps, per window slot, **exact** counters of requests, errors and requests over each
//! latency threshold, so verdicts need no quantile sketch and no bucket alignment. A verdict
//! needs evidence: at least `min_samples` requests (raised to `10 / allowance`, so 1,000 for
//! p99) and a one-sided Wilson lower bound of the miss share above the allowance
//! (see [`Status`]). States go `ok → warning → breached → ok` with hysteresis; transitions are logged
//! (`tracing`, target `perf_budget`), counted (`perf.budget.transitions`) and passed to
//! the [`OnTransition`] hook.
//!
//! A log-linear histogram ([`LatencyHistogram`]) only *reports* p50/p95/p99, within 1.56 %
//! relative error; the CLI records its client-side latencies in the same type.
//!
//! # Recording cost
//!
//! Per request: two clock readings (start, end), one route lookup (a hash lookup of the
//! router's template, or one `matchit` match of the path), and a few relaxed atomic adds into
//! the current slot; no lock, no allocation (except the text of the `Perf-Budget` header in
//! `annotate` mode and the timer of mode `deadline`). Evaluation runs on the request path at
//! most once per slot, under a `try_lock` that never waits. A slot is claimed for a new epoch by
//! one CAS; increments racing with that rotation can be lost (a few per slot boundary). Metrics
//! are published from the window at evaluation time, never per request.
//!
//! # Modes
//!
//! | [`Mode`] | per request | on breach |
//! |---|---|---|
//! | `observe` (default) | record | log, metrics, hook |
//! | `annotate` (staging) | `Perf-Budget: users; state=ok; dur=12.3ms` and `Server-Timing: budget;dur=12.30;desc="users ok"` | ERROR log for error-severity budgets |
//! | `deadline` | cap at the budget's `deadline`: 503 (or `deadline_status`) with [`BudgetExceeded`], counted as an error with latency = the cap; [`Deadline`] in request extensions | as observe |
//! | `shed` | while breached, admit exactly the priority's share, answer the rest 503 + `Retry-After` (counted as errors) | logs the admitted share |
//!
//! Policy outcomes are responses; `type Error = S::Error`. A request whose future (or body, with
//! `measure = "body"`) is dropped is counted once as cancelled, neither success nor latency.
//! 4xx are not errors by default; 5xx, deadline and shed are.
//!
//! # Placement and routes
//!
//! Put the layer outside queues (`Buffer`, `ConcurrencyLimit`) so in-process queueing counts.
//! Two placements, with the same budgets and modes:
//!
//! - **`Router::layer(layer)`**: the route of each request is axum's `MatchedPath`.
//! - **Around the whole `Router`**, where no `MatchedPath` exists yet: put the foundation's
//!   [`MatchRouteLayer`](perf_middleware::MatchRouteLayer) outermost to record the router's
//!   templates, or let the layer match the budgets' templates against the path with the
//!   foundation's [`RouteTable`](perf_middleware::RouteTable) (axum's matcher: a static route
//!   wins over a parameter):
//!   ```
//!   # use std::time::Duration;
//!   # use axum::{Router, ServiceExt, extract::Request, response::IntoResponse, routing::get};
//!   # use perf_budget::{BudgetLayer, BudgetPolicy};
//!   # let policy = BudgetPolicy::builder()
//!   #     .add_budget("users", "GET /users/{id}", |b| b.p95(Duration::from_millis(200)))
//!   #     .build()?;
//!   let router: Router = Router::new().route("/users/{id}", get(|| async { "{}" }));
//!   let app = tower::ServiceBuilder::new()
//!       // axum::serve wants axum's `Response`: box the body once, for the server.
//!       .map_response(IntoResponse::into_response)
//!       .layer(BudgetLayer::new(policy))
//!       .service(router.with_state::<()>(()));
//!   # async fn serve(app: impl Clone + Send + Sync + 'static + tower::Service<Request, Response = axum::response::Response, Error = std::convert::Infallible, Future: Send>) {
//!   let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//!   axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await.unwrap();
//!   # }
//!   # let _ = serve(app);
//!   # Ok::<(), perf_budget::ConfigError>(())
//!   ```
//!   Matching the budgets' templates only knows those: if the app also routes `/users/me`
//!   apart from a budgeted `/users/{id}`, give `/users/me` its own budget (or use
//!   `MatchRouteLayer` with the app's full table) or it counts towards `/users/{id}`.
//!
//! Requests that match no budget share one `__other__` entry: raw paths never create state, and
//! no header is stamped for them. A typo in a budget route sends every request there, so give
//! the layer the router's routes ([`BudgetLayerBuilder::route_table`]) and such a budget fails
//! at startup with [`ConfigError::UnknownRoute`]; without them, the first request that falls to
//! `__other__` logs one WARN.
//! [`BudgetPolicy::budget_for`] is the same lookup for a path, which the `perf-budget gate`
//! command uses to judge client-side numbers against the budget the server counted.
//!
//! # Metrics
//!
//! With feature `metrics`, through the [`metrics`](::metrics) facade, updated at each evaluation
//! (once per slot), described with units and help when a layer is built (names in
//! [`crate::metrics`]): counters `perf.budget.requests`, `perf.budget.errors`,
//! `perf.budget.shed` (labels `budget`, `http.route` — the template, or `unmatched` for
//! `__other__` — and `http.request.method` for a budget of one method),
//! `perf.budget.slow_requests` (`budget`, `objective`, `threshold_seconds`),
//! `perf.budget.transitions`; gauges `perf.budget.state` (0 ok, 1 warning, 2 breached) and
//! `perf.budget.burn_rate` (`window` = short | long). A Prometheus exporter shows them as
//! `perf_budget_requests` and so on; `perf-budget rules` builds its SLO rules on them. Report
//! quantiles are per instance; use the counters for fleet-wide numbers.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `config` | yes | [`BudgetPolicy::from_toml`] |
//! | `axum` | yes | `MatchedPath` routes, [`axum::report`] handler |
//! | `metrics` | yes | budget metrics through the `metrics` facade |
//! | `serde` | yes | reports serialize (`serde`); the report service and handler answer JSON (else text) |
//!
//! The `perf-budget` command (`rules`, `gate`) is its own crate, `perf-budget-cli`
//! (`cargo install perf-budget-cli`), so the library stays free of client dependencies.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use perf_budget::{BudgetLayer, BudgetPolicy, Mode};
//!
//! let policy = BudgetPolicy::from_toml(r#"
//!     [defaults]
//!     mode = "annotate"
//!     [[budget]]
//!     name = "users"
//!     route = "GET /users/{id}"
//!     objectives = ["p95 < 200ms", "p99 < 500ms", "error_rate < 1%"]
//! "#)?;
//! assert_eq!(policy.mode(), Mode::Annotate);
//! let (layer, handle) = BudgetLayer::pair(policy);
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .layer(layer)
//!     .route_service("/perf/budgets", perf_budget::ReportService::new(handle.clone()));
//! // In a test, after at least the sample floor of requests (see `sample_floor`):
//! // handle.report().assert_pass();
//! # Ok::<(), perf_budget::ConfigError>(())
//! ```

#[cfg(feature = "axum")]
pub mod axum;
mod body;
#[cfg(feature = "config")]
pub mod config;
mod engine;
mod error;
mod eval;
mod future;
mod histogram;
mod hooks;
mod layer;
pub mod metrics;
mod policy;
pub mod report;
mod response;
mod route;
mod service;
mod shared;
mod snapshot;
mod window;

pub use body::ResponseBody;
pub use error::ConfigError;
pub use eval::{State, Status};
pub use future::{PERF_BUDGET, ResponseFuture};
pub use histogram::LatencyHistogram;
pub use hooks::{OnTransition, ResponseForBudgetExceeded};
pub use layer::{BudgetHandle, BudgetLayer, BudgetLayerBuilder};
pub use policy::{
    BudgetBuilder, BudgetPolicy, BudgetPolicyBuilder, ErrorClasses, Measure, Mode, OTHER,
    Objective, Regression, RouteBudget, Severity, Transition,
};
pub use report::{BudgetReport, ReportService};
pub use response::{BudgetExceeded, Deadline, ExceededKind};
pub use service::Budget;

#[cfg(test)]
mod tests;

/// This crate's README examples compile and run.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadme;
