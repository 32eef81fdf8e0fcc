//! Calls to the inner service for misses, and storing what comes back (RFC 9111 §3).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, request, response};
use http_body::Body;
use tower_service::Service;

use crate::body::{Collected, ResponseBody, collect};
use crate::flow::RequestCtx;
use crate::flow::coalesce::Leader;
use crate::flow::headers::{self, finish};
use crate::flow::save::save;
use crate::metrics::Outcome;
use crate::rfc::conditional;
use crate::rfc::directives::ResponseDirectives;
use crate::rfc::key;
use crate::rfc::policy::{self, NotStored, SetCookiePolicy};
use crate::shared::Shared;
use crate::store::CachedResponse;

pub(super) async fn ready_call<S, R>(svc: &mut S, req: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    svc.call(req).await
}

/// The request a stored response answers: what storing it needs to know.
pub(super) struct Sent {
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    pub(super) request_time: SystemTime,
    /// The client sent HEAD (the cache fetched with GET): the reply has no body.
    pub(super) head_reply: bool,
}

/// A miss: forward the request, store the response if allowed, publish it to coalesced waiters.
pub(crate) async fn miss<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    parts: request::Parts,
    body: ReqBody,
    ctx: RequestCtx,
    leader: Option<Leader>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    let sent = Sent {
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        request_time: shared.clock.now(),
        head_reply: false,
    };
    let response = ready_call(&mut inner, Request::from_parts(parts, body)).await?;
    Ok(store_response(&shared, &ctx, sent, response, leader).await)
}

/// Stores the inner response if allowed and returns what the client gets. The steps follow
/// RFC 9111 §3: strip hop-by-hop fields, decide storability, bound the size, read the body,
/// complete the header fields, compute freshness, store.
pub(super) async fn store_response<B>(
    shared: &Shared,
    ctx: &RequestCtx,
    sent: Sent,
    response: Response<B>,
    leader: Option<Leader>,
) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes>,
{
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::SWITCHING_PROTOCOLS {
        return Response::from_parts(parts, ResponseBody::stream(body));
    }
    headers::strip_hop_by_hop(&mut parts.headers);
    let rd = policy::response_directives(&shared.policy, &parts.headers);
    let tags = headers::strip_cache_fields(shared, &mut parts.headers);
    if let Err(reason) = verdict(shared, ctx, &sent, &parts, &rd) {
        not_stored(shared, ctx, &mut parts, reason.as_str());
        return Response::from_parts(parts, ResponseBody::stream(body));
    }
    let bytes = match read_body(shared, ctx, &mut parts, body).await {
        Ok(bytes) => bytes,
        Err(passed) => return Response::from_parts(parts, passed),
    };
    let now = shared.clock.now();
    complete_headers(shared, &mut parts, &bytes, now);
    let stored_headers = stored_fields(shared, &parts.headers, &rd);
    let (status, fields) = (parts.status, &stored_headers);
    let freshness = policy::freshness(&shared.policy, status, fields, &rd, sent.request_time, now);
    let reply = if sent.head_reply {
        ResponseBody::empty()
    } else {
        ResponseBody::full(bytes.clone())
    };
    let validator = fields.contains_key(header::ETAG) || fields.contains_key(header::LAST_MODIFIED);
    if freshness.lifetime.is_zero() && !validator {
        not_stored(shared, ctx, &mut parts, NotStored::NoFreshness.as_str());
        return Response::from_parts(parts, reply);
    }
    let fwd_status = parts.status;
    let vary = policy::vary_names(&parts.headers).unwrap_or_default();
    let entry = Arc::new(CachedResponse {
        status: parts.status,
        headers: stored_headers,
        body: bytes,
        request_time: sent.request_time,
        freshness,
        vary: key::vary_values(&vary, &sent.headers),
        tags,
        keep: shared.policy.keep,
    });
    if !save(shared, ctx, entry, leader).await {
        not_stored(shared, ctx, &mut parts, "invalidated");
        return Response::from_parts(parts, reply);
    }
    // The client's own validators may match what was just stored (RFC 9110 §13.2.2).
    let reply = if conditional::not_modified(&sent.method, &sent.headers, &parts.headers) {
        parts.headers = conditional::not_modified_headers(&parts.headers);
        parts.status = StatusCode::NOT_MODIFIED;
        ResponseBody::empty()
    } else {
        reply
    };
    let (mut status, mut ttl) = (itoa::Buffer::new(), itoa::Buffer::new());
    let text = [
        ctx.fwd,
        "; fwd-status=",
        status.format(fwd_status.as_u16()),
        "; stored; ttl=",
        ttl.format(freshness.ttl(now)),
    ];
    finish(shared, &mut parts.headers, &text, Outcome::Miss, ctx.timing);
    Response::from_parts(parts, reply)
}

/// Whether to store the response: storable (RFC 9111 §3) and ever reusable.
fn verdict(
    shared: &Shared,
    ctx: &RequestCtx,
    sent: &Sent,
    parts: &response::Parts,
    rd: &ResponseDirectives,
) -> Result<(), NotStored> {
    if ctx.rq.no_store {
        return Err(NotStored::NoStore);
    }
    let (policy, status, fields) = (&shared.policy, parts.status, &parts.headers);
    policy::storable(policy, &sent.method, &sent.headers, status, fields, rd)?;
    let now = shared.clock.now();
    let preview = policy::freshness(policy, status, fields, rd, sent.request_time, now);
    policy::reusable(&preview, fields)
}

/// Marks a response that passes through unstored, with the reason as `detail`.
fn not_stored(shared: &Shared, ctx: &RequestCtx, parts: &mut response::Parts, detail: &str) {
    let mut status = itoa::Buffer::new();
    let status = status.format(parts.status.as_u16());
    let text = [ctx.fwd, "; fwd-status=", status, "; detail=", detail];
    finish(shared, &mut parts.headers, &text, Outcome::Miss, ctx.timing);
}

/// Reads the body into memory if it fits the store; otherwise marks the response unstored and
/// returns the body to stream through (with whatever was read already in front).
async fn read_body<B: Body<Data = Bytes>>(
    shared: &Shared,
    ctx: &RequestCtx,
    parts: &mut response::Parts,
    body: B,
) -> Result<Bytes, ResponseBody<B>> {
    let max = shared.store.max_object_size();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.unwrap_or(body.size_hint().lower()) > max as u64 {
        not_stored(shared, ctx, parts, "too-large");
        return Err(ResponseBody::stream(body));
    }
    match collect(body, max).await {
        Collected::Complete(bytes) => Ok(bytes),
        Collected::Partial {
            prefix,
            trailers,
            error,
            rest,
        } => {
            let detail = if error.is_some() {
                "incomplete"
            } else {
                "too-large"
            };
            not_stored(shared, ctx, parts, detail);
            Err(ResponseBody::prefixed(prefix, trailers, error, rest))
        }
    }
}

/// Adds what a stored response must carry: a generated `ETag` (200s without one), `Date`
/// (RFC 9110 §6.6.1: a recipient with a clock adds it) and `Content-Length`.
fn complete_headers(shared: &Shared, parts: &mut response::Parts, body: &Bytes, now: SystemTime) {
    let headers = &mut parts.headers;
    if parts.status == StatusCode::OK
        && !headers.contains_key(header::ETAG)
        && let Some(etag) = conditional::generate(shared.etag, headers, body)
    {
        headers.insert(header::ETAG, etag);
    }
    if !headers.contains_key(header::DATE)
        && let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(now))
    {
        headers.insert(header::DATE, date);
    }
    if !headers.contains_key(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
}

/// The fields to store: without those named by qualified `no-cache` / `private` (RFC 9111
/// §5.2.2.4, §5.2.2.7) and, under [`SetCookiePolicy::Strip`], without `Set-Cookie`.
fn stored_fields(shared: &Shared, headers: &HeaderMap, rd: &ResponseDirectives) -> HeaderMap {
    let mut stored = headers.clone();
    for name in rd.no_cache_fields.iter().chain(&rd.private_fields) {
        stored.remove(name);
    }
    if shared.policy.set_cookie == SetCookiePolicy::Strip {
        stored.remove(header::SET_COOKIE);
    }
    stored
}
