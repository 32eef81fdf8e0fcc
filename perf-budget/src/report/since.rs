//! The traffic between two reports of the same layer, and the rounding of printed numbers.

use crate::eval::{Status, wilson_lower};
use crate::report::{BudgetEntry, BudgetReport};

/// `x` rounded to `decimals` places: reports print `0.05`, not `0.050000000000000044`.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

impl BudgetReport {
    /// The traffic between `earlier` and this report of the same layer, judged on its own.
    ///
    /// Per budget, the differences of the cumulative totals (`total_requests`, `total_errors`
    /// and each objective's `total_bad`) become `samples`, `errors` and `bad`; each objective
    /// is judged again on them (its `min_samples` floor and the Wilson bound at the report's
    /// confidence), burn rates and `rps` follow, `window_s` becomes the time between the two
    /// reports, and `pass` follows. The quantiles (`observed.p50_ms`, `p95_ms`, `p99_ms`) are
    /// those of the difference of the two latency histograms since start
    /// ([`total_latency`](crate::report::BudgetEntry::total_latency)): the midpoint of the bucket
    /// holding the nearest-rank request, as over the window and in the gate's client view, so
    /// within `quantile_rel_error` (1/64 ≈ 1.56 %) of the exact value from 64 µs on, exact
    /// below. States, `cancelled` and `shed` stay this report's window's. A budget missing
    /// from `earlier` counts from zero; a restarted server (totals that went down) yields zero
    /// samples, so no verdict, and no quantiles; so does a report without histograms (an
    /// older server).
    ///
    /// The `perf-budget gate` command judges a run this way, with the report fetched before
    /// the load and the one after: the warm-up and earlier traffic never count.
    ///
    /// ```
    /// use std::time::Duration;
    /// use perf_budget::{BudgetLayer, BudgetPolicy};
    ///
    /// let policy = BudgetPolicy::builder()
    ///     .add_budget("users", "GET /users", |b| b.p95(Duration::from_millis(200)))
    ///     .build()?;
    /// let (_layer, handle) = BudgetLayer::pair(policy);
    /// let before = handle.report();
    /// // ... the measured traffic ...
    /// let run = handle.report().since(&before);
    /// let users = run.budget("users").unwrap();
    /// assert_eq!((users.samples, users.observed.p95_ms), (0, None));
    /// # Ok::<(), perf_budget::ConfigError>(())
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &BudgetReport) -> BudgetReport {
        let mut out = self.clone();
        let span_ms = self
            .generated_at_unix_ms
            .saturating_sub(earlier.generated_at_unix_ms);
        out.window_s = round(span_ms as f64 / 1000.0, 3);
        for b in &mut out.budgets {
            let old = earlier.budget(&b.name);
            diff_entry(b, old, self.confidence);
            b.observed.rps = if span_ms == 0 {
                0.0
            } else {
                round(b.samples as f64 * 1000.0 / span_ms as f64, 3)
            };
        }
        let pass = out.failures().next().is_none();
        out.pass = pass;
        out
    }
}

/// One budget's counts since `old`, judged again.
fn diff_entry(b: &mut BudgetEntry, old: Option<&BudgetEntry>, confidence: f64) {
    let n = b
        .total_requests
        .saturating_sub(old.map_or(0, |o| o.total_requests));
    let errors = b
        .total_errors
        .saturating_sub(old.map_or(0, |o| o.total_errors));
    b.samples = n;
    b.errors = errors;
    let run = old.map_or(Some(b.total_latency.clone()), |o| {
        b.total_latency.since(&o.total_latency)
    });
    let q = |q: f64| {
        let us = run.as_ref()?.quantile(q)?.as_micros();
        Some(round(us as f64 / 1000.0, 3))
    };
    b.observed.p50_ms = q(0.5);
    b.observed.p95_ms = q(0.95);
    b.observed.p99_ms = q(0.99);
    b.observed.error_rate = if n == 0 {
        0.0
    } else {
        round(errors as f64 / n as f64, 6)
    };
    for (i, o) in b.objectives.iter_mut().enumerate() {
        let before = old
            .and_then(|e| {
                e.objectives
                    .iter()
                    .find(|x| x.expr == o.expr)
                    .or(e.objectives.get(i))
            })
            .map_or(0, |x| x.total_bad);
        let bad = o.total_bad.saturating_sub(before).min(n);
        let lower = wilson_lower(bad, n, confidence);
        o.samples = n;
        o.bad = bad;
        o.allowed = (n as f64 * o.allowance).floor() as u64;
        o.observed_ratio = if n == 0 {
            0.0
        } else {
            round(bad as f64 / n as f64, 6)
        };
        o.lower_bound = round(lower, 6);
        o.burn_long = if n == 0 || o.allowance <= 0.0 {
            0.0
        } else {
            round(bad as f64 / n as f64 / o.allowance, 4)
        };
        o.burn_short = o.burn_long;
        o.status = if n < o.min_samples {
            Status::Insufficient
        } else if lower > o.allowance {
            Status::Fail
        } else {
            Status::Pass
        };
    }
}
