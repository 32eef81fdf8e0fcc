//! Evaluation: the verdict of each objective over the long and short windows, the state
//! machines' step, and the announcement of transitions (log, metric, hook).

use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use crate::eval::{State, Status, burn, wilson_lower};
use crate::hooks::OnTransition;
use crate::policy::{Severity, Transition};
use crate::shared::{Entry, EvalState, Shared};
use crate::window::Sums;

/// One objective's evaluation: status, Wilson lower bound, short and long burn rates, and the
/// count of bad requests in the long window.
pub(crate) type Verdict = (Status, f64, f64, f64, u64);

impl<T: OnTransition, X> Shared<T, X> {
    pub(crate) fn verdicts(&self, e: &Entry, long: &Sums, short: &Sums) -> Vec<Verdict> {
        e.budget
            .objectives
            .iter()
            .zip(&e.over_index)
            .map(|(o, oi)| {
                let bad = |s: &Sums| oi.map_or(s.errors, |i| s.over[i]);
                let a = o.allowance();
                let lower = wilson_lower(bad(long), long.total, self.policy.confidence);
                let status = if long.total < self.policy.min_samples_for(o) {
                    Status::Insufficient
                } else if lower > a {
                    Status::Fail
                } else {
                    Status::Pass
                };
                (
                    status,
                    lower,
                    burn(bad(short), short.total, a),
                    burn(bad(long), long.total, a),
                    bad(long),
                )
            })
            .collect()
    }

    pub(crate) fn step(&self, idx: usize, epoch: u64, st: &mut EvalState) {
        let e = &self.entries[idx];
        let long = e.window.sums(epoch, self.policy.slots, None);
        let short = e.window.sums(epoch, self.policy.short_slots, None);
        let verdicts = self.verdicts(e, &long, &short);
        let mut worst = State::Ok;
        for ((o, v), m) in e
            .budget
            .objectives
            .iter()
            .zip(&verdicts)
            .zip(st.machines.iter_mut())
        {
            let from = m.state;
            if let Some(to) = m.step(v.0, v.2, v.3, &self.hysteresis) {
                st.since = Some(Instant::now());
                let t = Transition {
                    budget: e.budget.name.clone(),
                    objective: o.to_string(),
                    from,
                    to,
                    burn_long: v.3,
                    burn_short: v.2,
                };
                self.announce(e, &t);
            }
            worst = worst.max(m.state);
        }
        e.state.store(worst as u8, Relaxed);
        #[cfg(feature = "metrics")]
        crate::metrics::export(e, &verdicts, &st.machines, &mut st.exported);
    }

    fn announce(&self, e: &Entry, t: &Transition) {
        let (budget, objective, from, to) =
            (&t.budget, &t.objective, t.from.as_str(), t.to.as_str());
        let loud = t.to == State::Breached && e.budget.severity == Severity::Error;
        match t.to {
            State::Breached if loud => {
                tracing::error!(target: "perf_budget", budget, objective, from, to, burn_short = t.burn_short, burn_long = t.burn_long, "performance budget breached")
            }
            State::Breached | State::Warning => {
                tracing::warn!(target: "perf_budget", budget, objective, from, to, burn_short = t.burn_short, burn_long = t.burn_long, "performance budget state changed")
            }
            State::Ok => {
                tracing::info!(target: "perf_budget", budget, objective, from, to, "performance budget recovered")
            }
        }
        if t.to == State::Breached && self.policy.mode == crate::Mode::Shed {
            tracing::warn!(target: "perf_budget", budget, share = e.share, "shedding: admitting {:.0} % of requests", e.share * 100.0);
        }
        #[cfg(feature = "metrics")]
        crate::metrics::transition(t);
        self.on_transition.on_transition(t);
    }
}
