//! The response body: the inner body (timed to its end with `measure = "body"`) or the layer's
//! own short text for deadline and shed responses, and the [`BodyKind`] that says how the layer
//! hands it back.

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

/// How [`Budget`](crate::Budget) hands back response bodies (sealed).
///
/// - [`Wrapped`] (the default): every body in a [`ResponseBody`], for any body type.
/// - [`AxumBody`] (feature `axum`, [`BudgetLayer::axum_body`](crate::BudgetLayer::axum_body)):
///   axum's `Body`, passed through untouched unless it must be timed to its end
///   (`measure = "body"`), so axum does not box a wrapper around every response.
pub trait BodyKind<B>: sealed::Sealed {
    /// The body of the layer's responses.
    type Body;
    #[doc(hidden)]
    fn plain(body: B) -> Self::Body;
    #[doc(hidden)]
    fn timed(body: ResponseBody<B>) -> Self::Body;
    #[doc(hidden)]
    fn text(data: Bytes) -> Self::Body;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Wrapped {}
    #[cfg(feature = "axum")]
    impl Sealed for super::AxumBody {}
}

/// [`BodyKind`]: responses carry a [`ResponseBody`] around the inner body (any body type).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrapped;

impl<B> BodyKind<B> for Wrapped {
    type Body = ResponseBody<B>;
    #[inline]
    fn plain(body: B) -> Self::Body {
        ResponseBody::inner(body, None)
    }
    #[inline]
    fn timed(body: ResponseBody<B>) -> Self::Body {
        body
    }
    #[inline]
    fn text(data: Bytes) -> Self::Body {
        ResponseBody::full(data)
    }
}

/// [`BodyKind`] for axum: responses carry axum's `Body`. The inner body is returned as it is
/// (no allocation, no indirection); only a body timed to its end (`measure = "body"`) is wrapped
/// (`Body::new(ResponseBody)`), and the layer's own responses are `Body::from(text)`.
#[cfg(feature = "axum")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AxumBody;

#[cfg(feature = "axum")]
impl BodyKind<axum::body::Body> for AxumBody {
    type Body = axum::body::Body;
    #[inline]
    fn plain(body: axum::body::Body) -> Self::Body {
        body
    }
    #[inline]
    fn timed(body: ResponseBody<axum::body::Body>) -> Self::Body {
        axum::body::Body::new(body)
    }
    #[inline]
    fn text(data: Bytes) -> Self::Body {
        axum::body::Body::from(data)
    }
}
