//! [`BudgetPolicyBuilder`] and [`BudgetBuilder`]: budgets built in code, validated once.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::error::{ConfigError, Kind};
use crate::policy::{BudgetBuilder, BudgetPolicy, ErrorClasses, Mode, OTHER, parse_route};
use crate::route::Routes;

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
                sample_floor: None,
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
    /// Verdicts from as few as `n` samples (at least 1), **not** raised per objective to
    /// `10 / allowance`: an explicit choice for tests, where 30 requests should already decide
    /// `p95 < 50ms`. With few samples the Wilson bound is wide, so only clear misses fail, and a
    /// p95 judged on 30 requests rests on 1.5 expected misses; keep the default floor
    /// ([`min_samples`](Self::min_samples), raised to 200 for p95 and 1,000 for p99) in
    /// production. In TOML: `[defaults] sample_floor = 20`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use perf_budget::BudgetPolicy;
    ///
    /// let policy = BudgetPolicy::builder()
    ///     .sample_floor(20) // a test policy
    ///     .add_budget("order", "GET /orders/{id}", |b| b.p95(Duration::from_millis(50)))
    ///     .build()?;
    /// assert_eq!(policy.min_samples_for(&policy.budgets()[0].objectives()[0]), 20);
    /// # Ok::<(), perf_budget::ConfigError>(())
    /// ```
    pub fn sample_floor(mut self, n: u64) -> Self {
        self.policy.sample_floor = Some(n.max(1));
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
    pub fn add_shed_share(mut self, priority: impl Into<String>, share: f64) -> Self {
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
    /// Adds a budget for `route` (`"GET /api/users/{id}"`, or `"/path"` for every method).
    pub fn add_budget(
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
    pub(crate) fn push_budget(&mut self, b: super::RouteBudget) {
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
        check_values(&p).map_err(|m| ConfigError::new(Kind::Value, m))?;
        check_budgets(&p).map_err(|m| ConfigError::new(Kind::Route, m))?;
        let warnings = warnings(&p);
        p.warnings.extend(warnings);
        p.routes = Routes::new(&p.budgets)?;
        Ok(p)
    }
}

/// The policy-wide values: window, slots, confidence, hysteresis, shares, deadline status.
fn check_values(p: &BudgetPolicy) -> Result<(), String> {
    if p.slots < 2 || p.slots > 1024 {
        return Err(format!("slots = {} must lie in 2..=1024", p.slots));
    }
    if p.window < Duration::from_millis(p.slots as u64) {
        return Err(format!(
            "window {:?} is too short for {} slots",
            p.window, p.slots
        ));
    }
    if p.short_slots == 0 || p.short_slots > p.slots {
        return Err(format!(
            "short_slots = {} must lie in 1..={}",
            p.short_slots, p.slots
        ));
    }
    if !(0.5..1.0).contains(&p.confidence) {
        return Err(format!(
            "confidence = {} must lie in [0.5, 1), e.g. 0.95",
            p.confidence
        ));
    }
    if !(p.breach_burn > 0.0 && p.recover_burn > 0.0 && p.recover_burn <= p.breach_burn) {
        return Err("recover_burn must be positive and at most breach_burn".to_owned());
    }
    if p.breach_evals == 0 || p.recover_evals == 0 {
        return Err("breach_evals and recover_evals must be at least 1".to_owned());
    }
    if !(0.0..=1.0).contains(&p.default_share) {
        return Err(format!(
            "default_share = {} must lie in [0, 1]",
            p.default_share
        ));
    }
    if !(p.deadline_status.is_server_error() || p.deadline_status.is_client_error()) {
        return Err(format!(
            "deadline_status {} must be a 4xx or 5xx",
            p.deadline_status
        ));
    }
    Ok(())
}

/// Budget names are unique, and no two budgets cover the same method and route.
fn check_budgets(p: &BudgetPolicy) -> Result<(), String> {
    for (i, b) in p.budgets.iter().enumerate() {
        for other in &p.budgets[..i] {
            if other.name == b.name {
                return Err(format!(
                    "budget name {:?} is used twice; names must be unique",
                    b.name
                ));
            }
            if other.method == b.method && other.route == b.route {
                return Err(format!(
                    "budgets {:?} and {:?} both cover {}; merge their objectives",
                    other.name,
                    b.name,
                    b.route_key()
                ));
            }
        }
    }
    Ok(())
}

/// Notes about a valid policy: budgets without a deadline in mode deadline, raised sample
/// minimums.
fn warnings(p: &BudgetPolicy) -> Vec<String> {
    let no_deadline = p
        .budgets
        .iter()
        .filter(|b| b.deadline.is_none() && p.mode == Mode::Deadline)
        .map(|b| {
            format!(
                "budget {:?} has no deadline; mode deadline does nothing for it",
                b.name
            )
        });
    let raised = p
        .budgets
        .iter()
        .flat_map(|b| b.objectives.iter().map(move |o| (b, o)))
        .filter(|(_, o)| p.sample_floor.is_none() && o.min_samples() > p.min_samples)
        .map(|(b, o)| {
            format!(
                "budget {:?}: {o} needs at least {} samples for a verdict (min_samples {} raised)",
                b.name,
                o.min_samples(),
                p.min_samples
            )
        });
    no_deadline.chain(raised).collect()
}
