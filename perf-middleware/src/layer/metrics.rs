//! Metric names, label keys and the metric handles of one label set.
//!
//! Names and label keys are the OpenTelemetry semantic-convention ones, taken from
//! `opentelemetry-semantic-conventions`; the Prometheus exporter turns `http.server.request.duration`
//! into `http_server_request_duration_seconds`. Family metrics that are not semantic conventions
//! start with `perf.`.

use std::sync::OnceLock;

use metrics::{Gauge, Histogram, Label, Unit};
use opentelemetry_semantic_conventions::{attribute, metric};

use super::registry::SeriesKey;
use crate::{KnownMethod, Scheme};

/// `http.server.request.duration` — histogram, seconds (Prometheus:
/// `http_server_request_duration_seconds`).
pub const REQUEST_DURATION: &str = metric::HTTP_SERVER_REQUEST_DURATION;
/// `http.server.active_requests` — gauge of requests in flight (Prometheus:
/// `http_server_active_requests`).
pub const ACTIVE_REQUESTS: &str = metric::HTTP_SERVER_ACTIVE_REQUESTS;
/// `http.server.request.body.size` — histogram, bytes (Prometheus:
/// `http_server_request_body_size_bytes`).
pub const REQUEST_BODY_SIZE: &str = metric::HTTP_SERVER_REQUEST_BODY_SIZE;
/// `http.server.response.body.size` — histogram, bytes (Prometheus:
/// `http_server_response_body_size_bytes`).
pub const RESPONSE_BODY_SIZE: &str = metric::HTTP_SERVER_RESPONSE_BODY_SIZE;
/// `perf.http.server.time_to_headers` — histogram, seconds, opt-in
/// (Prometheus: `perf_http_server_time_to_headers_seconds`). Not an OpenTelemetry name.
pub const TIME_TO_HEADERS: &str = "perf.http.server.time_to_headers";

/// Label key `http.request.method` (Prometheus: `http_request_method`).
pub const LABEL_METHOD: &str = attribute::HTTP_REQUEST_METHOD;
/// Label key `http.route` (Prometheus: `http_route`).
pub const LABEL_ROUTE: &str = attribute::HTTP_ROUTE;
/// Label key `http.response.status_code` (Prometheus: `http_response_status_code`).
pub const LABEL_STATUS: &str = attribute::HTTP_RESPONSE_STATUS_CODE;
/// Label key `url.scheme` (Prometheus: `url_scheme`).
pub const LABEL_SCHEME: &str = attribute::URL_SCHEME;
/// Label key `error.type` (Prometheus: `error_type`), present only on failed requests.
pub const LABEL_ERROR: &str = attribute::ERROR_TYPE;

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

/// The histogram handles of one label set.
#[derive(Debug, Clone)]
pub(crate) struct Handles {
    pub(crate) duration: Histogram,
    pub(crate) request_size: Histogram,
    pub(crate) response_size: Histogram,
    pub(crate) time_to_headers: Option<Histogram>,
}

/// The metric state shared by every clone of a layer: the active-requests gauges per method and
/// scheme, and how to resolve histogram handles.
#[derive(Debug)]
pub(crate) struct LayerMetrics {
    active: [[OnceLock<Gauge>; 2]; KnownMethod::ALL.len()],
    described: OnceLock<()>,
    time_to_headers: bool,
}

impl LayerMetrics {
    pub(crate) fn new(time_to_headers: bool) -> Self {
        Self {
            active: Default::default(),
            described: OnceLock::new(),
            time_to_headers,
        }
    }

    /// The active-requests gauge of a method and scheme.
    pub(crate) fn active(&self, method: KnownMethod, scheme: Scheme) -> &Gauge {
        let slot = match scheme {
            Scheme::Https => 1,
            _ => 0,
        };
        self.active[method.index()][slot].get_or_init(|| {
            self.described.get_or_init(describe);
            metrics::gauge!(
                ACTIVE_REQUESTS,
                LABEL_METHOD => method.as_str(),
                LABEL_SCHEME => scheme.as_str(),
            )
        })
    }

    /// Resolves the handles of a label set in the recorder (allocates the labels).
    pub(crate) fn resolve(&self, route: &str, key: SeriesKey) -> Handles {
        self.described.get_or_init(describe);
        let mut labels = vec![
            Label::new(LABEL_METHOD, key.method.as_str()),
            Label::new(LABEL_ROUTE, route.to_owned()),
            Label::new(LABEL_SCHEME, key.scheme.as_str()),
        ];
        if key.status != 0 {
            labels.push(Label::new(LABEL_STATUS, key.status.to_string()));
        }
        match key.error {
            Some(outcome) => labels.push(Label::new(LABEL_ERROR, outcome.as_str())),
            None if key.status >= 500 => {
                labels.push(Label::new(LABEL_ERROR, key.status.to_string()));
            }
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
    fn a_5xx_gets_error_type_and_a_2xx_does_not() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let m = LayerMetrics::new(false);
            let ok = SeriesKey {
                method: KnownMethod::Get,
                scheme: Scheme::Http,
                status: 200,
                error: None,
            };
            let h = m.resolve("/a/{id}", ok);
            for _ in 0..3 {
                h.duration.record(0.5);
            }
            m.resolve("/a/{id}", SeriesKey { status: 503, ..ok })
                .duration
                .record(1.0);
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
