//! Behaviour tests for the composed layer over an in-process origin (paused Tokio time).

mod acceptance;
mod edge;
mod fill;
mod regressions;
mod semantics;
mod validation;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};

use crate::{Cache, CacheLayer};

/// What the origin saw and how it answers: `respond(request headers, call number) -> response`.
type Respond = dyn Fn(&HeaderMap, usize) -> Response<Full<Bytes>> + Send + Sync;

#[derive(Clone)]
pub(super) struct Origin {
    pub(super) calls: Arc<AtomicUsize>,
    pub(super) seen: Arc<Mutex<Vec<HeaderMap>>>,
    respond: Arc<Respond>,
    delay: Duration,
    slow_gets: Duration,
}

impl Origin {
    pub(super) fn new(
        respond: impl Fn(&HeaderMap, usize) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            calls: Arc::default(),
            seen: Arc::default(),
            respond: Arc::new(respond),
            delay: Duration::ZERO,
            slow_gets: Duration::ZERO,
        }
    }

    pub(super) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// GETs (only) take `delay` longer.
    pub(super) fn slow_gets(mut self, delay: Duration) -> Self {
        self.slow_gets = delay;
        self
    }

    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(super) fn last_seen(&self) -> HeaderMap {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

impl Service<Request<()>> for Origin {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.lock().unwrap().push(req.headers().clone());
        let mut response = (self.respond)(req.headers(), n);
        if req.method() == http::Method::HEAD {
            // Like a real origin: the fields of the GET, no body.
            *response.body_mut() = Full::default();
        }
        let slow = if req.method() == http::Method::GET {
            self.slow_gets
        } else {
            Duration::ZERO
        };
        let delay = self.delay + slow;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(response)
        })
    }
}

/// A response with `headers` and `body`.
pub(super) fn response(headers: &[(&str, &str)], body: &str) -> Response<Full<Bytes>> {
    let mut builder = Response::builder();
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// The result of one request through the cache.
#[derive(Debug)]
pub(super) struct Got {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Got {
    pub(super) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    pub(super) fn cache_status(&self) -> &str {
        self.header("cache-status")
    }
}

pub(super) async fn send(
    svc: &Cache<Origin>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.com");
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    let res = svc
        .clone()
        .oneshot(builder.body(()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub(super) async fn get(svc: &Cache<Origin>, path: &str) -> Got {
    send(svc, "GET", path, &[]).await
}

pub(super) fn cache(origin: &Origin) -> Cache<Origin> {
    tower_layer::Layer::layer(&CacheLayer::new(), origin.clone())
}

pub(super) fn cache_with(layer: &CacheLayer, origin: &Origin) -> Cache<Origin> {
    tower_layer::Layer::layer(layer, origin.clone())
}
