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
//! ([`eval`]). States go `ok → warning → breached → ok` with hysteresis; transitions are logged
//! (`tracing`, target `perf_budget`), counted (`perf_budget_transitions_total`) and passed to
//! [`on_transition`](BudgetPolicyBuilder::on_transition).
//!
//! A log-linear histogram ([`histogram`]) only *reports* p50/p95/p99, within 1.56 % relative
//! error.
//!
//! # Recording cost
//!
//! Per request: two clock readings (start, end), one route lookup, and 2 + (1 per latency
//! objective missed) + (1 if an error) relaxed atomic adds into the current slot; no lock, no
//! allocation (except the text of the `Perf-Budget` header in `annotate` mode and the timer of
//! mode `deadline`). An axum `MatchedPath` is resolved once per route, then found by the address
//! of its string; without one, a path equal to a static template takes one hash lookup, any
//! other one `matchit` match. Evaluation runs on the request path at most once per slot, under a
//! `try_lock` that never waits. A slot is claimed for a new epoch by one CAS; increments racing
//! with that rotation can be lost (a few per slot boundary). Metrics are published from the
//! window at evaluation time, never per request. `cargo bench -p perf-budget --bench record`
//! measures a clock reading and the end of a request (together, the record cost), and the whole
//! layer around a no-op service.
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
//! With axum, answer with axum's `Body`: [`BudgetLayer::axum_body`] passes the handler's body
//! through, where the default [`ResponseBody`] wrapper is boxed again by axum on every response.
//! Two placements, with the same budgets and modes:
//!
//! - **`Router::layer(layer.axum_body())`**: the route of each request is axum's `MatchedPath`.
//!   axum boxes every layered route a second time (an identity layer alone costs 2–5 % of a
//!   tiny handler's throughput).
//! - **Around the whole `Router`** — the cheapest placement (bench variant `budget-outer`):
//!   ```
//!   # use std::time::Duration;
//!   # use axum::{Router, ServiceExt, extract::Request, routing::get};
//!   # use perf_budget::{BudgetLayer, BudgetPolicy};
//!   # use tower::Layer as _;
//!   # let policy = BudgetPolicy::builder()
//!   #     .budget("users", "GET /users/{id}", |b| b.p95(Duration::from_millis(200)))
//!   #     .build()?;
//!   let router: Router = Router::new().route("/users/{id}", get(|| async { "{}" }));
//!   // `with_state` turns the handlers into routes once (`.with_state(())` without state): a
//!   // Router called as a plain service would do that on every request.
//!   let app = BudgetLayer::new(policy).axum_body().layer(router.with_state::<()>(()));
//!   # async fn serve(app: perf_budget::Budget<Router, perf_budget::AxumBody>) {
//!   let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//!   axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await.unwrap();
//!   # }
//!   # Ok::<(), perf_budget::ConfigError>(())
//!   ```
//!   The layer sees no `MatchedPath` there, so the configured templates are matched against
//!   the path with `matchit` (axum's own matcher, same syntax and priorities). It only knows
//!   the budgets' templates: if the app also routes `/users/me` apart from a budgeted
//!   `/users/{id}`, give `/users/me` its own budget or it counts towards `/users/{id}`.
//!
//! Without axum (plain hyper, `ServiceBuilder`), perf-middleware's `RouteTemplate` extension
//! is used when a router inserts it, else the same `matchit` match. Requests that match no
//! budget share one `__other__` entry: raw paths never create state.
//!
//! # Metrics
//!
//! Through the [`metrics`](::metrics) facade, updated at each evaluation (once per slot):
//! `perf_budget_requests_total`, `perf_budget_errors_total`, `perf_budget_shed_total`
//! (labels `budget`, `route`, `method`), `perf_budget_slow_requests_total` (`budget`,
//! `objective`, `threshold_seconds`), `perf_budget_state` (0 ok, 1 warning, 2 breached),
//! `perf_budget_burn_rate` (`window` = short | long), `perf_budget_transitions_total`. These are
//! what `perf-budget rules` builds its SLO rules on. Report quantiles are per instance; use the
//! counters for fleet-wide numbers.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `config` | yes | [`BudgetPolicy::from_toml`] |
//! | `axum` | yes | `MatchedPath` routes, [`axum::report`](crate::axum::report) handler |
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
//!     .layer(layer.axum_body())
//!     .route_service("/perf/budgets", perf_budget::ReportService::new(handle.clone()));
//! handle.report().assert_pass();
//! # Ok::<(), perf_budget::ConfigError>(())
//! ```

#[cfg(feature = "axum")]
pub mod axum;
mod body;
#[cfg(feature = "config")]
pub mod config;
mod error;
pub mod eval;
mod future;
pub mod histogram;
mod layer;
pub mod policy;
pub mod report;
mod response;
mod service;
mod shared;
mod window;

#[cfg(feature = "axum")]
pub use body::AxumBody;
pub use body::{BodyKind, ResponseBody, Wrapped};
pub use error::{ConfigError, ConfigErrorKind};
pub use eval::{State, Status};
pub use future::{PERF_BUDGET, ResponseFuture};
pub use layer::{BudgetHandle, BudgetLayer};
pub use policy::{
    BudgetBuilder, BudgetPolicy, BudgetPolicyBuilder, ErrorClasses, Measure, Mode, OTHER,
    Objective, Regression, RouteBudget, Severity, Transition,
};
pub use report::{BudgetReport, ReportService};
pub use response::{BudgetExceeded, Deadline, ExceededReason};
pub use service::Budget;

#[cfg(test)]
mod tests;

/// This crate's README examples compile and run.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadme;
