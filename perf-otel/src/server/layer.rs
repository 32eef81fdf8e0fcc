use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderName;
use opentelemetry::Key;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::Tracer;
use perf_middleware::server_timing::ServerTiming;
use perf_middleware::{Scheme, SkipRoutes};
use tower_layer::Layer;

use super::builder::OtelLayerBuilder;
use super::service::Otel;
use crate::propagation::SharedPropagator;

/// When the request span ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpanEnd {
    /// When the response body has been fully streamed (or dropped: then `error.type = cancelled`).
    #[default]
    Body,
    /// When the inner service has produced the response head.
    Headers,
}

/// Shared, immutable layer settings (everything but the tracer).
pub(crate) struct Settings {
    pub(crate) propagator: SharedPropagator,
    /// The propagator's fields when it is a known one whose `fields()` are all it reads: requests
    /// carrying none of them skip extraction. `None` for custom propagators (always asked).
    pub(crate) extract_fields: Option<Box<[HeaderName]>>,
    pub(crate) inject_response: bool,
    pub(crate) end: SpanEnd,
    pub(crate) scheme: Scheme,
    pub(crate) trust_forwarded: bool,
    pub(crate) redacted_query_keys: Vec<Cow<'static, str>>,
    pub(crate) request_headers: Vec<(HeaderName, Key)>,
    pub(crate) response_headers: Vec<(HeaderName, Key)>,
    pub(crate) server_timing: ServerTiming,
    /// Routes passed through without a span (`skip_route`).
    pub(crate) skip: SkipRoutes,
    /// The tracer of the per-statement `CLIENT` spans, when they are on (`db_client_spans`).
    #[cfg(feature = "db")]
    pub(crate) db_client_spans: Option<opentelemetry::global::BoxedTracer>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "propagator_fields",
                &self.propagator.fields().collect::<Vec<_>>(),
            )
            .field("inject_response_traceparent", &self.inject_response)
            .field("end", &self.end)
            .field("scheme", &self.scheme)
            .field("trust_forwarded", &self.trust_forwarded)
            .field("redacted_query_keys", &self.redacted_query_keys)
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .field("server_timing", &self.server_timing)
            .field("skip", &self.skip)
            .finish_non_exhaustive()
    }
}

/// The header names of a propagator's fields.
pub(crate) fn fields(p: &dyn TextMapPropagator) -> Box<[HeaderName]> {
    p.fields()
        .filter_map(|f| HeaderName::from_bytes(f.as_bytes()).ok())
        .collect()
}

/// A Tower layer that opens one OpenTelemetry `SERVER` span per request with the tracer `T` (any
/// [`opentelemetry::trace::Tracer`], e.g. the SDK's `SdkTracer` or `opentelemetry::global::tracer`).
///
/// Clones share the settings; the tracer is cloned (SDK tracers share their provider, sampler and
/// exporter). See the [module docs](crate::server) for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct OtelLayer<T> {
    pub(crate) tracer: T,
    pub(crate) settings: Arc<Settings>,
}

impl<T: Tracer> OtelLayer<T> {
    /// A layer with the defaults: W3C trace context + baggage, span ends at end of body, scheme
    /// `http`, forwarded headers not trusted, no header capture.
    pub fn new(tracer: T) -> Self {
        Self {
            tracer,
            settings: Arc::new(OtelLayerBuilder::<T>::default_settings()),
        }
    }

    /// A builder starting from the defaults of [`OtelLayer::new`].
    pub fn builder(tracer: T) -> OtelLayerBuilder<T> {
        OtelLayerBuilder::new(tracer)
    }
}

impl<S, T: Clone> Layer<S> for OtelLayer<T> {
    type Service = Otel<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        Otel {
            inner,
            tracer: self.tracer.clone(),
            settings: self.settings.clone(),
        }
    }
}
