//! The budget metrics: their names, and (feature `metrics`) their publication through the
//! `metrics` facade at evaluation time (once per slot), never per request.
//!
//! Names follow the family convention (`perf.budget.*`, dotted; Prometheus shows
//! `perf_budget_requests`); the route label is `http.route` (the template, or
//! [`UNMATCHED_ROUTE`](perf_middleware::UNMATCHED_ROUTE) for `__other__`) and the method label `http.request.method` (a
//! [`KnownMethod`](perf_middleware::KnownMethod), absent for a budget of every method).

#[cfg(feature = "metrics")]
pub(crate) use export::{describe, export, transition};

/// Requests counted by each budget (counter, cumulative).
pub const REQUESTS: &str = "perf.budget.requests";
/// Requests that counted as errors (counter).
pub const ERRORS: &str = "perf.budget.errors";
/// Requests shed in mode `shed` (counter).
pub const SHED: &str = "perf.budget.shed";
/// Requests at or over a latency objective's threshold (counter).
pub const SLOW_REQUESTS: &str = "perf.budget.slow_requests";
/// Burn rate of each objective over the short and the long window (gauge).
pub const BURN_RATE: &str = "perf.budget.burn_rate";
/// State of each objective: 0 ok, 1 warning, 2 breached (gauge).
pub const STATE: &str = "perf.budget.state";
/// State transitions (counter).
pub const TRANSITIONS: &str = "perf.budget.transitions";

#[cfg(feature = "metrics")]
mod export {
    use ::metrics::Unit;
    use perf_middleware::{KnownMethod, UNMATCHED_ROUTE};

    use super::*;
    use crate::engine::Verdict;
    use crate::eval::Machine;
    use crate::policy::{OTHER, Objective, Transition};
    use crate::shared::Entry;

    /// Describes the metrics (units, help and label names) to the installed recorder: when the
    /// layer is built and again at each export (once per slot), so a recorder installed after
    /// the layer still gets every `# HELP` line.
    pub(crate) fn describe() {
        const ROUTE: &str = "labels budget, http.route (the template; unmatched for __other__), \
                             http.request.method (a budget of one method)";
        const OBJECTIVE: &str = "labels budget, objective (p95, error_rate)";
        ::metrics::describe_counter!(
            REQUESTS,
            Unit::Count,
            format!("requests counted against each performance budget; {ROUTE}")
        );
        ::metrics::describe_counter!(
            ERRORS,
            Unit::Count,
            format!("requests that counted as errors (5xx, deadline, shed by default); {ROUTE}")
        );
        ::metrics::describe_counter!(
            SHED,
            Unit::Count,
            format!("requests answered 503 while shedding a breached budget; {ROUTE}")
        );
        ::metrics::describe_counter!(
            SLOW_REQUESTS,
            Unit::Count,
            format!(
                "requests at or over a latency objective's threshold; {OBJECTIVE}, threshold_seconds"
            )
        );
        ::metrics::describe_gauge!(
            BURN_RATE,
            format!("error-budget burn rate per objective; {OBJECTIVE}, window (short, long)")
        );
        ::metrics::describe_gauge!(
            STATE,
            format!("objective state: 0 ok, 1 warning, 2 breached; {OBJECTIVE}")
        );
        ::metrics::describe_counter!(
            TRANSITIONS,
            Unit::Count,
            format!("objective state transitions; {OBJECTIVE}, to (ok, warning, breached)")
        );
    }

    /// Counts a state transition.
    pub(crate) fn transition(t: &Transition) {
        let labels = [
            ("budget", t.budget.clone()),
            ("objective", t.objective.clone()),
            ("to", t.to.as_str().to_owned()),
        ];
        ::metrics::counter!(TRANSITIONS, &labels).increment(1);
    }

    /// Publishes an entry's cumulative counters (monotonic: never below `exported`, the values
    /// published last) and its gauges.
    pub(crate) fn export(
        e: &Entry,
        verdicts: &[Verdict],
        machines: &[Machine],
        exported: &mut Vec<u64>,
    ) {
        describe();
        let c = e.window.cumulative();
        let name = e.budget.name().to_owned();
        let mut values = vec![c.total, c.errors, c.shed];
        values.extend(c.over.iter().copied());
        if exported.len() != values.len() {
            *exported = vec![0; values.len()];
        }
        for (v, last) in values.iter_mut().zip(exported.iter_mut()) {
            *v = (*v).max(*last);
            *last = *v;
        }
        let route = if e.budget.name() == OTHER {
            UNMATCHED_ROUTE
        } else {
            e.budget.route()
        };
        let mut labels = vec![("budget", name.clone()), ("http.route", route.to_owned())];
        if let Some(m) = e.budget.method() {
            labels.push((
                "http.request.method",
                KnownMethod::from_method(m).as_str().to_owned(),
            ));
        }
        ::metrics::counter!(REQUESTS, &labels).absolute(values[0]);
        ::metrics::counter!(ERRORS, &labels).absolute(values[1]);
        ::metrics::counter!(SHED, &labels).absolute(values[2]);
        let objectives = e.budget.objectives().iter().zip(&e.over_index);
        for (((o, oi), v), m) in objectives.zip(verdicts).zip(machines) {
            let label = o.label();
            if let (Some(i), Objective::Latency { threshold, .. }) = (oi, o) {
                let threshold = threshold.as_secs_f64().to_string();
                let labels = [
                    ("budget", name.clone()),
                    ("objective", label.clone()),
                    ("threshold_seconds", threshold),
                ];
                ::metrics::counter!(SLOW_REQUESTS, &labels).absolute(values[3 + i]);
            }
            for (window, burn) in [("short", v.2), ("long", v.3)] {
                let labels = [
                    ("budget", name.clone()),
                    ("objective", label.clone()),
                    ("window", window.to_owned()),
                ];
                ::metrics::gauge!(BURN_RATE, &labels).set(burn);
            }
            let labels = [("budget", name.clone()), ("objective", label)];
            ::metrics::gauge!(STATE, &labels).set(f64::from(m.state as u8));
        }
    }
}
