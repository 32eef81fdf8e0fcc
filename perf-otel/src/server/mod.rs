//! [`OtelLayer`]: one OpenTelemetry `SERVER` span per HTTP request, per the stable HTTP server
//! semantic conventions (semconv v1.44).
//!
//! - **Sampling first.** The span is started with only its kind, its parent (extracted from
//!   `traceparent`/`tracestate`/`baggage`) and the method as name, so the provider's sampler
//!   (e.g. `ParentBased(TraceIdRatioBased(0.01))`) decides before any attribute is built. An
//!   unsampled request costs the SDK's decision and one context (its span's ids, so the handler,
//!   its outgoing requests and the response `traceparent` continue the trace): no strings, no boxed
//!   span, no body tracking. Requests that carry none of the default propagator's headers skip
//!   extraction.
//! - **Name** `{method} {http.route}` with the route template that
//!   [`perf_middleware::route_template`] reads (axum `MatchedPath`, or a
//!   [`perf_middleware::RouteTemplate`] in the request or — for a router that records it only
//!   there — the response extensions); just `{method}` when no route matched; `HTTP` for methods
//!   that are not [`perf_middleware::KnownMethod`]s. Never the raw path. Apply the layer with axum's
//!   `Router::layer` (or `route_layer`) so the route is known when the request arrives; around the
//!   whole router, put a [`perf_middleware::MatchRouteLayer`] outermost, as for every layer of the
//!   family.
//! - **Attributes**, each only when known (never an empty string): `http.request.method`
//!   ([`perf_middleware::KnownMethod`]: the semconv methods including `QUERY`, else `_OTHER` +
//!   `http.request.method_original`; the same value the family's metrics label), `url.path`,
//!   `url.scheme`, `url.query` (signature keys `REDACTED`), `http.route`, `http.response.status_code` (int), `error.type`,
//!   `server.address`/`server.port`, `client.address`, `network.peer.address`/`.port`,
//!   `network.protocol.version`, `user_agent.original`, and opt-in `http.{request,response}.header.*`.
//! - **Status**: 5xx → `Error` with `error.type` = the code; 4xx and below stay `Unset`; an inner
//!   service error or a body error → `Error` with `error.type` = the error's type name; a request
//!   whose future or body is dropped early → `Error` with `error.type = "cancelled"`.
//! - **Lifetime**: the span ends at the end of the response body ([`SpanEnd::Body`], default) or at
//!   the response head ([`SpanEnd::Headers`]).
//! - The trace id goes into the request extensions as [`perf_middleware::TraceId`], so the
//!   slow-request log of `perf-middleware` (placed inside this layer) carries it.
//! - The handler is polled with the request span as the current OpenTelemetry context: spans it
//!   starts — directly or through `tracing_layer` (feature `tracing`) — are children.
//! - **Database** (feature `db`): with a `perf_middleware::db::DbLayer` *inside* this layer, the
//!   span gets the request's `DbSummary` (statements that ended before the response head):
//!   `perf.db.query_count` (int), `perf.db.duration` (double, seconds), `perf.db.n_plus_one`
//!   (int: findings), and one span event `perf.db.n_plus_one` per finding with
//!   `perf.db.fingerprint` (the normalized statement, at most 255 bytes), `perf.db.count` and
//!   `perf.db.duration`. A request that ran no statement gets none of them. With
//!   [`OtelLayerBuilder::db_client_spans`] each statement also gets a `CLIENT` child span per the
//!   database semantic conventions (off by default: leave it off when sqlx's own `db.query` spans
//!   or SeaORM's are exported).
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use http::{Request, StatusCode};
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use perf_otel::OtelLayer;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { "hi" }))
//!     .layer(
//!         OtelLayer::builder(provider.tracer("my-service"))
//!             .inject_response_traceparent(true)
//!             .build()
//!             .expect("valid settings"),
//!     );
//!
//! let req = Request::get("/users/7")
//!     .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
//!     .body(axum::body::Body::empty())
//!     .unwrap();
//! let res = app.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert!(res.headers()["traceparent"].to_str().unwrap().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! drop(res); // the body ends the span
//!
//! let spans = exporter.get_finished_spans().unwrap();
//! assert_eq!(spans[0].name, "GET /users/{id}");
//! assert_eq!(spans[0].parent_span_id.to_string(), "00f067aa0ba902b7");
//! # }
//! ```

mod address;
mod attributes;
mod body;
mod builder;
#[cfg(feature = "db")]
mod db;
mod error;
mod future;
mod layer;
mod service;
mod span;

pub use body::ResponseBody;
pub use builder::OtelLayerBuilder;
pub use error::ConfigError;
pub use future::ResponseFuture;
pub use layer::{OtelLayer, SpanEnd};
pub use service::Otel;

#[cfg(test)]
mod tests;
