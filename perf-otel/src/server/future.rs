use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use perf_middleware::completion::{Complete, Guard, Outcome};
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::layer::SpanEnd;
use super::span::RequestSpan;

pin_project! {
    /// Response future of [`Otel`](super::Otel): polls the inner future inside the request span's
    /// context and records the response. Dropping it before completion ends the span with
    /// `error.type = cancelled`.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Guard<RequestSpan>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: RequestSpan) -> Self {
        Self {
            inner,
            guard: Guard::new(Some(span)),
        }
    }

    /// The inner future of a skipped route: no span, the response untouched.
    pub(crate) fn skipped(inner: F) -> Self {
        Self {
            inner,
            guard: Guard::new(None),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _active = this.guard.get().map(|s| s.cx().clone().attach());
            ready!(this.inner.poll(cx))
        };
        let mut guard = Guard::new(this.guard.take());
        Poll::Ready(match result {
            Ok(mut res) => {
                let body_tracked = guard.get_mut().is_some_and(|span| {
                    span.on_response(&mut res);
                    span.is_recording() && span.end() == SpanEnd::Body
                });
                if !body_tracked {
                    // Unsampled (nothing to end) or `SpanEnd::Headers`: done at the head.
                    guard.finish(Outcome::Completed);
                }
                Ok(res.map(|body| ResponseBody::new(guard.into_body(body))))
            }
            Err(e) => {
                if let Some(span) = guard.get_mut() {
                    span.on_service_error(&e);
                }
                guard.finish(Outcome::ServiceError);
                Err(e)
            }
        })
    }
}
