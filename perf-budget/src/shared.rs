//! State shared by every clone of the layer and the handle.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use http::Request;
use perf_middleware::ServerTiming;
use tokio::time::Instant;

use crate::eval::{Hysteresis, Machine, State, Status, burn, wilson_lower};
use crate::histogram::{Counts, REL_ERROR};
use crate::hooks::Hooks;
use crate::policy::{BudgetPolicy, Measure, OTHER, Objective, RouteBudget, Severity, Transition};
use crate::report::{BudgetEntry, BudgetReport, ObjectiveEntry, Observed};
use crate::window::{Clock, Sums, Window};

/// One objective's evaluation: status, Wilson lower bound, short and long burn rates, and the
/// count of bad requests in the long window.
pub(crate) type Verdict = (Status, f64, f64, f64, u64);

/// Evaluation state behind a mutex that the request path only ever `try_lock`s.
#[derive(Debug, Default)]
struct EvalState {
    machines: Vec<Machine>,
    since: Option<Instant>,
    /// The counter values last published (kept monotonic across slot races).
    #[cfg(feature = "metrics")]
    exported: Vec<u64>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) budget: RouteBudget,
    pub(crate) window: Window,
    /// Index of each objective's `over` counter (latency objectives only).
    pub(crate) over_index: Vec<Option<usize>>,
    state: AtomicU8,
    last_eval: AtomicU64,
    shed_seq: AtomicU64,
    pub(crate) share: f64,
    eval: Mutex<EvalState>,
}

impl Entry {
    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed))
    }

    /// Deterministic share admission: admits exactly `share` of calls, evenly spread.
    pub(crate) fn admit(&self) -> bool {
        let seq = self.shed_seq.fetch_add(1, Relaxed);
        let before = (seq as f64 * self.share).floor();
        let after = ((seq + 1) as f64 * self.share).floor();
        after > before
    }

    pub(crate) fn measure(&self) -> Measure {
        self.budget.measure
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) policy: BudgetPolicy,
    pub(crate) clock: Clock,
    pub(crate) entries: Vec<Entry>,
    hysteresis: Hysteresis,
    pub(crate) server_timing: ServerTiming,
    pub(crate) hooks: Hooks,
}

impl Shared {
    pub(crate) fn new(policy: BudgetPolicy, server_timing: ServerTiming, hooks: Hooks) -> Self {
        let mut budgets = policy.budgets.clone();
        budgets.push(RouteBudget {
            name: OTHER.to_owned(),
            method: None,
            route: "*".to_owned(),
            objectives: policy.other.clone(),
            severity: Severity::Error,
            deadline: None,
            priority: None,
            regression: Default::default(),
            measure: Measure::Headers,
        });
        let mut entries = Vec::with_capacity(budgets.len());
        for b in budgets {
            let mut over_index = Vec::new();
            let mut thresholds = Vec::new();
            for o in &b.objectives {
                over_index.push(o.threshold_nanos().map(|t| {
                    thresholds.push(t);
                    thresholds.len() - 1
                }));
            }
            let share = policy.share_for(b.priority.as_deref());
            entries.push(Entry {
                window: Window::new(policy.slots, thresholds),
                over_index,
                state: AtomicU8::new(0),
                last_eval: AtomicU64::new(1),
                shed_seq: AtomicU64::new(0),
                share,
                eval: Mutex::new(EvalState {
                    machines: vec![Machine::default(); b.objectives.len()],
                    ..EvalState::default()
                }),
                budget: b,
            });
        }
        let hysteresis = Hysteresis {
            breach_burn: policy.breach_burn,
            recover_burn: policy.recover_burn,
            breach_evals: policy.breach_evals,
            recover_evals: policy.recover_evals,
        };
        #[cfg(feature = "metrics")]
        crate::metrics::describe();
        Self {
            clock: Clock::new(Instant::now(), policy.slot_len()),
            policy,
            entries,
            hysteresis,
            server_timing,
            hooks,
        }
    }

    /// The entry for a request (see [`crate::route`]); the last one, `__other__`, when no
    /// budget covers it.
    pub(crate) fn lookup<B>(&self, req: &Request<B>) -> usize {
        let found = self
            .policy
            .routes
            .lookup(req.extensions(), req.method(), req.uri().path());
        found.unwrap_or(self.entries.len() - 1)
    }

    pub(crate) fn epoch(&self, now: Instant) -> u64 {
        self.clock.epoch(now)
    }

    /// Records a request finished at `now` ([`Clock::nanos`]) and evaluates at most once per slot.
    pub(crate) fn record(&self, idx: usize, now: u64, nanos: u64, error: bool) {
        let epoch = self.clock.epoch_at(now);
        let e = &self.entries[idx];
        e.window.record(epoch, nanos, error);
        self.maybe_evaluate(idx, epoch);
    }

    pub(crate) fn maybe_evaluate(&self, idx: usize, epoch: u64) {
        let e = &self.entries[idx];
        let last = e.last_eval.load(Relaxed);
        if last < epoch
            && e.last_eval
                .compare_exchange(last, epoch, Relaxed, Relaxed)
                .is_ok()
            && let Ok(mut st) = e.eval.try_lock()
        {
            self.step(idx, epoch, &mut st);
        }
    }

    /// Steps every entry whose state machine has not yet seen the current epoch.
    pub(crate) fn evaluate_all(&self) {
        let epoch = self.epoch(Instant::now());
        for (idx, e) in self.entries.iter().enumerate() {
            let last = e.last_eval.load(Relaxed);
            if last < epoch
                && e.last_eval
                    .compare_exchange(last, epoch.max(last), Relaxed, Relaxed)
                    .is_ok()
            {
                let mut st = e.eval.lock().unwrap_or_else(|p| p.into_inner());
                self.step(idx, epoch, &mut st);
            }
        }
    }

    fn verdicts(&self, e: &Entry, long: &Sums, short: &Sums) -> Vec<Verdict> {
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

    fn step(&self, idx: usize, epoch: u64, st: &mut EvalState) {
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
        self.hooks.on_transition.on_transition(t);
    }

    pub(crate) fn report(&self) -> BudgetReport {
        self.evaluate_all();
        let now = Instant::now();
        let epoch = self.epoch(now);
        let elapsed = now
            .saturating_duration_since(self.clock.start())
            .as_secs_f64();
        let covered = elapsed
            .min(self.policy.window.as_secs_f64())
            .max(self.clock.slot().as_secs_f64().min(elapsed))
            .max(1e-9);
        let mut budgets = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let mut hist = Counts::default();
            let long = e.window.sums(epoch, self.policy.slots, Some(&mut hist));
            let short = e.window.sums(epoch, self.policy.short_slots, None);
            let verdicts = self.verdicts(e, &long, &short);
            let st = e.eval.lock().unwrap_or_else(|p| p.into_inner());
            let q = |q: f64| hist.quantile(q).map(|us| us as f64 / 1000.0);
            let objectives = e
                .budget
                .objectives
                .iter()
                .zip(&verdicts)
                .zip(&st.machines)
                .map(|((o, v), m)| ObjectiveEntry {
                    expr: o.to_string(),
                    metric: o.label(),
                    allowance: o.allowance(),
                    threshold_ms: match o {
                        Objective::Latency { threshold, .. } => {
                            Some(threshold.as_secs_f64() * 1000.0)
                        }
                        Objective::ErrorRate { .. } => None,
                    },
                    status: v.0,
                    state: m.state,
                    samples: long.total,
                    bad: v.4,
                    allowed: (long.total as f64 * o.allowance()).floor() as u64,
                    min_samples: self.policy.min_samples_for(o),
                    observed_ratio: if long.total == 0 {
                        0.0
                    } else {
                        v.4 as f64 / long.total as f64
                    },
                    lower_bound: v.1,
                    burn_short: v.2,
                    burn_long: v.3,
                })
                .collect();
            let cumulative = e.window.cumulative();
            budgets.push(BudgetEntry {
                name: e.budget.name.clone(),
                route: e.budget.route_key(),
                severity: e.budget.severity,
                state: e.state(),
                since_s: st
                    .since
                    .map(|s| now.saturating_duration_since(s).as_secs_f64()),
                samples: long.total,
                errors: long.errors,
                cancelled: long.cancelled,
                shed: long.shed,
                total_requests: cumulative.total,
                observed: Observed {
                    p50_ms: q(0.5),
                    p95_ms: q(0.95),
                    p99_ms: q(0.99),
                    error_rate: if long.total == 0 {
                        0.0
                    } else {
                        long.errors as f64 / long.total as f64
                    },
                    rps: long.total as f64 / covered,
                    quantile_rel_error: REL_ERROR,
                },
                objectives,
            });
        }
        BudgetReport::new(
            self.policy.window.as_secs_f64(),
            self.policy.slots,
            self.policy.confidence,
            self.policy.instance.clone(),
            budgets,
        )
    }
}
