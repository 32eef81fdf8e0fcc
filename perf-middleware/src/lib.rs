//! The foundation of the tower-perf family, and its timing and metrics layer.
//!
//! # The foundation (always compiled)
//!
//! With `default-features = false` this crate is only the request vocabulary the family shares,
//! as `tracing-core` is for `tracing`: no metrics facade, no exporter, no runtime. `perf-budget`,
//! `perf-otel` and `perf-cache-layer` depend on it and on nothing else of the family.
//!
//! | item | what it is |
//! |---|---|
//! | [`RouteTemplate`], [`route_template`], [`UNMATCHED_ROUTE`] | the route a router recorded (axum's `MatchedPath` or a `RouteTemplate`), read the same way by every layer, and the one value for requests that matched none |
//! | [`RouteTable`], [`MatchRouteLayer`] | templates matched against the path (`matchit`, as axum) for layers outside the router, and for the `perf-budget` CLI |
//! | [`KnownMethod`] | the methods the semantic conventions call known; every other is `_OTHER` |
//! | [`Scheme`] | the `url.scheme` of requests whose URI has none |
//! | [`TraceId`] | the trace id a tracing layer hands to the others (slow logs, budget logs) |
//! | [`server_timing`] | the `Server-Timing` header: one [`ServerTiming`] switch and one [`append`](server_timing::append) |
//! | [`completion`] | the completion guard: finish per-request state once, at the end of the body, on an error, or as cancelled |
//! | [`ConfigError`] | what `build()` returns, the shape every crate of the family uses |
//!
//! # The layer (feature `metrics`, on by default)
//!
//! [`PerfLayer`] times requests to the last body byte, records per-route RED metrics with
//! OpenTelemetry HTTP semantic-convention names through the [`metrics`](::metrics) facade, logs
//! slow requests and adds `Server-Timing`. See its module docs for what is measured, the metric
//! table and placement.
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use perf_middleware::{PerfLayer, ServerTiming};
//!
//! let perf = PerfLayer::builder()
//!     .slow_threshold(Duration::from_millis(300))
//!     .server_timing(ServerTiming::Always)
//!     .build()
//!     .expect("valid configuration");
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .layer(perf);
//! # let _ = app;
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | [`route_template`] reads axum's `MatchedPath`; `PerfLayer::around` |
//! | `metrics` | yes | [`PerfLayer`]: timing, slow log, metrics through the `metrics` facade, `Server-Timing` |
//! | `prometheus` | no | `prometheus`: the `metrics-exporter-prometheus` install helper and the `/metrics` service |
//! | `db` | no | [`db`]: database queries per request from sqlx's `tracing` events: fingerprints, N+1 detection, slow statements, `Server-Timing` `db` |
//! | `page` | no | [`page`]: the live `/perf` page (`PerfPage`), recorded by the layer (`PerfLayerBuilder::page`) |
//! | `full` | no | all of the above |

pub mod completion;
mod error;
mod method;
mod route;
mod scheme;
pub mod server_timing;
mod trace_id;

#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "metrics")]
mod layer;
#[cfg(feature = "page")]
pub mod page;

pub use completion::Outcome;
pub use error::ConfigError;
pub use method::KnownMethod;
pub use route::{
    MatchRoute, MatchRouteLayer, RouteTable, RouteTableBuilder, RouteTemplate, SkipRoutes,
    UNMATCHED_ROUTE, route_template,
};
pub use scheme::Scheme;
pub use server_timing::ServerTiming;
pub use trace_id::TraceId;

#[cfg(feature = "prometheus")]
pub use layer::prometheus;
#[cfg(feature = "metrics")]
pub use layer::{
    Completion, DEFAULT_SLOW_THRESHOLD, OnComplete, Perf, PerfLayer, PerfLayerBuilder,
    ResponseBody, ResponseFuture, metrics,
};
#[cfg(all(feature = "metrics", feature = "axum"))]
pub use layer::{PerfRouter, PerfRouterFuture};

/// This crate's README examples compile and run.
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../README.md")]
struct CrateReadme;
