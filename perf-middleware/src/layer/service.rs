//! The [`Perf`] service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use super::body::ResponseBody;
use super::builder::{PerfLayer, Shared};
use super::future::ResponseFuture;
use super::hooks::OnComplete;
use super::record::Record;
use crate::{KnownMethod, TraceId};

/// Middleware that measures requests. Built by [`PerfLayer`]; see its docs.
pub struct Perf<S, H = ()> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<H>>,
}

impl<S: Clone, H> Clone for Perf<S, H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug, H> std::fmt::Debug for Perf<S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Perf")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S> Perf<S> {
    /// Wraps `inner` with a default [`PerfLayer`].
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&PerfLayer::new(), inner)
    }

    /// Returns a default [`PerfLayer`] (for symmetry with tower-http's `Foo::layer()`).
    pub fn layer() -> PerfLayer {
        PerfLayer::new()
    }
}

impl<S, H> Perf<S, H> {
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

impl<S, H, ReqBody, ResBody> Service<Request<ReqBody>> for Perf<S, H>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body,
    ResBody: Body,
    H: OnComplete,
{
    type Response = Response<ResponseBody<ResBody, H>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, H>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let route = shared
            .routes
            .resolve(req.extensions(), req.uri().path(), |t| shared.entry_for(t));
        if route.ignored {
            return ResponseFuture::new(self.inner.call(req), None);
        }
        let known = KnownMethod::from_method(req.method());
        let scheme = shared.scheme.of(req.uri());
        if let Some(metrics) = &shared.metrics {
            metrics.active(known, scheme).increment(1.0);
        }
        let slow = &shared.slow;
        let record = Record {
            shared: shared.clone(),
            route,
            start,
            method: req.method().clone(),
            known,
            scheme,
            // Like OpenTelemetry's Java instrumentation: only requests that declare a body size.
            request_size: req
                .body()
                .size_hint()
                .exact()
                .filter(|&n| n > 0 || req.headers().contains_key(http::header::CONTENT_LENGTH)),
            uri: (slow.log_path || slow.log_query).then(|| Box::new(req.uri().clone())),
            trace_id: TraceId::from_extensions(req.extensions()),
            server_timing: shared
                .server_timing
                .wants(req.method(), req.uri(), req.headers()),
            headers_at: None,
            status: None,
            response_size: 0,
            #[cfg(feature = "db")]
            db: None,
            #[cfg(feature = "page")]
            marks: Default::default(),
        };
        ResponseFuture::new(self.inner.call(req), Some(record))
    }
}
