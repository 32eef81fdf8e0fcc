use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::layer::{Config, SpanEnd};
use super::span::{RequestSpan, inject_response};

pin_project! {
    /// Response future of [`Otel`](super::Otel): polls the inner future inside the request span's
    /// context and records the response. Dropping it before completion ends the span with
    /// `error.type = cancelled`.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Option<RequestSpan>,
        end: SpanEnd,
        inject_response: bool,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("span", &self.span)
            .field("end", &self.end)
            .finish()
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: RequestSpan, config: &Config) -> Self {
        Self {
            inner,
            span: Some(span),
            end: config.end,
            inject_response: config.inject_response,
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
            let _active = this.span.as_ref().map(|s| s.cx().clone().attach());
            ready!(this.inner.poll(cx))
        };
        let mut guard = match this.span.take() {
            Some(RequestSpan::Sampled(guard)) => guard,
            Some(RequestSpan::Unsampled(span_cx)) => {
                // Nothing recorded, nothing to end: the body needs no wrapper state.
                return Poll::Ready(result.map(|mut res| {
                    if *this.inject_response {
                        inject_response(&span_cx, res.headers_mut());
                    }
                    res.map(ResponseBody::untraced)
                }));
            }
            // Polled after completion: pass the inner output through without a span.
            None => return Poll::Ready(result.map(|res| res.map(ResponseBody::untraced))),
        };
        match result {
            Ok(mut res) => {
                guard.on_response(&mut res);
                if *this.end == SpanEnd::Headers || res.body().is_end_stream() {
                    guard.end();
                    Poll::Ready(Ok(res.map(ResponseBody::untraced)))
                } else {
                    Poll::Ready(Ok(res.map(|b| ResponseBody::traced(b, guard))))
                }
            }
            Err(e) => {
                guard.error(short_type_name::<E>());
                guard.end();
                Poll::Ready(Err(e))
            }
        }
    }
}

/// A low-cardinality `error.type`: the error's type name without its module path.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}
