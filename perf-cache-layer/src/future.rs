//! The [`ResponseFuture`] of [`Cache`](crate::Cache).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use http_body::Body;

use crate::body::ResponseBody;

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// Response future of [`Cache`](crate::Cache).
///
/// A fresh hit in a store that answers at once is ready immediately; every other path awaits an
/// async [`CacheStore`](crate::CacheStore) and the inner service, so its state machine is boxed
/// once per request.
pub struct ResponseFuture<B: Body, E> {
    kind: Kind<B, E>,
}

// A ready hit is returned inline (boxing it would cost the allocation the fast path avoids).
enum Kind<B: Body, E> {
    Ready(Option<Response<ResponseBody<B>>>),
    Boxed(Boxed<B, E>),
}

impl<B: Body, E> ResponseFuture<B, E> {
    pub(crate) fn new(inner: Boxed<B, E>) -> Self {
        Self {
            kind: Kind::Boxed(inner),
        }
    }

    pub(crate) fn ready(response: Response<ResponseBody<B>>) -> Self {
        Self {
            kind: Kind::Ready(Some(response)),
        }
    }
}

impl<B: Body, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ready = matches!(self.kind, Kind::Ready(_));
        f.debug_struct("ResponseFuture")
            .field("ready", &ready)
            .finish()
    }
}

// Neither variant is structurally pinned: the boxed future is pinned on the heap.
impl<B: Body, E> Unpin for ResponseFuture<B, E> {}

impl<B: Body, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.kind {
            Kind::Ready(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            Kind::Boxed(inner) => inner.as_mut().poll(cx),
        }
    }
}
