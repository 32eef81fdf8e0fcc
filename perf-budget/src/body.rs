//! The response body: the inner body (timed to its end with `measure = "body"`) or the layer's
//! own short text for deadline and shed responses.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use perf_middleware::completion::GuardedBody;
use pin_project_lite::pin_project;

use crate::future::Pending;
use crate::hooks::OnTransition;

pin_project! {
    #[project = KindProj]
    enum Kind<B, T: OnTransition, X> {
        Inner { #[pin] body: GuardedBody<B, Pending<T, X>> },
        Full { data: Option<Bytes> },
    }
}

pin_project! {
    /// The response body of [`Budget`](crate::Budget). Forwards `is_end_stream` and `size_hint`.
    ///
    /// Dropping it before its end (with `measure = "body"`) counts the request once as cancelled.
    ///
    /// `T` and `X` are the layer's hooks (see [`BudgetLayer`](crate::BudgetLayer)).
    pub struct ResponseBody<B, T: OnTransition = (), X = ()> {
        #[pin]
        kind: Kind<B, T, X>,
    }
}

impl<B, T: OnTransition, X> std::fmt::Debug for ResponseBody<B, T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B, T: OnTransition, X> ResponseBody<B, T, X> {
    pub(crate) fn inner(body: GuardedBody<B, Pending<T, X>>) -> Self {
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

impl<B, T, X> Body for ResponseBody<B, T, X>
where
    B: Body,
    B::Data: From<Bytes>,
    T: OnTransition,
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
