//! Parsing of `Cache-Control`-style directive lists, `Age`, and HTTP dates (RFC 9111 §5, RFC 9110 §5.6).
//!
//! Directive names are matched case-insensitively, unknown directives are ignored, commas inside quoted
//! strings do not split, and when a directive repeats the first occurrence wins. A directive whose value
//! is present but not a valid `delta-seconds` is recorded as [`Delta::Invalid`], which callers treat as
//! "already stale" (RFC 9111 §4.2.1).

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{AGE, HeaderName};

/// Largest delta-seconds value; larger values clamp to it (RFC 9111 §1.2.2).
pub(crate) const DELTA_MAX: u64 = 1 << 31;

/// A parsed `delta-seconds` directive argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delta {
    /// A valid number of seconds (clamped to 2^31).
    Secs(u64),
    /// Present but unparsable: treat the response as stale.
    Invalid,
}

impl Delta {
    fn parse(value: Option<&str>) -> Self {
        let Some(raw) = value else {
            return Self::Invalid;
        };
        let raw = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw);
        parse_delta_seconds(raw).map_or(Self::Invalid, Self::Secs)
    }

    /// The value in seconds, with `Invalid` mapped to zero.
    pub(crate) fn secs(self) -> u64 {
        match self {
            Self::Secs(s) => s,
            Self::Invalid => 0,
        }
    }
}

/// Parses `1*DIGIT`, clamping to [`DELTA_MAX`].
pub(crate) fn parse_delta_seconds(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.parse::<u64>().map_or(DELTA_MAX, |v| v.min(DELTA_MAX)))
}

/// One directive: lower-cased name and its (unquoted) argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
}

/// Splits every line of `name` in `headers` into directives.
pub(crate) fn parse_list(headers: &HeaderMap, name: &HeaderName) -> Vec<Directive> {
    let mut out = Vec::new();
    for line in headers.get_all(name) {
        let Ok(line) = line.to_str() else { continue };
        for item in quoted_items(line, b',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            };
            // `max-age =3600` is not a valid directive name; keep it verbatim so it never matches.
            let value = value.map(|v| {
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map_or_else(|| v.to_owned(), str::to_owned)
            });
            out.push(Directive {
                name: name.to_ascii_lowercase(),
                value,
            });
        }
    }
    out
}

/// The items between `sep`s outside double-quoted strings (honouring `\` escapes), without
/// allocating. `sep` must be ASCII.
pub(crate) fn quoted_items(line: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = line.as_bytes();
    let (mut start, mut at, mut quoted, mut escaped, mut done) = (0, 0, false, false, false);
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while let Some(&b) = bytes.get(at) {
            at += 1;
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b if b == sep && !quoted => {
                    let item = line.get(start..at - 1);
                    start = at;
                    return item;
                }
                _ => {}
            }
        }
        done = true;
        line.get(start..)
    })
}

fn field_names(value: Option<&str>) -> Vec<HeaderName> {
    value
        .map(|v| {
            v.split(',')
                .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Response directives relevant to a shared cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseDirectives {
    pub(crate) max_age: Option<Delta>,
    pub(crate) s_maxage: Option<Delta>,
    pub(crate) no_store: bool,
    /// Unqualified `no-cache`.
    pub(crate) no_cache: bool,
    /// Fields named by a qualified `no-cache="..."`.
    pub(crate) no_cache_fields: Vec<HeaderName>,
    /// Unqualified `private`.
    pub(crate) private: bool,
    /// Fields named by a qualified `private="..."`.
    pub(crate) private_fields: Vec<HeaderName>,
    pub(crate) public: bool,
    pub(crate) must_revalidate: bool,
    pub(crate) proxy_revalidate: bool,
    pub(crate) must_understand: bool,
    pub(crate) stale_while_revalidate: Option<u64>,
    pub(crate) stale_if_error: Option<u64>,
}

impl ResponseDirectives {
    /// Parses every `name` line (e.g. `Cache-Control`).
    pub(crate) fn parse(headers: &HeaderMap, name: &HeaderName) -> Self {
        let mut d = Self::default();
        for Directive { name, value } in parse_list(headers, name) {
            let v = value.as_deref();
            match name.as_str() {
                "max-age" if d.max_age.is_none() => d.max_age = Some(Delta::parse(v)),
                "s-maxage" if d.s_maxage.is_none() => d.s_maxage = Some(Delta::parse(v)),
                "no-store" => d.no_store = true,
                "no-cache" if v.is_some() => d.no_cache_fields.extend(field_names(v)),
                "no-cache" => d.no_cache = true,
                "private" if v.is_some() => d.private_fields.extend(field_names(v)),
                "private" => d.private = true,
                "public" => d.public = true,
                "must-revalidate" => d.must_revalidate = true,
                "proxy-revalidate" => d.proxy_revalidate = true,
                "must-understand" => d.must_understand = true,
                "stale-while-revalidate" if d.stale_while_revalidate.is_none() => {
                    d.stale_while_revalidate = v.and_then(parse_delta_seconds);
                }
                "stale-if-error" if d.stale_if_error.is_none() => {
                    d.stale_if_error = v.and_then(parse_delta_seconds);
                }
                _ => {}
            }
        }
        d
    }

    /// Whether stale reuse is forbidden for a shared cache (RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10).
    pub(crate) fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some() || self.no_cache
    }
}

/// Request directives (RFC 9111 §5.2.1), plus `Pragma: no-cache` when `Cache-Control` is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    pub(crate) no_cache: bool,
    pub(crate) no_store: bool,
    pub(crate) max_age: Option<u64>,
    /// `Some(None)` is a bare `max-stale` (any staleness).
    pub(crate) max_stale: Option<Option<u64>>,
    pub(crate) min_fresh: Option<u64>,
    pub(crate) only_if_cached: bool,
}

impl RequestDirectives {
    /// Parses the request's `Cache-Control` (and `Pragma`).
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut d = Self::default();
        let list = parse_list(headers, &http::header::CACHE_CONTROL);
        if list.is_empty() {
            d.no_cache = parse_list(headers, &http::header::PRAGMA)
                .iter()
                .any(|p| p.name == "no-cache");
        }
        for Directive { name, value } in list {
            let v = value.as_deref();
            match name.as_str() {
                "no-cache" => d.no_cache = true,
                "no-store" => d.no_store = true,
                // An invalid request max-age is ignored rather than honoured as 0.
                "max-age" if d.max_age.is_none() => d.max_age = v.and_then(parse_delta_seconds),
                "max-stale" if d.max_stale.is_none() => {
                    d.max_stale = Some(v.and_then(parse_delta_seconds))
                }
                "min-fresh" if d.min_fresh.is_none() => {
                    d.min_fresh = v.and_then(parse_delta_seconds)
                }
                "only-if-cached" => d.only_if_cached = true,
                _ => {}
            }
        }
        d
    }
}

/// Parses `Age`. `None` when absent; `Some(Delta::Invalid)` when it cannot be trusted: not digits, more
/// than one field line, or a comma-space list as produced by joining several lines.
pub(crate) fn parse_age(headers: &HeaderMap) -> Option<Delta> {
    let mut lines = headers.get_all(AGE).iter();
    let first = lines.next()?;
    if lines.next().is_some() {
        return Some(Delta::Invalid);
    }
    let Ok(value) = first.to_str() else {
        return Some(Delta::Invalid);
    };
    if value.contains(", ") {
        return Some(Delta::Invalid);
    }
    let head = value.split(',').next().unwrap_or_default().trim();
    Some(parse_delta_seconds(head).map_or(Delta::Invalid, Delta::Secs))
}

/// Parses an HTTP date field (IMF-fixdate, RFC 850 or asctime). Several lines or a bad value give `Err`.
pub(crate) fn parse_date(headers: &HeaderMap, name: &HeaderName) -> Option<Result<SystemTime, ()>> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?;
    if lines.next().is_some() {
        return Some(Err(()));
    }
    Some(
        first
            .to_str()
            .map_err(drop)
            .and_then(|v| httpdate::parse_http_date(v.trim()).map_err(drop)),
    )
}

/// `a - b`, saturating at zero.
pub(crate) fn since(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CACHE_CONTROL, HeaderValue};

    fn headers(name: &'static str, lines: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(name, HeaderValue::from_static(l));
        }
        h
    }

    #[test]
    fn directives_are_case_insensitive_and_first_wins() {
        let h = headers("cache-control", &["MaX-aGe=3600, max-age=1", "No-Cache"]);
        let d = ResponseDirectives::parse(&h, &CACHE_CONTROL);
        assert_eq!(d.max_age, Some(Delta::Secs(3600)));
        assert!(d.no_cache);
    }

    #[test]
    fn quoted_commas_do_not_split_and_bad_values_are_invalid() {
        let h = headers("cache-control", &[r#"extension="max-age=3600", max-age=1"#]);
        assert_eq!(
            ResponseDirectives::parse(&h, &CACHE_CONTROL).max_age,
            Some(Delta::Secs(1))
        );
        for bad in ["max-age='3600'", "max-age=-1", "max-age=3600.0", "max-age"] {
            let h = headers("cache-control", &[bad]);
            assert_eq!(
                ResponseDirectives::parse(&h, &CACHE_CONTROL).max_age,
                Some(Delta::Invalid),
                "{bad}"
            );
        }
        let h = headers("cache-control", &["max-age=99999999999"]);
        assert_eq!(
            ResponseDirectives::parse(&h, &CACHE_CONTROL).max_age,
            Some(Delta::Secs(DELTA_MAX))
        );
    }

    #[test]
    fn qualified_no_cache_and_private_name_fields() {
        let h = headers(
            "cache-control",
            &[r#"no-cache="Set-Cookie, X-A", private="x-b", max-age=5"#],
        );
        let d = ResponseDirectives::parse(&h, &CACHE_CONTROL);
        assert!(!d.no_cache && !d.private);
        assert_eq!(d.no_cache_fields.len(), 2);
        assert_eq!(d.private_fields, vec![HeaderName::from_static("x-b")]);
    }

    #[test]
    fn age_rules() {
        assert_eq!(
            parse_age(&headers("age", &["0,7200"])),
            Some(Delta::Secs(0))
        );
        for stale in [
            &["7200,0"][..],
            &["0, 0"],
            &["0", "0"],
            &["abc"],
            &["-1"],
            &["1.0"],
            &["7;x=1"],
        ] {
            let age = parse_age(&headers("age", stale));
            assert!(
                matches!(age, Some(Delta::Invalid | Delta::Secs(7200))),
                "{stale:?}"
            );
        }
        assert_eq!(parse_age(&HeaderMap::new()), None);
    }

    #[test]
    fn request_directives_and_pragma() {
        let h = headers("pragma", &["no-cache"]);
        assert!(RequestDirectives::parse(&h).no_cache);
        let h = headers("cache-control", &["max-stale, min-fresh=5, only-if-cached"]);
        let d = RequestDirectives::parse(&h);
        assert_eq!(
            (d.max_stale, d.min_fresh, d.only_if_cached),
            (Some(None), Some(5), true)
        );
    }
}
