//! The [`ResponseFuture`] of [`Perf`](super::Perf).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::hooks::OnComplete;
use super::record::Record;
use crate::completion::GuardedFuture;

pin_project! {
    /// Response future of [`Perf`](super::Perf). Dropping it before it resolves records the
    /// request as cancelled.
    pub struct ResponseFuture<F, H: OnComplete> {
        #[pin]
        inner: GuardedFuture<F, Record<H>>,
    }
}

impl<F, H: OnComplete> ResponseFuture<F, H> {
    pub(crate) fn new(inner: F, record: Option<Record<H>>) -> Self {
        Self {
            inner: GuardedFuture::new(inner, record),
        }
    }
}

impl<F, H: OnComplete> std::fmt::Debug for ResponseFuture<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E, H> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    H: OnComplete,
{
    type Output = Result<Response<ResponseBody<B, H>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().inner.poll(cx))?;
        Poll::Ready(Ok(res.map(ResponseBody::new)))
    }
}
