//! Single byte-range requests answered from a complete stored response (RFC 9110 §14).
//!
//! The `Range` field is parsed and checked against the body length by `http-range-header` (what
//! tower-http uses). Only a single satisfiable `bytes` range is served as a 206, and a range that
//! cannot be satisfied gets a 416; anything else (several ranges, other units, invalid syntax, an
//! `If-Range` that does not match) gets the full 200, which RFC 9110 §14.2 permits.

use http::header::{self, HeaderMap, HeaderValue};
use http_range_header::RangeUnsatisfiableError;

use super::conditional;

/// The byte range `[start, end)` to serve, `Err(())` when unsatisfiable, `None` for the full body.
pub(crate) fn requested(
    req: &HeaderMap,
    stored: &HeaderMap,
    len: usize,
) -> Option<Result<(usize, usize), ()>> {
    let spec = req.get(header::RANGE)?.to_str().ok()?;
    let parsed = http_range_header::parse_range_header(spec).ok()?;
    if parsed.len() != 1 || !if_range_matches(req, stored) {
        return None;
    }
    match parsed.validate(len as u64) {
        Ok(ranges) => {
            let range = ranges.first()?;
            let start = usize::try_from(*range.start()).ok()?;
            let end = usize::try_from(*range.end()).ok()?.checked_add(1)?;
            Some(Ok((start, end)))
        }
        Err(RangeUnsatisfiableError::Unsatisfiable) => Some(Err(())),
        Err(_) => None,
    }
}

fn if_range_matches(req: &HeaderMap, stored: &HeaderMap) -> bool {
    let Some(cond) = req.get(header::IF_RANGE) else {
        return true;
    };
    if let Some(etag) = stored.get(header::ETAG) {
        let (a, b) = (cond.as_bytes(), etag.as_bytes());
        if a.starts_with(b"\"") {
            return !b.starts_with(b"W/") && a == b;
        }
    }
    stored
        .get(header::LAST_MODIFIED)
        .is_some_and(|lm| lm == cond)
        && conditional::date(stored).is_some()
}

/// Headers of a 206 for `[start, end)` of a `len`-byte body.
pub(crate) fn partial_headers(headers: &mut HeaderMap, start: usize, end: usize, len: usize) {
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
        headers.insert(header::CONTENT_RANGE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
}

/// Headers of a 416 for a `len`-byte body.
pub(crate) fn unsatisfiable_headers(headers: &mut HeaderMap, len: usize) {
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        headers.insert(header::CONTENT_RANGE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(range: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static(range));
        h
    }

    #[test]
    fn single_ranges() {
        let stored = HeaderMap::new();
        assert_eq!(requested(&req("bytes=0-1"), &stored, 11), Some(Ok((0, 2))));
        assert_eq!(requested(&req("bytes=5-"), &stored, 11), Some(Ok((5, 11))));
        assert_eq!(requested(&req("bytes=-3"), &stored, 11), Some(Ok((8, 11))));
        assert_eq!(
            requested(&req("bytes=3-100"), &stored, 11),
            Some(Ok((3, 11)))
        );
        assert_eq!(requested(&req("bytes=20-30"), &stored, 11), Some(Err(())));
        assert_eq!(requested(&req("bytes=0-1,3-4"), &stored, 11), None);
        assert_eq!(requested(&req("items=0-1"), &stored, 11), None);
        assert_eq!(requested(&HeaderMap::new(), &stored, 11), None);
        assert_eq!(requested(&req("bytes=-0"), &stored, 11), Some(Err(())));
        assert_eq!(requested(&req("Bytes=0-0"), &stored, 11), Some(Ok((0, 1))));
        assert_eq!(requested(&req("bytes=5-2"), &stored, 11), None);
        assert_eq!(requested(&req("bytes=x-2"), &stored, 11), None);
        assert_eq!(requested(&req("bytes=-20"), &stored, 11), Some(Ok((0, 11))));
        assert_eq!(requested(&req("bytes=-1"), &stored, 0), None);
        assert_eq!(requested(&req("bytes=0-"), &stored, 0), Some(Err(())));
    }
}
