//! Header bookkeeping on the way out: `Cache-Status`, `Server-Timing`, hop-by-hop and cache-only
//! fields, and invalidation of related URIs.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use perf_middleware::server_timing;

use crate::metrics::Outcome;
use crate::rfc::key;
use crate::shared::Shared;

pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Appends this cache's `Cache-Status` member (`name; ` and the `text` pieces), the
/// `Server-Timing` entry when `timing`, and counts the outcome.
pub(crate) fn finish(
    shared: &Shared,
    headers: &mut HeaderMap,
    text: &[&str],
    outcome: Outcome,
    timing: bool,
) {
    let len = text.iter().map(|t| t.len()).sum::<usize>();
    let mut value = String::with_capacity(shared.status_name.len() + 2 + len);
    value.push_str(&shared.status_name);
    value.push_str("; ");
    for piece in text {
        value.push_str(piece);
    }
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.append(CACHE_STATUS, value);
    }
    if timing {
        server_timing::append(headers, &[("cache", None, Some(outcome.label()))]);
    }
    shared.counters.count(outcome);
}

/// Removes `Connection`, the fields it lists, and the other hop-by-hop fields (RFC 9111 §3.1).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ] {
        headers.remove(name);
    }
    for name in [
        "proxy-authenticate",
        "proxy-authentication-info",
        "proxy-authorization",
    ] {
        headers.remove(name);
    }
}

/// Removes fields meant for this cache only: the tag header and `Surrogate-Control`.
pub(crate) fn strip_cache_fields(shared: &Shared, headers: &mut HeaderMap) -> Vec<Box<str>> {
    headers.remove("surrogate-control");
    let Some(name) = &shared.tag_header else {
        return Vec::new();
    };
    let tags = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(str::split_whitespace)
        .map(Box::from)
        .collect();
    headers.remove(name);
    tags
}

/// Invalidates `key` and same-origin `Location`/`Content-Location` (RFC 9111 §4.4).
pub(crate) async fn invalidate(shared: &Shared, key: &str, headers: &HeaderMap) {
    let mut keys = vec![key.to_owned()];
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        if let Some(other) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| key::same_origin_key(v, key))
        {
            keys.push(other);
        }
    }
    for k in keys {
        shared.inflight.generations.invalidate_key(&k);
        if let Err(err) = shared.store.remove(&k).await {
            tracing::warn!(%err, "cache invalidation failed");
        }
    }
    crate::metrics::increment(crate::metrics::INVALIDATIONS);
}
