//! The budget report: serializable, printable as an aligned table or Markdown, and servable.
//!
//! [`BudgetHandle::report`](crate::BudgetHandle::report) builds it; [`ReportService`] serves it
//! as JSON, or as a text table with `?format=text` (or `Accept: text/plain`). The CI gate reads
//! the JSON.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use perf_budget::{BudgetLayer, BudgetPolicy, ReportService};
//! use tower::{Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let policy = BudgetPolicy::builder()
//!     .add_budget("users", "GET /users", |b| b.p95(Duration::from_millis(200)))
//!     .build()
//!     .unwrap();
//! let (_layer, handle) = BudgetLayer::pair(policy);
//! assert!(handle.report().check().is_ok()); // nothing recorded: nothing failed
//!
//! let mut svc = ReportService::new(handle);
//! let req = http::Request::get("/perf/budgets?format=text").body(()).unwrap();
//! let res = ServiceExt::<http::Request<()>>::ready(&mut svc).await.unwrap().call(req).await.unwrap();
//! assert!(res.body().contains("p95 < 200ms"));
//! # }
//! ```

mod service;
mod since;
mod text;

use crate::LatencyHistogram;
use crate::eval::{State, Status};
use crate::policy::Severity;

pub use service::ReportService;
#[cfg(feature = "axum")]
pub(crate) use service::render;
pub(crate) use since::round;

/// A snapshot of every budget over the current window.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BudgetReport {
    /// Unix time in milliseconds.
    pub generated_at_unix_ms: u64,
    /// The window length in seconds.
    pub window_s: f64,
    /// Slots in the window.
    pub slots: usize,
    /// The Wilson bound's confidence.
    pub confidence: f64,
    /// The instance name, if configured.
    pub instance: Option<String>,
    /// `false` when any error-severity objective fails.
    pub pass: bool,
    /// One entry per budget, `__other__` last.
    pub budgets: Vec<BudgetEntry>,
}

/// One budget in a [`BudgetReport`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BudgetEntry {
    /// The budget's name.
    pub name: String,
    /// `GET /api/users/{id}`.
    pub route: String,
    /// The severity.
    pub severity: Severity,
    /// The worst objective state.
    pub state: State,
    /// Seconds since the last transition, if any.
    pub since_s: Option<f64>,
    /// Requests in the window (including deadline and shed responses).
    pub samples: u64,
    /// Errors in the window.
    pub errors: u64,
    /// Requests cancelled by the client in the window (not in `samples`).
    pub cancelled: u64,
    /// Requests shed in the window.
    pub shed: u64,
    /// Requests since start (cumulative, with `total_errors` and each objective's `total_bad`:
    /// the difference of two reports is the traffic between them, see
    /// [`BudgetReport::since`]).
    pub total_requests: u64,
    /// Errors since start.
    #[cfg_attr(feature = "serde", serde(default))]
    pub total_errors: u64,
    /// Latencies since start: what [`BudgetReport::since`] takes the quantiles of the traffic
    /// between two reports from. In JSON `[[from_us, count], ...]`, the non-empty buckets of the
    /// [`LatencyHistogram`] (at most 705, about 10 KB). Missing from an older server's report:
    /// it reads as empty, and the runs judged on it have no quantiles.
    #[cfg_attr(feature = "serde", serde(default))]
    pub total_latency: LatencyHistogram,
    /// Observed values over the window.
    pub observed: Observed,
    /// One entry per objective.
    pub objectives: Vec<ObjectiveEntry>,
}

/// Observed values over the window (quantiles from the histogram, see `quantile_rel_error`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Observed {
    /// Median in ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile in ms.
    pub p99_ms: Option<f64>,
    /// Errors / samples.
    pub error_rate: f64,
    /// Samples per second over the covered window.
    pub rps: f64,
    /// The bound on the quantiles' relative error.
    pub quantile_rel_error: f64,
}

/// One objective in a [`BudgetEntry`]. Decisions use exact counts, not the histogram.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ObjectiveEntry {
    /// `p95 < 200ms`.
    pub expr: String,
    /// `p95` or `error_rate`.
    pub metric: String,
    /// The allowed miss share.
    pub allowance: f64,
    /// The latency threshold in ms.
    pub threshold_ms: Option<f64>,
    /// The verdict over the window.
    pub status: Status,
    /// The state machine's state.
    pub state: State,
    /// Requests in the window.
    pub samples: u64,
    /// Requests that missed (slow, or errors).
    pub bad: u64,
    /// Requests that missed since start (cumulative).
    #[cfg_attr(feature = "serde", serde(default))]
    pub total_bad: u64,
    /// Misses the allowance permits for `samples`.
    pub allowed: u64,
    /// Samples needed for a verdict.
    pub min_samples: u64,
    /// `bad / samples`.
    pub observed_ratio: f64,
    /// Wilson lower bound of the miss share.
    pub lower_bound: f64,
    /// Burn over the short window.
    pub burn_short: f64,
    /// Burn over the whole window.
    pub burn_long: f64,
}

impl BudgetReport {
    pub(crate) fn new(
        window_s: f64,
        slots: usize,
        confidence: f64,
        instance: Option<String>,
        budgets: Vec<BudgetEntry>,
    ) -> Self {
        let generated_at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut r = Self {
            generated_at_unix_ms,
            window_s,
            slots,
            confidence,
            instance,
            pass: true,
            budgets,
        };
        let pass = r.failures().next().is_none();
        r.pass = pass;
        r
    }

    /// Error-severity objectives that fail: `(budget, objective)`.
    pub fn failures(&self) -> impl Iterator<Item = (&BudgetEntry, &ObjectiveEntry)> {
        self.budgets
            .iter()
            .filter(|b| b.severity == Severity::Error)
            .flat_map(|b| b.objectives.iter().map(move |o| (b, o)))
            .filter(|(_, o)| o.status == Status::Fail)
    }

    /// A budget by name.
    pub fn budget(&self, name: &str) -> Option<&BudgetEntry> {
        self.budgets.iter().find(|b| b.name == name)
    }

    /// `Ok` when no error-severity objective fails, else the report itself.
    ///
    /// # Errors
    ///
    /// The report, when something failed.
    pub fn check(&self) -> Result<(), &Self> {
        if self.pass { Ok(()) } else { Err(self) }
    }

    /// Error-severity objectives without a verdict: fewer samples in the window than their
    /// floor (`min_samples`). The `__other__` entry counts only when it saw requests.
    pub fn unjudged(&self) -> impl Iterator<Item = (&BudgetEntry, &ObjectiveEntry)> {
        self.budgets
            .iter()
            .filter(|b| b.severity == Severity::Error)
            .filter(|b| b.name != crate::OTHER || b.samples > 0)
            .flat_map(|b| b.objectives.iter().map(move |o| (b, o)))
            .filter(|(_, o)| o.status == Status::Insufficient)
    }

    /// Panics unless every error-severity objective was judged and passed: one that fails
    /// panics with the Markdown table, and one without enough samples (`insufficient`) panics
    /// with its floor and the samples seen — no pass without evidence. For tests; the layer
    /// itself never panics.
    ///
    /// The floor is `min_samples` raised to `10 / allowance` (200 for p95, 1,000 for p99 or
    /// `error_rate < 1%`). A test that sends fewer requests lowers it explicitly, with
    /// [`BudgetPolicyBuilder::sample_floor`](crate::BudgetPolicyBuilder::sample_floor).
    #[track_caller]
    pub fn assert_pass(&self) {
        if !self.pass {
            panic!("performance budget failed:\n\n{}", self.to_markdown());
        }
        let unjudged: Vec<String> = self
            .unjudged()
            .map(|(b, o)| {
                format!(
                    "  {} {}: {} samples, the floor is {} ({} missed)",
                    b.name, o.expr, o.samples, o.min_samples, o.bad
                )
            })
            .collect();
        if !unjudged.is_empty() {
            panic!(
                "performance budget not judged: too few samples for a verdict\n{}\nsend at least \
                 the floor, or lower it for tests with BudgetPolicyBuilder::sample_floor \
                 ([defaults] sample_floor)",
                unjudged.join("\n")
            );
        }
    }
}
