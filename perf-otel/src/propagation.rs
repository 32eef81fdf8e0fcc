//! W3C trace-context and baggage propagation over `http::HeaderMap`.

use http::HeaderMap;
use http::header::HeaderName;
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

/// Reads propagation fields from request headers through `opentelemetry-http`'s extractor, with
/// one stricter rule: a `traceparent` that is not valid W3C Trace Context (see
/// [`valid_traceparent`]) is not seen at all, so the request starts a new trace (the SDK's own
/// parser also accepts e.g. `+`-signed or short hex fields).
///
/// Keys that are one of `names` (the propagator's fields, parsed once when the layer was built)
/// are looked up by that [`HeaderName`] rather than parsed from the key on every request.
pub(crate) struct HeaderExtractor<'a> {
    inner: opentelemetry_http::HeaderExtractor<'a>,
    names: &'a [HeaderName],
}

impl<'a> HeaderExtractor<'a> {
    pub(crate) fn new(headers: &'a HeaderMap, names: &'a [HeaderName]) -> Self {
        Self {
            inner: opentelemetry_http::HeaderExtractor(headers),
            names,
        }
    }

    /// The first value of `key`, as `opentelemetry-http` reads it.
    fn first(&self, key: &str) -> Option<&str> {
        match self.names.iter().find(|name| name.as_str() == key) {
            Some(name) => self.inner.0.get(name).and_then(|v| v.to_str().ok()),
            None => self.inner.get(key),
        }
    }
}

fn is_traceparent(key: &str) -> bool {
    key.eq_ignore_ascii_case("traceparent")
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.first(key)
            .filter(|v| !is_traceparent(key) || valid_traceparent(v))
    }

    fn keys(&self) -> Vec<&str> {
        self.inner.keys()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        if is_traceparent(key) {
            return self.get(key).map(|v| vec![v]);
        }
        self.inner.get_all(key).filter(|v| !v.is_empty())
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

/// Writes propagation fields into headers through `opentelemetry-http`'s injector, except that an
/// empty value (no `tracestate` members, no baggage) removes the field instead of sending it empty.
pub(crate) struct HeaderInjector<'a>(opentelemetry_http::HeaderInjector<'a>);

impl<'a> HeaderInjector<'a> {
    pub(crate) fn new(headers: &'a mut HeaderMap) -> Self {
        Self(opentelemetry_http::HeaderInjector(headers))
    }
}

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            if let Ok(name) = HeaderName::from_bytes(key.as_bytes()) {
                self.0.0.remove(name);
            }
            return;
        }
        self.0.set(key, value);
    }
}

/// Any propagator the layers can share.
pub(crate) type SharedPropagator = std::sync::Arc<dyn TextMapPropagator + Send + Sync>;
