//! The request path: lookup, freshness decision, coalescing, background refresh (RFC 9111 §4).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http::{HeaderMap, HeaderValue, Method, Request, Response, request};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::coalesce::{self, Role};
use crate::conditional;
use crate::directives::RequestDirectives;
use crate::fetch;
use crate::headers::{Outcome, finish, invalidate, strip_cache_fields, strip_hop_by_hop};
use crate::key;
use crate::layer::Shared;
use crate::serve::{Served, gateway_timeout, serve, serve_parts};
use crate::store::CachedResponse;

/// What to do with a stored entry for this request.
pub(crate) enum Decision {
    Fresh,
    Stale(Served),
    /// Revalidate; the `Cache-Status` `fwd` reason (`fwd=stale`, or `fwd=request` when only the
    /// request's directives prevented reuse of a fresh entry).
    Validate(&'static str),
}

/// Entry point for every request.
pub(crate) async fn handle<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send,
{
    let method = req.method().clone();
    if req.headers().contains_key(header::UPGRADE) || method == Method::CONNECT {
        let mut response = inner.call(req).await?.map(ResponseBody::stream);
        finish(
            &shared,
            response.headers_mut(),
            format_args!("fwd=bypass"),
            Outcome::Bypass,
        );
        return Ok(response);
    }
    if method == Method::GET || method == Method::HEAD {
        return lookup(shared, inner, req).await;
    }
    let key = key::primary(req.uri(), req.headers());
    let (mut parts, body) = inner.call(req).await?.into_parts();
    let safe = method == Method::OPTIONS || method == Method::TRACE;
    if !safe && (parts.status.is_success() || parts.status.is_redirection()) {
        invalidate(&shared, &key, &parts.headers).await;
    }
    strip_hop_by_hop(&mut parts.headers);
    strip_cache_fields(&shared, &mut parts.headers);
    finish(
        &shared,
        &mut parts.headers,
        format_args!("fwd=method"),
        Outcome::Bypass,
    );
    Ok(Response::from_parts(parts, ResponseBody::stream(body)))
}

async fn lookup<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    inner: S,
    req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send,
{
    let (parts, body) = req.into_parts();
    let key = key::primary(&parts.uri, &parts.headers);
    let rq = RequestDirectives::parse(&parts.headers);
    let variants = shared.store.get(&key).await.unwrap_or_else(|err| {
        tracing::warn!(%err, "cache lookup failed; treating as a miss");
        None
    });
    let had_variants = variants.as_ref().is_some_and(|v| !v.is_empty());
    let entry = variants.and_then(|v| select(&v, &parts.headers));
    let now = shared.clock.now();
    if let Some(entry) = entry {
        match decide(&shared, &rq, &entry, entry.freshness.age(now)) {
            Decision::Fresh => return Ok(serve(&shared, &parts, &entry, now, Served::Hit)),
            Decision::Stale(how) => {
                if how == Served::StaleWhileRevalidate {
                    spawn_refresh(&shared, &inner, &parts, &entry, &key);
                }
                return Ok(serve(&shared, &parts, &entry, now, how));
            }
            Decision::Validate(_) if rq.only_if_cached => return Ok(gateway_timeout(&shared)),
            Decision::Validate(fwd) => {
                return fetch::revalidate(shared, inner, parts, body, entry, key, rq, fwd).await;
            }
        }
    }
    if rq.only_if_cached {
        return Ok(gateway_timeout(&shared));
    }
    let fwd = if had_variants {
        "fwd=vary-miss"
    } else {
        "fwd=uri-miss"
    };
    if parts.method != Method::GET || rq.no_store {
        return fetch::miss(shared, inner, parts, body, key, rq, None, fwd).await;
    }
    let role = shared.inflight.join(&key);
    match role {
        Role::Leader(leader) => {
            fetch::miss(shared, inner, parts, body, key, rq, Some(leader), fwd).await
        }
        Role::Waiter(rx) => {
            metrics::counter!(crate::metrics::COALESCED).increment(1);
            match coalesce::wait(rx, shared.coalesce_timeout).await {
                Some(entry) if key::vary_matches(&entry.vary, &parts.headers) => Ok(serve(
                    &shared,
                    &parts,
                    &entry,
                    shared.clock.now(),
                    Served::Collapsed,
                )),
                _ => fetch::miss(shared, inner, parts, body, key, rq, None, fwd).await,
            }
        }
    }
}

/// A fresh hit answered without awaiting, when the store can answer at once (in memory).
pub(crate) fn fresh_hit<ReqBody, B: Body>(
    shared: &Shared,
    req: &Request<ReqBody>,
) -> Option<Response<ResponseBody<B>>> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let headers = req.headers();
    let present = Present::scan(headers);
    if present.upgrade {
        return None;
    }
    let variants = key::with_primary(req.uri(), present.host, |key| shared.store.get_ready(key))??;
    let entry = select_ref(&variants, headers)?;
    let rq = if present.directives {
        RequestDirectives::parse(headers)
    } else {
        RequestDirectives::default()
    };
    let age = entry.freshness.age_at(tokio::time::Instant::now());
    if !matches!(decide(shared, &rq, entry, age), Decision::Fresh) {
        return None;
    }
    Some(serve_parts(
        shared,
        method,
        headers,
        present.preconditions,
        entry,
        age,
        Served::Hit,
    ))
}

/// What a fresh hit needs from the request's fields, found in one pass (cheaper than a lookup
/// per field when, as usual, only a few are present).
#[derive(Debug, Default, Clone, Copy)]
struct Present<'a> {
    /// The first `Host` field.
    host: Option<&'a HeaderValue>,
    upgrade: bool,
    /// `Cache-Control` or `Pragma`.
    directives: bool,
    /// `If-None-Match`, `If-Modified-Since` or `Range`.
    preconditions: bool,
}

impl<'a> Present<'a> {
    fn scan(headers: &'a HeaderMap) -> Self {
        let mut present = Self::default();
        for (name, value) in headers {
            if *name == header::HOST {
                present.host = present.host.or(Some(value));
            } else if *name == header::CACHE_CONTROL || *name == header::PRAGMA {
                present.directives = true;
            } else if *name == header::IF_NONE_MATCH
                || *name == header::IF_MODIFIED_SINCE
                || *name == header::RANGE
            {
                present.preconditions = true;
            } else if *name == header::UPGRADE {
                present.upgrade = true;
            }
        }
        present
    }
}

/// The matching variant with the most recent `Date` (then the most recently received).
pub(crate) fn select(
    variants: &[Arc<CachedResponse>],
    headers: &HeaderMap,
) -> Option<Arc<CachedResponse>> {
    select_ref(variants, headers).cloned()
}

/// [`select`] without taking a reference count.
fn select_ref<'a>(
    variants: &'a [Arc<CachedResponse>],
    headers: &HeaderMap,
) -> Option<&'a Arc<CachedResponse>> {
    let mut matching = variants
        .iter()
        .filter(|v| key::vary_matches(&v.vary, headers))
        .peekable();
    let first = matching.next()?;
    if matching.peek().is_none() {
        return Some(first);
    }
    // Several matches (stored before Vary changed): the most recent Date wins.
    std::iter::once(first)
        .chain(matching)
        .max_by_key(|v| (conditional::date(&v.headers), v.freshness.response_time))
}

/// What to do with `entry`, whose current age is `age`.
pub(crate) fn decide(
    shared: &Shared,
    rq: &RequestDirectives,
    entry: &CachedResponse,
    age: Duration,
) -> Decision {
    let f = &entry.freshness;
    let lifetime = f.lifetime;
    let mut validate = false;
    if shared.honor_request_directives {
        validate |= rq.no_cache;
        validate |= rq.max_age.is_some_and(|max| age > Duration::from_secs(max));
        validate |= rq
            .min_fresh
            .is_some_and(|min| lifetime.saturating_sub(age) < Duration::from_secs(min));
    }
    if f.no_cache {
        return Decision::Validate("fwd=stale");
    }
    if validate {
        return Decision::Validate(if lifetime > age {
            "fwd=request"
        } else {
            "fwd=stale"
        });
    }
    if lifetime > age {
        return Decision::Fresh;
    }
    if f.forbids_stale {
        return Decision::Validate("fwd=stale");
    }
    let staleness = age - lifetime;
    if !f.stale_while_revalidate.is_zero() && staleness <= f.stale_while_revalidate {
        return Decision::Stale(Served::StaleWhileRevalidate);
    }
    let client_allows = match rq.max_stale {
        Some(None) => true,
        Some(Some(max)) => staleness <= Duration::from_secs(max),
        None => false,
    };
    if shared.honor_max_stale && client_allows {
        return Decision::Stale(Served::MaxStale);
    }
    Decision::Validate("fwd=stale")
}

/// Starts one background revalidation per key.
fn spawn_refresh<S, ReqBody, ResBody>(
    shared: &Arc<Shared>,
    inner: &S,
    parts: &request::Parts,
    entry: &Arc<CachedResponse>,
    key: &str,
) where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !shared
        .refreshing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key.to_owned())
    {
        return;
    }
    let mut parts = parts.clone();
    parts.method = Method::GET;
    let (shared, inner, entry, key) =
        (shared.clone(), inner.clone(), entry.clone(), key.to_owned());
    runtime.spawn(async move {
        let rq = RequestDirectives::default();
        let done = fetch::revalidate(
            shared.clone(),
            inner,
            parts,
            ReqBody::default(),
            entry,
            key.clone(),
            rq,
            "fwd=stale",
        )
        .await;
        drop(done);
        shared
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    });
}
