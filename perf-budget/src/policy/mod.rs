//! Budget definitions: objectives, budgets, the policy and its builder.
//!
//! The same schema is read from TOML ([`BudgetPolicy::from_toml`]) and built in code.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use perf_budget::{BudgetPolicy, Mode, Severity};
//!
//! let policy = BudgetPolicy::builder()
//!     .window(Duration::from_secs(60))
//!     .slots(12)
//!     .mode(Mode::Annotate)
//!     .add_budget("users", "GET /api/users/{id}", |b| {
//!         b.p95(Duration::from_millis(200)).p99(Duration::from_millis(500)).error_rate(0.01)
//!     })
//!     .add_budget("search", "GET /api/search", |b| b.objective("p(95)<300").severity(Severity::Warn))
//!     .build()?;
//! assert_eq!(policy.budgets().len(), 2);
//! assert_eq!(policy.budgets()[1].objectives()[0].to_string(), "p95 < 300ms");
//!
//! let err = BudgetPolicy::builder().add_budget("x", "GET /x", |b| b.objective("p95 < 2xs")).build();
//! assert!(err.unwrap_err().to_string().contains("unknown unit"));
//! # Ok::<(), perf_budget::ConfigError>(())
//! ```

mod budget;
mod builder;
mod duration;
mod objective;

use std::fmt;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::route::Routes;

pub use budget::BudgetBuilder;
pub(crate) use budget::parse_route;
pub use builder::BudgetPolicyBuilder;
pub(crate) use duration::{format_duration, parse_duration};
pub use objective::Objective;
pub(crate) use objective::trim_float;

/// The name of the budget every request that matches no configured route shares.
pub const OTHER: &str = "__other__";

/// What the layer does besides recording. See the crate docs for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(rename_all = "lowercase"))]
pub enum Mode {
    /// Record, evaluate, log transitions and export metrics. Defaults to this (production).
    #[default]
    Observe,
    /// Also add a `Perf-Budget` header and a `Server-Timing` entry to every budgeted response,
    /// and log breaches at ERROR (the staging default). Never enable it where clients are untrusted.
    Annotate,
    /// Also cap each request at its budget's `deadline`: 503 (or the configured status) at the cap.
    Deadline,
    /// Also shed by priority share while a budget is breached: 503 with `Retry-After`.
    Shed,
}

/// Whether a failing objective fails a gate (`Error`) or is only reported (`Warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Severity {
    /// Reported and logged at WARN; never fails [`assert_pass`](crate::BudgetReport::assert_pass) or the gate.
    Warn,
    /// Fails the report and the gate. Defaults to this.
    #[default]
    Error,
}

/// Where the latency of a request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(rename_all = "lowercase"))]
pub enum Measure {
    /// When the inner service produced the response head. Defaults to this.
    #[default]
    Headers,
    /// When the response body reached its end (for streaming or large bodies).
    Body,
}

/// Tolerances for the CI gate's comparison with a baseline (`[budget.regression]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Regression {
    /// Relative tolerance per reported quantile, e.g. `(0.95, 0.20)` for `p95 = "+20%"`.
    pub quantiles: Vec<(f64, f64)>,
    /// Deltas smaller than this are never a regression. Defaults to 1 ms.
    pub floor: Duration,
    /// Allowed absolute increase of the error rate, e.g. `0.005` for `"+0.5pp"`.
    pub error_rate: Option<f64>,
}

/// One budget: a route and its objectives.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteBudget {
    pub(crate) name: String,
    pub(crate) method: Option<Method>,
    pub(crate) route: String,
    pub(crate) objectives: Vec<Objective>,
    pub(crate) severity: Severity,
    pub(crate) deadline: Option<Duration>,
    pub(crate) priority: Option<String>,
    pub(crate) regression: Regression,
    pub(crate) measure: Measure,
}

impl RouteBudget {
    /// The budget's name (a metric label).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The method, or `None` for every method.
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }
    /// The route template (axum syntax, `/api/users/{id}`).
    pub fn route(&self) -> &str {
        &self.route
    }
    /// `GET /api/users/{id}` or `* /path`.
    pub fn route_key(&self) -> String {
        match &self.method {
            Some(m) => format!("{m} {}", self.route),
            None => format!("* {}", self.route),
        }
    }
    /// The objectives.
    pub fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    /// The severity.
    pub fn severity(&self) -> Severity {
        self.severity
    }
    /// The per-request cap used in [`Mode::Deadline`].
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }
    /// The priority class used in [`Mode::Shed`].
    pub fn priority(&self) -> Option<&str> {
        self.priority.as_deref()
    }
    /// The gate's regression tolerances.
    pub fn regression(&self) -> &Regression {
        &self.regression
    }
    /// Where latency ends.
    pub fn measure(&self) -> Measure {
        self.measure
    }
}

/// Which outcomes count as errors. Defaults: 5xx, deadline and shed, not 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorClasses {
    /// 5xx responses (and inner service errors).
    pub server: bool,
    /// 4xx responses.
    pub client: bool,
    /// Requests cut at the deadline.
    pub deadline: bool,
    /// Requests rejected by shedding.
    pub shed: bool,
}

impl Default for ErrorClasses {
    fn default() -> Self {
        Self {
            server: true,
            client: false,
            deadline: true,
            shed: true,
        }
    }
}

/// A state change of one objective, passed to the layer's
/// [`on_transition`](crate::BudgetLayerBuilder::on_transition) hook.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The budget's name.
    pub budget: String,
    /// The objective, e.g. `p95 < 200ms`.
    pub objective: String,
    /// The previous state.
    pub from: crate::State,
    /// The new state.
    pub to: crate::State,
    /// The long-window burn rate at the transition.
    pub burn_long: f64,
    /// The short-window burn rate at the transition.
    pub burn_short: f64,
}

/// The whole budget configuration. Build with [`BudgetPolicy::builder`] or
/// [`BudgetPolicy::from_toml`]. See the module docs for an example.
#[derive(Clone)]
pub struct BudgetPolicy {
    pub(crate) window: Duration,
    pub(crate) slots: usize,
    pub(crate) short_slots: usize,
    pub(crate) min_samples: u64,
    /// Set by [`BudgetPolicyBuilder::sample_floor`]: the exact floor, not raised.
    pub(crate) sample_floor: Option<u64>,
    pub(crate) confidence: f64,
    pub(crate) mode: Mode,
    pub(crate) errors: ErrorClasses,
    pub(crate) breach_burn: f64,
    pub(crate) recover_burn: f64,
    pub(crate) breach_evals: u32,
    pub(crate) recover_evals: u32,
    pub(crate) shares: Vec<(String, f64)>,
    pub(crate) default_share: f64,
    pub(crate) deadline_status: StatusCode,
    pub(crate) budgets: Vec<RouteBudget>,
    pub(crate) other: Vec<Objective>,
    pub(crate) instance: Option<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) routes: Routes,
}

impl fmt::Debug for BudgetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetPolicy")
            .field("window", &self.window)
            .field("slots", &self.slots)
            .field("mode", &self.mode)
            .field("budgets", &self.budgets)
            .finish_non_exhaustive()
    }
}

impl BudgetPolicy {
    /// Starts a builder with the defaults: 60 s window in 12 slots, short window 2 slots,
    /// `min_samples` 200, confidence 0.95, observe mode.
    pub fn builder() -> BudgetPolicyBuilder {
        BudgetPolicyBuilder::default()
    }

    /// The budgets, in definition order.
    pub fn budgets(&self) -> &[RouteBudget] {
        &self.budgets
    }
    /// The enforcement mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The sliding window length.
    pub fn window(&self) -> Duration {
        self.window
    }
    /// The number of slots in the window.
    pub fn slots(&self) -> usize {
        self.slots
    }
    /// The minimum samples before any verdict (raised per objective to `10 / allowance`).
    pub fn min_samples(&self) -> u64 {
        self.min_samples
    }
    /// The one-sided confidence of the Wilson bound.
    pub fn confidence(&self) -> f64 {
        self.confidence
    }
    /// Notes produced while building, e.g. a raised `min_samples`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The slot length.
    pub fn slot_len(&self) -> Duration {
        self.window / u32::try_from(self.slots).unwrap_or(u32::MAX)
    }
    /// The minimum samples for one objective: `min_samples` raised to the objective's
    /// `10 / allowance`, or exactly the [`sample_floor`](BudgetPolicyBuilder::sample_floor) when
    /// one was chosen.
    pub fn min_samples_for(&self, o: &Objective) -> u64 {
        self.sample_floor
            .unwrap_or_else(|| self.min_samples.max(o.min_samples()))
    }
    /// The position (in [`budgets`](Self::budgets)) of the budget that a request with `method`
    /// and `path` counts against when no router recorded its route template; `None` means
    /// [`OTHER`]. The budgets' templates are matched as axum's router matches them (a static
    /// template wins over a parameter, whatever the order in the file), then the budget for the
    /// method wins over one for every method. The layer attributes requests the same way; the
    /// `perf-budget gate` command uses this to judge client-side numbers.
    pub fn budget_for(&self, method: &Method, path: &str) -> Option<usize> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        self.routes.by_path(method, path)
    }
    pub(crate) fn share_for(&self, priority: Option<&str>) -> f64 {
        priority
            .and_then(|p| self.shares.iter().find(|(n, _)| n == p).map(|(_, s)| *s))
            .unwrap_or(self.default_share)
    }
}

#[cfg(test)]
mod tests;
