//! The request span: start (sampling first), response recording, end, and the cancellation guard.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{HeaderMap, Request, Response};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use super::layer::Config;
use super::{attributes, names};
use crate::propagation::{HeaderExtractor, HeaderInjector};

/// `error.type` for requests whose response future or body was dropped before completion.
pub(crate) const CANCELLED: &str = "cancelled";

/// The OpenTelemetry state of one request, from `call` until its span ends.
#[derive(Debug)]
pub(crate) enum RequestSpan {
    /// Not sampled: only the context (the caller's, with our span's ids), so the handler, its
    /// outgoing requests and the response `traceparent` continue the trace; nothing to end.
    Unsampled(Context),
    /// Sampled: the recording span, ended by the guard.
    Sampled(SpanGuard),
}

/// Owns the recording request span until it ends; ending is idempotent and dropping an unended
/// guard ends the span as cancelled.
#[derive(Debug)]
pub(crate) struct SpanGuard {
    pub(crate) cx: Context,
    config: Arc<Config>,
    /// `{method}` part of the span name (`HTTP` for unknown methods).
    method: Cow<'static, str>,
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

/// The span name for `route` and the `http.route` value: shared static strings when the name
/// table has room, else formatted.
#[expect(
    clippy::ptr_arg,
    reason = "only a `'static` method (the `Borrowed` case) can share a static name"
)]
fn name_and_route(method: &Cow<'static, str>, route: &str) -> (Cow<'static, str>, StringValue) {
    if let Cow::Borrowed(m) = method
        && let Some(name) = names::span_name(m, route)
    {
        return (
            Cow::Borrowed(name),
            StringValue::from(names::route_of(name, m)),
        );
    }
    (
        Cow::Owned(format!("{method} {route}")),
        StringValue::from(route.to_owned()),
    )
}

/// The context the propagator reads from the request, or the current one when the request
/// carries none of the propagator's fields (known propagators only: a custom one is always asked).
fn parent(config: &Config, headers: &HeaderMap) -> Context {
    let present = config.extract_fields.as_deref().is_none_or(|fields| {
        !fields.is_empty()
            && if headers.len() <= 16 {
                headers.keys().any(|k| fields.contains(k))
            } else {
                fields.iter().any(|f| headers.contains_key(f))
            }
    });
    if present {
        config.propagator.extract(&HeaderExtractor(headers))
    } else {
        Context::current()
    }
}

impl RequestSpan {
    /// Extracts the caller's context, starts the span with only its kind, parent and method-only
    /// name (the sampler decides before anything is built), puts the trace id into the request and,
    /// when the span records, the request attributes and the routed name.
    pub(crate) fn start<B>(config: &Arc<Config>, req: &mut Request<B>) -> Self {
        let parent = parent(config, req.headers());
        let known = attributes::known_method(req.method(), &config.known_methods);
        let method = known.clone().unwrap_or(Cow::Borrowed("HTTP"));
        let mut builder = SpanBuilder::from_name(method.clone()).with_kind(SpanKind::Server);
        let hint = config.last_recorded.load(Ordering::Relaxed);
        // Looked up once: for the size hint, then for the name.
        let mut routed = None;
        if hint {
            let r = route(req.extensions());
            let count = attributes::count(config, req, known.is_some(), r.is_some());
            builder.attributes = Some(Vec::with_capacity(count));
            routed = Some(r);
        }
        let mut span = config.tracer.build_with_context(builder, &parent);
        let recording = span.is_recording();
        if recording != hint {
            // Written only when the answer changes, so the line stays shared between cores.
            config.last_recorded.store(recording, Ordering::Relaxed);
        }
        let trace_id = perf_middleware::TraceId(span.span_context().trace_id().to_bytes());
        if !recording {
            req.extensions_mut().insert(trace_id);
            // A non-recording span is its span context; keeping only that saves boxing the span.
            return Self::Unsampled(parent.with_remote_span_context(span.span_context().clone()));
        }
        let route = routed
            .unwrap_or_else(|| route(req.extensions()))
            .map(|r| name_and_route(&method, r));
        if let Some((name, _)) = &route {
            span.update_name(name.clone());
        }
        attributes::request(config, req, known, route.map(|(_, r)| r), &mut |kv| {
            span.set_attribute(kv);
        });
        req.extensions_mut().insert(trace_id);
        Self::Sampled(SpanGuard {
            cx: parent.with_span(span),
            config: config.clone(),
            method,
            ended: false,
        })
    }

    /// The context to poll the inner service in.
    pub(crate) fn cx(&self) -> &Context {
        match self {
            Self::Unsampled(cx) => cx,
            Self::Sampled(guard) => &guard.cx,
        }
    }
}

/// Writes the span's `traceparent` (and `tracestate`) into the response.
pub(crate) fn inject_response(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// `error.type` of a 5xx status: its code.
fn server_error_type(code: u16) -> StringValue {
    const CODES: &str = "500501502503504505506507508509510511";
    match code.checked_sub(500).map(usize::from) {
        Some(i @ 0..=11) => StringValue::from(&CODES[i * 3..i * 3 + 3]),
        _ => StringValue::from(code.to_string()),
    }
}

impl SpanGuard {
    /// Records the response: status code, status, `error.type`, the route the response names (a
    /// layer outside the router), captured headers, and the response `traceparent` when configured.
    pub(crate) fn on_response<B>(&mut self, res: &mut Response<B>) {
        let status = res.status();
        let span = self.cx.span();
        let code = KeyValue::new(
            Key::from_static_str("http.response.status_code"),
            i64::from(status.as_u16()),
        );
        let error = status.is_server_error().then(|| {
            span.set_status(Status::error(""));
            KeyValue::new(
                Key::from_static_str("error.type"),
                Value::String(server_error_type(status.as_u16())),
            )
        });
        // The route may only be known after routing (layer outside the router).
        let route = res
            .extensions()
            .get::<perf_middleware::RouteTemplate>()
            .map(|r| {
                let (name, route) = name_and_route(&self.method, r.as_str());
                span.update_name(name);
                KeyValue::new(Key::from_static_str("http.route"), Value::String(route))
            });
        if error.is_none() && route.is_none() && self.config.response_headers.is_empty() {
            span.set_attribute(code);
        } else {
            let mut attrs: Vec<KeyValue> =
                [Some(code), error, route].into_iter().flatten().collect();
            attributes::capture_headers(&self.config.response_headers, res.headers(), &mut |kv| {
                attrs.push(kv);
            });
            span.set_attributes(attrs);
        }
        if self.config.inject_response {
            inject_response(&self.cx, res.headers_mut());
        }
    }

    /// Marks the request failed before or while the response was produced.
    pub(crate) fn error(&mut self, error_type: &'static str) {
        let span = self.cx.span();
        span.set_status(Status::error(""));
        span.set_attribute(KeyValue::new(
            Key::from_static_str("error.type"),
            error_type,
        ));
    }

    /// Ends the span now.
    pub(crate) fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if !self.ended {
            self.ended = true;
            self.cx.span().end();
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

#[cfg(test)]
mod tests {
    #[test]
    fn server_error_types_are_the_code() {
        for code in [500, 503, 511, 599] {
            assert_eq!(super::server_error_type(code).as_str(), code.to_string());
        }
    }
}
