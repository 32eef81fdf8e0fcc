use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::short_type_name;
use super::span::SpanGuard;

pin_project! {
    /// Response body of [`Otel`](super::Otel): ends the request span at the end of the stream, on a
    /// body error (`error.type` = the error type), or when dropped early (`error.type = cancelled`).
    /// Data, errors, `is_end_stream` and `size_hint` pass through unchanged.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        guard: Option<SpanGuard>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // A body dropped before its end: the guard's own drop records the cancellation. (Bodies
            // that are complete before the first poll, or report `is_end_stream` after a frame, have
            // already ended the span, so hyper skipping the final poll is not a cancellation.)
            drop(this.project().guard.take());
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("guard", &self.guard)
            .finish()
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn traced(inner: B, guard: SpanGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }

    pub(crate) fn untraced(inner: B) -> Self {
        Self { inner, guard: None }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            None => {
                if let Some(g) = this.guard.take() {
                    g.end();
                }
            }
            Some(Err(_)) => {
                if let Some(mut g) = this.guard.take() {
                    g.error(short_type_name::<B::Error>());
                    g.end();
                }
            }
            Some(Ok(_)) => {
                if this.inner.is_end_stream()
                    && let Some(g) = this.guard.take()
                {
                    g.end();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
