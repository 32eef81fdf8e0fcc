//! Counting the spans on their way out: a bounded admission in front of the SDK's batch
//! processor (every drop is counted here; the SDK's own counter is private) and an exporter
//! wrapper that counts exported and failed spans, logs the first failure of a run of failed exports
//! (WARN) and the recovery (INFO), and reports the SDK self-observability counters through the
//! `metrics` facade.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_semantic_conventions::attribute::ERROR_TYPE;
// `otel.sdk.exporter.span.exported`: spans whose export finished (`error.type="export_failed"`
// when the exporter gave up on their batch). `otel.sdk.processor.span.processed`: spans the
// processor is done with — submitted to the exporter, or dropped (`error.type="queue_full"`).
use opentelemetry_semantic_conventions::metric::{
    OTEL_SDK_EXPORTER_SPAN_EXPORTED as EXPORTED, OTEL_SDK_PROCESSOR_SPAN_PROCESSED as PROCESSED,
};

/// `error.type` of a span dropped by a full queue.
const QUEUE_FULL: &str = "queue_full";
/// `error.type` of a span in a batch the exporter failed to deliver.
const EXPORT_FAILED: &str = "export_failed";

/// Describes the counters (name, unit, help) to the installed recorder; called by `install`.
pub(super) fn describe() {
    metrics::describe_counter!(
        PROCESSED,
        metrics::Unit::Count,
        "Spans the span processor is done with: submitted to the exporter, or dropped (error.type)"
    );
    metrics::describe_counter!(
        EXPORTED,
        metrics::Unit::Count,
        "Spans whose export finished: delivered, or failed (error.type)"
    );
}

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

impl std::fmt::Display for ExportStats {
    /// `queued=… exported=… failed=… dropped=…`: all four counts, as a closing log line wants.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queued={} exported={} failed={} dropped={}",
            self.queued, self.exported, self.failed, self.dropped
        )
    }
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
    /// Whether the last export failed (the WARN was logged; the next success logs INFO).
    failing: AtomicBool,
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
            metrics::counter!(PROCESSED, ERROR_TYPE => QUEUE_FULL).increment(1);
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

    /// Counts an export of `n` spans, and logs when exports start failing or recover.
    fn record(&self, n: u64, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.stats.exported.fetch_add(n, Ordering::Relaxed);
                metrics::counter!(EXPORTED).increment(n);
                if self.stats.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        exported = self.stats.exported.load(Ordering::Relaxed),
                        failed = self.stats.failed.load(Ordering::Relaxed),
                        "otel: span export recovered"
                    );
                }
            }
            Err(error) => {
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                metrics::counter!(EXPORTED, ERROR_TYPE => EXPORT_FAILED).increment(n);
                if !self.stats.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        spans = n,
                        "otel: span export failed; spans of failed batches are lost until it \
                         recovers (is the collector reachable?)"
                    );
                }
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        metrics::counter!(PROCESSED).increment(n as u64);
        let result = self.inner.export(batch).await;
        self.stats.pending.fetch_sub(n, Ordering::AcqRel);
        self.record(n as u64, &result);
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

    /// Fails every export while `down` is set.
    #[derive(Debug)]
    struct Collector {
        down: Arc<AtomicBool>,
    }

    impl SpanExporter for Collector {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.down.load(Ordering::Relaxed) {
                Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                    "connection refused".into(),
                ))
            } else {
                Ok(())
            }
        }
    }

    /// A batch of `n` finished spans.
    fn batch(n: usize) -> Vec<SpanData> {
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let tracer = provider.tracer("t");
        for _ in 0..n {
            tracer.start("op").end();
        }
        spans.get_finished_spans().unwrap()
    }

    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_exports_are_counted_and_logged_once_until_recovery() {
        let down = Arc::new(AtomicBool::new(true));
        let stats = Arc::new(Counters::default());
        let exporter = CountingExporter::new(Collector { down: down.clone() }, stats.clone());
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            metrics::with_local_recorder(&recorder, || {
                for (is_down, n) in [(true, 2), (true, 3), (false, 1), (false, 4)] {
                    down.store(is_down, Ordering::Relaxed);
                    stats.pending.fetch_add(n, Ordering::Relaxed);
                    let _ = rt.block_on(exporter.export(batch(n)));
                }
            });
        });
        let s = stats.snapshot();
        assert_eq!((s.exported, s.failed), (5, 5));

        let counters: std::collections::BTreeMap<(String, Option<String>), u64> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(k, _, _, v)| {
                let error = k
                    .key()
                    .labels()
                    .find(|l| l.key() == "error.type")
                    .map(|l| l.value().to_owned());
                let metrics_util::debugging::DebugValue::Counter(v) = v else {
                    panic!("{k:?} is not a counter")
                };
                ((k.key().name().to_owned(), error), v)
            })
            .collect();
        let key = |name: &str, error: Option<&str>| (name.to_owned(), error.map(str::to_owned));
        assert_eq!(counters[&key(PROCESSED, None)], 10);
        assert_eq!(counters[&key(EXPORTED, None)], 5);
        assert_eq!(counters[&key(EXPORTED, Some(EXPORT_FAILED))], 5);

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let warns: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
        let infos: Vec<&str> = text.lines().filter(|l| l.contains(" INFO ")).collect();
        assert_eq!(warns.len(), 1, "{text}");
        assert!(warns[0].contains("connection refused"), "{text}");
        assert_eq!(infos.len(), 1, "{text}");
        assert!(infos[0].contains("recovered"), "{text}");
    }
}
