//! Building responses from stored entries: 200/206/304/416, `Age`, `Cache-Status`.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, request};
use http_body::Body;

use crate::body::ResponseBody;
use crate::conditional;
use crate::directives::DELTA_MAX;
use crate::headers::{CACHE_STATUS, Outcome, SERVER_TIMING, finish, served_status};
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
    let age = entry.freshness.age(now);
    serve_parts(shared, &parts.method, &parts.headers, true, entry, age, how)
}

/// [`serve`] from the request's method and header fields, at the entry's current `age`.
/// `preconditions` is whether the request may carry `If-None-Match`, `If-Modified-Since` or
/// `Range` (false skips looking for them).
pub(crate) fn serve_parts<B: Body>(
    shared: &Shared,
    method: &Method,
    req_headers: &HeaderMap,
    preconditions: bool,
    entry: &CachedResponse,
    age: Duration,
    how: Served,
) -> Response<ResponseBody<B>> {
    let ttl = entry.freshness.ttl_at(age);
    let ok = entry.status == StatusCode::OK;
    let revalidate_304 =
        preconditions && ok && conditional::not_modified(method, req_headers, &entry.headers);
    let range = if preconditions && ok && !revalidate_304 {
        range::requested(req_headers, &entry.headers, entry.body.len())
    } else {
        None
    };
    let (status, mut headers, body) = if revalidate_304 {
        (
            StatusCode::NOT_MODIFIED,
            entry.reply_304.clone(),
            ResponseBody::empty(),
        )
    } else if let Some(range) = range {
        let mut headers = entry.reply.clone();
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
        (entry.status, entry.reply.clone(), ResponseBody::empty())
    } else {
        (
            entry.status,
            entry.reply.clone(),
            ResponseBody::full(entry.body.clone()),
        )
    };
    let (prefix, detail, outcome) = match how {
        Served::Hit => ("hit", "", Outcome::Hit),
        Served::StaleWhileRevalidate => ("hit", "; detail=stale-while-revalidate", Outcome::Stale),
        Served::StaleIfError => ("hit", "; detail=stale-if-error", Outcome::Stale),
        Served::Disconnected => ("hit", "; detail=disconnected", Outcome::Stale),
        Served::MaxStale => ("hit", "; detail=max-stale", Outcome::Stale),
        Served::Collapsed => ("fwd=uri-miss; collapsed", "", Outcome::Collapsed),
        Served::Revalidated(fwd) => (fwd, "; fwd-status=304", Outcome::Revalidated),
    };
    let status_value = served_status(shared, (prefix, detail), ttl);
    let timing = shared.server_timing.then(|| outcome.server_timing());
    fill(
        &mut headers,
        age_value(age.as_secs().min(DELTA_MAX)),
        status_value,
        timing,
        entry.reply_timing,
    );
    shared.counters.count(outcome);
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
        Outcome::OnlyIfCached,
    );
    response
}

/// `headers` plus placeholders for `Age`, this cache's `Cache-Status` and (when enabled)
/// `Server-Timing`: a hit clones it and overwrites the placeholders in place, so the map is
/// neither rebuilt field by field nor grown per hit.
pub(crate) fn reply_template(headers: &HeaderMap, server_timing: bool) -> HeaderMap {
    let mut reply = HeaderMap::with_capacity(headers.len() + 3);
    for (name, value) in headers {
        reply.append(name.clone(), value.clone());
    }
    reply.insert(header::AGE, HeaderValue::from_static("0"));
    reply.append(CACHE_STATUS, HeaderValue::from_static("-"));
    if server_timing {
        reply.append(SERVER_TIMING, HeaderValue::from_static("-"));
    }
    reply
}

/// Writes `Age`, this cache's `Cache-Status` and `Server-Timing` into the placeholders of a reply
/// template (the last value of each name: an upstream cache's members come before ours), in one
/// pass over the fields; adds or removes what the template lacks or should not have.
fn fill(
    headers: &mut HeaderMap,
    age: HeaderValue,
    status: Option<HeaderValue>,
    timing: Option<HeaderValue>,
    template_timing: bool,
) {
    let (mut age_slot, mut status_slot, mut timing_slot) = (None, None, None);
    for (name, value) in headers.iter_mut() {
        if *name == header::AGE {
            age_slot = Some(value);
        } else if *name == CACHE_STATUS {
            status_slot = Some(value);
        } else if template_timing && *name == SERVER_TIMING {
            timing_slot = Some(value);
        }
    }
    let mut missing = (None, None, None);
    let mut unwanted = (false, false);
    match age_slot {
        Some(slot) => *slot = age,
        None => missing.0 = Some(age),
    }
    match (status_slot, status) {
        (Some(slot), Some(status)) => *slot = status,
        (None, status) => missing.1 = status,
        (Some(_), None) => unwanted.0 = true,
    }
    match (timing_slot, timing) {
        (Some(slot), Some(timing)) => *slot = timing,
        (None, timing) => missing.2 = timing,
        (Some(_), None) => unwanted.1 = true,
    }
    if unwanted.0 {
        remove_last(headers, &CACHE_STATUS);
    }
    if unwanted.1 {
        remove_last(headers, &SERVER_TIMING);
    }
    if let Some(age) = missing.0 {
        headers.insert(header::AGE, age);
    }
    if let Some(status) = missing.1 {
        headers.append(CACHE_STATUS, status);
    }
    if let Some(timing) = missing.2 {
        headers.append(SERVER_TIMING, timing);
    }
}

/// Removes the last value of `name` (a template's placeholder that is not wanted).
fn remove_last(headers: &mut HeaderMap, name: &HeaderName) {
    let mut values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
    values.pop();
    headers.remove(name);
    for value in values {
        headers.append(name, value);
    }
}

/// "0" to "999" back to back: an `Age` below 1000 is a slice of it (a static value, no allocation).
static SMALL_NUMBERS: [u8; 2890] = small_numbers();

const fn small_numbers() -> [u8; 2890] {
    let mut out = [0u8; 2890];
    let (mut n, mut at) = (0, 0);
    while n < 1000 {
        if n >= 100 {
            out[at] = b'0' + (n / 100) as u8;
            at += 1;
        }
        if n >= 10 {
            out[at] = b'0' + (n / 10 % 10) as u8;
            at += 1;
        }
        out[at] = b'0' + (n % 10) as u8;
        at += 1;
        n += 1;
    }
    out
}

/// The `Age` value for `secs`.
fn age_value(secs: u64) -> HeaderValue {
    let (start, len) = match secs {
        0..=9 => (secs, 1),
        10..=99 => (10 + (secs - 10) * 2, 2),
        100..=999 => (190 + (secs - 100) * 3, 3),
        _ => return HeaderValue::from(secs),
    };
    let start = start as usize;
    SMALL_NUMBERS
        .get(start..start + len)
        .and_then(|digits| HeaderValue::from_maybe_shared(Bytes::from_static(digits)).ok())
        .unwrap_or_else(|| HeaderValue::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_below_1000_come_from_the_static_table() {
        for secs in [0, 7, 10, 42, 99, 100, 512, 999, 1000, 86_400] {
            assert_eq!(age_value(secs), secs.to_string().as_str());
        }
        for secs in 0..1000 {
            assert_eq!(age_value(secs), secs.to_string().as_str());
        }
    }
}
