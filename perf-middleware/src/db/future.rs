//! The [`ResponseFuture`] of [`Db`](super::Db).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;
use tracing::Span;

use super::body::ResponseBody;
use super::record::Record;
use crate::completion::GuardedFuture;

pin_project! {
    /// Response future of [`Db`](super::Db): polls the inner future inside the request span, so
    /// the statements it runs are the request's.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: GuardedFuture<F, Record>,
        span: Span,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, record: Option<Record>, span: Span) -> Self {
        Self {
            inner: GuardedFuture::new(inner, record),
            span,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = this.span.enter();
        let res = ready!(this.inner.poll(cx))?;
        drop(entered);
        let span = this.span.clone();
        Poll::Ready(Ok(res.map(|body| ResponseBody::new(body, span))))
    }
}
