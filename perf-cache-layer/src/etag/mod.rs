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

mod body;
mod future;
mod layer;

pub use self::body::ResponseBody;
pub use self::future::ResponseFuture;
pub use self::layer::{ETag, ETagLayer};

#[cfg(test)]
mod tests;
