//! Metric names, label keys and the per-label-set handle cache.
//!
//! Handles are resolved once per distinct label set (route template × method × status × scheme
//! × error type) and then reused, so the request path does no label allocation and no registry
//! lookup in the exporter. They live in each route's entry (see `registry`); the map here holds
//! the few that find no room there.

use std::hash::Hash;
use std::sync::{OnceLock, RwLock};

use hashbrown::{Equivalent, HashMap};
use metrics::{Gauge, Histogram, Label, Unit};

use crate::route::{METHOD_SLOTS, method_label};

/// `http.server.request.duration` — histogram, seconds (Prometheus:
/// `http_server_request_duration_seconds`).
pub const REQUEST_DURATION: &str = "http.server.request.duration";
/// `http.server.active_requests` — gauge of requests in flight (Prometheus:
/// `http_server_active_requests`).
pub const ACTIVE_REQUESTS: &str = "http.server.active_requests";
/// `http.server.request.body.size` — histogram, bytes (Prometheus:
/// `http_server_request_body_size_bytes`).
pub const REQUEST_BODY_SIZE: &str = "http.server.request.body.size";
/// `http.server.response.body.size` — histogram, bytes (Prometheus:
/// `http_server_response_body_size_bytes`).
pub const RESPONSE_BODY_SIZE: &str = "http.server.response.body.size";
/// `perf.http.server.time_to_headers` — histogram, seconds, opt-in
/// (Prometheus: `perf_http_server_time_to_headers_seconds`). Not an OpenTelemetry name.
pub const TIME_TO_HEADERS: &str = "perf.http.server.time_to_headers";

/// Label key `http.request.method` (Prometheus: `http_request_method`).
pub const LABEL_METHOD: &str = "http.request.method";
/// Label key `http.route` (Prometheus: `http_route`).
pub const LABEL_ROUTE: &str = "http.route";
/// Label key `http.response.status_code` (Prometheus: `http_response_status_code`).
pub const LABEL_STATUS: &str = "http.response.status_code";
/// Label key `url.scheme` (Prometheus: `url_scheme`).
pub const LABEL_SCHEME: &str = "url.scheme";
/// Label key `error.type` (Prometheus: `error_type`), present only on failed requests.
pub const LABEL_ERROR: &str = "error.type";

/// The OpenTelemetry advisory bucket boundaries for `http.server.request.duration`, in seconds.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Default bucket boundaries for the body-size histograms, in bytes: powers of 4 from 64 B to 64 MiB.
pub const DEFAULT_BODY_SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

/// Emits the descriptions (units) of every metric this crate records.
///
/// The Prometheus exporter needs them to add the `_seconds` / `_bytes` suffixes. Called by
/// [`crate::prometheus::install`] and on first use by the layer.
pub fn describe() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Duration of HTTP server requests, to the end of the response body."
    );
    metrics::describe_gauge!(ACTIVE_REQUESTS, "Number of active HTTP server requests.");
    metrics::describe_histogram!(
        REQUEST_BODY_SIZE,
        Unit::Bytes,
        "Size of HTTP server request bodies."
    );
    metrics::describe_histogram!(
        RESPONSE_BODY_SIZE,
        Unit::Bytes,
        "Size of HTTP server response bodies."
    );
    metrics::describe_histogram!(
        TIME_TO_HEADERS,
        Unit::Seconds,
        "Time from request start until the response headers were produced."
    );
}

/// Scheme slots: `http`, `https`.
pub(crate) const SCHEMES: [&str; 2] = ["http", "https"];

/// The low-cardinality `error.type` values this crate emits, besides 5xx status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ErrorKind {
    /// The client went away before the response body ended.
    Cancelled,
    /// The inner service returned an error instead of a response.
    Service,
    /// The response body returned an error.
    Body,
}

impl ErrorKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Service => "service_error",
            ErrorKind::Body => "body_error",
        }
    }
}

/// The label set of one recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LabelSet<'a> {
    pub(crate) route: &'a str,
    pub(crate) method: u8,
    pub(crate) scheme: u8,
    /// 0 when no response was produced.
    pub(crate) status: u16,
    pub(crate) error: Option<ErrorKind>,
}

#[derive(Debug, PartialEq, Eq)]
struct OwnedLabelSet {
    route: Box<str>,
    method: u8,
    scheme: u8,
    status: u16,
    error: Option<ErrorKind>,
}

impl Equivalent<OwnedLabelSet> for LabelSet<'_> {
    fn equivalent(&self, key: &OwnedLabelSet) -> bool {
        self.method == key.method
            && self.status == key.status
            && self.scheme == key.scheme
            && self.error == key.error
            && self.route == &*key.route
    }
}

// `LabelSet` and `OwnedLabelSet` must hash identically for `Equivalent` lookups.
impl Hash for OwnedLabelSet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        LabelSet {
            route: &self.route,
            method: self.method,
            scheme: self.scheme,
            status: self.status,
            error: self.error,
        }
        .hash(state);
    }
}

/// The histogram handles of one label set.
#[derive(Debug, Clone)]
pub(crate) struct Handles {
    pub(crate) duration: Histogram,
    pub(crate) request_size: Histogram,
    pub(crate) response_size: Histogram,
    pub(crate) time_to_headers: Option<Histogram>,
}

impl Handles {
    /// Handles that record nowhere.
    pub(crate) fn detached() -> Self {
        Self {
            duration: Histogram::noop(),
            request_size: Histogram::noop(),
            response_size: Histogram::noop(),
            time_to_headers: None,
        }
    }
}

/// At most this many label sets keep cached handles here, in the overflow map used when a route's
/// own series table is full; beyond it handles are resolved per request (still with bounded
/// labels). Route templates × methods × statuses stay far below it in practice.
const MAX_CACHED: usize = 16_384;

/// Lazily resolved metric handles shared by every clone of a layer.
#[derive(Debug)]
pub(crate) struct HandleCache {
    map: RwLock<HashMap<OwnedLabelSet, Handles, foldhash::fast::RandomState>>,
    active: [[OnceLock<Gauge>; SCHEMES.len()]; METHOD_SLOTS],
    described: OnceLock<()>,
    time_to_headers: bool,
}

impl HandleCache {
    pub(crate) fn new(time_to_headers: bool) -> Self {
        Self {
            map: RwLock::new(HashMap::default()),
            active: Default::default(),
            described: OnceLock::new(),
            time_to_headers,
        }
    }

    pub(crate) fn active(&self, method: u8, scheme: u8) -> &Gauge {
        self.active[usize::from(method)][usize::from(scheme)].get_or_init(|| {
            self.described.get_or_init(describe);
            metrics::gauge!(
                ACTIVE_REQUESTS,
                LABEL_METHOD => method_label(method),
                LABEL_SCHEME => SCHEMES[usize::from(scheme)],
            )
        })
    }

    /// Runs `f` with the handles of `labels`, resolving and caching them on first use. The slow
    /// path, for label sets that found no room in their route's series table.
    pub(crate) fn with<R>(&self, labels: &LabelSet<'_>, f: impl FnOnce(&Handles) -> R) -> R {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = map.get(labels) {
            return f(h);
        }
        let full = map.len() >= MAX_CACHED;
        drop(map);
        let handles = self.resolve(labels);
        if !full {
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            map.entry(OwnedLabelSet {
                route: labels.route.into(),
                method: labels.method,
                scheme: labels.scheme,
                status: labels.status,
                error: labels.error,
            })
            .or_insert_with(|| handles.clone());
        }
        f(&handles)
    }

    /// Resolves the handles of `l` in the recorder (allocates the labels).
    pub(crate) fn resolve(&self, l: &LabelSet<'_>) -> Handles {
        self.described.get_or_init(describe);
        let mut labels = Vec::with_capacity(5);
        labels.push(Label::new(LABEL_METHOD, method_label(l.method)));
        labels.push(Label::new(LABEL_ROUTE, l.route.to_owned()));
        labels.push(Label::new(LABEL_SCHEME, SCHEMES[usize::from(l.scheme)]));
        if l.status != 0 {
            labels.push(Label::new(LABEL_STATUS, l.status.to_string()));
        }
        match l.error {
            Some(kind) => labels.push(Label::new(LABEL_ERROR, kind.as_str())),
            None if l.status >= 500 => labels.push(Label::new(LABEL_ERROR, l.status.to_string())),
            None => {}
        }
        Handles {
            duration: metrics::histogram!(REQUEST_DURATION, labels.iter()),
            request_size: metrics::histogram!(REQUEST_BODY_SIZE, labels.iter()),
            response_size: metrics::histogram!(RESPONSE_BODY_SIZE, labels.iter()),
            time_to_headers: self
                .time_to_headers
                .then(|| metrics::histogram!(TIME_TO_HEADERS, labels.iter())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn handles_are_cached_per_label_set_and_5xx_gets_error_type() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let cache = HandleCache::new(false);
            let ok = LabelSet {
                route: "/a/{id}",
                method: 0,
                scheme: 0,
                status: 200,
                error: None,
            };
            let err = LabelSet { status: 503, ..ok };
            for _ in 0..3 {
                cache.with(&ok, |h| h.duration.record(0.5));
            }
            cache.with(&err, |h| h.duration.record(1.0));
            assert_eq!(cache.map.read().unwrap().len(), 2);
        });
        let snap = snapshotter.snapshot().into_vec();
        let durations: Vec<_> = snap
            .iter()
            .filter(|(k, ..)| k.key().name() == REQUEST_DURATION)
            .collect();
        assert_eq!(durations.len(), 2);
        for (key, _, _, value) in durations {
            let labels: Vec<_> = key.key().labels().map(|l| (l.key(), l.value())).collect();
            let DebugValue::Histogram(v) = value else {
                panic!("not a histogram")
            };
            if labels.contains(&(LABEL_STATUS, "503")) {
                assert!(labels.contains(&(LABEL_ERROR, "503")));
                assert_eq!(v.len(), 1);
            } else {
                assert!(!labels.iter().any(|(k, _)| *k == LABEL_ERROR));
                assert_eq!(v.len(), 3);
            }
        }
    }
}
