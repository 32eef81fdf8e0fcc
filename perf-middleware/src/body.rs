//! The [`ResponseBody`] of [`Perf`](crate::Perf).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::hooks::{OnComplete, Outcome};
use crate::record::Record;

pin_project! {
    /// Response body of [`Perf`](crate::Perf): counts data bytes and records the request when the
    /// body ends, fails, or is dropped early (cancelled). Forwards `is_end_stream` and
    /// `size_hint`, so `Content-Length` is kept.
    pub struct ResponseBody<B, H: OnComplete> {
        #[pin]
        inner: B,
        record: Option<Record<H>>,
    }
}

impl<B, H: OnComplete> ResponseBody<B, H> {
    pub(crate) fn new(inner: B, record: Option<Record<H>>) -> Self {
        Self { inner, record }
    }
}

impl<B: std::fmt::Debug, H: OnComplete> std::fmt::Debug for ResponseBody<B, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
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
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(record), Some(data)) = (this.record.as_mut(), f.data_ref()) {
                    record.response_size += bytes::Buf::remaining(data) as u64;
                }
                if this.inner.is_end_stream()
                    && let Some(record) = this.record.take()
                {
                    record.finish(Outcome::Completed);
                }
            }
            Some(Err(_)) => {
                if let Some(record) = this.record.take() {
                    record.finish(Outcome::BodyError);
                }
            }
            None => {
                if let Some(record) = this.record.take() {
                    record.finish(Outcome::Completed);
                }
            }
        }
        Poll::Ready(frame)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
