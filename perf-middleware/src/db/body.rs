//! The [`ResponseBody`] of [`Db`](super::Db).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use super::record::Record;
use crate::completion::GuardedBody;

pin_project! {
    /// Response body of [`Db`](super::Db): polled inside the request span (statements run while
    /// streaming are the request's); the request is reported when the body ends, fails or is
    /// dropped. Forwards `is_end_stream` and `size_hint`, so `Content-Length` is kept.
    pub struct ResponseBody<B> {
        #[pin]
        inner: GuardedBody<B, Record>,
        span: Span,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: GuardedBody<B, Record>, span: Span) -> Self {
        Self { inner, span }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", self.inner.get_ref())
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let _entered = this.span.enter();
        this.inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
