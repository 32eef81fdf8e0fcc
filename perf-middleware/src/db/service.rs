//! The [`Db`] service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;
use tracing::Span;
use tracing_subscriber::registry::{LookupSpan, Registry};

use super::SPAN_TARGET;
use super::collector::Collector;
use super::future::ResponseFuture;
use super::layer::{DbLayer, Shared};
use super::record::Record;
use crate::{TraceId, UNMATCHED_ROUTE, route_template};

/// Middleware that attributes database statements to requests. Built by [`DbLayer`]; see the
/// [module docs](super).
#[derive(Clone, Debug)]
pub struct Db<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> Db<S> {
    /// Wraps `inner` with a default [`DbLayer`].
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&DbLayer::new(), inner)
    }

    /// A default [`DbLayer`].
    pub fn layer() -> DbLayer {
        DbLayer::new()
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Db<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        shared.checked.call_once(|| {
            super::check_capture();
        });
        if shared.skipped(&req) {
            return ResponseFuture::new(self.inner.call(req), None, Span::none());
        }
        let span = tracing::trace_span!(target: SPAN_TARGET, "perf.db.request");
        let Some(record) = self.record(&span, &req) else {
            return ResponseFuture::new(self.inner.call(req), None, Span::none());
        };
        let future = span.in_scope(|| self.inner.call(req));
        ResponseFuture::new(future, Some(record), span)
    }
}

impl<S> Db<S> {
    /// The request's record, its collector put into the span's extensions; `None` when no
    /// subscriber listens to the span (the capture is not installed) or it is not a `Registry`.
    fn record<B>(&self, span: &Span, req: &Request<B>) -> Option<Record> {
        if span.is_disabled() {
            return None;
        }
        let shared = &self.shared;
        let ext = req.extensions();
        let template = route_template(ext)
            .or_else(|| shared.table.as_ref()?.resolve(ext, req.uri().path()))
            .unwrap_or(UNMATCHED_ROUTE);
        let route = shared.route(template);
        let collector = Arc::new(Collector::new(
            route.label.clone(),
            TraceId::from_extensions(ext),
            route.slow,
        ));
        let attached = span.with_subscriber(|(id, dispatch)| {
            let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
            span.extensions_mut().insert(collector.clone());
            Some(())
        });
        attached.flatten()?;
        Some(Record {
            server_timing: shared
                .server_timing
                .wants(req.method(), req.uri(), req.headers()),
            shared: shared.clone(),
            route,
            collector,
        })
    }
}
