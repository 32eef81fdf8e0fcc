//! [`PerfLayer`]: request timing to the last body byte, per-route RED metrics with OpenTelemetry
//! HTTP semantic-convention names, a slow-request log and `Server-Timing` (feature `metrics`).
//!
//! # Why one layer
//!
//! Metrics, the slow log, `Server-Timing` and hooks all need the same two clock readings and the
//! same end-of-body signal. [`PerfLayer`] takes them once, wraps the response body once (with the
//! family's [completion guard](crate::completion)), and feeds every consumer from one
//! [`Completion`] record. Each consumer can be switched off in the [builder](PerfLayerBuilder),
//! and [`OnComplete`] hooks receive the same record.
//!
//! # What is measured
//!
//! - **duration**: from the request entering the layer to the end of the response body (the
//!   last data frame, trailers, or the body reporting end-of-stream), or to the error or
//!   cancellation. This is what `http.server.request.duration` records.
//! - **time to headers**: until the inner service produced the response head; in hooks, the
//!   slow log and the opt-in `perf.http.server.time_to_headers` histogram.
//! - **outcome**: [`Outcome::Cancelled`] when the client went away first (the future or the
//!   body was dropped), recorded with `error.type="cancelled"`.
//!
//! # Metrics
//!
//! Recorded through the [`metrics`](::metrics) facade, so any exporter works;
//! [`prometheus::install`](crate::prometheus::install) (feature `prometheus`) sets up `metrics-exporter-prometheus` with the right buckets.
//!
//! | metric (Prometheus name) | type | labels |
//! |---|---|---|
//! | `http.server.request.duration` (`http_server_request_duration_seconds`) | histogram, s | method, route, status, scheme, error type |
//! | `http.server.active_requests` (`http_server_active_requests`) | gauge | method, scheme |
//! | `http.server.request.body.size` (`http_server_request_body_size_bytes`) | histogram, B | as duration |
//! | `http.server.response.body.size` (`http_server_response_body_size_bytes`) | histogram, B | as duration |
//! | `perf.http.server.time_to_headers` (opt-in) | histogram, s | as duration |
//!
//! Labels: `http_request_method` (the nine RFC 9110 methods and `QUERY`; anything else is
//! `_OTHER`), `http_route` (axum's `MatchedPath` template or a [`RouteTemplate`](crate::RouteTemplate) extension;
//! requests that matched no route share the one value [`UNMATCHED_ROUTE`](crate::UNMATCHED_ROUTE) — **never the raw
//! path**, so label sets stay bounded whatever clients send), `http_response_status_code`,
//! `url_scheme`, and `error_type` only on failure (the status code for 5xx, `cancelled`,
//! `service_error` or `body_error`). The request body size is recorded for requests that
//! declare it (`Content-Length`, or a non-empty body with an exact size hint), as OpenTelemetry's
//! Java instrumentation does; the request body type is left untouched, so any inner service fits.
//!
//! The active-requests gauge is decremented when the per-request state is dropped, whatever
//! the outcome, so cancelled requests never leak it.
//!
//! # Slow-request log
//!
//! A WARN event with target `perf_middleware::slow` for each request whose duration reaches the
//! threshold (global, with per-route overrides), with numeric fields `latency_ms`,
//! `threshold_ms`, `time_to_headers_ms`, `status`, `response_body_bytes` and `route`, `method`,
//! `outcome`, and `trace_id` when a tracing layer put a [`TraceId`](crate::TraceId) into the request. The raw
//! path and query are logged only when enabled.
//!
//! # Placement
//!
//! - **`Router::layer`** (or `route_layer`): the router has recorded `MatchedPath` when the
//!   request reaches the layer. The simplest setup; axum then boxes the layered service, its
//!   future and its body for every route and request.
//! - **Around the whole router**, with [`PerfLayer::around`]: one layer in front of the router,
//!   no per-route boxing, and routing, 404s and 405s are inside the measurement. The router
//!   records its template only after the layer saw the request, so the layer matches the path
//!   against a [`RouteTable`](crate::RouteTable) (`matchit`, as axum) given with
//!   [`route_table`](PerfLayerBuilder::route_table). [`RouteTable::builder`](crate::RouteTable::builder) records the
//!   templates while the router is built, so each is written once. The cheapest placement.
//! - **`ServiceBuilder` / plain hyper**: the route comes from a [`RouteTemplate`](crate::RouteTemplate) extension
//!   (set by hand, or by [`MatchRouteLayer`](crate::MatchRouteLayer) from a [`RouteTable`](crate::RouteTable)), or from the route table.
//!
//! Without any of these, requests are labelled unmatched.
//!
//! # Cost
//!
//! Per-route state (label, slow-log threshold, ignore flag, metric handles per label set) is
//! resolved the first time a route template or label set is seen and then found with lock-free
//! lookups; the request path allocates nothing itself (the `Server-Timing` value, when enabled,
//! is one header value). What remains per request: three clock readings (start, response head,
//! end of body), the active-requests gauge up and down, and one sample per histogram, whose cost
//! is the exporter's (`metrics-exporter-prometheus` timestamps and queues each sample). Numbers:
//! the workspace's `BENCHMARKS.md` and `examples/cost_middleware.rs`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use perf_middleware::{PerfLayer, ServerTiming, prometheus};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = prometheus::install()?;
//! let perf = PerfLayer::builder()
//!     .slow_threshold(Duration::from_millis(300))
//!     .server_timing(ServerTiming::Always)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .layer(perf)
//!     .route_service("/metrics", prometheus::MetricsService::new(handle));
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # drop(listener); let _ = app; return Ok(());
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!

#[cfg(feature = "axum")]
mod around;
mod body;
mod builder;
mod future;
mod hooks;
pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod record;
mod registry;
mod service;
#[cfg(test)]
mod tests;

#[cfg(feature = "axum")]
pub use around::{PerfRouter, PerfRouterFuture};
pub use body::ResponseBody;
pub use builder::{DEFAULT_SLOW_THRESHOLD, PerfLayer, PerfLayerBuilder};
pub use future::ResponseFuture;
pub use hooks::{Completion, OnComplete};
pub use service::Perf;
