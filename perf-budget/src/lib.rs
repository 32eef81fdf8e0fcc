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
//! Per request: two clock readings, one route lookup, and 3 + (latency objectives) relaxed
//! atomic adds into the current slot; no lock, no allocation (except the text of the
//! `Perf-Budget` header in `annotate` mode). Evaluation runs on the request path at most once
//! per slot, under a `try_lock` that never waits. A slot is claimed for a new epoch by one CAS;
//! increments racing with that rotation can be lost (a few per slot boundary).
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
//! Add the layer with axum's `Router::layer` so `MatchedPath` is set; put it outside queues
//! (`Buffer`, `ConcurrencyLimit`) so in-process queueing counts. Without `MatchedPath` (plain
//! hyper, `ServiceBuilder` outside a router) the configured templates are matched against the
//! path with `matchit`, or perf-middleware's `RouteTemplate` extension is used. Requests that
//! match no budget share one `__other__` entry: raw paths never create state.
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
//!     .layer(layer)
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
