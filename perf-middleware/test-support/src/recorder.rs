//! [`TestRecorder`]: a local `metrics` recorder with running totals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use metrics::LocalRecorderGuard;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A `metrics` recorder for one test, never installed globally.
///
/// `metrics-util`'s `DebuggingRecorder` drains on every snapshot (counters and gauges come
/// back as the change since the last one, histograms as the samples since then); this keeps
/// running totals, so each [`snapshot`](Self::snapshot) shows everything recorded so far.
/// Gauges are totals of their increments and decrements.
///
/// ```
/// use perf_test_support::TestRecorder;
///
/// let recorder = TestRecorder::new();
/// {
///     let _local = recorder.local();
///     metrics::counter!("hits", "route" => "/a").increment(2);
///     metrics::histogram!("latency", "route" => "/a").record(0.5);
/// }
/// let snap = recorder.snapshot();
/// assert_eq!(snap.counter("hits", &[("route", "/a")]), 2);
/// assert_eq!(snap.samples("latency", &[]), [0.5]);
/// ```
#[derive(Debug)]
pub struct TestRecorder {
    recorder: DebuggingRecorder,
    snapshotter: Snapshotter,
    totals: Mutex<BTreeMap<(String, Vec<(String, String)>, u8), SeriesValue>>,
}

/// Everything recorded up to a [`TestRecorder::snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Every series, ordered by name and labels.
    pub series: Vec<Series>,
}

/// One metric with one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric name.
    pub name: String,
    /// The labels, in the order they were given.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: SeriesValue,
}

/// The running total of a series.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    /// A counter.
    Counter(u64),
    /// A gauge: the sum of its increments and decrements.
    Gauge(f64),
    /// A histogram: every sample, in order.
    Histogram(Vec<f64>),
}

impl TestRecorder {
    /// A recorder with nothing recorded.
    pub fn new() -> Self {
        let recorder = DebuggingRecorder::new();
        Self {
            snapshotter: recorder.snapshotter(),
            recorder,
            totals: Mutex::default(),
        }
    }

    /// Makes this the recorder of the current thread until the guard drops (use a
    /// current-thread runtime in async tests).
    pub fn local(&self) -> LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(&self.recorder)
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Snapshot {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let kind = match key.kind() {
                MetricKind::Counter => 0,
                MetricKind::Gauge => 1,
                MetricKind::Histogram => 2,
            };
            let k = key.key();
            let labels = k
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let total = totals
                .entry((k.name().to_owned(), labels, kind))
                .or_insert_with(|| match value {
                    DebugValue::Counter(_) => SeriesValue::Counter(0),
                    DebugValue::Gauge(_) => SeriesValue::Gauge(0.0),
                    DebugValue::Histogram(_) => SeriesValue::Histogram(Vec::new()),
                });
            match (total, value) {
                (SeriesValue::Counter(t), DebugValue::Counter(v)) => *t += v,
                (SeriesValue::Gauge(t), DebugValue::Gauge(v)) => *t += v.into_inner(),
                (SeriesValue::Histogram(t), DebugValue::Histogram(v)) => {
                    t.extend(v.into_iter().map(|x| x.into_inner()));
                }
                _ => unreachable!("a series keeps its kind"),
            }
        }
        Snapshot {
            series: totals
                .iter()
                .map(|((name, labels, _), value)| Series {
                    name: name.clone(),
                    labels: labels.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

impl Default for TestRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Series {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the series carries every label of `labels`.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.label(k) == Some(v))
    }
}

impl Snapshot {
    /// The series of metric `name` that carry every label of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.series
            .iter()
            .filter(move |s| s.name == name && s.has_labels(labels))
    }

    /// The sum of the counters of `name` that carry `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(name, labels)
            .map(|s| match s.value {
                SeriesValue::Counter(v) => v,
                _ => 0,
            })
            .sum()
    }

    /// The sum of the gauges of `name` that carry `labels`.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels)
            .map(|s| match s.value {
                SeriesValue::Gauge(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// The samples of the histograms of `name` that carry `labels`.
    pub fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.matching(name, labels)
            .flat_map(|s| match &s.value {
                SeriesValue::Histogram(v) => v.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The values label `key` takes across the series of `name`.
    pub fn label_values(&self, name: &str, key: &str) -> BTreeSet<String> {
        self.matching(name, &[])
            .filter_map(|s| s.label(key).map(str::to_owned))
            .collect()
    }
}
