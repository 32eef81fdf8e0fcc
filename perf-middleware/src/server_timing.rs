//! The `Server-Timing` response header (W3C Server Timing).
//!
//! Every layer of the family appends its own value with [`append`] (`total` from the timing
//! layer, `cache` from the cache, `budget` from the budget layer, `db` for the queries) and is
//! switched on with the same [`ServerTiming`] setting; browsers merge all `Server-Timing` field
//! lines.
//!
//! ```
//! use std::time::Duration;
//! use perf_middleware::server_timing;
//!
//! let mut headers = http::HeaderMap::new();
//! server_timing::append(&mut headers, &[("cache", Some(Duration::from_micros(1500)), Some("hit"))]);
//! assert_eq!(headers["server-timing"], r#"cache;dur=1.50;desc="hit""#);
//! ```

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// The `Server-Timing` header name.
pub const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

type Predicate = dyn Fn(&Method, &Uri, &HeaderMap) -> bool + Send + Sync;

/// When a layer of the family adds its `Server-Timing` value: the one switch type every layer's
/// builder takes (`.server_timing(ServerTiming::Always)`). Defaults to [`ServerTiming::Off`]:
/// timings can reveal infrastructure details, so send them only where callers are trusted.
#[derive(Clone, Default)]
pub enum ServerTiming {
    /// Never.
    #[default]
    Off,
    /// On every response.
    Always,
    /// When the predicate returns `true` for the request.
    When(Arc<Predicate>),
}

impl ServerTiming {
    /// Enabled when the predicate returns `true` for the request's method, URI and headers.
    pub fn when(f: impl Fn(&Method, &Uri, &HeaderMap) -> bool + Send + Sync + 'static) -> Self {
        ServerTiming::When(Arc::new(f))
    }

    /// Whether the value is ever added (not [`ServerTiming::Off`]).
    pub fn is_enabled(&self) -> bool {
        !matches!(self, ServerTiming::Off)
    }

    /// Enabled when the request carries the header `name` (any value), e.g. `x-server-timing`.
    pub fn when_header(name: HeaderName) -> Self {
        Self::when(move |_, _, h| h.contains_key(&name))
    }

    /// Whether a request with this method, URI and headers gets the value.
    pub fn wants(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
        match self {
            ServerTiming::Off => false,
            ServerTiming::Always => true,
            ServerTiming::When(f) => f(method, uri, headers),
        }
    }
}

impl std::fmt::Debug for ServerTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerTiming::Off => f.write_str("Off"),
            ServerTiming::Always => f.write_str("Always"),
            ServerTiming::When(_) => f.write_str("When(..)"),
        }
    }
}

/// Appends one `Server-Timing` value made of `(name, dur, desc)` metrics.
///
/// `name` must be an HTTP token (metrics with other names are skipped); `dur` is written in
/// milliseconds with two decimals (rounded half up); `desc` is written as a quoted string with
/// `"` and `\` escaped.
pub fn append(headers: &mut HeaderMap, metrics: &[(&str, Option<Duration>, Option<&str>)]) {
    let mut out = String::with_capacity(32 * metrics.len());
    for (name, dur, desc) in metrics {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(name);
        if let Some(d) = dur {
            push_dur(&mut out, *d);
        }
        if let Some(desc) = desc {
            out.push_str(";desc=\"");
            for c in desc.chars().filter(|c| !c.is_control()) {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    if out.is_empty() {
        return;
    }
    push_value(headers, out);
}

/// Writes `;dur=` and `d` in milliseconds with two decimals, rounded half up.
fn push_dur(out: &mut String, d: Duration) {
    use std::fmt::Write as _;
    let hundredths = (d.as_nanos() + 5_000) / 10_000;
    let _ = write!(out, ";dur={}.{:02}", hundredths / 100, hundredths % 100);
}

/// Moves `value` into a header value (no copy) and appends it.
fn push_value(headers: &mut HeaderMap, value: String) {
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        headers.append(SERVER_TIMING, v);
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_escapes() {
        let mut h = HeaderMap::new();
        append(
            &mut h,
            &[
                ("total", Some(Duration::from_micros(12_345)), None),
                ("bad name", Some(Duration::ZERO), None),
                ("db", None, Some("7 \"queries\"")),
            ],
        );
        append(&mut h, &[("app", Some(Duration::from_millis(2)), None)]);
        let all: Vec<_> = h.get_all(SERVER_TIMING).iter().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], r#"total;dur=12.35, db;desc="7 \"queries\"""#);
        assert_eq!(all[1], "app;dur=2.00");
    }

    #[test]
    fn durations_round_half_up_to_hundredths_of_a_millisecond() {
        let fmt = |d| {
            let mut s = String::new();
            push_dur(&mut s, d);
            s
        };
        assert_eq!(fmt(Duration::ZERO), ";dur=0.00");
        assert_eq!(fmt(Duration::from_nanos(4_999)), ";dur=0.00");
        assert_eq!(fmt(Duration::from_nanos(5_000)), ";dur=0.01");
        assert_eq!(fmt(Duration::from_micros(999_996)), ";dur=1000.00");
        assert_eq!(
            fmt(Duration::from_secs(3) + Duration::from_micros(70)),
            ";dur=3000.07"
        );
    }

    #[test]
    fn header_predicate() {
        let st = ServerTiming::when_header(HeaderName::from_static("x-timing"));
        let mut h = HeaderMap::new();
        assert!(!st.wants(&Method::GET, &Uri::from_static("/"), &h));
        h.insert("x-timing", HeaderValue::from_static("1"));
        assert!(st.wants(&Method::GET, &Uri::from_static("/"), &h));
    }
}
