//! Bench variants for perf-otel. Spans go through the SDK's batch processor to an exporter that
//! discards them (no network I/O in the bench, but the queueing cost is paid).
//!
//! - `otel`: `OtelLayer`, every request sampled (`ParentBased(AlwaysOn)`).
//! - `otel-1pct`: `OtelLayer`, `ParentBased(TraceIdRatioBased(0.01))`.
//! - `peer-axum-tracing-otel-sampled`: axum-tracing-opentelemetry with the `otel::tracing=trace`
//!   directive its docs require (without it the TRACE-level request spans are filtered out and no
//!   OpenTelemetry span exists), same processor and sink.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};

/// Discards every batch.
#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(NullExporter).build())
        .build()
}

/// The router of variant `name`, if this module defines it.
pub(crate) fn variant(name: &str) -> Option<axum::Router> {
    let ratio = match name {
        "otel" => 1.0,
        "otel-1pct" => 0.01,
        "peer-axum-tracing-otel-sampled" => return Some(peer_sampled()),
        _ => return None,
    };
    let provider = provider(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        ratio,
    ))));
    let layer = perf_otel::OtelLayer::new(provider.tracer("bench"));
    Some(crate::routes().layer(layer))
}

fn peer_sampled() -> axum::Router {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let provider = provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let tracer = provider.tracer("bench");
    opentelemetry::global::set_tracer_provider(provider);
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(
            "info,otel::tracing=trace",
        ))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .init();
    crate::routes()
        .layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
        .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default())
}
