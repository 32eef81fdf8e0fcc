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
//!     .budget("users", "GET /api/users/{id}", |b| {
//!         b.p95(Duration::from_millis(200)).p99(Duration::from_millis(500)).error_rate(0.01)
//!     })
//!     .budget("search", "GET /api/search", |b| b.objective("p(95)<300").severity(Severity::Warn))
//!     .build()?;
//! assert_eq!(policy.budgets().len(), 2);
//! assert_eq!(policy.budgets()[1].objectives()[0].to_string(), "p95 < 300ms");
//!
//! let err = BudgetPolicy::builder().budget("x", "GET /x", |b| b.objective("p95 < 2xs")).build();
//! assert!(err.unwrap_err().to_string().contains("unknown unit"));
//! # Ok::<(), perf_budget::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::error::{ConfigError, Kind};
use crate::route::Routes;

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

/// One objective of a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Objective {
    /// `pQ < T`: at most `1 − Q` of requests may take `T` or longer (`pQ <= T`: longer than `T`).
    Latency {
        /// The quantile, in (0, 1).
        quantile: f64,
        /// The threshold.
        threshold: Duration,
        /// `true` for `<=` (a request taking exactly `T` is fine).
        inclusive: bool,
    },
    /// `error_rate < R`: at most `R` of requests may be errors.
    ErrorRate {
        /// The allowed share, in (0, 1).
        max: f64,
    },
}

impl Objective {
    /// Parses `p95 < 200ms`, `p(99.9) <= 1s`, `p(95)<200` (milliseconds), `error_rate < 1%`
    /// or `error_rate < 0.01`.
    ///
    /// # Errors
    ///
    /// A message saying what to write instead.
    pub fn parse(expr: &str) -> Result<Self, ConfigError> {
        parse_objective(expr).map_err(|m| {
            ConfigError::new(Kind::Objective, format!("invalid objective {expr:?}: {m}"))
        })
    }

    /// The share of requests allowed to miss: `1 − Q` or the maximum error rate.
    pub fn allowance(&self) -> f64 {
        match *self {
            Self::Latency { quantile, .. } => 1.0 - quantile,
            Self::ErrorRate { max } => max,
        }
    }

    /// A short label: `p95`, `p99.9` or `error_rate` (used in metrics and rules).
    pub fn label(&self) -> String {
        match *self {
            Self::Latency { quantile, .. } => format!("p{}", trim_float(quantile * 100.0)),
            Self::ErrorRate { .. } => "error_rate".to_owned(),
        }
    }

    /// The minimum number of samples needed to judge this objective: `10 / allowance`.
    pub fn min_samples(&self) -> u64 {
        (10.0 / self.allowance() - 1e-6).ceil() as u64
    }

    pub(crate) fn threshold_nanos(&self) -> Option<(u64, bool)> {
        match *self {
            Self::Latency {
                threshold,
                inclusive,
                ..
            } => Some((
                u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX),
                inclusive,
            )),
            Self::ErrorRate { .. } => None,
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Latency {
                threshold,
                inclusive,
                ..
            } => {
                let op = if inclusive { "<=" } else { "<" };
                write!(f, "{} {op} {}", self.label(), format_duration(threshold))
            }
            Self::ErrorRate { max } => write!(f, "error_rate < {}%", trim_float(max * 100.0)),
        }
    }
}

/// Formats a duration as the shortest of `1.5s`, `200ms` or `800us`.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us >= 1_000_000 && us.is_multiple_of(100_000) {
        format!("{}s", trim_float(us as f64 / 1e6))
    } else if us.is_multiple_of(1000) || us >= 100_000 {
        format!("{}ms", trim_float(us as f64 / 1e3))
    } else {
        format!("{us}us")
    }
}

pub(crate) fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// Parses `200ms`, `1.5s`, `800us`, `2m`; a bare number is milliseconds when `bare_ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write one like 200ms, 1.5s or 800us"))?;
    let secs = match unit.trim() {
        "us" | "µs" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86400.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; write a duration like 200ms, 1.5s or 800us"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_objective(expr: &str) -> Result<Objective, String> {
    let e = expr.trim();
    let op_at = e
        .find(['<', '>', '='])
        .ok_or("expected `metric < value`, e.g. \"p95 < 200ms\" or \"error_rate < 1%\"")?;
    let (metric, rest) = e.split_at(op_at);
    let (inclusive, value) = if let Some(v) = rest.strip_prefix("<=") {
        (true, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (false, v)
    } else {
        return Err(format!(
            "operator {:?} is not supported: budgets are upper limits, use < or <=",
            rest.chars().take(2).collect::<String>()
        ));
    };
    let metric = metric.trim().replace(' ', "");
    let value = value.trim();
    if metric == "error_rate" || metric == "errors" {
        let max = if let Some(p) = value.strip_suffix('%') {
            p.trim().parse::<f64>().map(|v| v / 100.0)
        } else {
            value.parse::<f64>()
        }
        .map_err(|_| format!("{value:?} is not a rate; write 1% or 0.01"))?;
        if !(max > 0.0 && max < 1.0) {
            return Err(format!(
                "error rate {value} must lie strictly between 0% and 100%"
            ));
        }
        return Ok(Objective::ErrorRate { max });
    }
    let q = if let Some(inner) = metric.strip_prefix("p(").and_then(|m| m.strip_suffix(')')) {
        inner
    } else if let Some(q) = metric.strip_prefix('p') {
        q
    } else if metric == "med" {
        "50"
    } else {
        return Err(format!(
            "unknown metric {metric:?}; use pNN (p95, p99.9, p(95)) or error_rate"
        ));
    };
    let q: f64 = q
        .parse()
        .map_err(|_| format!("{metric:?} is not a percentile; write p95 or p(99.9)"))?;
    if !(q > 0.0 && q < 100.0) {
        return Err(format!(
            "percentile {q} must lie strictly between 0 and 100"
        ));
    }
    let threshold = if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        parse_duration(&format!("{value}ms"))?
    } else {
        parse_duration(value)?
    };
    Ok(Objective::Latency {
        quantile: q / 100.0,
        threshold,
        inclusive,
    })
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

/// A state change of one objective, passed to [`BudgetPolicyBuilder::on_transition`].
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

/// A transition hook.
pub(crate) type TransitionHook = Arc<dyn Fn(&Transition) + Send + Sync>;

/// A hook rewriting the layer's own deadline and shed responses.
pub(crate) type ExceededHook = Arc<
    dyn Fn(&crate::BudgetExceeded, http::Response<bytes::Bytes>) -> http::Response<bytes::Bytes>
        + Send
        + Sync,
>;

/// The whole budget configuration. Build with [`BudgetPolicy::builder`] or
/// [`BudgetPolicy::from_toml`]. See the module docs for an example.
#[derive(Clone)]
pub struct BudgetPolicy {
    pub(crate) window: Duration,
    pub(crate) slots: usize,
    pub(crate) short_slots: usize,
    pub(crate) min_samples: u64,
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
    pub(crate) on_transition: Option<TransitionHook>,
    pub(crate) exceeded_response: Option<ExceededHook>,
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
    /// The minimum samples for one objective.
    pub fn min_samples_for(&self, o: &Objective) -> u64 {
        self.min_samples.max(o.min_samples())
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

/// Builder for [`BudgetPolicy`]; mistakes are reported by [`build`](Self::build).
#[must_use]
pub struct BudgetPolicyBuilder {
    policy: BudgetPolicy,
    error: Option<ConfigError>,
}

impl fmt::Debug for BudgetPolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetPolicyBuilder")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Default for BudgetPolicyBuilder {
    fn default() -> Self {
        Self {
            policy: BudgetPolicy {
                window: Duration::from_secs(60),
                slots: 12,
                short_slots: 2,
                min_samples: 200,
                confidence: 0.95,
                mode: Mode::Observe,
                errors: ErrorClasses::default(),
                breach_burn: 1.0,
                recover_burn: 0.8,
                breach_evals: 2,
                recover_evals: 3,
                shares: Vec::new(),
                default_share: 0.5,
                deadline_status: StatusCode::SERVICE_UNAVAILABLE,
                budgets: Vec::new(),
                other: Vec::new(),
                instance: None,
                on_transition: None,
                exceeded_response: None,
                warnings: Vec::new(),
                routes: Routes::default(),
            },
            error: None,
        }
    }
}

impl From<BudgetPolicy> for BudgetPolicyBuilder {
    /// A builder starting from a built policy, to change it.
    fn from(policy: BudgetPolicy) -> Self {
        Self {
            policy,
            error: None,
        }
    }
}

impl BudgetPolicyBuilder {
    fn fail(&mut self, e: ConfigError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
    /// The sliding window. Defaults to 60 s.
    pub fn window(mut self, window: Duration) -> Self {
        self.policy.window = window;
        self
    }
    /// Slots in the window (at least 2). Defaults to 12.
    pub fn slots(mut self, slots: usize) -> Self {
        self.policy.slots = slots;
        self
    }
    /// Slots in the short burn window (1 ..= slots). Defaults to 2.
    pub fn short_slots(mut self, slots: usize) -> Self {
        self.policy.short_slots = slots;
        self
    }
    /// Minimum samples in the window before any verdict. Defaults to 200.
    pub fn min_samples(mut self, n: u64) -> Self {
        self.policy.min_samples = n;
        self
    }
    /// One-sided confidence of the Wilson lower bound, in [0.5, 1). 0.5 judges the point
    /// estimate. Defaults to 0.95.
    pub fn confidence(mut self, c: f64) -> Self {
        self.policy.confidence = c;
        self
    }
    /// The enforcement mode. Defaults to [`Mode::Observe`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.policy.mode = mode;
        self
    }
    /// Which outcomes count as errors.
    pub fn errors(mut self, errors: ErrorClasses) -> Self {
        self.policy.errors = errors;
        self
    }
    /// Short-window burn above which a failing objective becomes breached. Defaults to 1.0.
    pub fn breach_burn(mut self, burn: f64) -> Self {
        self.policy.breach_burn = burn;
        self
    }
    /// Both burns must stay below this to recover. Defaults to 0.8.
    pub fn recover_burn(mut self, burn: f64) -> Self {
        self.policy.recover_burn = burn;
        self
    }
    /// Consecutive failing evaluations before breached. Defaults to 2.
    pub fn breach_evals(mut self, n: u32) -> Self {
        self.policy.breach_evals = n;
        self
    }
    /// Consecutive calm evaluations before a breach clears. Defaults to 3.
    pub fn recover_evals(mut self, n: u32) -> Self {
        self.policy.recover_evals = n;
        self
    }
    /// The share of a priority class admitted while shedding, e.g. `("live", 0.9)`.
    pub fn shed_share(mut self, priority: impl Into<String>, share: f64) -> Self {
        if !(0.0..=1.0).contains(&share) {
            self.fail(ConfigError::new(
                Kind::Value,
                format!("shed share {share} must lie in [0, 1]"),
            ));
        }
        self.policy.shares.push((priority.into(), share));
        self
    }
    /// The share admitted while shedding for budgets without a listed priority. Defaults to 0.5.
    pub fn default_share(mut self, share: f64) -> Self {
        self.policy.default_share = share;
        self
    }
    /// The status for requests cut at their deadline: 503 (default) or 504 for gateways.
    pub fn deadline_status(mut self, status: StatusCode) -> Self {
        self.policy.deadline_status = status;
        self
    }
    /// An instance name shown in reports.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.policy.instance = Some(name.into());
        self
    }
    /// Objectives for the shared `__other__` budget (requests matching no route). None by default.
    pub fn other(mut self, f: impl FnOnce(BudgetBuilder) -> BudgetBuilder) -> Self {
        let b = f(BudgetBuilder::new(OTHER, None, "/*"));
        match b.finish() {
            Ok(b) => self.policy.other = b.objectives,
            Err(e) => self.fail(e),
        }
        self
    }
    /// A hook called on every state transition (off the request path's fast case).
    pub fn on_transition(mut self, f: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.policy.on_transition = Some(Arc::new(f));
        self
    }
    /// Rewrites the layer's own responses (deadline 503/504, shed 503 + `Retry-After`): the
    /// hook gets the reason and the default response and returns the one to send, e.g. a JSON
    /// problem document or a gRPC status. [`BudgetExceeded`](crate::BudgetExceeded) is added to
    /// its extensions afterwards.
    pub fn exceeded_response(
        mut self,
        f: impl Fn(&crate::BudgetExceeded, http::Response<bytes::Bytes>) -> http::Response<bytes::Bytes>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.policy.exceeded_response = Some(Arc::new(f));
        self
    }

    /// Adds a budget for `route` (`"GET /api/users/{id}"`, or `"/path"` for every method).
    pub fn budget(
        mut self,
        name: impl Into<String>,
        route: &str,
        f: impl FnOnce(BudgetBuilder) -> BudgetBuilder,
    ) -> Self {
        let name = name.into();
        match parse_route(route) {
            Ok((method, path)) => match f(BudgetBuilder::new(&name, method, &path)).finish() {
                Ok(b) => self.policy.budgets.push(b),
                Err(e) => self.fail(e),
            },
            Err(m) => self.fail(ConfigError::new(
                Kind::Route,
                format!("budget {name:?}: {m}"),
            )),
        }
        self
    }
    #[cfg(feature = "config")]
    pub(crate) fn push_budget(&mut self, b: RouteBudget) {
        self.policy.budgets.push(b);
    }

    /// Validates and returns the policy.
    ///
    /// # Errors
    ///
    /// The first mistake found, saying what to fix.
    pub fn build(self) -> Result<BudgetPolicy, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut p = self.policy;
        let v = |m: String| Err(ConfigError::new(Kind::Value, m));
        if p.slots < 2 || p.slots > 1024 {
            return v(format!("slots = {} must lie in 2..=1024", p.slots));
        }
        if p.window < Duration::from_millis(p.slots as u64) {
            return v(format!(
                "window {:?} is too short for {} slots",
                p.window, p.slots
            ));
        }
        if p.short_slots == 0 || p.short_slots > p.slots {
            return v(format!(
                "short_slots = {} must lie in 1..={}",
                p.short_slots, p.slots
            ));
        }
        if !(0.5..1.0).contains(&p.confidence) {
            return v(format!(
                "confidence = {} must lie in [0.5, 1), e.g. 0.95",
                p.confidence
            ));
        }
        if !(p.breach_burn > 0.0 && p.recover_burn > 0.0 && p.recover_burn <= p.breach_burn) {
            return v("recover_burn must be positive and at most breach_burn".to_owned());
        }
        if p.breach_evals == 0 || p.recover_evals == 0 {
            return v("breach_evals and recover_evals must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&p.default_share) {
            return v(format!(
                "default_share = {} must lie in [0, 1]",
                p.default_share
            ));
        }
        if !(p.deadline_status.is_server_error() || p.deadline_status.is_client_error()) {
            return v(format!(
                "deadline_status {} must be a 4xx or 5xx",
                p.deadline_status
            ));
        }
        for (i, b) in p.budgets.iter().enumerate() {
            for other in &p.budgets[..i] {
                if other.name == b.name {
                    return Err(ConfigError::new(
                        Kind::Route,
                        format!(
                            "budget name {:?} is used twice; names must be unique",
                            b.name
                        ),
                    ));
                }
                if other.method == b.method && other.route == b.route {
                    return Err(ConfigError::new(
                        Kind::Route,
                        format!(
                            "budgets {:?} and {:?} both cover {}; merge their objectives",
                            other.name,
                            b.name,
                            b.route_key()
                        ),
                    ));
                }
            }
            if b.deadline.is_none() && p.mode == Mode::Deadline {
                p.warnings.push(format!(
                    "budget {:?} has no deadline; mode deadline does nothing for it",
                    b.name
                ));
            }
        }
        let warnings: Vec<String> = p
            .budgets
            .iter()
            .flat_map(|b| b.objectives.iter().map(move |o| (b, o)))
            .filter(|(_, o)| o.min_samples() > p.min_samples)
            .map(|(b, o)| {
                format!(
                    "budget {:?}: {o} needs at least {} samples for a verdict (min_samples {} raised)",
                    b.name,
                    o.min_samples(),
                    p.min_samples
                )
            })
            .collect();
        p.warnings.extend(warnings);
        p.routes = Routes::new(&p.budgets)?;
        Ok(p)
    }
}

/// Splits `"GET /api/users"` into method and path; a bare path matches every method.
pub(crate) fn parse_route(route: &str) -> Result<(Option<Method>, String), String> {
    let route = route.trim();
    let (method, path) = match route.split_once(char::is_whitespace) {
        Some((m, p)) => {
            let m = Method::from_bytes(m.as_bytes())
                .map_err(|_| format!("{m:?} is not an HTTP method"))?;
            (if m.as_str() == "*" { None } else { Some(m) }, p.trim())
        }
        None if route.starts_with("* ") => (None, &route[2..]),
        None => (None, route),
    };
    if !path.starts_with('/') {
        return Err(format!(
            "route {route:?} must be `METHOD /path/{{param}}` (an axum route template), e.g. \"GET /api/users/{{id}}\""
        ));
    }
    perf_middleware::RouteTable::new([path])
        .map_err(|e| format!("route template {path:?} is invalid: {e}"))?;
    Ok((method, path.to_owned()))
}

/// Builds one [`RouteBudget`]; see [`BudgetPolicyBuilder::budget`].
#[must_use]
#[derive(Debug)]
pub struct BudgetBuilder {
    budget: RouteBudget,
    error: Option<ConfigError>,
}

impl BudgetBuilder {
    fn new(name: &str, method: Option<Method>, route: &str) -> Self {
        Self {
            budget: RouteBudget {
                name: name.to_owned(),
                method,
                route: route.to_owned(),
                objectives: Vec::new(),
                severity: Severity::Error,
                deadline: None,
                priority: None,
                regression: Regression {
                    floor: Duration::from_millis(1),
                    ..Regression::default()
                },
                measure: Measure::Headers,
            },
            error: None,
        }
    }
    fn push(mut self, o: Result<Objective, ConfigError>) -> Self {
        match o {
            Ok(o) => self.budget.objectives.push(o),
            Err(e) if self.error.is_none() => self.error = Some(e),
            Err(_) => {}
        }
        self
    }
    /// Adds an objective from an expression (`"p95 < 200ms"`, `"error_rate < 1%"`).
    pub fn objective(self, expr: &str) -> Self {
        let o = Objective::parse(expr);
        self.push(o)
    }
    /// Adds `pQ < threshold` for a quantile in (0, 1).
    pub fn quantile(self, quantile: f64, threshold: Duration) -> Self {
        let o = if quantile > 0.0 && quantile < 1.0 && !threshold.is_zero() {
            Ok(Objective::Latency {
                quantile,
                threshold,
                inclusive: false,
            })
        } else {
            Err(ConfigError::new(
                Kind::Objective,
                format!(
                    "quantile {quantile} must lie in (0, 1) and the threshold must be positive"
                ),
            ))
        };
        self.push(o)
    }
    /// Adds `p95 < threshold`.
    pub fn p95(self, threshold: Duration) -> Self {
        self.quantile(0.95, threshold)
    }
    /// Adds `p99 < threshold`.
    pub fn p99(self, threshold: Duration) -> Self {
        self.quantile(0.99, threshold)
    }
    /// Adds `error_rate < max` (a share, `0.01` = 1 %).
    pub fn error_rate(self, max: f64) -> Self {
        let o = if max > 0.0 && max < 1.0 {
            Ok(Objective::ErrorRate { max })
        } else {
            Err(ConfigError::new(
                Kind::Objective,
                format!("error_rate {max} must lie in (0, 1); 1 % is 0.01"),
            ))
        };
        self.push(o)
    }
    /// The severity. Defaults to [`Severity::Error`].
    pub fn severity(mut self, s: Severity) -> Self {
        self.budget.severity = s;
        self
    }
    /// The per-request cap used in [`Mode::Deadline`].
    pub fn deadline(mut self, d: Duration) -> Self {
        self.budget.deadline = Some(d);
        self
    }
    /// The priority class used in [`Mode::Shed`].
    pub fn priority(mut self, p: impl Into<String>) -> Self {
        self.budget.priority = Some(p.into());
        self
    }
    /// Where latency ends. Defaults to [`Measure::Headers`].
    pub fn measure(mut self, m: Measure) -> Self {
        self.budget.measure = m;
        self
    }
    /// The gate's regression tolerances.
    pub fn regression(mut self, r: Regression) -> Self {
        self.budget.regression = r;
        self
    }
    fn finish(self) -> Result<RouteBudget, ConfigError> {
        if let Some(e) = self.error {
            return Err(e.prefixed(&format!("budget {:?}: ", self.budget.name)));
        }
        let b = self.budget;
        if b.name.is_empty()
            || b.name.len() > 64
            || !b
                .name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        {
            return Err(ConfigError::new(
                Kind::Value,
                format!(
                    "budget name {:?} must be 1-64 characters of [A-Za-z0-9-_.]",
                    b.name
                ),
            ));
        }
        if b.objectives.len() > 16 {
            return Err(ConfigError::new(
                Kind::Objective,
                format!("budget {:?}: at most 16 objectives", b.name),
            ));
        }
        let lat: Vec<_> = b
            .objectives
            .iter()
            .filter_map(|o| match *o {
                Objective::Latency {
                    quantile,
                    threshold,
                    ..
                } => Some((quantile, threshold)),
                Objective::ErrorRate { .. } => None,
            })
            .collect();
        for (i, a) in lat.iter().enumerate() {
            for c in &lat[i + 1..] {
                let (lo, hi) = if a.0 < c.0 { (a, c) } else { (c, a) };
                if lo.0 == hi.0 {
                    return Err(ConfigError::new(
                        Kind::Objective,
                        format!(
                            "budget {:?}: p{} is given twice; keep one",
                            b.name,
                            trim_float(lo.0 * 100.0)
                        ),
                    ));
                }
                if hi.1 < lo.1 {
                    return Err(ConfigError::new(
                        Kind::Objective,
                        format!(
                            "budget {:?}: p{} < {} is stricter than p{} < {}; a higher percentile needs a threshold at least as high",
                            b.name,
                            trim_float(hi.0 * 100.0),
                            format_duration(hi.1),
                            trim_float(lo.0 * 100.0),
                            format_duration(lo.1)
                        ),
                    ));
                }
            }
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_and_unit_forms() {
        let p = |s: &str| Objective::parse(s).unwrap();
        assert_eq!(
            p("p95 < 200ms"),
            Objective::Latency {
                quantile: 0.95,
                threshold: Duration::from_millis(200),
                inclusive: false
            }
        );
        assert_eq!(p("p(95)<200"), p("p95 < 200ms"));
        assert_eq!(p("p(99.9) <= 1.5s").to_string(), "p99.9 <= 1.5s");
        assert_eq!(p("error_rate < 1%"), Objective::ErrorRate { max: 0.01 });
        assert_eq!(p("error_rate<0.005").to_string(), "error_rate < 0.5%");
        assert_eq!(p("p50 < 800us").to_string(), "p50 < 800us");
    }

    #[test]
    fn rejects_with_a_fix() {
        let e = |s: &str| Objective::parse(s).unwrap_err().to_string();
        assert!(e("p95 > 200ms").contains("use < or <="));
        assert!(e("p95 < 200xs").contains("unknown unit"));
        assert!(e("p100 < 1s").contains("strictly between"));
        assert!(e("avg < 1s").contains("unknown metric"));
        assert!(e("error_rate < 120%").contains("between 0% and 100%"));
        assert!(e("p95 200ms").contains("expected `metric < value`"));
    }

    #[test]
    fn builder_validates_consistency() {
        let e = BudgetPolicy::builder()
            .budget("a", "GET /a", |b| {
                b.p95(Duration::from_millis(300))
                    .p99(Duration::from_millis(200))
            })
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("stricter"), "{e}");
        let e = BudgetPolicy::builder()
            .budget("a", "GET /a", |b| b)
            .budget("b", "GET /a", |b| b)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("merge"), "{e}");
        let e = BudgetPolicy::builder()
            .budget("a", "api", |b| b)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("METHOD /path"), "{e}");
        let e = BudgetPolicy::builder().slots(1).build().unwrap_err();
        assert!(e.to_string().contains("slots"), "{e}");
        let p = BudgetPolicy::builder()
            .budget("a", "/a", |b| b.objective("p99.9 < 1s"))
            .build()
            .unwrap();
        assert!(
            p.warnings()[0].contains("10000 samples"),
            "{:?}",
            p.warnings()
        );
        assert_eq!(p.min_samples_for(&p.budgets()[0].objectives()[0]), 10_000);
    }
}
