use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::processor::{Counters, ExportStats, StatsHandle};
use super::{Export, SetupError};

/// Owns the tracer provider. [`shutdown`](OtelGuard::shutdown) flushes the queued spans with a
/// timeout, on a blocking thread, so it works on current-thread runtimes too. Dropping the guard
/// without calling it flushes from a helper thread, waiting at most the timeout (on a
/// current-thread runtime with gRPC export that wait cannot succeed — call `shutdown().await`).
#[must_use = "dropping the guard shuts export down"]
pub struct OtelGuard {
    provider: Option<SdkTracerProvider>,
    stats: Arc<Counters>,
    timeout: Duration,
    export: Export,
    /// (`tracecontext`, `baggage`) from `OTEL_PROPAGATORS`.
    propagators: (bool, bool),
}

impl fmt::Debug for OtelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelGuard")
            .field("export", &self.export)
            .field("stats", &self.stats.snapshot())
            .field("timeout", &self.timeout)
            .field("propagators", &self.propagators)
            .finish_non_exhaustive()
    }
}

impl OtelGuard {
    pub(super) fn new(
        provider: SdkTracerProvider,
        stats: Arc<Counters>,
        timeout: Duration,
        export: Export,
        propagators: (bool, bool),
    ) -> Self {
        Self {
            provider: Some(provider),
            stats,
            timeout,
            export,
            propagators,
        }
    }

    /// A tracer for [`OtelLayer`](crate::OtelLayer) and [`tracing_layer`](crate::tracing_layer),
    /// with instrumentation scope `perf-otel`.
    pub fn tracer(&self) -> SdkTracer {
        let scope = InstrumentationScope::builder("perf-otel")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        self.provider().tracer_with_scope(scope)
    }

    /// The propagator chosen by `OTEL_PROPAGATORS` (default: W3C trace context + baggage).
    pub fn propagator(&self) -> TextMapCompositePropagator {
        let mut list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        if self.propagators.0 {
            list.push(Box::new(TraceContextPropagator::new()));
        }
        if self.propagators.1 {
            list.push(Box::new(BaggagePropagator::new()));
        }
        TextMapCompositePropagator::new(list)
    }

    /// An [`OtelLayer`](crate::OtelLayer) builder with this guard's tracer and propagator.
    pub fn layer(&self) -> crate::OtelLayerBuilder<SdkTracer> {
        crate::OtelLayer::builder(self.tracer()).known_propagator(self.propagator())
    }

    /// The provider, for tracers with other scopes.
    pub fn provider(&self) -> &SdkTracerProvider {
        self.provider
            .as_ref()
            .unwrap_or_else(|| unreachable!("provider only taken by shutdown or drop"))
    }

    /// The transport in use.
    pub fn export(&self) -> Export {
        self.export
    }

    /// Export counters so far.
    pub fn stats(&self) -> ExportStats {
        self.stats.snapshot()
    }

    /// A cheap, cloneable reader of the export counters (for a periodic log or a metrics gauge).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.stats.clone())
    }

    /// Exports what is queued and stops the exporter, waiting at most the shutdown timeout.
    /// Spans ended afterwards are discarded.
    ///
    /// # Errors
    ///
    /// [`SetupError::ShutdownTimeout`] or [`SetupError::Shutdown`]; the stats are then in
    /// [`OtelGuard::stats`] of nothing — log the error, the process is exiting anyway.
    pub async fn shutdown(mut self) -> Result<ExportStats, SetupError> {
        let Some(provider) = self.provider.take() else {
            return Ok(self.stats());
        };
        let timeout = self.timeout;
        let task = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout));
        match tokio::time::timeout(timeout + Duration::from_millis(500), task).await {
            Err(_) => Err(SetupError::ShutdownTimeout(timeout)),
            Ok(Err(join)) => Err(SetupError::Shutdown(join.to_string())),
            Ok(Ok(Err(e))) => Err(SetupError::Shutdown(e.to_string())),
            Ok(Ok(Ok(()))) => Ok(self.stats()),
        }
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            let timeout = self.timeout;
            let spawned = std::thread::Builder::new()
                .name("perf-otel-shutdown".into())
                .spawn(move || {
                    let _ = tx.send(provider.shutdown_with_timeout(timeout));
                });
            if spawned.is_ok() {
                let _ = rx.recv_timeout(timeout + Duration::from_millis(500));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, Tracer as _};
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;
    use crate::setup::OtelConfig;
    use crate::setup::processor::tests::provider_with;

    fn vars<'a>(pairs: &'a [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn env_propagators_select_the_fields() {
        let fields = |pairs: &'static [(&'static str, &'static str)]| {
            let guard = OtelConfig::from_vars(vars(pairs))
                .unwrap()
                .export(Export::None)
                .install()
                .unwrap();
            let mut f: Vec<String> = guard.propagator().fields().map(str::to_owned).collect();
            f.sort();
            f
        };
        assert_eq!(fields(&[]), ["baggage", "traceparent", "tracestate"]);
        assert_eq!(
            fields(&[("OTEL_PROPAGATORS", "tracecontext")]),
            ["traceparent", "tracestate"]
        );
        assert!(fields(&[("OTEL_PROPAGATORS", "none")]).is_empty());
        let err = OtelConfig::from_vars(vars(&[("OTEL_PROPAGATORS", "b3")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tracecontext, baggage, none"), "{err}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn export_none_still_creates_propagating_spans() {
        let guard = OtelConfig::from_vars(vars(&[("OTEL_TRACES_EXPORTER", "none")]))
            .unwrap()
            .install()
            .unwrap();
        let span = guard.tracer().start("x");
        assert!(span.span_context().is_valid());
        drop(span);
        assert_eq!(guard.shutdown().await.unwrap(), ExportStats::default());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn shutdown_flushes_on_a_current_thread_runtime() {
        let exporter = InMemorySpanExporter::default();
        let (provider, stats) = provider_with(16, exporter.clone());
        let guard = OtelGuard {
            provider: Some(provider),
            stats,
            timeout: Duration::from_secs(5),
            export: Export::None,
            propagators: (true, true),
        };
        guard.tracer().start("last").end();
        let stats = guard.shutdown().await.unwrap();
        // Exported before the exporter was shut down (which clears the in-memory records).
        assert_eq!(stats.exported, 1);
        assert!(exporter.is_shutdown_called());
    }
}
