//! The response body: the inner body (timed to its end with `measure = "body"`) or the layer's
//! own short text for deadline and shed responses.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::future::Pending;

pin_project! {
    #[project = BodyProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

pin_project! {
    /// The response body of [`Budget`](crate::Budget). Forwards `is_end_stream` and `size_hint`.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
        pending: Option<Pending>,
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B, pending: Option<Pending>) -> Self {
        Self {
            kind: Kind::Inner { body },
            pending,
        }
    }
    pub(crate) fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full { data: Some(data) },
            pending: None,
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
        let this = self.project();
        match this.kind.project() {
            BodyProj::Full { data } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data(B::Data::from(d)))))
            }
            BodyProj::Inner { mut body } => {
                let r = body.as_mut().poll_frame(cx);
                if let Some(p) = this.pending.as_mut() {
                    match &r {
                        Poll::Ready(None) => p.finish_body(false),
                        Poll::Ready(Some(Err(_))) => p.finish_body(true),
                        Poll::Ready(Some(Ok(_))) if body.is_end_stream() => p.finish_body(false),
                        _ => {}
                    }
                }
                r
            }
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
