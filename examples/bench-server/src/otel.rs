//! Bench variants for perf-otel. Spans go through the SDK's batch processor to an exporter that
//! discards them (no network I/O in the bench, but the queueing cost is paid).
//!
//! - `otel`: `OtelLayer`, every request sampled (`ParentBased(AlwaysOn)`).
//! - `otel-1pct`: `OtelLayer`, `ParentBased(TraceIdRatioBased(0.01))`.
//! - `sdk-alone`, `sdk-alone-1pct`: a reference, not a product — what the OpenTelemetry SDK alone
//!   costs per request in the same stack: a SERVER span started with the API, the bench request's
//!   attributes (static strings) set and ended into the same processor, with no context, no
//!   propagation and no body tracking. The lower bound for any layer built on the SDK.
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
        "sdk-alone" => return Some(sdk_alone(1.0)),
        "sdk-alone-1pct" => return Some(sdk_alone(0.01)),
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

/// The `sdk-alone` reference variants: the SDK's own cost per span (see the module docs).
fn sdk_alone(ratio: f64) -> axum::Router {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};

    #[derive(Clone)]
    struct SdkAlone<S> {
        inner: S,
        tracer: opentelemetry_sdk::trace::SdkTracer,
    }

    impl<S: tower::Service<axum::extract::Request>> tower::Service<axum::extract::Request>
        for SdkAlone<S>
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, req: axum::extract::Request) -> S::Future {
            let mut span = self
                .tracer
                .span_builder("GET")
                .with_kind(SpanKind::Server)
                .start_with_context(&self.tracer, &opentelemetry::Context::new());
            if span.is_recording() {
                span.update_name("GET /json");
                span.set_attributes([
                    KeyValue::new("http.request.method", "GET"),
                    KeyValue::new("url.path", "/json"),
                    KeyValue::new("url.scheme", "http"),
                    KeyValue::new("http.route", "/json"),
                    KeyValue::new("server.address", "127.0.0.1"),
                    KeyValue::new("server.port", 3900_i64),
                    KeyValue::new("network.protocol.version", "1.1"),
                    KeyValue::new("http.response.status_code", 200_i64),
                ]);
                span.end();
            }
            self.inner.call(req)
        }
    }

    let provider = provider(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        ratio,
    ))));
    let tracer = provider.tracer("bench");
    crate::routes().layer(tower::layer::layer_fn(move |inner| SdkAlone {
        inner,
        tracer: tracer.clone(),
    }))
}
