//! The request path (RFC 9111 §4): the only code that awaits the store or the inner service.
//!
//! Every decision is delegated to [`crate::rfc`]; this module does the I/O around them:
//! - [`lookup`]: find the stored variants, decide fresh / stale / validate, coalesce misses;
//! - [`fetch`]: call the inner service for misses, store what comes back;
//! - [`revalidate`]: revalidate a stored response (304 and HEAD updates, stale fallbacks);
//! - [`serve`]: answer from a stored entry;
//! - [`save`] and [`generation`]: store unless an invalidation happened after the request started;
//! - [`coalesce`]: concurrent misses for one key wait for a single inner call;
//! - [`headers`]: `Cache-Status`, `Server-Timing`, field stripping and invalidation.

pub(crate) mod coalesce;
pub(crate) mod fetch;
pub(crate) mod generation;
pub(crate) mod headers;
pub(crate) mod lookup;
pub(crate) mod revalidate;
pub(crate) mod save;
pub(crate) mod serve;

use std::sync::Arc;

use bytes::Bytes;
use http::header;
use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::flow::headers::{finish, invalidate, strip_cache_fields, strip_hop_by_hop};
use crate::metrics::Outcome;
use crate::rfc::directives::RequestDirectives;
use crate::rfc::key;
use crate::shared::Shared;

/// The inner service the flow drives: the bounds of [`Cache`](crate::Cache)'s `Service` impl,
/// written once for the flow's steps.
pub(crate) trait InnerService<ReqBody, ResBody>:
    Service<Request<ReqBody>, Response = Response<ResBody>, Future: Send, Error: Send>
    + Clone
    + Send
    + 'static
{
}

impl<T, ReqBody, ResBody> InnerService<ReqBody, ResBody> for T where
    T: Service<Request<ReqBody>, Response = Response<ResBody>, Future: Send, Error: Send>
        + Clone
        + Send
        + 'static
{
}

/// A request body the flow forwards (an empty one for its own revalidations).
pub(crate) trait ForwardBody: Default + Send + 'static {}

impl<T: Default + Send + 'static> ForwardBody for T {}

/// A response body the flow can buffer and store.
pub(crate) trait CacheableBody: Body<Data = Bytes, Error: Send> + Send + 'static {}

impl<T: Body<Data = Bytes, Error: Send> + Send + 'static> CacheableBody for T {}

/// One request's state on its way through the flow.
#[derive(Debug)]
pub(crate) struct RequestCtx {
    /// The primary cache key.
    pub(crate) key: String,
    /// The request's cache directives.
    pub(crate) rq: RequestDirectives,
    /// Whether this request gets the `Server-Timing` entry.
    pub(crate) timing: bool,
    /// The `Cache-Status` forward reason if the inner service is called (`fwd=uri-miss`, …).
    pub(crate) fwd: &'static str,
    /// The invalidation generation when the request started (see [`generation`]).
    pub(crate) started: u64,
}

/// Entry point for every request that is not answered inline.
pub(crate) async fn handle<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: InnerService<ReqBody, ResBody>,
    ReqBody: ForwardBody,
    ResBody: CacheableBody,
{
    let method = req.method().clone();
    let timing = shared
        .server_timing
        .wants(&method, req.uri(), req.headers());
    if req.headers().contains_key(header::UPGRADE) || method == Method::CONNECT {
        let mut response = inner.call(req).await?.map(ResponseBody::stream);
        let text = &["fwd=bypass"];
        finish(
            &shared,
            response.headers_mut(),
            text,
            Outcome::Bypass,
            timing,
        );
        return Ok(response);
    }
    if method == Method::GET || method == Method::HEAD {
        return lookup::lookup(shared, inner, req, timing).await;
    }
    let key = key::primary(req.uri(), req.headers());
    let (mut parts, body) = inner.call(req).await?.into_parts();
    let safe = method == Method::OPTIONS || method == Method::TRACE;
    if !safe && (parts.status.is_success() || parts.status.is_redirection()) {
        invalidate(&shared, &key, &parts.headers).await;
    }
    strip_hop_by_hop(&mut parts.headers);
    strip_cache_fields(&shared, &mut parts.headers);
    let text = &["fwd=method"];
    finish(&shared, &mut parts.headers, text, Outcome::Bypass, timing);
    Ok(Response::from_parts(parts, ResponseBody::stream(body)))
}
