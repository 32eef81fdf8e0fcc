use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderName;
use opentelemetry::Key;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_semantic_conventions::attribute::{HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER};
use perf_middleware::server_timing::ServerTiming;
use perf_middleware::{Scheme, SkipRoutes};

use super::attributes::DEFAULT_REDACTED_QUERY_KEYS;
use super::error::ConfigError;
use super::layer::{OtelLayer, Settings, SpanEnd, fields};
use crate::propagation::default_propagator;

/// Builds an [`OtelLayer`]. See the [module docs](crate::server) for an example.
#[derive(Debug)]
#[must_use]
pub struct OtelLayerBuilder<T> {
    tracer: T,
    settings: Settings,
    request_headers: Vec<String>,
    response_headers: Vec<String>,
}

impl<T> OtelLayerBuilder<T> {
    pub(crate) fn new(tracer: T) -> Self {
        Self {
            tracer,
            settings: Self::default_settings(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
        }
    }

    pub(crate) fn default_settings() -> Settings {
        let propagator = default_propagator();
        Settings {
            extract_fields: Some(fields(&propagator)),
            propagator: Arc::new(propagator),
            inject_response: false,
            end: SpanEnd::Body,
            scheme: Scheme::Http,
            trust_forwarded: false,
            redacted_query_keys: DEFAULT_REDACTED_QUERY_KEYS
                .iter()
                .map(|k| Cow::Borrowed(*k))
                .collect(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            server_timing: ServerTiming::Off,
            skip: SkipRoutes::default(),
            #[cfg(feature = "db")]
            db_client_spans: None,
        }
    }

    /// The propagator that reads the caller's context from request headers.
    /// Defaults to [`default_propagator`](crate::default_propagator) (trace context + baggage).
    ///
    /// The default propagator (and the one of `OtelGuard::layer`, feature `otlp`) is skipped for
    /// requests that carry none of its headers; a propagator set here is asked for every request,
    /// since its [`fields`](TextMapPropagator::fields) need not name every header it reads.
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.settings.propagator = Arc::new(propagator);
        self.settings.extract_fields = None;
        self
    }

    /// A W3C propagator (trace context and/or baggage) whose fields are all it reads, so requests
    /// without them skip extraction.
    #[cfg(feature = "otlp")]
    pub(crate) fn known_propagator(
        mut self,
        propagator: opentelemetry::propagation::TextMapCompositePropagator,
    ) -> Self {
        self.settings.extract_fields = Some(fields(&propagator));
        self.settings.propagator = Arc::new(propagator);
        self
    }

    /// Writes the request span's `traceparent` (and `tracestate`) into every response, so clients
    /// and support staff can find the trace. Defaults to off.
    pub fn inject_response_traceparent(mut self, on: bool) -> Self {
        self.settings.inject_response = on;
        self
    }

    /// Appends the request span's trace context to `Server-Timing` as
    /// `traceparent;desc="00-…"` for the requests `server_timing` selects, so browser
    /// instrumentation (e.g. the OpenTelemetry JS document-load instrumentation) links the page
    /// load to the server trace. Defaults to [`ServerTiming::Off`].
    pub fn server_timing(mut self, server_timing: ServerTiming) -> Self {
        self.settings.server_timing = server_timing;
        self
    }

    /// When the span ends. Defaults to [`SpanEnd::Body`].
    pub fn span_end(mut self, end: SpanEnd) -> Self {
        self.settings.end = end;
        self
    }

    /// The scheme of the connections this service accepts: [`Scheme::Http`] (default), or
    /// [`Scheme::Https`] when the service terminates TLS. Recorded as `url.scheme` unless a trusted
    /// proxy header or the HTTP/2 `:scheme` says otherwise.
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.settings.scheme = scheme;
        self
    }

    /// Trusts `Forwarded` (RFC 7239) and `X-Forwarded-{For,Proto,Host}` for `client.address`,
    /// `url.scheme` and `server.address`/`server.port`. Enable only behind a proxy that overwrites
    /// them. Defaults to off.
    pub fn trust_forwarded_headers(mut self, on: bool) -> Self {
        self.settings.trust_forwarded = on;
        self
    }

    /// Replaces the query keys whose values `url.query` records as `REDACTED` (case-sensitive).
    /// Defaults to the semconv list: `AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`,
    /// `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`.
    pub fn redacted_query_keys(
        mut self,
        keys: impl IntoIterator<Item = impl Into<Cow<'static, str>>>,
    ) -> Self {
        self.settings.redacted_query_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Records a request header as `http.request.header.<name>` (a string array). Off by default:
    /// headers may carry personal data. A name that is not a valid field name is an error at
    /// [`build`](Self::build).
    pub fn add_request_header(mut self, name: impl AsRef<str>) -> Self {
        self.request_headers.push(name.as_ref().to_owned());
        self
    }

    /// Records a response header as `http.response.header.<name>` (a string array).
    pub fn add_response_header(mut self, name: impl AsRef<str>) -> Self {
        self.response_headers.push(name.as_ref().to_owned());
        self
    }

    /// Passes requests to this route template through without a span: the inner service runs in
    /// the current context and the response is untouched (no `traceparent`, no `Server-Timing`).
    /// For health checks; call it once per route.
    pub fn skip_route(mut self, route: &str) -> Self {
        self.settings.skip.insert(route);
        self
    }

    /// Finishes the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an invalid or duplicated captured header name, or an empty redacted
    /// query key.
    pub fn build(mut self) -> Result<OtelLayer<T>, ConfigError> {
        if self
            .settings
            .redacted_query_keys
            .iter()
            .any(|k| k.is_empty())
        {
            return Err(ConfigError::EmptyQueryKey);
        }
        self.settings.request_headers = captured(&self.request_headers, HTTP_REQUEST_HEADER)?;
        self.settings.response_headers = captured(&self.response_headers, HTTP_RESPONSE_HEADER)?;
        Ok(OtelLayer {
            tracer: self.tracer,
            settings: Arc::new(self.settings),
        })
    }
}

#[cfg(feature = "db")]
impl<T> OtelLayerBuilder<T>
where
    T: opentelemetry::trace::Tracer + Clone + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// Adds one `CLIENT` span per database statement under the request span (feature `db`), from
    /// the [`DbSummary`](perf_middleware::db::DbSummary) of a `DbLayer` placed inside this
    /// layer: per the database semantic conventions, named by `db.query.summary`
    /// (`SELECT posts`) or else `db.system.name`, with `db.system.name`, `db.query.text` (the
    /// fingerprint: literals are `?`), `db.operation.name` (single-operation statements),
    /// `db.query.summary` and `db.response.returned_rows`, at the statement's real start and end.
    /// Only the first [`MAX_STATEMENTS`](perf_middleware::db::MAX_STATEMENTS) statements that
    /// ended before the response head get one.
    ///
    /// Defaults to off. Leave it off when the statements already have spans: sqlx's own
    /// `db.query` spans exported through `tracing-opentelemetry` (sqlx#4270) or SeaORM's
    /// instrumentation would be doubled.
    pub fn db_client_spans(mut self, on: bool) -> Self {
        self.settings.db_client_spans =
            on.then(|| opentelemetry::global::BoxedTracer::new(Box::new(self.tracer.clone())));
        self
    }
}

/// The header names and their attribute keys (`{prefix}.{name}`, lowercase).
fn captured(names: &[String], prefix: &str) -> Result<Vec<(HeaderName, Key)>, ConfigError> {
    let mut out: Vec<(HeaderName, Key)> = Vec::with_capacity(names.len());
    for name in names {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::InvalidHeaderName { name: name.clone() })?;
        if out.iter().any(|(h, _)| *h == header) {
            return Err(ConfigError::DuplicateHeader {
                name: header.as_str().to_owned(),
            });
        }
        let key = Key::from(format!("{prefix}.{}", header.as_str()));
        out.push((header, key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::noop::NoopTracer;

    use super::*;

    fn builder() -> OtelLayerBuilder<NoopTracer> {
        OtelLayerBuilder::new(NoopTracer::new())
    }

    #[test]
    fn captured_headers_are_validated_at_build() {
        let layer = builder()
            .add_request_header("X-Request-Id")
            .add_response_header(http::header::CONTENT_TYPE)
            .build()
            .unwrap();
        assert_eq!(
            layer.settings.request_headers[0].1.as_str(),
            "http.request.header.x-request-id"
        );
        let err = builder()
            .add_request_header("bad name")
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::InvalidHeaderName {
                name: "bad name".into()
            }
        );
        assert!(err.to_string().contains("x-request-id"), "{err}");
        let err = builder()
            .add_response_header("etag")
            .add_response_header("ETag")
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::DuplicateHeader {
                name: "etag".into()
            }
        );
    }

    #[test]
    fn an_empty_redacted_query_key_is_an_error() {
        let err = builder()
            .redacted_query_keys(["sig", ""])
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::EmptyQueryKey);
        assert!(err.to_string().starts_with("empty key"), "{err}");
    }
}
