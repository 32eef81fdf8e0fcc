//! Header bookkeeping on the way out: `Cache-Status`, `Server-Timing`, hop-by-hop and cache-only
//! fields, and invalidation of related URIs.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use crate::key;
use crate::layer::Shared;

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Appends `Cache-Status` (`name; text`), the `Server-Timing` entry and counts the outcome.
pub(crate) fn finish(
    shared: &Shared,
    headers: &mut HeaderMap,
    text: std::fmt::Arguments<'_>,
    desc: &'static str,
) {
    let mut value = String::with_capacity(shared.status_name.len() + 48);
    value.push_str(&shared.status_name);
    value.push_str("; ");
    let _ = std::fmt::Write::write_fmt(&mut value, text);
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        headers.append(CACHE_STATUS, value);
    }
    tail(shared, headers, desc);
}

/// [`finish`] for responses served from the store (`name; prefix detail; ttl=N`), without the
/// formatting machinery: this runs on every hit.
pub(crate) fn finish_served(
    shared: &Shared,
    headers: &mut HeaderMap,
    (prefix, detail): (&str, &str),
    ttl: i64,
    desc: &'static str,
) {
    let name = shared.status_name.as_bytes();
    let mut value = bytes::BytesMut::with_capacity(name.len() + prefix.len() + detail.len() + 32);
    value.extend_from_slice(name);
    value.extend_from_slice(b"; ");
    value.extend_from_slice(prefix.as_bytes());
    value.extend_from_slice(detail.as_bytes());
    value.extend_from_slice(b"; ttl=");
    if ttl < 0 {
        value.extend_from_slice(b"-");
    }
    let mut digits = [0u8; 20];
    let mut n = ttl.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    value.extend_from_slice(&digits[at..]);
    if let Ok(value) = HeaderValue::from_maybe_shared(value.freeze()) {
        headers.append(CACHE_STATUS, value);
    }
    tail(shared, headers, desc);
}

fn tail(shared: &Shared, headers: &mut HeaderMap, desc: &'static str) {
    if shared.server_timing {
        headers.append(SERVER_TIMING, server_timing(desc));
    }
    count(desc);
}

/// Counts an outcome; literal labels keep the metric key static (no allocation per request).
fn count(desc: &'static str) {
    use crate::metrics::REQUESTS;
    match desc {
        "hit" => metrics::counter!(REQUESTS, "outcome" => "hit").increment(1),
        "miss" => metrics::counter!(REQUESTS, "outcome" => "miss").increment(1),
        "stale" => metrics::counter!(REQUESTS, "outcome" => "stale").increment(1),
        "revalidated" => metrics::counter!(REQUESTS, "outcome" => "revalidated").increment(1),
        "collapsed" => metrics::counter!(REQUESTS, "outcome" => "collapsed").increment(1),
        "only-if-cached" => metrics::counter!(REQUESTS, "outcome" => "only-if-cached").increment(1),
        _ => metrics::counter!(REQUESTS, "outcome" => "bypass").increment(1),
    }
}

/// The `Server-Timing` entry for an outcome (static: no allocation on the hit path).
fn server_timing(desc: &'static str) -> HeaderValue {
    const HIT: HeaderValue = HeaderValue::from_static("cache;desc=\"hit\"");
    const MISS: HeaderValue = HeaderValue::from_static("cache;desc=\"miss\"");
    const STALE: HeaderValue = HeaderValue::from_static("cache;desc=\"stale\"");
    const REVALIDATED: HeaderValue = HeaderValue::from_static("cache;desc=\"revalidated\"");
    const COLLAPSED: HeaderValue = HeaderValue::from_static("cache;desc=\"collapsed\"");
    const ONLY_IF_CACHED: HeaderValue = HeaderValue::from_static("cache;desc=\"only-if-cached\"");
    const BYPASS: HeaderValue = HeaderValue::from_static("cache;desc=\"bypass\"");
    match desc {
        "hit" => HIT,
        "miss" => MISS,
        "stale" => STALE,
        "revalidated" => REVALIDATED,
        "collapsed" => COLLAPSED,
        "only-if-cached" => ONLY_IF_CACHED,
        _ => BYPASS,
    }
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
        if let Err(err) = shared.store.remove(&k).await {
            tracing::warn!(%err, "cache invalidation failed");
        }
    }
    metrics::counter!(crate::metrics::INVALIDATIONS).increment(1);
}
