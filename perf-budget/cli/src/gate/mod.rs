//! `perf-budget gate`: judge a load run against the budgets, on the client's and the server's
//! view, compare with a baseline, and write text, JSON, JUnit XML and Markdown.
//!
//! - [`run`](mod@run): the command, from its arguments to its exit code;
//! - [`judge`]: the client's and the server's view against the budgets, and the run's validity;
//! - [`baseline`]: the comparison with an earlier run;
//! - [`oha`]: an `oha --json` result as the client view;
//! - [`output`]: text, JSON, JUnit XML and Markdown;
//! - [`preflight`](mod@preflight): what is knowable before the load, and how many objectives were judged.

mod baseline;
#[cfg(test)]
mod e2e;
mod judge;
mod oha;
mod output;
mod preflight;
mod run;

pub(crate) use baseline::{profile, regression};
pub(crate) use judge::{client_stats, gap, judge_client, judge_server, local_floor, validity};
pub(crate) use oha::read_oha;
pub(crate) use preflight::{judged, mismatch, preflight};

use std::time::Duration;

use perf_budget::{BudgetPolicy, BudgetReport};
use serde::{Deserialize, Serialize};

use crate::load::RunStats;

pub(crate) use run::run;

/// Exit codes.
pub(crate) const PASS: u8 = 0;
pub(crate) const BUDGET: u8 = 1;
pub(crate) const REGRESSION: u8 = 2;
pub(crate) const INVALID: u8 = 3;
pub(crate) const CONFIG: u8 = 4;

/// One judged item: a JUnit test case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Check {
    /// `budget`, `regression`, `validity`, `config` or `note`.
    pub(crate) class: String,
    /// `client`, `server` or `run`.
    pub(crate) view: String,
    pub(crate) budget: Option<String>,
    pub(crate) objective: Option<String>,
    /// `pass`, `fail`, `warn` or `skipped`.
    pub(crate) outcome: String,
    pub(crate) message: String,
    /// A stable name for checks without an objective (`rate`, `dropped`, `budgets`); the JUnit
    /// test name is `<budget>.<objective label>` or `<class>.<key>`, never a measured value.
    #[serde(default)]
    pub(crate) key: String,
}

impl Check {
    /// Names a check that has no objective (see [`Check::key`](field@Check::key)).
    pub(crate) fn key(mut self, key: &str) -> Self {
        key.clone_into(&mut self.key);
        self
    }
}

/// Client-side statistics of one budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientBudget {
    pub(crate) budget: String,
    pub(crate) n: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) error_rate: f64,
    pub(crate) max_ms: f64,
    /// `(quantile, value_ms, ci_low_ms, ci_high_ms)` for p50, p95, p99 (95 % rank interval).
    pub(crate) quantiles: Vec<(f64, f64, f64, f64)>,
}

impl ClientBudget {
    fn q(&self, q: f64) -> Option<(f64, f64, f64)> {
        self.quantiles
            .iter()
            .find(|x| (x.0 - q).abs() < 1e-9)
            .map(|x| (x.1, x.2, x.3))
    }
}

/// The gate's JSON output; also the baseline format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Output {
    pub(crate) verdict: String,
    pub(crate) exit_code: u8,
    pub(crate) profile: String,
    pub(crate) run: Option<RunStats>,
    pub(crate) client: Vec<ClientBudget>,
    /// The server's view of this run: the difference of its reports before and after the load
    /// ([`BudgetReport::since`]), or the `--server` file.
    pub(crate) server: Option<BudgetReport>,
    /// Objectives of the budgets given that got a verdict, in some view.
    #[serde(default)]
    pub(crate) judged: usize,
    /// Objectives of the budgets given.
    #[serde(default)]
    pub(crate) objectives: usize,
    pub(crate) checks: Vec<Check>,
}

pub(crate) fn check(
    class: &str,
    view: &str,
    budget: Option<&str>,
    objective: Option<&str>,
    outcome: &str,
    message: String,
) -> Check {
    Check {
        class: class.into(),
        view: view.into(),
        budget: budget.map(Into::into),
        objective: objective.map(Into::into),
        outcome: outcome.into(),
        message,
        key: String::new(),
    }
}

/// Validity thresholds.
#[derive(Debug, Clone)]
pub(crate) struct Validity {
    pub(crate) min_rate_ratio: f64,
    pub(crate) max_dropped: f64,
    pub(crate) max_lag_p99: Duration,
    pub(crate) allow_closed_loop: bool,
    pub(crate) gap: f64,
}

/// Maps a request to a budget index (`budgets.len()` = `__other__`), as the layer does
/// ([`BudgetPolicy::budget_for`]: a static template wins over a parameter, whatever the order).
pub(crate) fn budget_for(policy: &BudgetPolicy, method: &http::Method, path: &str) -> usize {
    policy
        .budget_for(method, path)
        .unwrap_or(policy.budgets().len())
}

/// The exit code: 4 > 3 > 1 > 2.
pub(crate) fn exit_code(checks: &[Check]) -> u8 {
    let failed = |class: &str| {
        checks
            .iter()
            .any(|c| c.class == class && c.outcome == "fail")
    };
    if failed("config") {
        CONFIG
    } else if failed("validity") {
        INVALID
    } else if failed("budget") {
        BUDGET
    } else if failed("regression") {
        REGRESSION
    } else {
        PASS
    }
}

pub(crate) fn verdict(code: u8) -> &'static str {
    match code {
        PASS => "pass",
        BUDGET => "budget failed",
        REGRESSION => "regression",
        INVALID => "invalid run",
        _ => "config error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_precedence_is_4_3_1_2() {
        let c = |class: &str| check(class, "run", None, None, "fail", String::new());
        assert_eq!(exit_code(&[c("regression"), c("budget")]), BUDGET);
        assert_eq!(
            exit_code(&[c("regression"), c("budget"), c("validity")]),
            INVALID
        );
        assert_eq!(exit_code(&[c("validity"), c("config")]), CONFIG);
        assert_eq!(exit_code(&[c("regression")]), REGRESSION);
        assert_eq!(
            exit_code(&[check("budget", "client", None, None, "warn", String::new())]),
            PASS
        );
    }
}
