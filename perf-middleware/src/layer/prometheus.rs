//! Prometheus exporter setup and the `/metrics` service (feature `prometheus`).
//!
//! [`install`] installs `metrics-exporter-prometheus` as the global recorder with the buckets
//! this crate's histograms need, OpenTelemetry-style names rendered the Prometheus way
//! (`http_server_request_duration_seconds`), and an upkeep thread so histogram samples never
//! pile up when nobody scrapes. Calling it again returns the same handle instead of panicking,
//! so every test can build its own router.
//!
//! Recording a histogram sample in this exporter costs a few tens of nanoseconds (a timestamp,
//! a generation counter, a lock-free queue push); the upkeep thread later folds the samples into
//! the buckets. The layer records one sample per histogram per request (two by default:
//! duration and response body size; request body size when declared).
//!
//! ```
//! use axum::{Router, routing::get};
//! use perf_middleware::{PerfLayer, prometheus};
//!
//! let handle = prometheus::install().expect("no other metrics recorder is installed");
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "hi" }))
//!     .layer(PerfLayer::new())
//!     .route_service("/metrics", prometheus::MetricsService::new(handle));
//! # let _ = app;
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response, header};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tower_service::Service;

use super::metrics::{
    DEFAULT_BODY_SIZE_BUCKETS, DEFAULT_DURATION_BUCKETS, REQUEST_BODY_SIZE, REQUEST_DURATION,
    RESPONSE_BODY_SIZE, TIME_TO_HEADERS, describe,
};

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the upkeep thread drains histogram samples. Defaults to 5 s.
pub const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static INSTALLED: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// Settings for [`Exporter::install`]. Start from [`Exporter::new`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Exporter {
    duration_buckets: Vec<f64>,
    body_size_buckets: Vec<f64>,
    global_labels: Vec<(String, String)>,
    upkeep_interval: Duration,
    idle_timeout: Option<Duration>,
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Exporter {
    /// Defaults: OpenTelemetry advisory duration buckets, powers-of-4 body-size buckets, upkeep
    /// every 5 s, no idle timeout, no global labels.
    pub fn new() -> Self {
        Self {
            duration_buckets: DEFAULT_DURATION_BUCKETS.to_vec(),
            body_size_buckets: DEFAULT_BODY_SIZE_BUCKETS.to_vec(),
            global_labels: Vec::new(),
            upkeep_interval: DEFAULT_UPKEEP_INTERVAL,
            idle_timeout: None,
        }
    }

    /// Bucket boundaries, in seconds, for the duration histograms.
    pub fn duration_buckets(mut self, buckets: &[f64]) -> Self {
        self.duration_buckets = buckets.to_vec();
        self
    }

    /// Bucket boundaries, in bytes, for the body-size histograms.
    pub fn body_size_buckets(mut self, buckets: &[f64]) -> Self {
        self.body_size_buckets = buckets.to_vec();
        self
    }

    /// Adds a label to every series (e.g. `service="checkout"`), instead of name prefixes.
    pub fn global_label(mut self, key: &str, value: &str) -> Self {
        self.global_labels.push((key.to_owned(), value.to_owned()));
        self
    }

    /// How often histogram samples are drained when nobody scrapes. Defaults to 5 s.
    pub fn upkeep_interval(mut self, interval: Duration) -> Self {
        self.upkeep_interval = interval;
        self
    }

    /// Drops series not updated for this long, bounding memory for rare label sets.
    ///
    /// Off by default: this crate's label sets are bounded (route templates, one unmatched
    /// value), so series cannot pile up, and an idle series that disappears from `/metrics`
    /// makes `rate()` over it jump. It is not what costs a clock reading per histogram sample:
    /// the exporter timestamps every sample (for its summaries' windows) either way.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Applies these settings to a `PrometheusBuilder`, for callers that install the exporter
    /// themselves (with its HTTP listener, say).
    ///
    /// # Errors
    ///
    /// Bucket lists that are empty or not strictly increasing.
    pub fn configure(&self, builder: PrometheusBuilder) -> Result<PrometheusBuilder, InstallError> {
        check_buckets("duration", &self.duration_buckets)?;
        check_buckets("body size", &self.body_size_buckets)?;
        let mut b = builder.with_recommended_naming(true);
        for name in [REQUEST_DURATION, TIME_TO_HEADERS] {
            b = b
                .set_buckets_for_metric(Matcher::Full(name.into()), &self.duration_buckets)
                .map_err(InstallError::Build)?;
        }
        for name in [REQUEST_BODY_SIZE, RESPONSE_BODY_SIZE] {
            b = b
                .set_buckets_for_metric(Matcher::Full(name.into()), &self.body_size_buckets)
                .map_err(InstallError::Build)?;
        }
        for (k, v) in &self.global_labels {
            b = b.add_global_label(k, v);
        }
        if let Some(t) = self.idle_timeout {
            b = b.idle_timeout(metrics_util::MetricKindMask::ALL, Some(t));
        }
        Ok(b)
    }

    /// Installs the exporter as the global `metrics` recorder and starts its upkeep thread.
    ///
    /// Returns the handle of the recorder this module installed earlier, if any, so it can be
    /// called once per test or per router.
    ///
    /// # Errors
    ///
    /// [`InstallError::OtherRecorder`] when a recorder that this module did not install is
    /// already the global one; [`InstallError::InvalidBuckets`] for bad bucket lists.
    pub fn install(&self) -> Result<PrometheusHandle, InstallError> {
        if let Some(h) = INSTALLED.get() {
            return Ok(h.clone());
        }
        let _guard = INSTALL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = INSTALLED.get() {
            return Ok(h.clone());
        }
        let recorder = self.configure(PrometheusBuilder::new())?.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| InstallError::OtherRecorder)?;
        describe();
        let upkeep = handle.clone();
        let interval = self.upkeep_interval;
        let spawned = std::thread::Builder::new()
            .name("perf-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the metrics upkeep thread; histograms drain only when scraped");
        }
        Ok(INSTALLED.get_or_init(|| handle).clone())
    }
}

/// [`Exporter::new`]`().install()`.
///
/// # Errors
///
/// See [`Exporter::install`].
pub fn install() -> Result<PrometheusHandle, InstallError> {
    Exporter::new().install()
}

fn check_buckets(what: &'static str, b: &[f64]) -> Result<(), InstallError> {
    if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|x| !x.is_finite()) {
        return Err(InstallError::InvalidBuckets { what });
    }
    Ok(())
}

/// Why the exporter could not be installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// Another `metrics` recorder is already installed globally.
    OtherRecorder,
    /// A bucket list is empty, not strictly increasing, or not finite.
    InvalidBuckets {
        /// Which list.
        what: &'static str,
    },
    /// The exporter builder rejected the settings.
    Build(BuildError),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::OtherRecorder => f.write_str(
                "another metrics recorder is already installed: install this exporter first, or use `Exporter::configure` on your own builder",
            ),
            InstallError::InvalidBuckets { what } => {
                write!(f, "{what} buckets must be finite, non-empty and strictly increasing")
            }
            InstallError::Build(e) => write!(f, "prometheus exporter: {e}"),
        }
    }
}

impl std::error::Error for InstallError {}

/// A service answering every request with the Prometheus text rendering of `handle`.
///
/// Mount it with axum's `route_service("/metrics", ..)` or call it from hyper.
#[derive(Debug, Clone)]
pub struct MetricsService {
    handle: PrometheusHandle,
}

impl MetricsService {
    /// Serves `handle`.
    pub fn new(handle: PrometheusHandle) -> Self {
        Self { handle }
    }
}

impl<B> Service<Request<B>> for MetricsService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut res = Response::new(self.handle.render());
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_buckets_are_rejected_with_what_to_fix() {
        let e = Exporter::new()
            .duration_buckets(&[0.1, 0.1])
            .configure(PrometheusBuilder::new());
        assert!(e.unwrap_err().to_string().contains("strictly increasing"));
        assert!(
            Exporter::new()
                .body_size_buckets(&[])
                .configure(PrometheusBuilder::new())
                .is_err()
        );
    }
}
