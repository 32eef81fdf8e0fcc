//! `tracing` integration through `tracing-opentelemetry` 0.34.

use opentelemetry_sdk::trace::SdkTracer;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// A `tracing-opentelemetry` layer for the application's own `tracing` spans, configured for HTTP
/// services: spans entered inside a handler behind [`OtelLayer`](crate::OtelLayer) become children
/// of the request span; the per-span noise attributes (`code.*`, `thread.*`, `target`, `busy_ns`,
/// `idle_ns`) are off. Use the same tracer (or one from the same provider) as the server layer.
///
/// ```
/// use opentelemetry::trace::TracerProvider as _;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let provider = SdkTracerProvider::builder().build();
/// let subscriber = tracing_subscriber::registry().with(perf_otel::tracing_layer(provider.tracer("app")));
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("load_user").entered();
/// });
/// ```
pub fn tracing_layer<S>(tracer: SdkTracer) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
}
