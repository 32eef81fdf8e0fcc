//! Behaviour of the server layer, by topic: `attributes` (name, attributes, methods, addresses),
//! `lifecycle` (status, end, cancellation, errors), `propagation` (context in and out). The
//! helpers here build a router behind the layer and read the exported spans.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracer, SdkTracerProvider, SpanData,
};
use tower::ServiceExt;

use super::*;

mod attributes;
mod lifecycle;
mod propagation;

pub(super) const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(super) const PARENT: &str = "00f067aa0ba902b7";

pub(super) fn provider(sampler: Sampler) -> (InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(sampler)
        .build();
    (exporter, provider)
}

pub(super) fn always() -> (InMemorySpanExporter, SdkTracerProvider) {
    provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
}

pub(super) fn app(layer: OtelLayer<SdkTracer>) -> Router {
    app_with(layer)
}

/// [`app`] behind a layer with any tracer.
pub(super) fn app_with<T>(layer: OtelLayer<T>) -> Router
where
    T: opentelemetry::trace::Tracer + Clone + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/hang",
            get(|| async { std::future::pending::<&'static str>().await }),
        )
        .route(
            "/trace-id",
            get(|req: Request<Body>| async move {
                req.extensions()
                    .get::<perf_middleware::TraceId>()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            }),
        )
        .route(
            "/baggage",
            get(|| async {
                let cx = Context::current();
                format!(
                    "{}|{}",
                    cx.baggage()
                        .get("tenant")
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default(),
                    cx.span().span_context().trace_id()
                )
            }),
        )
        .layer(layer)
}

pub(super) fn request(uri: &str) -> http::request::Builder {
    Request::get(uri)
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header("host", "api.example.com:8443")
        .header("user-agent", "curl/8.5")
}

pub(super) async fn send(app: Router, req: Request<Body>) -> Response<Vec<u8>> {
    let res = app.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    Response::from_parts(parts, bytes)
}

pub(super) fn attrs(span: &SpanData) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect()
}

pub(super) fn only_span(exporter: &InMemorySpanExporter) -> SpanData {
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    spans.into_iter().next().unwrap()
}

pub(super) fn s(v: &str) -> Value {
    Value::from(v.to_owned())
}
