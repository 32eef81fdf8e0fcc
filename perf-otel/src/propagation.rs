//! W3C trace-context and baggage propagation over `http::HeaderMap`.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// The propagator used when none is configured: W3C `traceparent`/`tracestate` plus W3C `baggage`
/// (the `OTEL_PROPAGATORS` default, `tracecontext,baggage`).
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator;
///
/// let p = perf_otel::default_propagator();
/// let mut fields: Vec<&str> = p.fields().collect();
/// fields.sort_unstable();
/// assert_eq!(fields, ["baggage", "traceparent", "tracestate"]);
/// ```
pub fn default_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

/// Reads propagation fields from request headers. Values that are not visible ASCII are ignored;
/// repeated headers are seen through [`Extractor::get_all`]; a `traceparent` that is not valid
/// W3C Trace Context (see [`valid_traceparent`]) is not seen at all, so the request starts a new
/// trace (the SDK's own parser also accepts e.g. `+`-signed or short hex fields).
#[derive(Debug)]
pub(crate) struct HeaderExtractor<'a>(pub(crate) &'a HeaderMap);

/// The W3C header names, so the usual lookups need not parse the key.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

impl HeaderExtractor<'_> {
    fn value(&self, key: &str) -> Option<&HeaderValue> {
        match key {
            "traceparent" => self.0.get(TRACEPARENT),
            "tracestate" => self.0.get(TRACESTATE),
            "baggage" => self.0.get(BAGGAGE),
            _ => self.0.get(key),
        }
    }
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let v = self.value(key).and_then(|v| v.to_str().ok())?;
        if key.eq_ignore_ascii_case("traceparent") && !valid_traceparent(v) {
            return None;
        }
        Some(v)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        if key.eq_ignore_ascii_case("traceparent") {
            return self.get(key).map(|v| vec![v]);
        }
        let v: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!v.is_empty()).then_some(v)
    }
}

/// W3C Trace Context `traceparent` grammar: `version-traceid-parentid-flags`, lowercase hex,
/// version not `ff`, ids not all zeros; version `00` is exactly 55 characters, later versions may
/// append `-`-separated fields.
pub(crate) fn valid_traceparent(v: &str) -> bool {
    let b = v.as_bytes();
    let hex = |r: &[u8]| {
        r.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let nonzero = |r: &[u8]| r.iter().any(|&c| c != b'0');
    b.len() >= 55
        && hex(&b[0..2])
        && &b[0..2] != b"ff"
        && b[2] == b'-'
        && b[35] == b'-'
        && b[52] == b'-'
        && hex(&b[3..35])
        && nonzero(&b[3..35])
        && hex(&b[36..52])
        && nonzero(&b[36..52])
        && hex(&b[53..55])
        && if &b[0..2] == b"00" {
            b.len() == 55
        } else {
            b.len() == 55 || b[55] == b'-'
        }
}

/// Writes propagation fields into headers; invalid names or values are skipped, never panic.
#[derive(Debug)]
pub(crate) struct HeaderInjector<'a>(pub(crate) &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(name) = HeaderName::from_bytes(key.as_bytes()) else {
            return;
        };
        if value.is_empty() {
            // An empty list (no `tracestate` members, no baggage) is not sent as an empty field.
            self.0.remove(name);
            return;
        }
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
    }
}

/// Any propagator the layers can share.
pub(crate) type SharedPropagator = std::sync::Arc<dyn TextMapPropagator + Send + Sync>;
