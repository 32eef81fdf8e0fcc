//! The [`ResponseBody`] of [`Perf`](super::Perf).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::hooks::OnComplete;
use super::record::Record;
use crate::completion::GuardedBody;

pin_project! {
    /// Response body of [`Perf`](super::Perf): counts data bytes and records the request when the
    /// body ends, fails, or is dropped early (cancelled). Forwards `is_end_stream` and
    /// `size_hint`, so `Content-Length` is kept.
    pub struct ResponseBody<B, H: OnComplete> {
        #[pin]
        inner: GuardedBody<B, Record<H>>,
    }
}

impl<B, H: OnComplete> ResponseBody<B, H> {
    pub(crate) fn new(inner: GuardedBody<B, Record<H>>) -> Self {
        Self { inner }
    }
}

impl<B: std::fmt::Debug, H: OnComplete> std::fmt::Debug for ResponseBody<B, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", self.inner.get_ref())
            .finish_non_exhaustive()
    }
}

impl<B: Body, H: OnComplete> Body for ResponseBody<B, H> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
