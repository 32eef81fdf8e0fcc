//! [`PerfRouter`]: [`Perf`] around a whole axum `Router` (feature `axum`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::builder::PerfLayer;
use super::future::ResponseFuture;
use super::hooks::OnComplete;
use super::service::Perf;

impl<H> PerfLayer<H> {
    /// Wraps a whole axum `Router` (rather than each of its routes, as `Router::layer` does).
    ///
    /// The router sees the request after this layer, so give the layer the route templates
    /// with [`route_table`](crate::PerfLayerBuilder::route_table); requests that match no
    /// template are labelled unmatched. What it buys: no per-route boxing of the layer (axum
    /// boxes every layered route's service, future and body per request), and the router's
    /// own work (routing, 404s, 405s) is inside the measurement. Serve it with
    /// `axum::serve(listener, app.into_make_service())` (`axum::ServiceExt`).
    ///
    /// ```
    /// use axum::{Router, ServiceExt as _, routing::get};
    /// use perf_middleware::{PerfLayer, RouteTable};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut routes = RouteTable::builder();
    /// let router = Router::new().route(routes.add("/users/{id}"), get(|| async { "{}" }));
    /// let app = PerfLayer::builder()
    ///     .route_table(routes.build()?)
    ///     .build()?
    ///     .around(router);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # drop(listener); let _ = app; return Ok(());
    /// axum::serve(listener, app.into_make_service()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn around(&self, router: axum::Router) -> PerfRouter<H> {
        PerfRouter {
            // What `axum::serve` does to a `Router` per connection: turns its handlers into
            // routes once. Called as a plain service without it, a router re-boxes the handler
            // of every request.
            inner: self.layer(router.with_state(())),
        }
    }
}

/// A whole axum `Router` behind [`PerfLayer`], answering with axum's own `Response` type (what
/// `axum::serve` takes). Built by [`PerfLayer::around`].
pub struct PerfRouter<H = ()> {
    inner: Perf<axum::Router, H>,
}

impl<H> Clone for PerfRouter<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<H> std::fmt::Debug for PerfRouter<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfRouter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<H> PerfRouter<H> {
    /// The router.
    pub fn get_ref(&self) -> &axum::Router {
        self.inner.get_ref()
    }

    /// The [`Perf`] service, whose response body is not yet converted to axum's `Body`.
    pub fn into_inner(self) -> Perf<axum::Router, H> {
        self.inner
    }
}

impl<H: OnComplete> Service<Request> for PerfRouter<H> {
    type Response = Response;
    type Error = Infallible;
    type Future = PerfRouterFuture<H>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.inner, cx)
    }

    #[inline]
    fn call(&mut self, req: Request) -> Self::Future {
        PerfRouterFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// Response future of [`PerfRouter`].
    pub struct PerfRouterFuture<H: OnComplete> {
        #[pin]
        inner: ResponseFuture<RouteFuture<Infallible>, H>,
    }
}

impl<H: OnComplete> std::fmt::Debug for PerfRouterFuture<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfRouterFuture").finish_non_exhaustive()
    }
}

impl<H: OnComplete> Future for PerfRouterFuture<H> {
    type Output = Result<Response, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let res = ready!(self.project().inner.poll(cx))?;
        // One box: axum's `Body` around this layer's body (which wraps the router's).
        Poll::Ready(Ok(res.map(Body::new)))
    }
}
