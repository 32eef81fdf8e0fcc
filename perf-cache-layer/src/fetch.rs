//! Calls to the inner service: misses, revalidation, and storing what comes back (RFC 9111 §3, §4.3).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode, request};
use http_body::Body;
use tower_service::Service;

use crate::body::{Collected, ResponseBody, collect};
use crate::coalesce::Leader;
use crate::conditional::{self, CONDITIONALS};
use crate::directives::RequestDirectives;
use crate::headers::{self, Outcome};
use crate::key;
use crate::layer::Shared;
use crate::policy::{self, NotStored, SetCookiePolicy};
use crate::serve::{self, Served};
use crate::store::CachedResponse;

async fn ready_call<S, R>(svc: &mut S, req: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    svc.call(req).await
}

/// A miss: forward the request, store the response if allowed, publish it to coalesced waiters.
#[expect(
    clippy::too_many_arguments,
    reason = "internal plumbing of one request's state"
)]
pub(crate) async fn miss<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    parts: request::Parts,
    body: ReqBody,
    key: String,
    rq: RequestDirectives,
    leader: Option<Leader>,
    fwd: &'static str,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    let (method, req_headers) = (parts.method.clone(), parts.headers.clone());
    let request_time = shared.clock.now();
    let response = ready_call(&mut inner, Request::from_parts(parts, body)).await?;
    let ctx = StoreCtx {
        key,
        method,
        req_headers,
        request_time,
        no_store: rq.no_store,
        head_reply: false,
        fwd,
    };
    Ok(store_response(&shared, ctx, response, leader).await)
}

/// Revalidates a stored entry with the inner service (conditional when it has validators).
#[expect(
    clippy::too_many_arguments,
    reason = "internal plumbing of one request's state"
)]
pub(crate) async fn revalidate<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    mut parts: request::Parts,
    body: ReqBody,
    entry: Arc<CachedResponse>,
    key: String,
    rq: RequestDirectives,
    fwd: &'static str,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Default,
    ResBody: Body<Data = Bytes>,
{
    metrics::counter!(crate::metrics::REVALIDATIONS).increment(1);
    let client = parts.clone();
    let head_reply = parts.method == Method::HEAD;
    parts.method = Method::GET;
    for name in &CONDITIONALS {
        parts.headers.remove(name);
    }
    let conditional = entry.headers.contains_key(header::ETAG)
        || entry.headers.contains_key(header::LAST_MODIFIED);
    if conditional {
        conditional::add_validators(&mut parts.headers, &entry.headers);
    }
    let request_time = shared.clock.now();
    let result = ready_call(&mut inner, Request::from_parts(parts, body)).await;
    let now = shared.clock.now();
    let f = &entry.freshness;
    let staleness = f.age(now).saturating_sub(f.lifetime);
    let stale_if_error =
        !f.forbids_stale && !f.stale_if_error.is_zero() && staleness <= f.stale_if_error;
    let disconnected = !f.forbids_stale
        && shared
            .stale_on_disconnect
            .is_some_and(|max| staleness <= max);
    let response = match result {
        Err(_) if disconnected && !stale_if_error => {
            return Ok(serve::serve(
                &shared,
                &client,
                &entry,
                now,
                Served::Disconnected,
            ));
        }
        Err(_) if stale_if_error => {
            return Ok(serve::serve(
                &shared,
                &client,
                &entry,
                now,
                Served::StaleIfError,
            ));
        }
        Err(err) => return Err(err),
        Ok(r) if r.status().is_server_error() && stale_if_error => {
            return Ok(serve::serve(
                &shared,
                &client,
                &entry,
                now,
                Served::StaleIfError,
            ));
        }
        // The conditional request carried only this entry's validators, so a 304 selects it
        // (RFC 9111 §4.3.4); the stored validators themselves are kept.
        Ok(r) if r.status() == StatusCode::NOT_MODIFIED && conditional => {
            let updated = Arc::new(refresh(&shared, &entry, r.headers(), request_time, now));
            if let Err(err) = shared.store.put(&key, updated.clone()).await {
                tracing::warn!(%err, "cache store failed");
            }
            return Ok(serve::serve(
                &shared,
                &client,
                &updated,
                now,
                Served::Revalidated(fwd),
            ));
        }
        Ok(r) => r,
    };
    Ok(store_response(
        &shared,
        ctx(key, &client, request_time, &rq, head_reply, fwd),
        response,
        None,
    )
    .await)
}

fn ctx(
    key: String,
    client: &request::Parts,
    request_time: SystemTime,
    rq: &RequestDirectives,
    head: bool,
    fwd: &'static str,
) -> StoreCtx {
    StoreCtx {
        key,
        method: Method::GET,
        req_headers: client.headers.clone(),
        request_time,
        no_store: rq.no_store,
        head_reply: head,
        fwd,
    }
}

/// The stored entry updated from a 304 (RFC 9111 §4.3.4).
fn refresh(
    shared: &Shared,
    entry: &CachedResponse,
    not_modified: &HeaderMap,
    request_time: SystemTime,
    now: SystemTime,
) -> CachedResponse {
    let mut headers = conditional::merge_304(&entry.headers, not_modified);
    headers::strip_hop_by_hop(&mut headers);
    let tags = headers::strip_cache_fields(shared, &mut headers);
    let rd = policy::response_directives(
        &shared.policy,
        &conditional::merge_304(&entry.headers, not_modified),
    );
    let freshness = policy::freshness(
        &shared.policy,
        entry.status,
        &headers,
        &rd,
        request_time,
        (now, shared.clock.instant(now)),
    );
    let tags = if tags.is_empty() {
        entry.tags.clone()
    } else {
        tags
    };
    CachedResponse::new(
        entry.status,
        headers,
        entry.body.clone(),
        freshness,
        entry.vary.clone(),
        tags,
        entry.keep,
        shared.server_timing,
    )
}

struct StoreCtx {
    key: String,
    method: Method,
    req_headers: HeaderMap,
    request_time: SystemTime,
    no_store: bool,
    head_reply: bool,
    fwd: &'static str,
}

/// Stores the inner response if allowed and returns what the client gets.
async fn store_response<B>(
    shared: &Shared,
    ctx: StoreCtx,
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
    let status = parts.status.as_u16();
    let verdict = if ctx.no_store {
        Err(NotStored::NoStore)
    } else {
        policy::storable(
            &shared.policy,
            &ctx.method,
            &ctx.req_headers,
            parts.status,
            &parts.headers,
            &rd,
        )
    };
    let pass = |parts: &mut http::response::Parts, detail: &str| {
        headers::finish(
            shared,
            &mut parts.headers,
            format_args!("{}; fwd-status={status}; detail={detail}", ctx.fwd),
            Outcome::Miss,
        );
    };
    if let Err(reason) = verdict {
        pass(&mut parts, reason.as_str());
        return Response::from_parts(parts, ResponseBody::stream(body));
    }
    let max = shared.store.max_object_size();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.unwrap_or(body.size_hint().lower()) > max as u64 {
        pass(&mut parts, "too-large");
        return Response::from_parts(parts, ResponseBody::stream(body));
    }
    let bytes = match collect(body, max).await {
        Collected::Complete(bytes) => bytes,
        Collected::Partial {
            prefix,
            trailers,
            error,
            rest,
        } => {
            pass(
                &mut parts,
                if error.is_some() {
                    "incomplete"
                } else {
                    "too-large"
                },
            );
            return Response::from_parts(
                parts,
                ResponseBody::prefixed(prefix, trailers, error, rest),
            );
        }
    };
    if parts.status == StatusCode::OK
        && !parts.headers.contains_key(header::ETAG)
        && let Some(etag) = conditional::generate(shared.etag, &parts.headers, &bytes)
    {
        parts.headers.insert(header::ETAG, etag);
    }
    // RFC 9110 §6.6.1: a recipient with a clock adds the missing Date to what it caches.
    let now = shared.clock.now();
    if !parts.headers.contains_key(header::DATE)
        && let Ok(date) = http::HeaderValue::from_str(&httpdate::fmt_http_date(now))
    {
        parts.headers.insert(header::DATE, date);
    }
    if !parts.headers.contains_key(header::CONTENT_LENGTH) {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, bytes.len().into());
    }
    let mut stored_headers = parts.headers.clone();
    for name in rd.no_cache_fields.iter().chain(&rd.private_fields) {
        stored_headers.remove(name);
    }
    if shared.policy.set_cookie == SetCookiePolicy::Strip {
        stored_headers.remove(header::SET_COOKIE);
    }
    let freshness = policy::freshness(
        &shared.policy,
        parts.status,
        &stored_headers,
        &rd,
        ctx.request_time,
        (now, shared.clock.instant(now)),
    );
    let validator = stored_headers.contains_key(header::ETAG)
        || stored_headers.contains_key(header::LAST_MODIFIED);
    let reply = |bytes: Bytes| {
        if ctx.head_reply {
            ResponseBody::empty()
        } else {
            ResponseBody::full(bytes)
        }
    };
    if freshness.lifetime.is_zero() && !validator {
        pass(&mut parts, "no-freshness");
        return Response::from_parts(parts, reply(bytes));
    }
    let vary = policy::vary_names(&parts.headers).unwrap_or_default();
    let entry = Arc::new(CachedResponse::new(
        parts.status,
        stored_headers,
        bytes.clone(),
        freshness,
        key::vary_values(&vary, &ctx.req_headers),
        tags,
        shared.policy.keep,
        shared.server_timing,
    ));
    if let Err(err) = shared.store.put(&ctx.key, entry.clone()).await {
        tracing::warn!(%err, "cache store failed");
    }
    if let Some(leader) = leader {
        leader.publish(Some(entry));
    }
    let ttl = freshness.ttl(now);
    let text = format_args!("{}; fwd-status={status}; stored; ttl={ttl}", ctx.fwd);
    headers::finish(shared, &mut parts.headers, text, Outcome::Miss);
    Response::from_parts(parts, reply(bytes))
}
