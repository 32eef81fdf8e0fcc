//! OpenTelemetry for the showcase: every request becomes a `SERVER` span (perf-otel), handler
//! `tracing` spans become its children, and spans are exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Without it the
//! service runs the same, creating and propagating trace context without exporting.
//!
//! The export queue is bounded: when the collector is slow or down, spans are dropped, counted
//! (`otel_sdk_processor_span_processed_total{error_type="queue_full"}` on `/metrics`), and a
//! warning is logged (at most every 10 s); requests never wait. On SIGTERM/SIGINT the main
//! function drains the server, then [`shutdown`] flushes the queue (5 s at most).

use std::time::Duration;

use perf_otel::setup::SdkTracer;
use perf_otel::{OtelConfig, OtelGuard, OtelLayer, SetupError};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Builds the tracer provider from the `OTEL_*` variables (service name `showcase` unless
/// `OTEL_SERVICE_NAME` says otherwise). Call inside the Tokio runtime.
///
/// # Errors
///
/// An invalid `OTEL_*` value, with the variable and the fix in the message.
pub fn init() -> Result<OtelGuard, SetupError> {
    let guard = OtelConfig::from_env_if_endpoint()?
        .service_name("showcase")
        .install()?;
    let stats = guard.stats_handle();
    tokio::spawn(async move {
        let mut reported = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let s = stats.get();
            if s.dropped > reported {
                tracing::warn!(
                    dropped = s.dropped,
                    failed = s.failed,
                    exported = s.exported,
                    "otel: export queue full, spans dropped (is the collector reachable?)"
                );
                reported = s.dropped;
            }
        }
    });
    Ok(guard)
}

/// Installs the global `tracing` subscriber: the fmt logger filtered by `RUST_LOG` (default
/// `info`) plus the OpenTelemetry bridge for handler spans.
pub fn init_tracing(guard: &OtelGuard) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,perf_middleware=info".into());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(filter))
        .with(perf_otel::tracing_layer(guard.tracer()))
        .with(crate::db::capture())
        .init();
}

/// The request-span layer; responses carry `traceparent` so a client can look its trace up.
pub fn layer(guard: &OtelGuard) -> OtelLayer<SdkTracer> {
    OtelLayer::builder(guard.tracer())
        .inject_response_traceparent(true)
        // sqlx emits events, not spans: one CLIENT span per statement under the request's.
        .db_client_spans(true)
        .build()
        .expect("no captured headers or query keys that could be invalid")
}

/// Flushes the queued spans and logs the export counters (`otel: spans flushed …`).
pub async fn shutdown(guard: OtelGuard) {
    let export = guard.export();
    let before = guard.stats();
    match guard.shutdown().await {
        Ok(s) => tracing::info!(
            ?export,
            queued = s.queued,
            exported = s.exported,
            failed = s.failed,
            dropped = s.dropped,
            "otel: spans flushed"
        ),
        Err(e) => tracing::warn!(
            ?export,
            queued = before.queued,
            exported = before.exported,
            failed = before.failed,
            dropped = before.dropped,
            "otel: {e}"
        ),
    }
}
