//! Header bookkeeping on the way out: `Cache-Status`, `Server-Timing`, hop-by-hop and cache-only
//! fields, and invalidation of related URIs.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use metrics::Counter;

use crate::key;
use crate::layer::Shared;

pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
pub(crate) const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// How a request was answered: the `Server-Timing` description and the `outcome` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
    Collapsed,
    OnlyIfCached,
    Bypass,
}

impl Outcome {
    const COUNT: usize = 7;

    fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Revalidated => "revalidated",
            Self::Collapsed => "collapsed",
            Self::OnlyIfCached => "only-if-cached",
            Self::Bypass => "bypass",
        }
    }

    /// The `Server-Timing` entry (static: no allocation).
    pub(crate) fn server_timing(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Hit => "cache;desc=\"hit\"",
            Self::Miss => "cache;desc=\"miss\"",
            Self::Stale => "cache;desc=\"stale\"",
            Self::Revalidated => "cache;desc=\"revalidated\"",
            Self::Collapsed => "cache;desc=\"collapsed\"",
            Self::OnlyIfCached => "cache;desc=\"only-if-cached\"",
            Self::Bypass => "cache;desc=\"bypass\"",
        })
    }
}

/// The `perf_cache_requests_total{outcome}` handles, resolved on first use (a hit then costs one
/// atomic add, not a registry lookup by name and labels).
#[derive(Debug, Default)]
pub(crate) struct Counters([OnceLock<Counter>; Outcome::COUNT]);

impl Counters {
    /// Counts an outcome.
    pub(crate) fn count(&self, outcome: Outcome) {
        self.0[outcome as usize]
            .get_or_init(
                || metrics::counter!(crate::metrics::REQUESTS, "outcome" => outcome.label()),
            )
            .increment(1);
    }
}

/// Appends `Cache-Status` (`name; text`), the `Server-Timing` entry and counts the outcome.
pub(crate) fn finish(
    shared: &Shared,
    headers: &mut HeaderMap,
    text: std::fmt::Arguments<'_>,
    outcome: Outcome,
) {
    let mut value = String::with_capacity(shared.status_name.len() + 48);
    value.push_str(&shared.status_name);
    value.push_str("; ");
    let _ = std::fmt::Write::write_fmt(&mut value, text);
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        headers.append(CACHE_STATUS, value);
    }
    tail(shared, headers, outcome);
}

static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for a layer's shared state (keys the per-thread memo below).
pub(crate) fn layer_id() -> u64 {
    NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// The last plain-hit `Cache-Status` value rendered on this thread, with its layer id and ttl:
    /// the hits a thread serves within the same second share one value instead of each rendering
    /// (and allocating) its own.
    static LAST_HIT: RefCell<Option<(u64, i64, HeaderValue)>> = const { RefCell::new(None) };
}

/// The `Cache-Status` value of a response served from the store, `name; prefix detail; ttl=N`.
/// Plain hits (`name; hit; ttl=N`) reuse this thread's last value when it has the same layer and
/// ttl; otherwise the value is built without the formatting machinery, in one allocation of the
/// exact size: this runs on every hit.
pub(crate) fn served_status(
    shared: &Shared,
    (prefix, detail): (&str, &str),
    ttl: i64,
) -> Option<HeaderValue> {
    let plain = prefix == "hit" && detail.is_empty();
    if plain {
        let memo = LAST_HIT.try_with(|last| match last.try_borrow().as_deref() {
            Ok(Some((id, at, value))) if *id == shared.id && *at == ttl => Some(value.clone()),
            _ => None,
        });
        if let Ok(Some(value)) = memo {
            return Some(value);
        }
    }
    let mut digits = [0u8; 21];
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
    if ttl < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    let digits = &digits[at..];
    let value = if plain {
        let lead = shared.hit_status.as_bytes();
        let mut value = Vec::with_capacity(lead.len() + digits.len());
        value.extend_from_slice(lead);
        value.extend_from_slice(digits);
        value
    } else {
        let parts: [&[u8]; 6] = [
            shared.status_name.as_bytes(),
            b"; ",
            prefix.as_bytes(),
            detail.as_bytes(),
            b"; ttl=",
            digits,
        ];
        let mut value = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            value.extend_from_slice(part);
        }
        value
    };
    let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).ok()?;
    if plain {
        let _ = LAST_HIT.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                *last = Some((shared.id, ttl, value.clone()));
            }
        });
    }
    Some(value)
}

/// Appends the `Server-Timing` entry (when enabled) and counts the outcome.
fn tail(shared: &Shared, headers: &mut HeaderMap, outcome: Outcome) {
    if shared.server_timing {
        headers.append(SERVER_TIMING, outcome.server_timing());
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
        if let Err(err) = shared.store.remove(&k).await {
            tracing::warn!(%err, "cache invalidation failed");
        }
    }
    metrics::counter!(crate::metrics::INVALIDATIONS).increment(1);
}
