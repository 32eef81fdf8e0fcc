//! The response body: the inner body (timed to its end with `measure = "body"`) or the layer's
//! own short text for deadline and shed responses.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use perf_middleware::completion::GuardedBody;
use pin_project_lite::pin_project;

use crate::future::Pending;

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: GuardedBody<B, Pending> },
        Full { data: Option<Bytes> },
    }
}

pin_project! {
    /// The response body of [`Budget`](crate::Budget). Forwards `is_end_stream` and `size_hint`.
    ///
    /// Dropping it before its end (with `measure = "body"`) counts the request once as cancelled.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: GuardedBody<B, Pending>) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full { data: Some(data) },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data(B::Data::from(d)))))
            }
            KindProj::Inner { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
