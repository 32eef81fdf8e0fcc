//! Building responses from stored entries: 200/206/304/416, `Age`, `Cache-Status`.
//!
//! The header fields of every reply are rebuilt from the stored ones per request: the stored entry
//! holds no per-layer render state.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body::Body;

use crate::body::ResponseBody;
use crate::flow::headers::finish;
use crate::metrics::Outcome;
use crate::rfc::directives::DELTA_MAX;
use crate::rfc::{conditional, range};
use crate::shared::Shared;
use crate::store::CachedResponse;

/// How a stored response is being served (for `Cache-Status` and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Hit,
    /// A fresh hit from the store's shared tier (`detail=l2`).
    SharedHit,
    StaleWhileRevalidate,
    StaleIfError,
    Disconnected,
    MaxStale,
    Collapsed,
    /// Revalidated with a 304; the `fwd` reason.
    Revalidated(&'static str),
    /// Updated from a 200 to a HEAD (RFC 9111 §4.3.5); the `fwd` reason.
    HeadUpdated(&'static str),
}

impl Served {
    /// The `Cache-Status` text before `; ttl=`, and the outcome.
    fn describe(self) -> (&'static str, &'static str, Outcome) {
        match self {
            Self::Hit => ("hit", "", Outcome::Hit),
            Self::SharedHit => ("hit", "; detail=l2", Outcome::Hit),
            Self::StaleWhileRevalidate => {
                ("hit", "; detail=stale-while-revalidate", Outcome::Stale)
            }
            Self::StaleIfError => ("hit", "; detail=stale-if-error", Outcome::Stale),
            Self::Disconnected => ("hit", "; detail=disconnected", Outcome::Stale),
            Self::MaxStale => ("hit", "; detail=max-stale", Outcome::Stale),
            Self::Collapsed => ("fwd=uri-miss; collapsed", "", Outcome::Collapsed),
            Self::Revalidated(fwd) => (fwd, "; fwd-status=304", Outcome::Revalidated),
            Self::HeadUpdated(fwd) => (fwd, "; fwd-status=200", Outcome::Revalidated),
        }
    }
}

/// What serving a stored entry needs from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    /// Whether the request may carry `If-None-Match`, `If-Modified-Since` or `Range` (false skips
    /// looking for them).
    pub(crate) preconditions: bool,
    /// Whether this request gets the `Server-Timing` entry.
    pub(crate) timing: bool,
}

/// Builds the response for a stored entry at its current `age`: 304 when the client's validators
/// match, 206/416 for a single byte range, else the stored response (no body for HEAD), with `Age`
/// generated and `Date` untouched.
pub(crate) fn serve<B: Body>(
    shared: &Shared,
    asked: Asked<'_>,
    entry: &CachedResponse,
    age: Duration,
    how: Served,
) -> Response<ResponseBody<B>> {
    let ok = entry.status == StatusCode::OK;
    let not_modified = asked.preconditions
        && ok
        && conditional::not_modified(asked.method, asked.headers, &entry.headers);
    let range = if asked.preconditions && ok && !not_modified {
        range::requested(asked.headers, &entry.headers, entry.body.len())
    } else {
        None
    };
    let head = *asked.method == Method::HEAD;
    let (status, mut headers, body) = if not_modified {
        let headers = conditional::not_modified_headers(&entry.headers);
        (StatusCode::NOT_MODIFIED, headers, ResponseBody::empty())
    } else {
        let mut headers = with_room(&entry.headers);
        match range {
            Some(Ok((start, end))) => {
                range::partial_headers(&mut headers, start, end, entry.body.len());
                let body = if head {
                    ResponseBody::empty()
                } else {
                    ResponseBody::full(entry.body.slice(start..end))
                };
                (StatusCode::PARTIAL_CONTENT, headers, body)
            }
            Some(Err(())) => {
                range::unsatisfiable_headers(&mut headers, entry.body.len());
                let status = StatusCode::RANGE_NOT_SATISFIABLE;
                (status, headers, ResponseBody::empty())
            }
            None if head => (entry.status, headers, ResponseBody::empty()),
            None => (
                entry.status,
                headers,
                ResponseBody::full(entry.body.clone()),
            ),
        }
    };
    headers.insert(header::AGE, HeaderValue::from(age.as_secs().min(DELTA_MAX)));
    let ttl = entry.freshness.ttl_at(age);
    let (prefix, detail, outcome) = how.describe();
    let mut ttl_digits = itoa::Buffer::new();
    let text = [prefix, detail, "; ttl=", ttl_digits.format(ttl)];
    finish(shared, &mut headers, &text, outcome, asked.timing);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A copy of `stored` with room for the fields a reply adds (`Age`, `Cache-Status`,
/// `Server-Timing`, `Content-Range`), so adding them does not grow the map.
fn with_room(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(stored.len() + 4);
    for (name, value) in stored {
        headers.append(name.clone(), value.clone());
    }
    headers
}

/// The 504 for `only-if-cached` without a usable stored response (RFC 9111 §5.2.1.7).
pub(crate) fn gateway_timeout<B: Body>(shared: &Shared, timing: bool) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    finish(
        shared,
        response.headers_mut(),
        &["fwd=miss; detail=only-if-cached"],
        Outcome::OnlyIfCached,
        timing,
    );
    response
}

/// The 503 for a miss shed while the store protects the origin
/// ([`CacheStore::shed_misses`](crate::CacheStore::shed_misses)).
pub(crate) fn shed<B: Body>(
    shared: &Shared,
    fwd: &str,
    retry_after: Duration,
    timing: bool,
) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    finish(
        shared,
        headers,
        &[fwd, "; detail=shed"],
        Outcome::Shed,
        timing,
    );
    response
}
