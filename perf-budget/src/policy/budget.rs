//! [`BudgetBuilder`]: one budget, its route and objectives, validated when built.

use std::time::Duration;

use http::Method;

use crate::error::{ConfigError, Kind};
use crate::policy::{
    Measure, Objective, Regression, RouteBudget, Severity, format_duration, trim_float,
};

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

/// Builds one [`RouteBudget`]; see [`BudgetPolicyBuilder::add_budget`](crate::BudgetPolicyBuilder::add_budget).
#[must_use]
#[derive(Debug)]
pub struct BudgetBuilder {
    budget: RouteBudget,
    error: Option<ConfigError>,
}

impl BudgetBuilder {
    pub(super) fn new(name: &str, method: Option<Method>, route: &str) -> Self {
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
    /// The per-request cap used in [`Mode::Deadline`](crate::Mode::Deadline).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.budget.deadline = Some(d);
        self
    }
    /// The priority class used in [`Mode::Shed`](crate::Mode::Shed).
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
    pub(super) fn finish(self) -> Result<RouteBudget, ConfigError> {
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
