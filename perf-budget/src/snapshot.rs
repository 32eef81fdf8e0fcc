//! The report of a layer's state: every budget over the current window.

use tokio::time::Instant;

use crate::histogram::{LatencyHistogram, REL_ERROR};
use crate::hooks::OnTransition;
use crate::policy::Objective;
use crate::report::{BudgetEntry, BudgetReport, ObjectiveEntry, Observed, round};
use crate::shared::{Entry, Shared};

impl<T: OnTransition, X> Shared<T, X> {
    /// The report, after an evaluation step for every budget that has not seen this slot.
    pub(crate) fn report(&self) -> BudgetReport {
        self.evaluate_all();
        let now = Instant::now();
        let elapsed = now
            .saturating_duration_since(self.clock.start())
            .as_secs_f64();
        let covered = elapsed
            .min(self.policy.window.as_secs_f64())
            .max(self.clock.slot().as_secs_f64().min(elapsed))
            .max(1e-9);
        let budgets = self
            .entries
            .iter()
            .map(|e| self.entry_report(e, now, covered))
            .collect();
        BudgetReport::new(
            self.policy.window.as_secs_f64(),
            self.policy.slots,
            self.policy.confidence,
            self.policy.instance.clone(),
            budgets,
        )
    }

    /// One budget's entry at `now`; `covered` is the time the window covers, in seconds.
    fn entry_report(&self, e: &Entry, now: Instant, covered: f64) -> BudgetEntry {
        let epoch = self.epoch(now);
        let mut hist = LatencyHistogram::default();
        let long = e.window.sums(epoch, self.policy.slots, Some(&mut hist));
        let total = e.window.cumulative();
        let short = e.window.sums(epoch, self.policy.short_slots, None);
        let verdicts = self.verdicts(e, &long, &short);
        let st = e.eval.lock().unwrap_or_else(|p| p.into_inner());
        let q = |q: f64| hist.quantile_us(q).map(|us| round(us as f64 / 1000.0, 3));
        let ratio = |bad: u64| {
            if long.total == 0 {
                0.0
            } else {
                round(bad as f64 / long.total as f64, 6)
            }
        };
        let objectives = e
            .budget
            .objectives
            .iter()
            .zip(&verdicts)
            .zip(&st.machines)
            .zip(&e.over_index)
            .map(|(((o, v), m), oi)| ObjectiveEntry {
                expr: o.to_string(),
                metric: o.label(),
                allowance: round(o.allowance(), 9),
                threshold_ms: match o {
                    Objective::Latency { threshold, .. } => {
                        Some(round(threshold.as_secs_f64() * 1000.0, 3))
                    }
                    Objective::ErrorRate { .. } => None,
                },
                status: v.0,
                state: m.state,
                samples: long.total,
                bad: v.4,
                total_bad: oi.map_or(total.errors, |i| total.over[i]),
                allowed: (long.total as f64 * o.allowance()).floor() as u64,
                min_samples: self.policy.min_samples_for(o),
                observed_ratio: ratio(v.4),
                lower_bound: round(v.1, 6),
                burn_short: round(v.2, 4),
                burn_long: round(v.3, 4),
            })
            .collect();
        BudgetEntry {
            name: e.budget.name.clone(),
            route: e.budget.route_key(),
            severity: e.budget.severity,
            state: e.state(),
            since_s: st
                .since
                .map(|s| round(now.saturating_duration_since(s).as_secs_f64(), 3)),
            samples: long.total,
            errors: long.errors,
            cancelled: long.cancelled,
            shed: long.shed,
            total_requests: total.total,
            total_errors: total.errors,
            total_latency: e.window.total_latency(),
            observed: Observed {
                p50_ms: q(0.5),
                p95_ms: q(0.95),
                p99_ms: q(0.99),
                error_rate: ratio(long.errors),
                rps: round(long.total as f64 / covered, 3),
                quantile_rel_error: REL_ERROR,
            },
            objectives,
        }
    }
}
