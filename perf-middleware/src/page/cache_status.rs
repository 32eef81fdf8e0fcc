//! Whether a response was a cache hit, read from its RFC 9211 `Cache-Status` field. Parsing
//! borrows the header values; nothing is allocated.
//!
//! `Cache-Status` is a list with one member per cache that handled the request, each appended by
//! its cache on the way out, so the first member is the cache nearest the origin and the last the
//! one nearest the client (RFC 9211 §2). The page reads the **last** member the timing layer sees:
//! the cache between the timing layer and the app that answered or forwarded *this* request
//! (with `perf-cache-layer` inside `PerfLayer`, that is it). Members before it come from caches
//! further upstream (a proxied origin's CDN): when the nearest cache forwarded, the request
//! reached the app whatever they did, so an upstream hit is not this route's hit.
//!
//! A member is a hit when it has the `hit` parameter (`hit` or `hit=?1`; stale responses served
//! from the cache are hits too, RFC 9211 §2.1). "The cache saw the route" means the field was
//! present at all.

use http::HeaderMap;
use http::header::HeaderName;

/// The field's name.
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// `None` when the response has no `Cache-Status`; else whether its client-nearest member has
/// the `hit` parameter.
pub(crate) fn read(headers: &HeaderMap) -> Option<bool> {
    let mut seen = false;
    let mut last = None;
    for value in headers.get_all(CACHE_STATUS) {
        seen = true;
        // Field lines concatenate into one list: the last non-empty member of the last line
        // that has one.
        if let Some(member) = value.to_str().ok().and_then(last_member) {
            last = Some(member);
        }
    }
    seen.then(|| last.is_some_and(is_hit))
}

/// The last non-empty member of one field line.
fn last_member(line: &str) -> Option<&str> {
    Split::new(line, b',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .last()
}

/// Whether a member (`name; param; param=value`) has `hit` set.
fn is_hit(member: &str) -> bool {
    Split::new(member, b';')
        .skip(1)
        .any(|param| match param.trim().split_once('=') {
            None => param.trim() == "hit",
            Some((key, value)) => key.trim() == "hit" && value.trim() == "?1",
        })
}

/// Splits at `sep` outside structured-field strings (`"…"`, with `\"` escapes), so a cache
/// name or a `detail` string containing `,` or `;` stays whole.
struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Split<'a> {
    fn new(s: &'a str, sep: u8) -> Self {
        Self { rest: Some(s), sep }
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in s.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if b == self.sep && !quoted => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(lines: &[&str]) -> Option<bool> {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(CACHE_STATUS, l.parse().unwrap());
        }
        read(&h)
    }

    #[test]
    fn no_field_means_no_cache() {
        assert_eq!(status(&[]), None);
    }

    #[test]
    fn the_client_nearest_member_decides() {
        assert_eq!(status(&["perf-cache; hit; ttl=30"]), Some(true));
        assert_eq!(status(&["perf-cache; fwd=uri-miss"]), Some(false));
        assert_eq!(status(&["perf-cache; hit=?1"]), Some(true));
        assert_eq!(status(&["perf-cache; hit=?0"]), Some(false));
        // An origin-side CDN hit, then our cache forwarded: not a hit for this route.
        assert_eq!(
            status(&["OriginCDN; hit, perf-cache; fwd=uri-miss"]),
            Some(false)
        );
        assert_eq!(
            status(&["OriginCDN; fwd=miss", "perf-cache; hit"]),
            Some(true)
        );
        assert_eq!(
            status(&["perf-cache; hit", "perf-cache; fwd=stale"]),
            Some(false)
        );
        // Stale served from the cache is a hit; `collapsed` waited on another request's fetch.
        assert_eq!(
            status(&["perf-cache; hit; detail=stale-while-revalidate"]),
            Some(true)
        );
        assert_eq!(
            status(&["perf-cache; fwd=uri-miss; collapsed"]),
            Some(false)
        );
    }

    #[test]
    fn strings_keep_their_separators() {
        assert_eq!(
            status(&[r#""Edge, \"east\"; 1"; hit; detail="a, b; c""#]),
            Some(true)
        );
        assert_eq!(
            status(&[r#"a; hit, "b;hit"; fwd=miss; detail="hit""#]),
            Some(false)
        );
        assert_eq!(status(&["perf-cache; hit, "]), Some(true));
        assert_eq!(status(&["perf-cache; hitting"]), Some(false));
    }
}
