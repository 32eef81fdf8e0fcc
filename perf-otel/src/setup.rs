//! Tracer provider from the standard `OTEL_*` variables, OTLP export that never blocks requests, and
//! a guard that flushes on shutdown.
//!
//! | variable | effect (default) |
//! |---|---|
//! | `OTEL_SDK_DISABLED` | `true`: no export; spans are still created so trace context still propagates (`false`) |
//! | `OTEL_TRACES_EXPORTER` | `otlp` or `none` (`otlp`) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` | `grpc` or `http/protobuf` (`http/protobuf`) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` | collector URL; `/v1/traces` is appended to the generic one for HTTP (`http://localhost:4318`, gRPC `http://localhost:4317`) |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, `_TIMEOUT`, `_COMPRESSION` | read by `opentelemetry-otlp` |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | resource; the name given to [`OtelConfig::service_name`] when neither names the service |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `always_on`, `always_off`, `traceidratio`, `parentbased_*` (`parentbased_always_on`) |
//! | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | batch processor (2048, 5000 ms, 512) |
//! | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `none`, comma-separated (`tracecontext,baggage`); used by [`OtelGuard::layer`] |
//!
//! Invalid values are errors at [`OtelConfig::from_env`], with the variable and the fix in the
//! message (the SDK alone would log a warning and fall back).
//!
//! Export runs on the SDK's batch-processor thread. Ending a span only offers it to a bounded
//! queue: when the queue is full (collector slow or down) the span is dropped and counted in
//! [`ExportStats::dropped`]; requests never wait for the exporter.
//!
//! The same counts go to the `metrics` facade (so to `/metrics` when a Prometheus recorder is
//! installed), named per the OpenTelemetry SDK self-observability conventions:
//! `otel.sdk.processor.span.processed` (`error.type="queue_full"` for dropped spans) and
//! `otel.sdk.exporter.span.exported` (`error.type="export_failed"` for failed batches).
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Reads OTEL_*; with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true nothing is exported.
//! let guard = perf_otel::setup::OtelConfig::from_env()?.service_name("my-service").install()?;
//! let layer = perf_otel::OtelLayer::new(guard.tracer());
//! # drop(layer);
//! // ... serve with `layer` until a shutdown signal, then:
//! let stats = guard.shutdown().await?;
//! assert_eq!(stats.dropped, 0);
//! # Ok(())
//! # }
//! ```

use std::env;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, InstrumentationScope, Key, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Export {
    /// OTLP over gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`, the default).
    HttpProtobuf,
    /// No export (`OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`); context still propagates.
    None,
}

/// Tracer-provider settings, usually [read from the environment](OtelConfig::from_env).
#[derive(Debug, Clone)]
#[must_use]
pub struct OtelConfig {
    export: Export,
    sampler: Sampler,
    max_queue_size: usize,
    max_export_batch_size: usize,
    scheduled_delay: Duration,
    service_name: Option<String>,
    shutdown_timeout: Duration,
    trace_context: bool,
    baggage: bool,
}

/// A configuration or installation error; the message names the variable and what to change.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// An `OTEL_*` variable has a value this crate does not support.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// gRPC export needs a Tokio runtime to drive its channel.
    NoRuntime,
    /// `opentelemetry-otlp` refused to build the exporter (e.g. an `https` endpoint: TLS is not enabled).
    Exporter(opentelemetry_otlp::ExporterBuildError),
    /// Shutdown did not finish within the timeout; the spans still queued are lost.
    ShutdownTimeout(Duration),
    /// The provider reported an error while flushing or shutting down.
    Shutdown(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEnv {
                var,
                value,
                expected,
            } => {
                write!(f, "invalid {var}={value:?}: expected {expected}")
            }
            Self::NoRuntime => {
                f.write_str("gRPC export needs a Tokio runtime: call install() from inside one")
            }
            Self::Exporter(e) => write!(
                f,
                "cannot build the OTLP exporter: {e} (use an http:// endpoint; TLS is not enabled in perf-otel)"
            ),
            Self::ShutdownTimeout(t) => {
                write!(f, "tracer provider shutdown did not finish within {t:?}")
            }
            Self::Shutdown(e) => write!(f, "tracer provider shutdown failed: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Exporter(e) => Some(e),
            _ => None,
        }
    }
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn get(vars: Lookup<'_>, name: &'static str) -> Option<String> {
    vars(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn invalid(var: &'static str, value: &str, expected: &'static str) -> SetupError {
    SetupError::InvalidEnv {
        var,
        value: value.to_owned(),
        expected,
    }
}

fn parse_bool(vars: Lookup<'_>, name: &'static str) -> Result<bool, SetupError> {
    match get(vars, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(name, &v, "true or false")),
    }
}

fn parse_num<T: std::str::FromStr + PartialOrd + From<u8>>(
    vars: Lookup<'_>,
    name: &'static str,
    default: T,
) -> Result<T, SetupError> {
    match get(vars, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<T>()
            .ok()
            .filter(|n| *n > T::from(0))
            .ok_or_else(|| invalid(name, &v, "a positive integer")),
    }
}

fn parse_sampler(vars: Lookup<'_>) -> Result<Sampler, SetupError> {
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio = || -> Result<f64, SetupError> {
        match get(vars, ARG) {
            None => Ok(1.0),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| invalid(ARG, &v, "a ratio between 0.0 and 1.0")),
        }
    };
    let parent = |s: Sampler| Sampler::ParentBased(Box::new(s));
    Ok(match get(vars, "OTEL_TRACES_SAMPLER").as_deref() {
        None | Some("parentbased_always_on") => parent(Sampler::AlwaysOn),
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some("parentbased_always_off") => parent(Sampler::AlwaysOff),
        Some("parentbased_traceidratio") => parent(Sampler::TraceIdRatioBased(ratio()?)),
        Some(other) => {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                other,
                "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
            ));
        }
    })
}

impl OtelConfig {
    /// Reads the `OTEL_*` variables listed in the [module docs](self).
    ///
    /// # Errors
    ///
    /// [`SetupError::InvalidEnv`] for a value this crate does not accept.
    pub fn from_env() -> Result<Self, SetupError> {
        Self::from_vars(|name| env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env) with the variables read through `vars` (for tests and
    /// configuration files). The exporter itself still reads `OTEL_EXPORTER_OTLP_*` (endpoint,
    /// headers, timeout, compression) from the process environment.
    ///
    /// ```
    /// use perf_otel::setup::{Export, OtelConfig};
    ///
    /// let vars = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned());
    /// assert_eq!(OtelConfig::from_vars(vars).unwrap().export(), Export::Grpc);
    /// let bad = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "sometimes".to_owned());
    /// assert!(OtelConfig::from_vars(bad).unwrap_err().to_string().contains("OTEL_TRACES_SAMPLER"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SetupError::InvalidEnv`] for a value this crate does not accept.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Self, SetupError> {
        let vars: Lookup<'_> = &vars;
        let disabled = parse_bool(vars, "OTEL_SDK_DISABLED")?;
        let exporter = match get(vars, "OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => true,
            Some("none") => false,
            Some(v) => return Err(invalid("OTEL_TRACES_EXPORTER", v, "otlp or none")),
        };
        let proto_var = if get(vars, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_some() {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        } else {
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        };
        let protocol = match get(vars, proto_var).as_deref() {
            None | Some("http/protobuf") => Export::HttpProtobuf,
            Some("grpc") => Export::Grpc,
            Some(v) => return Err(invalid(proto_var, v, "grpc or http/protobuf")),
        };
        let export = if disabled || !exporter {
            Export::None
        } else {
            protocol
        };
        let (mut trace_context, mut baggage) = (true, true);
        if let Some(list) = get(vars, "OTEL_PROPAGATORS") {
            (trace_context, baggage) = (false, false);
            for p in list.split(',').map(str::trim) {
                match p {
                    "tracecontext" => trace_context = true,
                    "baggage" => baggage = true,
                    "none" => {}
                    _ => {
                        return Err(invalid(
                            "OTEL_PROPAGATORS",
                            &list,
                            "a comma-separated list of tracecontext, baggage, none",
                        ));
                    }
                }
            }
        }
        Ok(Self {
            export,
            sampler: parse_sampler(vars)?,
            max_queue_size: parse_num(vars, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)?,
            max_export_batch_size: parse_num(vars, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?,
            scheduled_delay: Duration::from_millis(parse_num(
                vars,
                "OTEL_BSP_SCHEDULE_DELAY",
                5000,
            )?),
            service_name: None,
            shutdown_timeout: Duration::from_secs(5),
            trace_context,
            baggage,
        })
    }

    /// The `service.name` to use when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES`
    /// sets one (the SDK would report `unknown_service`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The transport chosen.
    pub fn export(&self) -> Export {
        self.export
    }

    /// Overrides the transport.
    pub fn with_export(mut self, export: Export) -> Self {
        self.export = export;
        self
    }

    /// Overrides the sampler (e.g. `ParentBased(TraceIdRatioBased(0.01))`).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// How long [`OtelGuard::shutdown`] waits for the last export. Defaults to 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Builds the provider and its exporter.
    ///
    /// # Errors
    ///
    /// [`SetupError::NoRuntime`] for gRPC outside a Tokio runtime; [`SetupError::Exporter`] when the
    /// endpoint is unusable.
    pub fn install(self) -> Result<OtelGuard, SetupError> {
        let mut resource = Resource::builder().build();
        if let Some(name) = &self.service_name {
            let current = resource.get(&Key::from_static_str("service.name"));
            if current
                .as_ref()
                .is_none_or(|v| v.as_str().starts_with("unknown_service"))
            {
                resource = Resource::builder()
                    .with_service_name(Value::from(name.clone()))
                    .build();
            }
        }
        let stats = Arc::new(Counters::default());
        let mut builder = SdkTracerProvider::builder()
            .with_sampler(self.sampler.clone())
            .with_resource(resource);
        let exporter = match self.export {
            Export::None => None,
            Export::Grpc => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(SetupError::NoRuntime);
                }
                Some(
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .build(),
                )
            }
            Export::HttpProtobuf => Some(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .build(),
            ),
        };
        if let Some(exporter) = exporter {
            let exporter = CountingExporter {
                inner: exporter.map_err(SetupError::Exporter)?,
                stats: stats.clone(),
            };
            let batch = BatchConfigBuilder::default()
                .with_max_queue_size(self.max_queue_size)
                .with_max_export_batch_size(self.max_export_batch_size.min(self.max_queue_size))
                .with_scheduled_delay(self.scheduled_delay)
                .build();
            let inner = BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build();
            builder = builder.with_span_processor(AdmissionProcessor {
                inner,
                capacity: self.max_queue_size,
                stats: stats.clone(),
            });
        }
        Ok(OtelGuard {
            provider: Some(builder.build()),
            stats,
            timeout: self.shutdown_timeout,
            export: self.export,
            propagators: (self.trace_context, self.baggage),
        })
    }
}

use opentelemetry_otlp::WithExportConfig as _;

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

/// Reads the export counters of an [`OtelGuard`]; clones share them.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    /// The counters now.
    pub fn get(&self) -> ExportStats {
        self.0.snapshot()
    }
}

#[derive(Debug, Default)]
struct Counters {
    pending: AtomicUsize,
    queued: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ExportStats {
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
struct AdmissionProcessor {
    inner: BatchSpanProcessor,
    capacity: usize,
    stats: Arc<Counters>,
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
struct CountingExporter<E> {
    inner: E,
    stats: Arc<Counters>,
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
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _};
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    fn provider_with(
        capacity: usize,
        exporter: InMemorySpanExporter,
    ) -> (SdkTracerProvider, Arc<Counters>) {
        let stats = Arc::new(Counters::default());
        let counting = CountingExporter {
            inner: exporter,
            stats: stats.clone(),
        };
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(capacity)
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

    fn vars<'a>(pairs: &'a [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn env_selects_transport_and_switches_export_off() {
        assert_eq!(
            OtelConfig::from_vars(vars(&[])).unwrap().export(),
            Export::HttpProtobuf
        );
        let grpc = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")];
        assert_eq!(
            OtelConfig::from_vars(vars(&grpc)).unwrap().export(),
            Export::Grpc
        );
        let traces_wins = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ];
        assert_eq!(
            OtelConfig::from_vars(vars(&traces_wins)).unwrap().export(),
            Export::HttpProtobuf
        );
        let none = [
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        assert_eq!(
            OtelConfig::from_vars(vars(&none)).unwrap().export(),
            Export::None
        );
        let disabled = [("OTEL_SDK_DISABLED", "TRUE")];
        assert_eq!(
            OtelConfig::from_vars(vars(&disabled)).unwrap().export(),
            Export::None
        );
    }

    #[test]
    fn env_errors_name_the_variable_and_the_fix() {
        for (bad, needle) in [
            (
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")][..],
                "expected grpc or http/protobuf",
            ),
            (
                &[("OTEL_TRACES_EXPORTER", "zipkin")][..],
                "OTEL_TRACES_EXPORTER",
            ),
            (&[("OTEL_SDK_DISABLED", "yes")][..], "true or false"),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ][..],
                "between 0.0 and 1.0",
            ),
            (&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")][..], "positive integer"),
        ] {
            let err = OtelConfig::from_vars(move |n| {
                bad.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn env_propagators_select_the_fields() {
        let fields = |pairs: &'static [(&'static str, &'static str)]| {
            let guard = OtelConfig::from_vars(vars(pairs))
                .unwrap()
                .with_export(Export::None)
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

    #[test]
    fn env_sampler_is_parent_based_ratio() {
        let v = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ];
        let c = OtelConfig::from_vars(vars(&v)).unwrap();
        assert_eq!(
            format!("{:?}", c.sampler),
            format!(
                "{:?}",
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.01)))
            )
        );
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
