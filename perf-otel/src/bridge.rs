//! `tracing` integration through `tracing-opentelemetry` 0.34.

use opentelemetry::trace::Tracer;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Crates of the export path: their spans would describe the export of spans and feed back into it.
const EXPORT_PATH: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "reqwest",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

fn is_export_path(target: &str) -> bool {
    EXPORT_PATH.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// A `tracing-opentelemetry` layer for the application's own `tracing` spans, configured for HTTP
/// services: spans entered inside a handler behind [`OtelLayer`](crate::OtelLayer) become children
/// of the request span; the per-span noise attributes (`code.*`, `thread.*`, `target`, `busy_ns`,
/// `idle_ns`) are off; spans of the export path itself (`h2`, `hyper`, `tonic`, `tower`, `reqwest`,
/// `opentelemetry*`) are not exported — they would describe, and multiply, the export of spans.
/// Use the same tracer (or one from the same provider) as the server layer; any OpenTelemetry
/// API [`Tracer`] works (the SDK's `SdkTracer` in practice).
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
pub fn tracing_layer<S, T>(tracer: T) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            !is_export_path(meta.target())
        }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_path_targets_are_matched_by_crate() {
        assert!(super::is_export_path("h2::proto::streams"));
        assert!(super::is_export_path("tonic"));
        assert!(!super::is_export_path("h2o_service::handler"));
        assert!(!super::is_export_path("my_app"));
    }
}
