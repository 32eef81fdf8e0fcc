//! In-process cost of `OtelLayer` per request: a bare axum router vs the layer with every request
//! sampled, 1 % sampled, and a caller that sent a sampled `traceparent`. Spans go through the SDK's
//! batch processor to an exporter that discards them.
//!
//! `cargo bench -p perf-otel --bench overhead`
#![allow(missing_docs)]

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use perf_otel::OtelLayer;
use tower::ServiceExt as _;

#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

fn router() -> Router {
    Router::new().route("/users/{id}", get(|| async { "{\"id\":1}" }))
}

fn with_otel(sampler: Sampler) -> (Router, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(NullExporter).build())
        .build();
    (
        router().layer(OtelLayer::new(provider.tracer("bench"))),
        provider,
    )
}

fn request(traceparent: bool) -> Request<Body> {
    let mut b = Request::get("/users/42?page=2")
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0");
    if traceparent {
        b = b.header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
    }
    b.body(Body::empty()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let parent = |s: Sampler| Sampler::ParentBased(Box::new(s));
    let (sampled, _p1) = rt.block_on(async { with_otel(parent(Sampler::AlwaysOn)) });
    let (one_pct, _p2) = rt.block_on(async { with_otel(parent(Sampler::TraceIdRatioBased(0.01))) });
    let cases: [(&str, Router, bool); 5] = [
        ("bare", router(), false),
        ("otel 100 % sampled", sampled.clone(), false),
        ("otel 1 % sampled", one_pct.clone(), false),
        ("otel 1 %, caller sampled (traceparent)", one_pct, true),
        ("otel 100 %, caller sampled (traceparent)", sampled, true),
    ];
    let mut g = c.benchmark_group("request");
    for (name, app, tp) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let res = app.clone().oneshot(request(tp)).await.unwrap();
                    black_box(res.into_body().collect().await.unwrap());
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
