use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use opentelemetry::trace::Tracer;
use tower_service::Service;

use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::layer::{OtelLayer, Settings};
use super::span::RequestSpan;

/// The service built by [`OtelLayer`]: one `SERVER` span per request.
///
/// See the [module docs](crate::server) for an example.
#[derive(Debug, Clone)]
pub struct Otel<S, T> {
    pub(crate) inner: S,
    pub(crate) tracer: T,
    pub(crate) settings: Arc<Settings>,
}

/// `Otel::layer(..)` names no inner service, so it lives on `Otel<(), T>` (the type parameter is
/// then known).
impl<T: Tracer> Otel<(), T> {
    /// The layer with the defaults, as [`OtelLayer::new`].
    ///
    /// ```
    /// use opentelemetry::trace::noop::NoopTracer;
    /// use perf_otel::Otel;
    /// use tower::ServiceBuilder;
    ///
    /// let svc = ServiceBuilder::new()
    ///     .layer(Otel::layer(NoopTracer::new()))
    ///     .service(tower::service_fn(|_req: http::Request<()>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     }));
    /// # let _ = svc;
    /// ```
    pub fn layer(tracer: T) -> OtelLayer<T> {
        OtelLayer::new(tracer)
    }
}

impl<S, T> Otel<S, T> {
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

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for Otel<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    T: Tracer,
    T::Span: Send + Sync + 'static,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        if self.settings.skip.matches(req.extensions()) {
            return ResponseFuture::skipped(self.inner.call(req));
        }
        let span = RequestSpan::start(&self.tracer, &self.settings, &mut req);
        // The handler runs with the request span as the current OpenTelemetry context, so its own
        // spans (OTel API or `tracing` through `tracing-opentelemetry`) become children.
        let inner = {
            let _active = span.cx().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::new(inner, span)
    }
}
