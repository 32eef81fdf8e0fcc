//! The [`Perf`] service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::future::ResponseFuture;
use crate::hooks::{OnComplete, Outcome};
use crate::layer::{PerfLayer, Shared};
use crate::record::{Cold, Record};
use crate::registry::{OVERFLOW, Resolved};
use crate::route::{QUERY_METHOD, RequestStart, TraceId, method_index};

/// Middleware that measures requests. Built by [`PerfLayer`]; see the [crate docs](crate).
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

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let shared = &self.shared;
        let resolved = shared
            .routes
            .resolve(req.extensions(), req.uri().path(), |t| shared.entry_for(t));
        let (route, overflow) = match resolved {
            Resolved::Entry(_, e) if e.ignored => {
                return ResponseFuture::new(self.inner.call(req), None, None);
            }
            Resolved::Entry(id, _) => (id, None),
            Resolved::Overflow(r) if shared.ignored.contains(r.as_str()) => {
                return ResponseFuture::new(self.inner.call(req), None, None);
            }
            Resolved::Overflow(r) => (OVERFLOW, Some(r)),
        };
        let method_idx = method_index(req.method());
        let scheme_idx = match req.uri().scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => 1,
            Some(_) => 0,
            None => shared.default_scheme,
        };
        if let Some(cache) = &shared.metrics {
            cache.active(method_idx, scheme_idx).increment(1.0);
        }
        let server_timing = shared
            .server_timing
            .wants(req.method(), req.uri(), req.headers());
        let total_start = if server_timing {
            match req.extensions().get::<RequestStart>() {
                Some(s) => Some(s.0),
                None => {
                    req.extensions_mut().insert(RequestStart(start));
                    Some(start)
                }
            }
        } else {
            None
        };
        let slow = &shared.slow;
        let trace_id = req.extensions().get::<TraceId>().copied();
        let log_uri = slow.log_path || slow.log_query;
        let cold =
            (trace_id.is_some() || log_uri || method_idx >= QUERY_METHOD || overflow.is_some())
                .then(|| {
                    Box::new(Cold {
                        method: (method_idx >= QUERY_METHOD).then(|| req.method().clone()),
                        uri: log_uri.then(|| req.uri().clone()),
                        trace_id,
                        route: overflow,
                    })
                });
        let record = Record {
            shared: shared.clone(),
            start,
            cold,
            // Like OpenTelemetry's Java instrumentation: only requests that declare a body size.
            request_size: req
                .body()
                .size_hint()
                .exact()
                .filter(|&n| n > 0 || req.headers().contains_key(http::header::CONTENT_LENGTH)),
            headers_at: None,
            response_size: 0,
            route,
            status: None,
            method_idx,
            scheme_idx,
            outcome: Outcome::Cancelled,
        };
        ResponseFuture::new(self.inner.call(req), Some(record), total_start)
    }
}
