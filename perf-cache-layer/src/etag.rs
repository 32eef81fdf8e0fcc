//! [`ETagLayer`]: ETags and 304s for responses that are never stored.
//!
//! For a `GET` 200 without an `ETag`, the layer reads the body (up to a size limit), sets a strong
//! ETag hashed from it (xxh3-128, different per `Content-Encoding`), and answers a matching
//! `If-None-Match` / `If-Modified-Since` with `304 Not Modified` (RFC 9110 §13.1). A handler's own
//! `ETag` is never replaced, and conditional requests are evaluated against it without buffering.
//! Bodies over the limit stream through untouched. [`CacheLayer`](crate::CacheLayer) already does
//! this for the responses it stores; use this layer for responses that are not cacheable.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use perf_cache_layer::ETagLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let svc = ServiceBuilder::new().layer(ETagLayer::new()).service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! });
//! let res = svc.clone().oneshot(Request::new(())).await.unwrap();
//! let etag = res.headers()["etag"].clone();
//! let again = Request::builder().header("if-none-match", etag).body(()).unwrap();
//! assert_eq!(svc.oneshot(again).await.unwrap().status(), StatusCode::NOT_MODIFIED);
//! # }
//! ```

use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{Collected, ResponseBody, collect};
use crate::future::ResponseFuture;
use crate::rfc::conditional::{self, EtagMode};

/// Adds ETags and answers conditional requests with 304. See the [module docs](crate::etag).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct ETagLayer {
    mode: EtagMode,
    max_size: usize,
}

impl Default for ETagLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ETagLayer {
    /// Strong ETags for bodies up to 1 MiB.
    pub fn new() -> Self {
        Self {
            mode: EtagMode::Strong,
            max_size: 1 << 20,
        }
    }

    /// Strong or weak ETags. Defaults to [`EtagMode::Strong`]; use [`EtagMode::Weak`] when a
    /// compression layer sits outside this one.
    pub fn mode(mut self, mode: EtagMode) -> Self {
        self.mode = mode;
        self
    }

    /// Largest body hashed; larger bodies stream through without an ETag. Defaults to 1 MiB.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }
}

impl<S> Layer<S> for ETagLayer {
    type Service = ETag<S>;

    fn layer(&self, inner: S) -> ETag<S> {
        ETag {
            inner,
            config: *self,
        }
    }
}

/// The service produced by [`ETagLayer`].
#[derive(Debug, Clone)]
pub struct ETag<S> {
    inner: S,
    config: ETagLayer,
}

impl<S> ETag<S> {
    /// Wraps `inner` with the default [`ETagLayer`].
    pub fn new(inner: S) -> Self {
        ETagLayer::new().layer(inner)
    }

    /// An [`ETagLayer`] with the defaults.
    pub fn layer() -> ETagLayer {
        ETagLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the layer, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ETag<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let method = req.method().clone();
        let mut conditions = HeaderMap::new();
        for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
            for v in req.headers().get_all(&name) {
                conditions.append(name.clone(), v.clone());
            }
        }
        let future = self.inner.call(req);
        let config = self.config;
        ResponseFuture::new(Box::pin(async move {
            let response = future.await?;
            Ok(tag(config, &method, &conditions, response).await)
        }))
    }
}

async fn tag<B: Body<Data = Bytes>>(
    config: ETagLayer,
    method: &Method,
    conditions: &HeaderMap,
    response: Response<B>,
) -> Response<ResponseBody<B>> {
    let (mut parts, body) = response.into_parts();
    let eligible =
        parts.status == StatusCode::OK && (method == Method::GET || method == Method::HEAD);
    if eligible && parts.headers.contains_key(header::ETAG) {
        return respond(parts, conditions, method, || ResponseBody::stream(body));
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = declared.unwrap_or(body.size_hint().lower()) > config.max_size as u64;
    if !eligible || method == Method::HEAD || config.mode == EtagMode::Off || too_large {
        return Response::from_parts(parts, ResponseBody::stream(body));
    }
    let bytes = match collect(body, config.max_size).await {
        Collected::Complete(bytes) => bytes,
        Collected::Partial {
            prefix,
            trailers,
            error,
            rest,
        } => {
            return Response::from_parts(
                parts,
                ResponseBody::prefixed(prefix, trailers, error, rest),
            );
        }
    };
    if let Some(etag) = conditional::generate(config.mode, &parts.headers, &bytes) {
        parts.headers.insert(header::ETAG, etag);
    }
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    respond(parts, conditions, method, || ResponseBody::full(bytes))
}

fn respond<B: Body>(
    mut parts: http::response::Parts,
    conditions: &HeaderMap,
    method: &Method,
    body: impl FnOnce() -> ResponseBody<B>,
) -> Response<ResponseBody<B>> {
    if conditional::not_modified(method, conditions, &parts.headers) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers = conditional::not_modified_headers(&parts.headers);
        return Response::from_parts(parts, ResponseBody::empty());
    }
    Response::from_parts(parts, body())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;

    use super::*;

    async fn run(
        layer: ETagLayer,
        headers: &[(&'static str, &'static str)],
        req: &[(&str, &str)],
    ) -> Response<ResponseBody<Full<Bytes>>> {
        let headers: Vec<_> = headers.to_vec();
        let svc = layer.layer(tower::service_fn(move |_: Request<()>| {
            let mut res = Response::new(Full::new(Bytes::from_static(b"hello world")));
            for (n, v) in &headers {
                res.headers_mut().insert(*n, v.parse().unwrap());
            }
            async move { Ok::<_, Infallible>(res) }
        }));
        let mut builder = Request::builder();
        for (n, v) in req {
            builder = builder.header(*n, *v);
        }
        svc.oneshot(builder.body(()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn generates_strong_etags_and_answers_304() {
        let first = run(ETagLayer::new(), &[("cache-control", "no-store")], &[]).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(first.headers()["content-length"], "11");
        assert_eq!(
            first.into_body().collect().await.unwrap().to_bytes(),
            "hello world"
        );
        let second = run(
            ETagLayer::new(),
            &[("cache-control", "no-store")],
            &[("if-none-match", &etag)],
        )
        .await;
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()["cache-control"], "no-store");
        assert!(
            second
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn keeps_handler_etags_and_skips_large_bodies() {
        let own = run(
            ETagLayer::new(),
            &[("etag", "\"mine\"")],
            &[("if-none-match", "W/\"mine\"")],
        )
        .await;
        assert_eq!(own.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(own.headers()["etag"], "\"mine\"");
        let large = run(ETagLayer::new().max_size(4), &[], &[]).await;
        assert!(large.headers().get("etag").is_none());
        assert_eq!(
            large.into_body().collect().await.unwrap().to_bytes(),
            "hello world"
        );
        let weak = run(ETagLayer::new().mode(EtagMode::Weak), &[], &[]).await;
        assert!(weak.headers()["etag"].to_str().unwrap().starts_with("W/\""));
    }
}
