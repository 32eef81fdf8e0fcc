//! The request span: start (sampling first), response recording and end, as the
//! [`Complete`] state of the family's completion guard.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, Request, Response};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, HTTP_RESPONSE_STATUS_CODE, HTTP_ROUTE,
};
use perf_middleware::completion::{Complete, Outcome};
use perf_middleware::{KnownMethod, TraceId, route_template, server_timing};

use super::attributes;
use super::layer::{Settings, SpanEnd};
use crate::propagation::{HeaderExtractor, HeaderInjector};

/// The OpenTelemetry state of one request, from `call` until its span ends.
///
/// An unsampled request keeps only its context (the caller's, with our span's ids), so the
/// handler, its outgoing requests and the response `traceparent` continue the trace; it has
/// nothing to end and is completed at the response head.
#[derive(Debug)]
pub(crate) struct RequestSpan {
    cx: Context,
    settings: Arc<Settings>,
    /// The `{method}` part of the span name (`HTTP` for unknown methods).
    method: &'static str,
    recording: bool,
    /// Whether the response gets a `Server-Timing: traceparent` entry.
    server_timing: bool,
    /// The database summary, kept for the per-statement spans made at completion.
    #[cfg(feature = "db")]
    db: Option<Arc<perf_middleware::db::DbSummary>>,
}

/// The span name `{method} {route}`.
fn span_name(method: &'static str, route: &str) -> String {
    [method, " ", route].concat()
}

/// The context the propagator reads from the request, or the current one when the request
/// carries none of the propagator's fields (known propagators only: a custom one is always asked).
/// One pass over the request's header names compares them with the fields, without hashing.
fn parent(settings: &Settings, headers: &HeaderMap) -> Context {
    let present = settings
        .extract_fields
        .as_deref()
        .is_none_or(|fields| headers.keys().any(|k| fields.contains(k)));
    if present {
        let names = settings.extract_fields.as_deref().unwrap_or_default();
        settings
            .propagator
            .extract(&HeaderExtractor::new(headers, names))
    } else {
        Context::current()
    }
}

impl RequestSpan {
    /// Extracts the caller's context, starts the span with only its kind, parent and method-only
    /// name (the sampler decides before anything is built), puts the trace id into the request and,
    /// when the span records, the request attributes and the routed name.
    pub(crate) fn start<T, B>(tracer: &T, settings: &Arc<Settings>, req: &mut Request<B>) -> Self
    where
        T: Tracer,
        T::Span: Send + Sync + 'static,
    {
        let parent = parent(settings, req.headers());
        let known = KnownMethod::from_method(req.method());
        let method = if known.is_other() {
            "HTTP"
        } else {
            known.as_str()
        };
        let builder = SpanBuilder::from_name(method).with_kind(SpanKind::Server);
        let mut span = tracer.build_with_context(builder, &parent);
        let trace_id = span.span_context().trace_id();
        req.extensions_mut()
            .insert(TraceId::from_bytes(trace_id.to_bytes()));
        let recording = span.is_recording();
        let cx = if recording {
            let route = route_template(req.extensions());
            if let Some(route) = route {
                span.update_name(span_name(method, route));
            }
            attributes::request(settings, req, known, route, &mut span);
            parent.with_span(span)
        } else {
            // A non-recording span is its span context; keeping only that saves boxing the span.
            parent.with_remote_span_context(span.span_context().clone())
        };
        let server_timing = settings
            .server_timing
            .wants(req.method(), req.uri(), req.headers());
        Self {
            cx,
            settings: settings.clone(),
            method,
            recording,
            server_timing,
            #[cfg(feature = "db")]
            db: None,
        }
    }

    /// The context to poll the inner service in.
    pub(crate) fn cx(&self) -> &Context {
        &self.cx
    }

    /// Whether the span records (was sampled).
    pub(crate) fn is_recording(&self) -> bool {
        self.recording
    }

    /// When the span ends.
    pub(crate) fn end(&self) -> SpanEnd {
        self.settings.end
    }

    /// Marks the request failed before or while the response was produced.
    fn error(&self, error_type: &'static str) {
        let span = self.cx.span();
        span.set_status(Status::error(""));
        span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
    }

    /// Records status code, status, `error.type`, the route the response names (a layer outside
    /// the router) and the captured response headers.
    fn record_response<B>(&self, res: &Response<B>) {
        let status = res.status();
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(
            HTTP_RESPONSE_STATUS_CODE,
            i64::from(status.as_u16()),
        ));
        if status.is_server_error() {
            span.set_status(Status::error(""));
            span.set_attribute(KeyValue::new(ERROR_TYPE, status.as_str().to_owned()));
        }
        // The route may only be known after routing (layer outside the router).
        if let Some(route) = route_template(res.extensions()) {
            span.update_name(span_name(self.method, route));
            span.set_attribute(KeyValue::new(HTTP_ROUTE, route.to_owned()));
        }
        span.set_attributes(attributes::captured_headers(
            &self.settings.response_headers,
            res.headers(),
        ));
    }

    /// Records the summary of a `DbLayer` inside this layer, and keeps it for the
    /// per-statement spans when they are on.
    #[cfg(feature = "db")]
    fn record_db<B>(&mut self, res: &Response<B>) {
        let Some(summary) = res
            .extensions()
            .get::<Arc<perf_middleware::db::DbSummary>>()
        else {
            return;
        };
        super::db::record(&self.cx.span(), summary);
        if self.settings.db_client_spans.is_some() {
            self.db = Some(summary.clone());
        }
    }
}

impl Complete for RequestSpan {
    fn on_response<B>(&mut self, res: &mut Response<B>) {
        if self.recording {
            self.record_response(res);
            #[cfg(feature = "db")]
            self.record_db(res);
        }
        if self.settings.inject_response {
            TraceContextPropagator::new()
                .inject_context(&self.cx, &mut HeaderInjector::new(res.headers_mut()));
        }
        if self.server_timing {
            let mut fields = HashMap::new();
            TraceContextPropagator::new().inject_context(&self.cx, &mut fields);
            if let Some(traceparent) = fields.get("traceparent") {
                server_timing::append(
                    res.headers_mut(),
                    &[("traceparent", None, Some(traceparent))],
                );
            }
        }
    }

    fn on_service_error<E>(&mut self, _error: &E) {
        self.error(short_type_name::<E>());
    }

    fn on_body_error<E>(&mut self, _error: &E) {
        self.error(short_type_name::<E>());
    }

    fn complete(self, outcome: Outcome) {
        if !self.recording {
            return;
        }
        if outcome == Outcome::Cancelled {
            self.error(Outcome::Cancelled.as_str());
        }
        #[cfg(feature = "db")]
        if let (Some(tracer), Some(summary)) = (&self.settings.db_client_spans, &self.db) {
            super::db::client_spans(tracer, &self.cx, summary);
        }
        self.cx.span().end();
    }
}

/// A low-cardinality `error.type`: the error's type name without its module path.
fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}
