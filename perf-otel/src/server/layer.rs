use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use http::{HeaderName, Method};
use opentelemetry::Key;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::trace::SdkTracer;
use tower_layer::Layer;

use super::attributes::DEFAULT_REDACTED_QUERY_KEYS;
use super::service::Otel;
use crate::propagation::{SharedPropagator, default_propagator};

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

/// Shared, immutable layer configuration.
pub(crate) struct Config {
    pub(crate) tracer: SdkTracer,
    pub(crate) propagator: SharedPropagator,
    /// The propagator's fields when it is a known one whose `fields()` are all it reads: requests
    /// carrying none of them skip extraction. `None` for custom propagators (always asked).
    pub(crate) extract_fields: Option<Box<[HeaderName]>>,
    pub(crate) inject_response: bool,
    pub(crate) end: SpanEnd,
    pub(crate) scheme: &'static str,
    pub(crate) trust_forwarded: bool,
    pub(crate) known_methods: Vec<Method>,
    pub(crate) redacted_query_keys: Vec<Cow<'static, str>>,
    pub(crate) request_headers: Vec<(HeaderName, Key)>,
    pub(crate) response_headers: Vec<(HeaderName, Key)>,
    /// Whether the last span this layer started was recording: a hint to hand the SDK an attribute
    /// list with room for all attributes (sampling runs before attributes are known, and a list the
    /// span grows by pushing is re-allocated twice). Only a hint: a wrong guess costs one allocation.
    pub(crate) last_recorded: AtomicBool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("tracer", &self.tracer)
            .field(
                "propagator_fields",
                &self.propagator.fields().collect::<Vec<_>>(),
            )
            .field("inject_response_traceparent", &self.inject_response)
            .field("end", &self.end)
            .field("scheme", &self.scheme)
            .field("trust_forwarded", &self.trust_forwarded)
            .field("known_methods", &self.known_methods)
            .field("redacted_query_keys", &self.redacted_query_keys)
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .finish()
    }
}

/// The header names of a propagator's fields.
fn fields(p: &dyn TextMapPropagator) -> Box<[HeaderName]> {
    p.fields()
        .filter_map(|f| HeaderName::from_bytes(f.as_bytes()).ok())
        .collect()
}

/// A Tower layer that opens one OpenTelemetry `SERVER` span per request.
///
/// Clones share the configuration and the tracer (and so its provider, sampler and exporter).
/// See the [module docs](crate::server) for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct OtelLayer {
    pub(crate) config: Arc<Config>,
}

impl OtelLayer {
    /// A layer with the defaults: W3C trace context + baggage, span ends at end of body, scheme
    /// `http`, forwarded headers not trusted, no header capture.
    pub fn new(tracer: SdkTracer) -> Self {
        Self::builder(tracer).build()
    }

    /// A builder starting from the defaults of [`OtelLayer::new`].
    pub fn builder(tracer: SdkTracer) -> OtelLayerBuilder {
        OtelLayerBuilder {
            config: Config {
                tracer,
                propagator: Arc::new(default_propagator()),
                extract_fields: Some(fields(&default_propagator())),
                inject_response: false,
                end: SpanEnd::Body,
                scheme: "http",
                trust_forwarded: false,
                known_methods: Vec::new(),
                redacted_query_keys: DEFAULT_REDACTED_QUERY_KEYS
                    .iter()
                    .map(|k| Cow::Borrowed(*k))
                    .collect(),
                request_headers: Vec::new(),
                response_headers: Vec::new(),
                last_recorded: AtomicBool::new(false),
            },
        }
    }
}

impl<S> Layer<S> for OtelLayer {
    type Service = Otel<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Otel {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Builds an [`OtelLayer`]. See the [module docs](crate::server) for an example.
#[derive(Debug)]
#[must_use]
pub struct OtelLayerBuilder {
    config: Config,
}

impl OtelLayerBuilder {
    /// The propagator that reads the caller's context from request headers.
    /// Defaults to [`default_propagator`](crate::default_propagator) (trace context + baggage).
    ///
    /// The default propagator (and the one of [`OtelGuard::layer`](crate::OtelGuard::layer)) is
    /// skipped for requests that carry none of its headers; a propagator set here is asked for
    /// every request, since its [`fields`](TextMapPropagator::fields) need not name every header
    /// it reads.
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.config.propagator = Arc::new(propagator);
        self.config.extract_fields = None;
        self
    }

    /// A W3C propagator (trace context and/or baggage, from this crate) whose fields are all it
    /// reads, so requests without them skip extraction.
    #[cfg(feature = "otlp")]
    pub(crate) fn known_propagator(
        mut self,
        propagator: opentelemetry::propagation::TextMapCompositePropagator,
    ) -> Self {
        self.config.extract_fields = Some(fields(&propagator));
        self.config.propagator = Arc::new(propagator);
        self
    }

    /// Writes the request span's `traceparent` (and `tracestate`) into every response, so clients and
    /// support staff can find the trace. Defaults to off.
    pub fn inject_response_traceparent(mut self, on: bool) -> Self {
        self.config.inject_response = on;
        self
    }

    /// When the span ends. Defaults to [`SpanEnd::Body`].
    pub fn span_end(mut self, end: SpanEnd) -> Self {
        self.config.end = end;
        self
    }

    /// The scheme of the connections this service accepts: `false` = `http` (default), `true` = `https`
    /// (the service terminates TLS). Recorded as `url.scheme` unless a trusted proxy header or the
    /// HTTP/2 `:scheme` says otherwise.
    pub fn tls(mut self, tls: bool) -> Self {
        self.config.scheme = if tls { "https" } else { "http" };
        self
    }

    /// Trusts `Forwarded` (RFC 7239) and `X-Forwarded-{For,Proto,Host}` for `client.address`,
    /// `url.scheme` and `server.address`/`server.port`. Enable only behind a proxy that overwrites
    /// them. Defaults to off.
    pub fn trust_forwarded_headers(mut self, on: bool) -> Self {
        self.config.trust_forwarded = on;
        self
    }

    /// Replaces the set of known methods (default: the nine RFC 9110 + PATCH methods). Other methods
    /// are recorded as `_OTHER` with `http.request.method_original`, and the span is named `HTTP`.
    pub fn known_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.config.known_methods = methods.into_iter().collect();
        self
    }

    /// Replaces the query keys whose values `url.query` records as `REDACTED` (case-sensitive).
    /// Defaults to the semconv list: `AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`,
    /// `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`.
    pub fn redacted_query_keys(
        mut self,
        keys: impl IntoIterator<Item = impl Into<Cow<'static, str>>>,
    ) -> Self {
        self.config.redacted_query_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Records a request header as `http.request.header.<name>` (a string array). Off by default:
    /// headers may carry personal data.
    pub fn add_request_header(mut self, name: HeaderName) -> Self {
        let key = Key::from(format!("http.request.header.{}", name.as_str()));
        self.config.request_headers.push((name, key));
        self
    }

    /// Records a response header as `http.response.header.<name>` (a string array).
    pub fn add_response_header(mut self, name: HeaderName) -> Self {
        let key = Key::from(format!("http.response.header.{}", name.as_str()));
        self.config.response_headers.push((name, key));
        self
    }

    /// Finishes the layer.
    pub fn build(self) -> OtelLayer {
        OtelLayer {
            config: Arc::new(self.config),
        }
    }
}
