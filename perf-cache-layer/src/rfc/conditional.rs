//! Validators: ETag generation, client preconditions answered from cache (RFC 9110 §13), and merging a
//! 304 from the inner service into a stored response (RFC 9111 §4.3.4).

use std::time::SystemTime;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method};

use super::directives;

/// How the cache generates `ETag`s for stored 200 responses that have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EtagMode {
    /// A strong ETag from a 128-bit xxh3 hash of the body and its `Content-Encoding` (the default).
    #[default]
    Strong,
    /// The same hash as a weak ETag (`W/"…"`); use it when a compression layer sits *outside* the cache.
    Weak,
    /// Do not generate ETags.
    Off,
}

/// The generated ETag for `body` (differs per `Content-Encoding`), or `None` for [`EtagMode::Off`].
pub(crate) fn generate(mode: EtagMode, headers: &HeaderMap, body: &[u8]) -> Option<HeaderValue> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for enc in headers.get_all(header::CONTENT_ENCODING) {
        hasher.update(enc.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(body);
    let hash = hasher.digest128();
    let text = match mode {
        EtagMode::Strong => format!("\"{hash:032x}\""),
        EtagMode::Weak => format!("W/\"{hash:032x}\""),
        EtagMode::Off => return None,
    };
    HeaderValue::from_str(&text).ok()
}

fn opaque(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// Weak comparison (RFC 9110 §8.8.3.2).
pub(crate) fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    opaque(a) == opaque(b)
}

/// Evaluates the client's `If-None-Match` / `If-Modified-Since` against a stored representation
/// (RFC 9110 §13.2.2): `true` means answer 304. If-None-Match takes precedence; If-Modified-Since is
/// only used for GET/HEAD, without If-None-Match, with a single valid date.
pub(crate) fn not_modified(method: &Method, req: &HeaderMap, stored: &HeaderMap) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if req.contains_key(header::IF_NONE_MATCH) {
        let etag = stored.get(header::ETAG);
        return req
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .flat_map(|v| directives::quoted_items(v.to_str().unwrap_or_default(), b','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .any(|t| t == "*" || etag.is_some_and(|e| weak_eq(t.as_bytes(), e.as_bytes())));
    }
    let Some(Ok(since)) = directives::parse_date(req, &header::IF_MODIFIED_SINCE) else {
        return false;
    };
    let modified = directives::parse_date(stored, &header::LAST_MODIFIED)
        .or_else(|| directives::parse_date(stored, &header::DATE))
        .and_then(Result::ok);
    modified.is_some_and(|m| m <= since)
}

/// Fields a 304 carries from the 200 it stands for (RFC 9110 §15.4.5).
const NOT_MODIFIED_FIELDS: [HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
    header::LAST_MODIFIED,
];

/// Headers for a 304 answering a stored response.
pub(crate) fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in &NOT_MODIFIED_FIELDS {
        for v in stored.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

/// Client precondition fields removed before the cache revalidates with its own validators.
pub(crate) const CONDITIONALS: [HeaderName; 3] = [
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_RANGE,
];

/// Adds the stored validators to a revalidation request (RFC 9111 §4.3.1).
pub(crate) fn add_validators(req: &mut HeaderMap, stored: &HeaderMap) {
    for name in &CONDITIONALS {
        req.remove(name);
    }
    if let Some(etag) = stored.get(header::ETAG) {
        req.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = stored.get(header::LAST_MODIFIED) {
        req.insert(header::IF_MODIFIED_SINCE, lm.clone());
    }
}

/// Fields never taken from a 304 when updating a stored response: representation metadata and
/// the validator that selected it.
const KEEP_STORED: [HeaderName; 6] = [
    HeaderName::from_static("content-md5"),
    header::ETAG,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
    header::CONTENT_RANGE,
];

/// Replaces stored header fields with those of the 304 (RFC 9111 §3.2).
pub(crate) fn merge_304(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut out = stored.clone();
    let mut seen: Vec<&HeaderName> = Vec::new();
    for (name, value) in not_modified {
        if KEEP_STORED.contains(name) {
            continue;
        }
        if !seen.contains(&name) {
            out.remove(name);
            seen.push(name);
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Whether a `200` response to `HEAD` (fields `head`) describes the stored `GET` response
/// (fields `stored`, body of `body_len` bytes), so that it may update it (RFC 9111 §4.3.5): every
/// validator it carries (`ETag`, `Last-Modified`) equals the stored one, and its `Content-Length`,
/// if any, is the stored body's length. Otherwise the stored response is to be considered stale.
pub(crate) fn head_matches(stored: &HeaderMap, body_len: usize, head: &HeaderMap) -> bool {
    let same = |name: &HeaderName| {
        let received: Vec<_> = head.get_all(name).iter().collect();
        received.is_empty() || received == stored.get_all(name).iter().collect::<Vec<_>>()
    };
    let length = head.get(header::CONTENT_LENGTH).is_none_or(|v| {
        v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()) == Some(body_len)
    });
    same(&header::ETAG) && same(&header::LAST_MODIFIED) && length
}

/// Whether `stored` is older than `other` by `Date` (most recent `Date` wins among candidates).
pub(crate) fn date(headers: &HeaderMap) -> Option<SystemTime> {
    directives::parse_date(headers, &header::DATE).and_then(Result::ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(*n, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn head_matches_when_received_validators_and_length_agree() {
        let stored = h(&[
            ("etag", "\"abc\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("content-length", "5"),
        ]);
        // Nothing to compare: the HEAD response may update the stored one.
        assert!(head_matches(&stored, 5, &h(&[("x-new", "1")])));
        assert!(head_matches(&stored, 5, &h(&[("etag", "\"abc\"")])));
        assert!(head_matches(
            &stored,
            5,
            &h(&[("etag", "\"abc\""), ("content-length", "5")])
        ));
        // A different validator or length: the stored response is stale.
        assert!(!head_matches(&stored, 5, &h(&[("etag", "\"xyz\"")])));
        assert!(!head_matches(&stored, 5, &h(&[("etag", "W/\"abc\"")])));
        let newer = h(&[("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        assert!(!head_matches(&stored, 5, &newer));
        assert!(!head_matches(&stored, 5, &h(&[("content-length", "6")])));
        // A validator the stored response lacks does not match.
        let bare = h(&[("content-length", "5")]);
        assert!(!head_matches(&bare, 5, &h(&[("etag", "\"abc\"")])));
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_beats_ims() {
        let stored = h(&[
            ("etag", "\"abc\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ]);
        assert!(not_modified(
            &Method::GET,
            &h(&[("if-none-match", "W/\"abc\"")]),
            &stored
        ));
        assert!(not_modified(
            &Method::HEAD,
            &h(&[("if-none-match", "\"x\", \"abc\"")]),
            &stored
        ));
        assert!(not_modified(
            &Method::GET,
            &h(&[("if-none-match", "*")]),
            &stored
        ));
        let both = h(&[
            ("if-none-match", "\"x\""),
            ("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT"),
        ]);
        assert!(!not_modified(&Method::GET, &both, &stored));
        let ims = h(&[("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        assert!(not_modified(&Method::GET, &ims, &stored));
        assert!(!not_modified(&Method::POST, &ims, &stored));
        assert!(!not_modified(
            &Method::GET,
            &h(&[("if-modified-since", "yesterday")]),
            &stored
        ));
    }

    #[test]
    fn generated_etags_are_quoted_and_differ_per_encoding() {
        let plain = generate(EtagMode::Strong, &HeaderMap::new(), b"body").unwrap();
        let gz = generate(
            EtagMode::Strong,
            &h(&[("content-encoding", "gzip")]),
            b"body",
        )
        .unwrap();
        assert_ne!(plain, gz);
        let s = plain.to_str().unwrap();
        assert!(
            s.starts_with('"')
                && s.ends_with('"')
                && s[1..s.len() - 1].bytes().all(|b| b.is_ascii_hexdigit())
        );
        assert!(
            generate(EtagMode::Weak, &HeaderMap::new(), b"body")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("W/\"")
        );
        assert!(generate(EtagMode::Off, &HeaderMap::new(), b"body").is_none());
    }

    #[test]
    fn merge_304_keeps_length_and_encoding() {
        let stored = h(&[
            ("content-length", "4"),
            ("content-encoding", "gzip"),
            ("x-a", "1"),
            ("x-a", "2"),
        ]);
        let update = h(&[
            ("content-length", "0"),
            ("content-encoding", "br"),
            ("x-a", "3"),
            ("x-b", "4"),
        ]);
        let merged = merge_304(&stored, &update);
        assert_eq!(merged["content-length"], "4");
        assert_eq!(merged["content-encoding"], "gzip");
        assert_eq!(merged.get_all("x-a").iter().collect::<Vec<_>>(), vec!["3"]);
        assert_eq!(merged["x-b"], "4");
    }
}
