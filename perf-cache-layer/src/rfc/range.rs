//! Single byte-range requests answered from a complete stored response (RFC 9110 §14).
//!
//! Only a single `bytes=` range is served as a 206; anything else (several ranges, other units,
//! syntax errors, an `If-Range` that does not match) gets the full 200, which RFC 9110 permits.

use http::header::{self, HeaderMap, HeaderValue};

use super::conditional;

/// The byte range `[start, end)` to serve, `Err(())` when unsatisfiable, `None` for the full body.
pub(crate) fn requested(
    req: &HeaderMap,
    stored: &HeaderMap,
    len: usize,
) -> Option<Result<(usize, usize), ()>> {
    let spec = req.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = spec.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || !if_range_matches(req, stored) {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: usize = last.parse().ok()?;
        (suffix > 0).then(|| (len.saturating_sub(suffix), len))
    } else {
        let start: usize = first.parse().ok()?;
        let end = if last.is_empty() {
            len
        } else {
            last.parse::<usize>().ok()?.saturating_add(1).min(len)
        };
        if end <= start && !last.is_empty() && start < len {
            return None;
        }
        (start < len).then_some((start, end))
    };
    Some(range.ok_or(()))
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
    }
}
