//! Building responses from stored entries: 200/206/304/416, `Age`, `Cache-Status`.

use std::time::SystemTime;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, request};
use http_body::Body;

use crate::body::ResponseBody;
use crate::conditional;
use crate::directives::DELTA_MAX;
use crate::headers::{finish, finish_served};
use crate::layer::Shared;
use crate::range;
use crate::store::CachedResponse;

/// How a stored response is being served (for `Cache-Status` and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Hit,
    StaleWhileRevalidate,
    StaleIfError,
    Disconnected,
    MaxStale,
    Collapsed,
    /// Revalidated with a 304; the `fwd` reason.
    Revalidated(&'static str),
}

/// Builds the response for a stored entry: 304 when the client's validators match, else the stored
/// response (no body for HEAD), with `Age` generated and `Date` untouched.
pub(crate) fn serve<B: Body>(
    shared: &Shared,
    parts: &request::Parts,
    entry: &CachedResponse,
    now: SystemTime,
    how: Served,
) -> Response<ResponseBody<B>> {
    serve_parts(shared, &parts.method, &parts.headers, entry, now, how)
}

/// [`serve`] from the request's method and header fields.
pub(crate) fn serve_parts<B: Body>(
    shared: &Shared,
    method: &Method,
    req_headers: &HeaderMap,
    entry: &CachedResponse,
    now: SystemTime,
    how: Served,
) -> Response<ResponseBody<B>> {
    let ttl = entry.freshness.ttl(now);
    let revalidate_304 = entry.status == StatusCode::OK
        && conditional::not_modified(method, req_headers, &entry.headers);
    let range = if entry.status == StatusCode::OK && !revalidate_304 {
        range::requested(req_headers, &entry.headers, entry.body.len())
    } else {
        None
    };
    let (status, mut headers, body) = if revalidate_304 {
        (
            StatusCode::NOT_MODIFIED,
            conditional::not_modified_headers(&entry.headers),
            ResponseBody::empty(),
        )
    } else if let Some(range) = range {
        let mut headers = headers_with_room(&entry.headers);
        let head = *method == Method::HEAD;
        match range {
            Ok((start, end)) => {
                range::partial_headers(&mut headers, start, end, entry.body.len());
                let body = if head {
                    ResponseBody::empty()
                } else {
                    ResponseBody::full(entry.body.slice(start..end))
                };
                (StatusCode::PARTIAL_CONTENT, headers, body)
            }
            Err(()) => {
                range::unsatisfiable_headers(&mut headers, entry.body.len());
                (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    headers,
                    ResponseBody::empty(),
                )
            }
        }
    } else if *method == Method::HEAD {
        (
            entry.status,
            headers_with_room(&entry.headers),
            ResponseBody::empty(),
        )
    } else {
        (
            entry.status,
            headers_with_room(&entry.headers),
            ResponseBody::full(entry.body.clone()),
        )
    };
    let age = entry.freshness.age(now).as_secs().min(DELTA_MAX);
    headers.insert(header::AGE, HeaderValue::from(age));
    let (prefix, detail, desc) = match how {
        Served::Hit => ("hit", "", "hit"),
        Served::StaleWhileRevalidate => ("hit", "; detail=stale-while-revalidate", "stale"),
        Served::StaleIfError => ("hit", "; detail=stale-if-error", "stale"),
        Served::Disconnected => ("hit", "; detail=disconnected", "stale"),
        Served::MaxStale => ("hit", "; detail=max-stale", "stale"),
        Served::Collapsed => ("fwd=uri-miss; collapsed", "", "collapsed"),
        Served::Revalidated(fwd) => (fwd, "; fwd-status=304", "revalidated"),
    };
    finish_served(shared, &mut headers, (prefix, detail), ttl, desc);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

pub(crate) fn gateway_timeout<B: Body>(shared: &Shared) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    finish(
        shared,
        response.headers_mut(),
        format_args!("fwd=miss; detail=only-if-cached"),
        "only-if-cached",
    );
    response
}

/// A copy of the stored fields with room for the ones added on the way out (`Age`,
/// `Cache-Status`, `Server-Timing`, range fields), so appending them never re-grows the map.
fn headers_with_room(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(stored.len() + 5);
    for (name, value) in stored {
        headers.append(name.clone(), value.clone());
    }
    headers
}
