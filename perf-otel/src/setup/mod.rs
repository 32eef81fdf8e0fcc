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
//! `otel.sdk.processor.span.processed` (spans submitted to the exporter; `error.type="queue_full"`
//! for dropped spans) and `otel.sdk.exporter.span.exported` (delivered spans;
//! `error.type="export_failed"` for spans of failed batches). The first failed export of a run
//! logs one WARN and the first export after it one INFO (`tracing`), so a collector outage shows
//! up once in the logs, not once per batch.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Reads OTEL_*; with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true nothing is exported.
//! let guard = perf_otel::setup::OtelConfig::from_env()?.service_name("my-service").install()?;
//! let layer = guard.layer().build()?;
//! # drop(layer);
//! // ... serve with `layer` until a shutdown signal, then:
//! let stats = guard.shutdown().await?;
//! assert_eq!(stats.dropped, 0);
//! # Ok(())
//! # }
//! ```

mod env;
mod error;
mod guard;
mod processor;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{Key, Value};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

pub use error::SetupError;
pub use guard::OtelGuard;
/// The SDK types this module takes and returns ([`OtelConfig::sampler`], [`OtelGuard::tracer`]).
pub use opentelemetry_sdk::trace::{Sampler, SdkTracer};
pub use processor::{ExportStats, StatsHandle};

use processor::{AdmissionProcessor, Counters, CountingExporter};

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

impl OtelConfig {
    /// The `service.name` to use when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES`
    /// sets one (the SDK would report `unknown_service`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The transport chosen (from the environment, or set with [`export`](Self::export)).
    pub fn configured_export(&self) -> Export {
        self.export
    }

    /// Overrides the transport.
    pub fn export(mut self, export: Export) -> Self {
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
        processor::describe();
        let stats = Arc::new(Counters::default());
        let mut builder = SdkTracerProvider::builder()
            .with_sampler(self.sampler.clone())
            .with_resource(resource(self.service_name.as_deref()));
        if let Some(exporter) = exporter(self.export)? {
            let exporter = CountingExporter::new(exporter, stats.clone());
            let batch = BatchConfigBuilder::default()
                .with_max_queue_size(self.max_queue_size)
                .with_max_export_batch_size(self.max_export_batch_size.min(self.max_queue_size))
                .with_scheduled_delay(self.scheduled_delay)
                .build();
            let inner = BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build();
            builder = builder.with_span_processor(AdmissionProcessor::new(
                inner,
                self.max_queue_size,
                stats.clone(),
            ));
        }
        Ok(OtelGuard::new(
            builder.build(),
            stats,
            self.shutdown_timeout,
            self.export,
            (self.trace_context, self.baggage),
        ))
    }
}

/// The `service.name` resource: the SDK's (from `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES`),
/// else `fallback` instead of `unknown_service`.
fn resource(fallback: Option<&str>) -> Resource {
    let resource = Resource::builder().build();
    let unnamed = resource
        .get(&Key::from_static_str("service.name"))
        .is_none_or(|v| v.as_str().starts_with("unknown_service"));
    match fallback {
        Some(name) if unnamed => Resource::builder()
            .with_service_name(Value::from(name.to_owned()))
            .build(),
        _ => resource,
    }
}

/// The OTLP exporter for `export`, if any.
fn exporter(export: Export) -> Result<Option<opentelemetry_otlp::SpanExporter>, SetupError> {
    let built = match export {
        Export::None => return Ok(None),
        Export::Grpc => {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(SetupError::NoRuntime);
            }
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
        }
        Export::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build(),
    };
    built.map(Some).map_err(SetupError::Exporter)
}
