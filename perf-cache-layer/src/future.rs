//! The [`ResponseFuture`] of [`Cache`](crate::Cache).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use http_body::Body;

use crate::body::ResponseBody;

type Inner<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// Response future of [`Cache`](crate::Cache).
///
/// A cache lookup awaits an async [`CacheStore`](crate::CacheStore), so the request's state machine
/// is boxed once per request.
pub struct ResponseFuture<B: Body, E> {
    inner: Inner<B, E>,
}

impl<B: Body, E> ResponseFuture<B, E> {
    pub(crate) fn new(inner: Inner<B, E>) -> Self {
        Self { inner }
    }
}

impl<B: Body, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B: Body, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
