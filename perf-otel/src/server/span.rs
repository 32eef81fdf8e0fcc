//! The request span: start (sampling first), response recording, end, and the cancellation guard.

use std::borrow::Cow;
use std::sync::Arc;

use http::{Request, Response};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};

use super::attributes;
use super::layer::Config;
use crate::propagation::{HeaderExtractor, HeaderInjector};

/// `error.type` for requests whose response future or body was dropped before completion.
pub(crate) const CANCELLED: &str = "cancelled";

/// Owns the request span until it ends; ending is idempotent and dropping an unended guard ends
/// the span as cancelled.
#[derive(Debug)]
pub(crate) struct SpanGuard {
    pub(crate) cx: Context,
    config: Arc<Config>,
    /// `{method}` part of the span name (`HTTP` for unknown methods).
    method: Cow<'static, str>,
    recording: bool,
    ended: bool,
}

/// The route template the routers in front of us recorded, if any.
pub(crate) fn route(ext: &http::Extensions) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(m) = ext.get::<axum::extract::MatchedPath>() {
        return Some(m.as_str());
    }
    ext.get::<perf_middleware::RouteTemplate>()
        .map(perf_middleware::RouteTemplate::as_str)
}

impl SpanGuard {
    /// Extracts the caller's context, starts the span (the sampler runs before any attribute is
    /// built), records the request attributes when sampled, and puts the trace id into the request.
    pub(crate) fn start<B>(config: &Arc<Config>, req: &mut Request<B>) -> Self {
        let parent = config.propagator.extract(&HeaderExtractor(req.headers()));
        let method = attributes::known_method(req.method(), &config.known_methods);
        // The sampler sees the kind, the parent and the method-only name; everything else waits
        // until we know the span records.
        let method = method.unwrap_or(Cow::Borrowed("HTTP"));
        let mut span = config
            .tracer
            .span_builder(method.clone())
            .with_kind(SpanKind::Server)
            .start_with_context(&config.tracer, &parent);
        let recording = span.is_recording();
        if recording {
            let route = route(req.extensions());
            if let Some(r) = route {
                span.update_name(format!("{method} {r}"));
            }
            span.set_attributes(attributes::request(config, req, route));
        }
        let trace_id = span.span_context().trace_id();
        req.extensions_mut()
            .insert(perf_middleware::TraceId(trace_id.to_bytes()));
        Self {
            cx: parent.with_span(span),
            config: config.clone(),
            method,
            recording,
            ended: false,
        }
    }

    /// Records the response: status code, status, `error.type`, captured headers, and injects the
    /// response `traceparent` when configured.
    pub(crate) fn on_response<B>(&mut self, res: &mut Response<B>) {
        let status = res.status();
        if self.recording {
            let span = self.cx.span();
            let mut attrs = vec![KeyValue::new(
                Key::from_static_str("http.response.status_code"),
                i64::from(status.as_u16()),
            )];
            if status.is_server_error() {
                span.set_status(Status::error(""));
                attrs.push(KeyValue::new(
                    Key::from_static_str("error.type"),
                    Value::String(StringValue::from(status.as_str().to_owned())),
                ));
            }
            // The route may only be known after routing (layer outside the router).
            if let Some(r) = res.extensions().get::<perf_middleware::RouteTemplate>() {
                attrs.push(KeyValue::new(
                    Key::from_static_str("http.route"),
                    r.as_str().to_owned(),
                ));
                span.update_name(format!("{} {}", self.method, r.as_str()));
            }
            attributes::capture_headers(&self.config.response_headers, res.headers(), &mut attrs);
            span.set_attributes(attrs);
        }
        if let Some(p) = &self.config.response_propagator {
            p.inject_context(&self.cx, &mut HeaderInjector(res.headers_mut()));
        }
    }

    /// Marks the request failed before or while the response was produced.
    pub(crate) fn error(&mut self, error_type: &'static str) {
        if self.recording {
            let span = self.cx.span();
            span.set_status(Status::error(""));
            span.set_attribute(KeyValue::new(
                Key::from_static_str("error.type"),
                error_type,
            ));
        }
    }

    /// Ends the span now.
    pub(crate) fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if !self.ended {
            self.ended = true;
            if self.recording {
                self.cx.span().end();
            }
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.error(CANCELLED);
            self.finish();
        }
    }
}
