//! Calls to the inner service: misses, revalidation, and storing what comes back (RFC 9111 §3, §4.3).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, request, response};
use http_body::Body;
use tower_service::Service;

use crate::body::{Collected, ResponseBody, collect};
use crate::flow::RequestCtx;
use crate::flow::coalesce::Leader;
use crate::flow::headers::{self, finish};
use crate::flow::save::{put, save};
use crate::flow::serve::{Asked, Served, serve};
use crate::metrics::Outcome;
use crate::rfc::conditional::{self, CONDITIONALS};
use crate::rfc::directives::ResponseDirectives;
use crate::rfc::key;
use crate::rfc::policy::{self, NotStored, SetCookiePolicy};
use crate::shared::Shared;
use crate::store::CachedResponse;

async fn ready_call<S, R>(svc: &mut S, req: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    svc.call(req).await
}

/// The request a stored response answers: what storing it needs to know.
struct Sent {
    method: Method,
    headers: HeaderMap,
    request_time: SystemTime,
    /// The client sent HEAD (the cache fetched with GET): the reply has no body.
    head_reply: bool,
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

/// Revalidates a stored entry with the inner service (conditional when it has validators).
pub(crate) async fn revalidate<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    client: request::Parts,
    body: ReqBody,
    entry: Arc<CachedResponse>,
    ctx: RequestCtx,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    crate::metrics::increment(crate::metrics::REVALIDATIONS);
    let (parts, conditional) = validation_request(&client, &entry);
    let method = parts.method.clone();
    let request_time = shared.clock.now();
    let result = ready_call(&mut inner, Request::from_parts(parts, body)).await;
    let now = shared.clock.now();
    let age = entry.freshness.age(now);
    let asked = Asked {
        method: &client.method,
        headers: &client.headers,
        preconditions: true,
        timing: ctx.timing,
    };
    let fallback = Fallback::of(&shared, &entry, age);
    let response = match result {
        Err(err) => match fallback.on_error() {
            Some(how) => return Ok(serve(&shared, asked, &entry, age, how)),
            None => return Err(err),
        },
        Ok(r) if r.status().is_server_error() && fallback.stale_if_error => {
            return Ok(serve(&shared, asked, &entry, age, Served::StaleIfError));
        }
        // The conditional request carried only this entry's validators, so a 304 selects it
        // (RFC 9111 §4.3.4); the stored validators themselves are kept.
        Ok(r) if r.status() == StatusCode::NOT_MODIFIED && conditional => {
            let updated = Arc::new(refresh(&shared, &entry, r.headers(), request_time, now));
            put(&shared, &ctx, updated.clone()).await;
            let age = updated.freshness.age(now);
            return Ok(serve(
                &shared,
                asked,
                &updated,
                age,
                Served::Revalidated(ctx.fwd),
            ));
        }
        // RFC 9111 §4.3.5: a 200 to the HEAD updates the stored GET response when it matches it.
        Ok(r) if method == Method::HEAD && r.status() == StatusCode::OK => {
            if conditional::head_matches(&entry.headers, entry.body.len(), r.headers()) {
                let updated = Arc::new(refresh(&shared, &entry, r.headers(), request_time, now));
                put(&shared, &ctx, updated.clone()).await;
                let age = updated.freshness.age(now);
                let how = Served::HeadUpdated(ctx.fwd);
                return Ok(serve(&shared, asked, &updated, age, how));
            }
            // The representation changed: the stored response is stale from now, and the HEAD
            // response passes through (it is never stored).
            if entry.freshness.lifetime > age {
                put(&shared, &ctx, Arc::new(entry.stale_at(now))).await;
            }
            r
        }
        Ok(r) => r,
    };
    let sent = Sent {
        method,
        headers: client.headers.clone(),
        request_time,
        head_reply: client.method == Method::HEAD,
    };
    Ok(store_response(&shared, &ctx, sent, response, None).await)
}

/// The request sent to revalidate `entry` for `client` (RFC 9111 §4.3.1): the client's GET or
/// HEAD (a HEAD's `200` may update the stored response, §4.3.5) without its preconditions,
/// carrying the entry's validators; and whether it has any.
fn validation_request(client: &request::Parts, entry: &CachedResponse) -> (request::Parts, bool) {
    let mut parts = client.clone();
    if parts.method != Method::HEAD {
        parts.method = Method::GET;
    }
    for name in &CONDITIONALS {
        parts.headers.remove(name);
    }
    let conditional = entry.has_validator();
    if conditional {
        conditional::add_validators(&mut parts.headers, &entry.headers);
    }
    (parts, conditional)
}

/// Whether `entry`, at `age`, may be served under `stale-if-error` (also when the origin is
/// being protected and the request is not sent).
pub(crate) fn stale_if_error_allows(
    shared: &Shared,
    entry: &CachedResponse,
    age: Duration,
) -> bool {
    Fallback::of(shared, entry, age).stale_if_error
}

/// Whether a stale entry may stand in when revalidation fails (RFC 9111 §4.2.4, RFC 5861 §4).
struct Fallback {
    stale_if_error: bool,
    disconnected: bool,
}

impl Fallback {
    fn of(shared: &Shared, entry: &CachedResponse, age: Duration) -> Self {
        let f = &entry.freshness;
        let staleness = age.saturating_sub(f.lifetime);
        Self {
            stale_if_error: !f.forbids_stale
                && !f.stale_if_error.is_zero()
                && staleness <= f.stale_if_error,
            disconnected: !f.forbids_stale
                && shared
                    .stale_on_disconnect
                    .is_some_and(|max| staleness <= max),
        }
    }

    /// How to serve the entry when the inner service failed with an error.
    fn on_error(&self) -> Option<Served> {
        if self.stale_if_error {
            Some(Served::StaleIfError)
        } else if self.disconnected {
            Some(Served::Disconnected)
        } else {
            None
        }
    }
}

/// The stored entry updated from a 304 (RFC 9111 §4.3.4) or a matching 200 to HEAD (§4.3.5).
fn refresh(
    shared: &Shared,
    entry: &CachedResponse,
    not_modified: &HeaderMap,
    request_time: SystemTime,
    now: SystemTime,
) -> CachedResponse {
    let mut merged = conditional::merge_304(&entry.headers, not_modified);
    // An update without `Date` was generated now (RFC 9110 §6.6.1), not when the stored one was.
    if !not_modified.contains_key(header::DATE)
        && let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(now))
    {
        merged.insert(header::DATE, date);
    }
    let rd = policy::response_directives(&shared.policy, &merged);
    let mut headers = merged;
    headers::strip_hop_by_hop(&mut headers);
    let tags = headers::strip_cache_fields(shared, &mut headers);
    let freshness = policy::freshness(
        &shared.policy,
        entry.status,
        &headers,
        &rd,
        request_time,
        now,
    );
    CachedResponse {
        headers,
        request_time,
        freshness,
        tags: if tags.is_empty() {
            entry.tags.clone()
        } else {
            tags
        },
        ..entry.clone()
    }
}

/// Stores the inner response if allowed and returns what the client gets. The steps follow
/// RFC 9111 §3: strip hop-by-hop fields, decide storability, bound the size, read the body,
/// complete the header fields, compute freshness, store.
async fn store_response<B>(
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
