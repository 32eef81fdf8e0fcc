use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use perf_middleware::completion::GuardedBody;
use pin_project_lite::pin_project;

use super::span::RequestSpan;

pin_project! {
    /// Response body of [`Otel`](super::Otel): ends the request span at the end of the stream, on a
    /// body error (`error.type` = the error type), or when dropped early (`error.type = cancelled`).
    /// Data, errors, `is_end_stream` and `size_hint` pass through unchanged.
    pub struct ResponseBody<B> {
        #[pin]
        inner: GuardedBody<B, RequestSpan>,
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResponseBody").field(&self.inner).finish()
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: GuardedBody<B, RequestSpan>) -> Self {
        Self { inner }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
