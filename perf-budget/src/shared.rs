//! State shared by every clone of the layer and the handle.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use http::{Method, Request};
#[cfg(feature = "axum")]
use once_cell::race::OnceBox;
use tokio::time::Instant;

use crate::eval::{Hysteresis, Machine, State, Status, burn, wilson_lower};
use crate::histogram::{Counts, REL_ERROR};
use crate::policy::{BudgetPolicy, Measure, OTHER, Objective, RouteBudget, Severity, Transition};
use crate::report::{BudgetEntry, BudgetReport, ObjectiveEntry, Observed};
use crate::window::{Clock, Sums, Window};

type Candidates = Vec<(Option<Method>, usize)>;

/// Evaluation state behind a mutex that the request path only ever `try_lock`s.
#[derive(Debug, Default)]
struct EvalState {
    machines: Vec<Machine>,
    since: Option<Instant>,
    exported: Vec<u64>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) budget: RouteBudget,
    pub(crate) window: Window,
    /// Index of each objective's `over` counter (latency objectives only).
    over_index: Vec<Option<usize>>,
    state: AtomicU8,
    last_eval: AtomicU64,
    shed_seq: AtomicU64,
    pub(crate) share: f64,
    eval: Mutex<EvalState>,
}

impl Entry {
    #[inline]
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
    by_template: HashMap<String, Candidates, RandomState>,
    /// The templates without parameters: a path equal to one of them is what `matchit` would
    /// match first (a static route wins), found with one hash lookup.
    static_paths: HashMap<String, Candidates, RandomState>,
    router: matchit::Router<Candidates>,
    #[cfg(feature = "axum")]
    routes: RouteCache,
    hysteresis: Hysteresis,
}

/// Slots of the [`RouteCache`] (a power of two).
#[cfg(feature = "axum")]
const ROUTE_CACHE: usize = 64;

/// The budget candidates of axum's `MatchedPath` templates, cached by the address of the
/// template string. axum keeps one `Arc<str>` per route for the router's lifetime and hands out
/// clones of it, so after a route's first request its resolution costs one pointer comparison
/// instead of hashing and comparing the template. Each slot is written once (a race, never a
/// wait) and keeps its `MatchedPath` alive, so an equal address always means the same string.
/// A slot taken by another route only sends lookups back to the hash map: bounded, never wrong.
#[cfg(feature = "axum")]
struct RouteCache {
    slots: [OnceBox<CachedRoute>; ROUTE_CACHE],
}

#[cfg(feature = "axum")]
struct CachedRoute {
    key: axum::extract::MatchedPath,
    /// `None`: no budget has this template (the request goes to `__other__`).
    candidates: Option<Candidates>,
}

#[cfg(feature = "axum")]
impl std::fmt::Debug for RouteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.slots.iter().filter(|s| s.get().is_some()).count();
        f.debug_struct("RouteCache").field("used", &used).finish()
    }
}

#[cfg(feature = "axum")]
impl RouteCache {
    fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| OnceBox::new()),
        }
    }

    #[inline]
    fn slot(&self, template: &str) -> &OnceBox<CachedRoute> {
        // Fibonacci hashing of the address: the top bits of the product.
        let h = (template.as_ptr() as usize as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.slots[(h >> (64 - ROUTE_CACHE.trailing_zeros())) as usize]
    }
}

/// The candidate for `method`, else the one for every method.
#[inline]
fn pick(c: &Candidates, method: &Method) -> Option<usize> {
    let mut any = None;
    for (m, i) in c {
        match m {
            Some(m) if m == method => return Some(*i),
            None if any.is_none() => any = Some(*i),
            _ => {}
        }
    }
    any
}

impl Shared {
    pub(crate) fn new(policy: BudgetPolicy) -> Self {
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
        let mut by_template: HashMap<String, Candidates, RandomState> = HashMap::default();
        let mut router = matchit::Router::new();
        let mut entries = Vec::with_capacity(budgets.len());
        for (i, b) in budgets.into_iter().enumerate() {
            if b.name != OTHER {
                by_template
                    .entry(b.route.clone())
                    .or_default()
                    .push((b.method.clone(), i));
            }
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
        for (template, c) in &by_template {
            // Validated when the policy was built; a conflict only loses the path fallback.
            let _ = router.insert(template.clone(), c.clone());
        }
        let static_paths = by_template
            .iter()
            .filter(|(t, _)| !t.contains(['{', '}']))
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect();
        let hysteresis = Hysteresis {
            breach_burn: policy.breach_burn,
            recover_burn: policy.recover_burn,
            breach_evals: policy.breach_evals,
            recover_evals: policy.recover_evals,
        };
        Self {
            clock: Clock::new(Instant::now(), policy.slot_len()),
            policy,
            entries,
            by_template,
            static_paths,
            router,
            #[cfg(feature = "axum")]
            routes: RouteCache::new(),
            hysteresis,
        }
    }

    /// The entry for a request: the route template from axum's `MatchedPath` or perf-middleware's
    /// `RouteTemplate`, else the configured templates matched against the path, else `__other__`.
    #[inline]
    pub(crate) fn lookup<B>(&self, req: &Request<B>) -> usize {
        let other = self.entries.len() - 1;
        #[cfg(feature = "axum")]
        if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
            return self.by_matched_path(m, req.method()).unwrap_or(other);
        }
        let found = match req.extensions().get::<perf_middleware::RouteTemplate>() {
            Some(t) => self
                .by_template
                .get(t.as_str())
                .and_then(|c| pick(c, req.method())),
            None => {
                let path = req.uri().path();
                let candidates = match self.static_paths.get(path) {
                    Some(c) => Some(c),
                    None => self.router.at(path).ok().map(|m| m.value),
                };
                candidates.and_then(|c| pick(c, req.method()))
            }
        };
        found.unwrap_or(other)
    }

    /// The entry of a `MatchedPath` template through the [`RouteCache`].
    #[cfg(feature = "axum")]
    #[inline]
    fn by_matched_path(&self, m: &axum::extract::MatchedPath, method: &Method) -> Option<usize> {
        let template = m.as_str();
        let slot = self.routes.slot(template);
        if let Some(c) = slot.get() {
            if std::ptr::eq(c.key.as_str(), template) {
                return c.candidates.as_ref().and_then(|c| pick(c, method));
            }
            return self.by_template.get(template).and_then(|c| pick(c, method));
        }
        let candidates = self.by_template.get(template).cloned();
        let found = candidates.as_ref().and_then(|c| pick(c, method));
        // Losing the race to another request only leaves the other resolution in the slot.
        let _ = slot.set(Box::new(CachedRoute {
            key: m.clone(),
            candidates,
        }));
        found
    }

    #[inline]
    pub(crate) fn epoch(&self, now: Instant) -> u64 {
        self.clock.epoch(now)
    }

    /// Records a request finished at `now` ([`Clock::nanos`]) and evaluates at most once per slot.
    #[inline]
    pub(crate) fn record(&self, idx: usize, now: u64, nanos: u64, error: bool) {
        let epoch = self.clock.epoch_at(now);
        let e = &self.entries[idx];
        e.window.record(epoch, nanos, error);
        self.maybe_evaluate(idx, epoch);
    }

    #[inline]
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

    fn verdicts(&self, e: &Entry, long: &Sums, short: &Sums) -> Vec<(Status, f64, f64, f64, u64)> {
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
        self.export(e, &verdicts, st);
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
        metrics::counter!("perf_budget_transitions_total", "budget" => budget.clone(), "objective" => objective.clone(), "to" => to).increment(1);
        if let Some(hook) = &self.policy.on_transition {
            hook(t);
        }
    }

    /// Publishes cumulative counters (monotonic) and gauges through the `metrics` facade.
    fn export(&self, e: &Entry, verdicts: &[(Status, f64, f64, f64, u64)], st: &mut EvalState) {
        let c = e.window.cumulative();
        let name = e.budget.name.clone();
        let route = e.budget.route.clone();
        let method = e
            .budget
            .method
            .as_ref()
            .map_or("*", Method::as_str)
            .to_owned();
        let mut values = vec![c.total, c.errors, c.shed];
        values.extend(c.over.iter().copied());
        if st.exported.len() != values.len() {
            st.exported = vec![0; values.len()];
        }
        for (v, last) in values.iter_mut().zip(st.exported.iter_mut()) {
            *v = (*v).max(*last);
            *last = *v;
        }
        let labels = [
            ("budget", name.clone()),
            ("route", route),
            ("method", method),
        ];
        metrics::counter!("perf_budget_requests_total", &labels).absolute(values[0]);
        metrics::counter!("perf_budget_errors_total", &labels).absolute(values[1]);
        metrics::counter!("perf_budget_shed_total", &labels).absolute(values[2]);
        for ((o, oi), v) in e.budget.objectives.iter().zip(&e.over_index).zip(verdicts) {
            let label = o.label();
            if let (Some(i), Objective::Latency { threshold, .. }) = (oi, o) {
                metrics::counter!("perf_budget_slow_requests_total", "budget" => name.clone(), "objective" => label.clone(), "threshold_seconds" => format!("{}", threshold.as_secs_f64()))
                    .absolute(values[3 + i]);
            }
            metrics::gauge!("perf_budget_burn_rate", "budget" => name.clone(), "objective" => label.clone(), "window" => "short").set(v.2);
            metrics::gauge!("perf_budget_burn_rate", "budget" => name.clone(), "objective" => label.clone(), "window" => "long").set(v.3);
        }
        for (o, m) in e.budget.objectives.iter().zip(&st.machines) {
            metrics::gauge!("perf_budget_state", "budget" => name.clone(), "objective" => o.label()).set(f64::from(m.state as u8));
        }
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
