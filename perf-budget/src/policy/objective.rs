//! Objectives: `p95 < 200ms`, `error_rate < 1%`, parsed and displayed.

use std::fmt;
use std::time::Duration;

use crate::error::{ConfigError, Kind};
use crate::policy::{format_duration, parse_duration};

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

pub(crate) fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
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
