//! [`InjectContextLayer`]: writes the current OpenTelemetry context into outgoing requests
//! (`traceparent`, `tracestate`, `baggage` by default), so downstream services join the trace.
//!
//! Put it on the HTTP client service your handlers use; inside a handler behind
//! [`OtelLayer`](crate::OtelLayer) the current context is the request span (or a child of it).
//!
//! # Example
//!
//! ```
//! use http::Request;
//! use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
//! use opentelemetry::Context;
//! use perf_otel::InjectContextLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = ServiceBuilder::new().layer(InjectContextLayer::new()).service(service_fn(
//!     |req: Request<()>| async move { Ok::<_, std::convert::Infallible>(req.headers().clone()) },
//! ));
//! let sc = SpanContext::new(
//!     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
//!     SpanId::from_hex("00f067aa0ba902b7").unwrap(),
//!     TraceFlags::SAMPLED,
//!     false,
//!     TraceState::default(),
//! );
//! let _active = Context::current().with_remote_span_context(sc).attach();
//! let sent = client.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(sent["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! # }
//! ```

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::Request;
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use tower_layer::Layer;
use tower_service::Service;

use crate::default_propagator;
use crate::propagation::{HeaderInjector, SharedPropagator};

/// Layer that injects the current context into outgoing requests. Clones share the propagator.
#[derive(Clone)]
#[must_use]
pub struct InjectContextLayer {
    propagator: SharedPropagator,
}

impl std::fmt::Debug for InjectContextLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectContextLayer")
            .field("fields", &self.propagator.fields().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for InjectContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl InjectContextLayer {
    /// Injects W3C trace context and baggage ([`default_propagator`]).
    pub fn new() -> Self {
        Self {
            propagator: Arc::new(default_propagator()),
        }
    }

    /// Injects with `propagator` instead of the default.
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagator = Arc::new(propagator);
        self
    }
}

impl<S> Layer<S> for InjectContextLayer {
    type Service = InjectContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectContext {
            inner,
            propagator: self.propagator.clone(),
        }
    }
}

/// The service built by [`InjectContextLayer`]. See the [module docs](self) for an example.
#[derive(Clone)]
pub struct InjectContext<S> {
    inner: S,
    propagator: SharedPropagator,
}

impl<S: std::fmt::Debug> std::fmt::Debug for InjectContext<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectContext")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> InjectContext<S> {
    /// The layer with the default propagator, as [`InjectContextLayer::new`].
    pub fn layer() -> InjectContextLayer {
        InjectContextLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for InjectContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        self.propagator.inject_context(
            &Context::current(),
            &mut HeaderInjector::new(req.headers_mut()),
        );
        self.inner.call(req)
    }
}
