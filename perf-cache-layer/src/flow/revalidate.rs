//! Revalidation of a stored response with the inner service (RFC 9111 §4.3): the conditional
//! request, the 304 update (§4.3.4), the HEAD update (§4.3.5), and stale fallbacks on errors.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, request};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::flow::RequestCtx;
use crate::flow::fetch::{Sent, ready_call, store_response};
use crate::flow::headers;
use crate::flow::save::put;
use crate::flow::serve::{Asked, Served, serve};
use crate::rfc::conditional::{self, CONDITIONALS};
use crate::rfc::policy;
use crate::shared::Shared;
use crate::store::CachedResponse;

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
