//! State shared by every clone of the layer and the handle.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};

use http::Request;
use perf_middleware::{ServerTiming, SkipRoutes};
use tokio::time::Instant;

use crate::eval::{Hysteresis, Machine, State};
use crate::hooks::OnTransition;
use crate::policy::{BudgetPolicy, Measure, OTHER, RouteBudget, Severity};
use crate::window::{Clock, Window};

/// Evaluation state behind a mutex that the request path only ever `try_lock`s.
#[derive(Debug, Default)]
pub(crate) struct EvalState {
    pub(crate) machines: Vec<Machine>,
    pub(crate) since: Option<Instant>,
    /// The counter values last published (kept monotonic across slot races).
    #[cfg(feature = "metrics")]
    pub(crate) exported: Vec<u64>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) budget: RouteBudget,
    pub(crate) window: Window,
    /// Index of each objective's `over` counter (latency objectives only).
    pub(crate) over_index: Vec<Option<usize>>,
    pub(crate) state: AtomicU8,
    last_eval: AtomicU64,
    shed_seq: AtomicU64,
    pub(crate) share: f64,
    pub(crate) eval: Mutex<EvalState>,
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

/// What every clone of a layer, its services and its handle share. `T` and `X` are the layer's
/// [`OnTransition`] and [`ResponseForBudgetExceeded`] hooks.
pub(crate) struct Shared<T = (), X = ()> {
    pub(crate) policy: BudgetPolicy,
    pub(crate) clock: Clock,
    pub(crate) entries: Vec<Entry>,
    pub(crate) hysteresis: Hysteresis,
    pub(crate) server_timing: ServerTiming,
    /// Set once a request fell to `__other__` and was logged (or when the budget routes were
    /// checked against the router's, so there is nothing to warn about).
    pub(crate) other_seen: AtomicBool,
    /// Routes passed through untouched (`skip_route`).
    pub(crate) skip: SkipRoutes,
    pub(crate) on_transition: T,
    pub(crate) exceeded: X,
}

impl<T, X> std::fmt::Debug for Shared<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("policy", &self.policy)
            .field("server_timing", &self.server_timing)
            .finish_non_exhaustive()
    }
}

impl<T, X> Shared<T, X> {
    pub(crate) fn new(
        policy: BudgetPolicy,
        server_timing: ServerTiming,
        on_transition: T,
        exceeded: X,
    ) -> Self {
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
            other_seen: AtomicBool::new(false),
            skip: SkipRoutes::default(),
            on_transition,
            exceeded,
        }
    }

    /// The entry for a request (see [`crate::route`]); the last one, `__other__`, when no
    /// budget covers it.
    pub(crate) fn lookup<B>(&self, req: &Request<B>) -> usize {
        let found = self
            .policy
            .routes
            .lookup(req.extensions(), req.method(), req.uri().path());
        found.unwrap_or_else(|| {
            self.warn_other(req.method(), req.uri().path());
            self.entries.len() - 1
        })
    }

    /// `true` for the `__other__` entry.
    pub(crate) fn is_other(&self, idx: usize) -> bool {
        idx + 1 == self.entries.len()
    }

    /// Logs one WARN for the first request that counts under `__other__`, when the layer was
    /// not given the router's routes: a budget route with a typo looks like this.
    fn warn_other(&self, method: &http::Method, path: &str) {
        if !self.other_seen.load(Relaxed) && !self.other_seen.swap(true, Relaxed) {
            tracing::warn!(
                target: "perf_budget",
                %method,
                path,
                budgets = self.entries.len() - 1,
                "first request that matches no budget: it counts under `__other__`; if a budget \
                 meant it, check that budget's route (BudgetLayerBuilder::route_table checks the \
                 routes at startup); logged once"
            );
        }
    }

    pub(crate) fn epoch(&self, now: Instant) -> u64 {
        self.clock.epoch(now)
    }
}

impl<T: OnTransition, X> Shared<T, X> {
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
}
