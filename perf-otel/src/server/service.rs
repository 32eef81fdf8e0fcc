use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{Config, OtelLayer};
use super::span::RequestSpan;

/// The service built by [`OtelLayer`]: one `SERVER` span per request.
///
/// See the [module docs](crate::server) for an example.
#[derive(Debug, Clone)]
pub struct Otel<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S> Otel<S> {
    /// Wraps `inner` with the configuration of `layer`.
    pub fn new(inner: S, layer: &OtelLayer) -> Self {
        Self {
            inner,
            config: layer.config.clone(),
        }
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Otel<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<super::body::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let span = RequestSpan::start(&self.config, &mut req);
        // The handler runs with the request span as the current OpenTelemetry context, so its own
        // spans (OTel API or `tracing` through `tracing-opentelemetry`) become children.
        let inner = {
            let _active = span.cx().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::new(inner, span, &self.config)
    }
}
