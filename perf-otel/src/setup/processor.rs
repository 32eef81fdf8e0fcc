//! Counting the spans on their way out: a bounded admission in front of the SDK's batch
//! processor (every drop is counted here; the SDK's own counter is private) and an exporter
//! wrapper that counts exported and failed spans.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor};

/// Counts of spans handed to export, for self-observability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExportStats {
    /// Sampled spans that ended and entered the export queue.
    pub queued: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans in batches the exporter failed to deliver (after its retries).
    pub failed: u64,
    /// Spans dropped because the export queue was full (collector slow or unreachable).
    pub dropped: u64,
}

/// Reads the export counters of an [`OtelGuard`](super::OtelGuard); clones share them.
#[derive(Debug, Clone)]
pub struct StatsHandle(pub(super) Arc<Counters>);

impl StatsHandle {
    /// The counters now.
    pub fn get(&self) -> ExportStats {
        self.0.snapshot()
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pending: AtomicUsize,
    queued: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ExportStats {
        ExportStats {
            queued: self.queued.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Admits ended spans into the batch processor while fewer than `capacity` are pending export,
/// so every drop is counted here (the SDK's own counter is private).
#[derive(Debug)]
pub(super) struct AdmissionProcessor {
    inner: BatchSpanProcessor,
    capacity: usize,
    stats: Arc<Counters>,
}

impl AdmissionProcessor {
    pub(super) fn new(inner: BatchSpanProcessor, capacity: usize, stats: Arc<Counters>) -> Self {
        Self {
            inner,
            capacity,
            stats,
        }
    }
}

impl SpanProcessor for AdmissionProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.stats.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.stats.pending.fetch_sub(1, Ordering::AcqRel);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("otel.sdk.processor.span.processed", "error.type" => "queue_full")
                .increment(1);
            return;
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[derive(Debug)]
pub(super) struct CountingExporter<E> {
    inner: E,
    stats: Arc<Counters>,
}

impl<E> CountingExporter<E> {
    pub(super) fn new(inner: E, stats: Arc<Counters>) -> Self {
        Self { inner, stats }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.stats.pending.fetch_sub(n, Ordering::AcqRel);
        let counter = if result.is_ok() {
            &self.stats.exported
        } else {
            &self.stats.failed
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{BatchConfigBuilder, InMemorySpanExporter, SdkTracerProvider};

    pub(in crate::setup) fn provider_with(
        capacity: usize,
        exporter: InMemorySpanExporter,
    ) -> (SdkTracerProvider, Arc<Counters>) {
        let stats = Arc::new(Counters::default());
        let counting = CountingExporter {
            inner: exporter,
            stats: stats.clone(),
        };
        // The SDK's queue and batch are larger than the admission capacity, so no batch fills up
        // and no export starts on the processor thread before `force_flush`: the counts below do
        // not depend on when that thread runs.
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(64)
            .with_max_export_batch_size(64)
            .with_scheduled_delay(Duration::from_secs(3600))
            .build();
        let inner = BatchSpanProcessor::builder(counting)
            .with_batch_config(batch)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(AdmissionProcessor {
                inner,
                capacity,
                stats: stats.clone(),
            })
            .build();
        (provider, stats)
    }

    #[test]
    fn full_queue_drops_are_counted_and_flush_exports_the_rest() {
        let exporter = InMemorySpanExporter::default();
        let (provider, stats) = provider_with(4, exporter.clone());
        let tracer = provider.tracer("t");
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..10 {
                tracer.start("op").end();
            }
        });
        let s = stats.snapshot();
        assert_eq!((s.queued, s.dropped), (4, 6));
        let dropped_metric: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| {
                k.key().name() == "otel.sdk.processor.span.processed"
                    && k.key()
                        .labels()
                        .any(|l| l.key() == "error.type" && l.value() == "queue_full")
            })
            .map(|(.., v)| v)
            .collect();
        assert_eq!(
            dropped_metric,
            [metrics_util::debugging::DebugValue::Counter(6)]
        );
        provider.force_flush().unwrap();
        assert_eq!(exporter.get_finished_spans().unwrap().len(), 4);
        assert_eq!(stats.snapshot().exported, 4);
        // The queue has room again.
        tracer.start("op").end();
        assert_eq!(stats.snapshot().queued, 5);
    }
}
