//! Lookup of GET and HEAD requests: find the variant, decide, serve or forward (RFC 9111 §4).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use http::header;
use http::{HeaderMap, HeaderValue, Method, Request, Response, request};
use http_body::Body;

use crate::body::ResponseBody;
use crate::flow::coalesce::{self, FillDone, Leader, Role};
use crate::flow::serve::{Asked, Served, gateway_timeout, serve, shed};
use crate::flow::{CacheableBody, ForwardBody, InnerService, RequestCtx, fetch, revalidate};
use crate::rfc::directives::RequestDirectives;
use crate::rfc::reuse::{self, Decision, Reuse};
use crate::rfc::{conditional, key};
use crate::shared::Shared;
use crate::store::{CachedResponse, Fill, Tier};

/// How long a background refresh holds the store's refresh lease (longer than an origin fetch).
const REFRESH_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// A GET or HEAD: serve a stored variant, revalidate it, or forward as a (coalesced) miss.
pub(crate) async fn lookup<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    inner: S,
    req: Request<ReqBody>,
    timing: bool,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: InnerService<ReqBody, ResBody>,
    ReqBody: ForwardBody,
    ResBody: CacheableBody,
{
    let started = shared.inflight.generations.current();
    let (parts, body) = req.into_parts();
    let key = key::primary(&parts.uri, &parts.headers);
    let rq = RequestDirectives::parse(&parts.headers);
    let found = shared.store.lookup(&key).await.unwrap_or_else(|err| {
        tracing::warn!(%err, "cache lookup failed; treating as a miss");
        None
    });
    let had_variants = found.as_ref().is_some_and(|(v, _)| !v.is_empty());
    let tier = found.as_ref().map_or(Tier::Local, |(_, tier)| *tier);
    let entry = found.and_then(|(v, _)| select(&v, &parts.headers).cloned());
    let ctx = RequestCtx {
        key,
        rq,
        timing,
        fwd: if had_variants {
            "fwd=vary-miss"
        } else {
            "fwd=uri-miss"
        },
        started,
    };
    let req = Forward {
        shared,
        inner,
        parts,
        body,
        ctx,
    };
    match entry {
        Some(entry) => stored(req, entry, tier).await,
        None => not_stored(req).await,
    }
}

/// What a lookup forwards to the origin when it cannot answer from the store.
struct Forward<S, ReqBody> {
    /// The layer's shared state.
    shared: Arc<Shared>,
    /// The inner service.
    inner: S,
    /// The request's head.
    parts: request::Parts,
    /// The request's body.
    body: ReqBody,
    /// The request's state in the flow.
    ctx: RequestCtx,
}

/// A stored variant matched: serve it (fresh, stale-while-revalidate, max-stale,
/// stale-if-error while shedding), answer 504 under `only-if-cached`, or revalidate it.
async fn stored<S, ReqBody, ResBody>(
    req: Forward<S, ReqBody>,
    entry: Arc<CachedResponse>,
    tier: Tier,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: InnerService<ReqBody, ResBody>,
    ReqBody: ForwardBody,
    ResBody: CacheableBody,
{
    let Forward {
        shared,
        inner,
        parts,
        body,
        mut ctx,
    } = req;
    let timing = ctx.timing;
    let asked = asked(&parts, timing);
    let age = entry.freshness.age(shared.clock.now());
    match decide(&shared, &ctx.rq, &entry, age) {
        Decision::Fresh if tier == Tier::Shared => {
            crate::metrics::increment(crate::metrics::SHARED_HITS);
            Ok(serve(&shared, asked, &entry, age, Served::SharedHit))
        }
        Decision::Fresh => Ok(serve(&shared, asked, &entry, age, Served::Hit)),
        Decision::StaleWhileRevalidate => {
            spawn_refresh(&shared, &inner, &parts, &entry, &ctx.key);
            let how = Served::StaleWhileRevalidate;
            Ok(serve(&shared, asked, &entry, age, how))
        }
        Decision::MaxStale => Ok(serve(&shared, asked, &entry, age, Served::MaxStale)),
        Decision::Validate(_) if ctx.rq.only_if_cached => Ok(gateway_timeout(&shared, timing)),
        Decision::Validate(_)
            if shared.store.shed_misses().is_some()
                && revalidate::stale_if_error_allows(&shared, &entry, age) =>
        {
            Ok(serve(&shared, asked, &entry, age, Served::StaleIfError))
        }
        Decision::Validate(fwd) => {
            ctx.fwd = fwd;
            revalidate::revalidate(shared, inner, parts, body, entry, ctx).await
        }
    }
}

/// No stored variant matched: answer 504 under `only-if-cached`, shed while the store
/// asks to, or forward the miss (coalesced for GETs that may be stored).
async fn not_stored<S, ReqBody, ResBody>(
    req: Forward<S, ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: InnerService<ReqBody, ResBody>,
    ReqBody: ForwardBody,
    ResBody: CacheableBody,
{
    let Forward {
        shared,
        inner,
        parts,
        body,
        ctx,
    } = req;
    let timing = ctx.timing;
    if ctx.rq.only_if_cached {
        return Ok(gateway_timeout(&shared, timing));
    }
    if let Some(retry_after) = shared.store.shed_misses() {
        return Ok(shed(&shared, ctx.fwd, retry_after, timing));
    }
    if parts.method != Method::GET || ctx.rq.no_store {
        return fetch::miss(shared, inner, parts, body, ctx, None).await;
    }
    match shared.inflight.join(&ctx.key) {
        Role::Leader(leader) => {
            let req = Forward {
                shared,
                inner,
                parts,
                body,
                ctx,
            };
            lead(req, leader).await
        }
        Role::Waiter(rx) => {
            crate::metrics::increment(crate::metrics::COALESCED);
            match coalesce::wait(rx, shared.coalesce_timeout).await {
                Some(entry) if key::vary_matches(&entry.vary, &parts.headers) => {
                    let age = entry.freshness.age(shared.clock.now());
                    let asked = asked(&parts, timing);
                    Ok(serve(&shared, asked, &entry, age, Served::Collapsed))
                }
                _ => fetch::miss(shared, inner, parts, body, ctx, None).await,
            }
        }
    }
}

/// This instance leads the fill for the key: fetch it, unless another instance sharing
/// the store filled it meanwhile with a fresh matching variant (served as a shared hit).
async fn lead<S, ReqBody, ResBody>(
    req: Forward<S, ReqBody>,
    leader: Leader,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: InnerService<ReqBody, ResBody>,
    ReqBody: ForwardBody,
    ResBody: CacheableBody,
{
    let Forward {
        shared,
        inner,
        parts,
        body,
        ctx,
    } = req;
    match shared.store.fill(&ctx.key).await {
        Fill::Lead => {
            let _done = FillDone::new(&shared, &ctx.key);
            fetch::miss(shared.clone(), inner, parts, body, ctx, Some(leader)).await
        }
        Fill::Filled(variants) => {
            let entry = select(&variants, &parts.headers).cloned();
            let age = entry.as_ref().map(|e| e.freshness.age(shared.clock.now()));
            if let (Some(entry), Some(age)) = (entry, age)
                && matches!(decide(&shared, &ctx.rq, &entry, age), Decision::Fresh)
            {
                leader.publish(Some(entry.clone()));
                crate::metrics::increment(crate::metrics::SHARED_HITS);
                let asked = asked(&parts, ctx.timing);
                return Ok(serve(&shared, asked, &entry, age, Served::SharedHit));
            }
            fetch::miss(shared, inner, parts, body, ctx, Some(leader)).await
        }
        _ => fetch::miss(shared, inner, parts, body, ctx, Some(leader)).await,
    }
}

/// What the client asked, for serving from the store.
fn asked(parts: &request::Parts, timing: bool) -> Asked<'_> {
    Asked {
        method: &parts.method,
        headers: &parts.headers,
        preconditions: true,
        timing,
    }
}

/// A fresh hit answered inline, when the store can answer at once
/// ([`CacheStore::get_ready`](crate::CacheStore::get_ready)).
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
    let key = key::primary_for_host(req.uri(), present.host);
    let variants = shared.store.get_ready(&key)??;
    let entry = select(&variants, headers)?;
    let rq = if present.directives {
        RequestDirectives::parse(headers)
    } else {
        RequestDirectives::default()
    };
    let age = entry.freshness.age(shared.clock.now());
    if !matches!(decide(shared, &rq, entry, age), Decision::Fresh) {
        return None;
    }
    let asked = Asked {
        method,
        headers,
        preconditions: present.preconditions,
        timing: shared.server_timing.wants(method, req.uri(), headers),
    };
    Some(serve(shared, asked, entry, age, Served::Hit))
}

/// What a fresh hit needs from the request's fields, found in one pass over them.
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
fn select<'a>(
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

/// What to do with `entry` at `age`, under this layer's settings.
fn decide(
    shared: &Shared,
    rq: &RequestDirectives,
    entry: &CachedResponse,
    age: Duration,
) -> Decision {
    let reuse = Reuse {
        honor_request_directives: shared.honor_request_directives,
        honor_max_stale: shared.honor_max_stale,
    };
    reuse::decide(reuse, rq, &entry.freshness, age)
}

/// Starts one background revalidation per key.
fn spawn_refresh<S, ReqBody, ResBody>(
    shared: &Arc<Shared>,
    inner: &S,
    parts: &request::Parts,
    entry: &Arc<CachedResponse>,
    key: &str,
) where
    S: InnerService<ReqBody, ResBody>,
    ReqBody: ForwardBody,
    ResBody: CacheableBody,
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
    let ctx = RequestCtx {
        key: key.to_owned(),
        rq: RequestDirectives::default(),
        timing: false,
        fwd: "fwd=stale",
        started: shared.inflight.generations.current(),
    };
    let (shared, inner, entry) = (shared.clone(), inner.clone(), entry.clone());
    runtime.spawn(async move {
        let key = ctx.key.clone();
        // Across instances sharing a store, one refreshes; the others keep serving stale.
        if shared.store.refresh_lease(&key, REFRESH_LEASE).await {
            let done = revalidate::revalidate(
                shared.clone(),
                inner,
                parts,
                ReqBody::default(),
                entry,
                ctx,
            )
            .await;
            drop(done);
        }
        shared
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    });
}
