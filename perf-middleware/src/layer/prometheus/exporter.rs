//! [`Exporter`]: the settings of the Prometheus exporter, and [`install`].

use std::sync::Mutex;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::{InstallError, InstallErrorKind};
use crate::layer::metrics::{
    DEFAULT_BODY_SIZE_BUCKETS, DEFAULT_DURATION_BUCKETS, REQUEST_BODY_SIZE, REQUEST_DURATION,
    RESPONSE_BODY_SIZE, TIME_TO_HEADERS, describe,
};

/// How often the upkeep thread drains histogram samples. Defaults to 5 s.
pub const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The exporter this module installed, with its settings. `metrics` has one global recorder per
/// process, so this is global too.
static INSTALLED: Mutex<Option<(Exporter, PrometheusHandle)>> = Mutex::new(None);

/// Settings for [`Exporter::install`]. Start from [`Exporter::new`]. Two `Exporter`s are equal
/// when every setting is.
#[derive(Debug, Clone, PartialEq)]
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
    pub fn add_global_label(mut self, key: &str, value: &str) -> Self {
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
    /// [`InstallErrorKind::InvalidBuckets`] for bucket lists that are empty, not strictly
    /// increasing or not finite; [`InstallErrorKind::Build`] when the exporter rejects them.
    pub fn configure(&self, builder: PrometheusBuilder) -> Result<PrometheusBuilder, InstallError> {
        self.check_buckets("duration", &self.duration_buckets)?;
        self.check_buckets("body size", &self.body_size_buckets)?;
        let buckets = [
            (REQUEST_DURATION, &self.duration_buckets),
            (TIME_TO_HEADERS, &self.duration_buckets),
            (REQUEST_BODY_SIZE, &self.body_size_buckets),
            (RESPONSE_BODY_SIZE, &self.body_size_buckets),
        ];
        let mut b = builder.with_recommended_naming(true);
        for (name, bounds) in buckets {
            b = b
                .set_buckets_for_metric(Matcher::Full(name.into()), bounds)
                .map_err(|e| InstallError::build(e, self.clone()))?;
        }
        #[cfg(feature = "db")]
        for (name, bounds) in crate::db::metrics::BUCKETS {
            b = b
                .set_buckets_for_metric(Matcher::Full((*name).into()), bounds)
                .map_err(|e| InstallError::build(e, self.clone()))?;
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
    /// Install once, at startup. Called again with equal settings, it returns the handle
    /// installed first (so tests can each build their own router); see [`install`] for the
    /// usual call.
    ///
    /// # Errors
    ///
    /// [`InstallErrorKind::AlreadyInstalled`] when this module installed an exporter with
    /// different settings; [`InstallErrorKind::OtherRecorder`] when a recorder that this module
    /// did not install is the global one; [`InstallErrorKind::InvalidBuckets`] for bad bucket
    /// lists. The error hands these settings back.
    pub fn install(self) -> Result<PrometheusHandle, InstallError> {
        let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((settings, handle)) = &*installed {
            if *settings != self {
                return Err(InstallError::new(InstallErrorKind::AlreadyInstalled, self));
            }
            return Ok(handle.clone());
        }
        let recorder = self.configure(PrometheusBuilder::new())?.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            return Err(InstallError::new(InstallErrorKind::OtherRecorder, self));
        }
        describe();
        spawn_upkeep(handle.clone(), self.upkeep_interval);
        *installed = Some((self, handle.clone()));
        Ok(handle)
    }
}

/// Drains histogram samples every `interval`, so they never pile up when nobody scrapes.
fn spawn_upkeep(handle: PrometheusHandle, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("perf-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the metrics upkeep thread; histograms drain only when scraped");
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

impl Exporter {
    fn check_buckets(&self, what: &'static str, b: &[f64]) -> Result<(), InstallError> {
        if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|x| !x.is_finite()) {
            return Err(InstallError::invalid_buckets(what, self.clone()));
        }
        Ok(())
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
