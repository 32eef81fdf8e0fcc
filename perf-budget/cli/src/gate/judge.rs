//! The client's and the server's view judged against the budgets, and the run's validity.

use perf_budget::report::BudgetEntry;
use perf_budget::{BudgetPolicy, BudgetReport, Objective, Severity, Status};

use crate::gate::*;
use crate::load::{RunStats, View, ms};

pub(crate) fn client_stats(policy: &BudgetPolicy, views: &[View]) -> Vec<ClientBudget> {
    let z = 1.96;
    views
        .iter()
        .enumerate()
        .filter(|(_, v)| v.n() > 0)
        .map(|(i, v)| {
            let n = v.n() as f64;
            let quantiles = [0.5, 0.95, 0.99]
                .iter()
                .map(|&q| {
                    let d = z * (n * q * (1.0 - q)).sqrt();
                    let lo = ((n * q - d).floor() / n).clamp(0.0, 1.0);
                    let hi = ((n * q + d).ceil() / n).clamp(0.0, 1.0);
                    (
                        q,
                        round3(ms(v.hist.quantile(q))),
                        round3(ms(v.hist.quantile(lo))),
                        round3(ms(v.hist.quantile(hi))),
                    )
                })
                .collect();
            ClientBudget {
                budget: policy
                    .budgets()
                    .get(i)
                    .map_or(perf_budget::OTHER, |b| b.name())
                    .to_owned(),
                n: v.n(),
                errors: v.errors,
                timeouts: v.timeouts,
                error_rate: (v.errors as f64 / n * 1e6).round() / 1e6,
                max_ms: round3(ms(v.hist.max())),
                quantiles,
            }
        })
        .collect()
}

/// Milliseconds to the microsecond, as printed: `7.279`, not `7.278714000000001`.
fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Judges the client view (exact counts from the run, or oha percentiles).
pub(crate) fn judge_client(
    policy: &BudgetPolicy,
    views: &[View],
    stats: &[ClientBudget],
    checks: &mut Vec<Check>,
) {
    for (b, v) in policy.budgets().iter().zip(views) {
        if v.n() == 0 {
            continue;
        }
        for (o, over) in b.objectives().iter().zip(&v.over) {
            let expr = o.to_string();
            let need = policy.min_samples_for(o);
            let n = v.n();
            let sev_fail = if b.severity() == Severity::Error {
                "fail"
            } else {
                "warn"
            };
            if n < need {
                let outcome = if b.severity() == Severity::Error {
                    "fail"
                } else {
                    "warn"
                };
                checks.push(check("validity", "client", Some(b.name()), Some(&expr), outcome, format!("too few samples: {n} of {need} needed to judge {expr}; run longer or faster")));
                continue;
            }
            let bad = match o {
                Objective::Latency { .. } => *over,
                _ => v.errors,
            };
            let ratio = bad as f64 / n as f64;
            let observed = match o {
                Objective::Latency { quantile, .. } => {
                    let s = stats.iter().find(|s| s.budget == b.name());
                    let val = s.map(|s| {
                        s.q(*quantile)
                            .map_or_else(|| ms(v.hist.quantile(*quantile)), |x| x.0)
                    });
                    format!("{} = {:.1}ms", o.label(), val.unwrap_or(0.0))
                }
                _ => format!("error_rate = {:.3}%", ratio * 100.0),
            };
            let ok = ratio <= o.allowance();
            checks.push(check(
                "budget",
                "client",
                Some(b.name()),
                Some(&expr),
                if ok { "pass" } else { sev_fail },
                format!(
                    "{observed}: {bad} of {n} missed ({:.2}% vs {:.2}% allowed)",
                    ratio * 100.0,
                    o.allowance() * 100.0
                ),
            ));
        }
    }
}

/// Judges the server's view with the sample floors of the budgets given (`--config`), as the
/// client view is: a gate file with `sample_floor` is an explicit choice for both views.
pub(crate) fn local_floor(policy: &BudgetPolicy, report: &mut BudgetReport) {
    for b in &mut report.budgets {
        let Some(local) = policy.budgets().iter().find(|l| l.name() == b.name) else {
            continue;
        };
        for o in &mut b.objectives {
            let Some(lo) = local.objectives().iter().find(|x| x.to_string() == o.expr) else {
                continue;
            };
            o.min_samples = policy.min_samples_for(lo);
            o.status = if o.samples < o.min_samples {
                Status::Insufficient
            } else if o.lower_bound > o.allowance {
                Status::Fail
            } else {
                Status::Pass
            };
        }
    }
    let pass = report.failures().next().is_none();
    report.pass = pass;
}

/// The server's `q` quantile in ms (p50, p95 or p99: those the report carries), when it has one.
pub(crate) fn server_quantile(b: &BudgetEntry, q: f64) -> Option<f64> {
    let o = &b.observed;
    [(0.5, o.p50_ms), (0.95, o.p95_ms), (0.99, o.p99_ms)]
        .into_iter()
        .find(|x| (x.0 - q).abs() < 1e-9)
        .and_then(|x| x.1)
}

/// `p95 = 12.3ms: ` for a latency objective whose quantile the server view carries.
fn server_observed(b: &BudgetEntry, metric: &str) -> String {
    let q = metric.strip_prefix('p').and_then(|p| p.parse::<f64>().ok());
    match q.and_then(|q| server_quantile(b, q / 100.0)) {
        Some(v) => format!("{metric} = {v:.1}ms: "),
        None => String::new(),
    }
}

/// Judges the server's report.
pub(crate) fn judge_server(report: &BudgetReport, checks: &mut Vec<Check>) {
    for b in &report.budgets {
        for o in &b.objectives {
            let observed = server_observed(b, &o.metric);
            let (outcome, msg) = match (o.status, b.severity) {
                (Status::Pass, _) => (
                    "pass",
                    format!(
                        "{observed}{} of {} missed, lower bound {:.2}%",
                        o.bad,
                        o.samples,
                        o.lower_bound * 100.0
                    ),
                ),
                (Status::Fail, Severity::Error) => (
                    "fail",
                    format!(
                        "{observed}{} of {} missed ({} allowed), lower bound {:.2}% > {:.2}%",
                        o.bad,
                        o.samples,
                        o.allowed,
                        o.lower_bound * 100.0,
                        o.allowance * 100.0
                    ),
                ),
                (Status::Fail, Severity::Warn) => (
                    "warn",
                    format!(
                        "{observed}{} of {} missed (warn severity)",
                        o.bad, o.samples
                    ),
                ),
                (Status::Insufficient, Severity::Error) => {
                    let message = format!(
                        "too few samples in the server's view of this run: {} of {} needed to judge {}; run longer or faster",
                        o.samples, o.min_samples, o.expr
                    );
                    let c = check(
                        "validity",
                        "server",
                        Some(&b.name),
                        Some(&o.expr),
                        "fail",
                        message,
                    );
                    checks.push(c);
                    continue;
                }
                (Status::Insufficient, Severity::Warn) => (
                    "skipped",
                    format!(
                        "{} samples in the server's view of this run, {} needed",
                        o.samples, o.min_samples
                    ),
                ),
            };
            checks.push(check(
                "budget",
                "server",
                Some(&b.name),
                Some(&o.expr),
                outcome,
                msg,
            ));
        }
    }
}

/// Client vs server p50, p95 and p99, where both views have them: a client quantile more than
/// `factor` times the server's (and 5 ms above it) points at time spent outside the layer —
/// queueing in the accept queue, proxies or the client. One note per budget, naming each
/// quantile that gaps.
pub(crate) fn gap(
    stats: &[ClientBudget],
    report: &BudgetReport,
    factor: f64,
    checks: &mut Vec<Check>,
) {
    for s in stats {
        let Some(b) = report.budget(&s.budget) else {
            continue;
        };
        let gaps: Vec<String> = [0.5, 0.95, 0.99]
            .into_iter()
            .filter_map(|q| Some((q, s.q(q)?.0, server_quantile(b, q)?)))
            .filter(|&(_, c, srv)| c > srv * factor && c - srv > 5.0)
            .map(|(q, c, srv)| format!("p{} {c:.1}ms vs {srv:.1}ms", q * 100.0))
            .collect();
        if !gaps.is_empty() {
            checks.push(check("note", "client", Some(&s.budget), None, "warn", format!("client vs server {}: more than {factor}x the server's, time spent outside the layer (accept queue, proxies, client)", gaps.join(", "))).key("gap"));
        }
    }
}

/// Validity of the run itself.
pub(crate) fn validity(run: &RunStats, v: &Validity, checks: &mut Vec<Check>) {
    let mut push = |key: &str, ok: bool, msg: String| {
        let outcome = if ok { "pass" } else { "fail" };
        checks.push(check("validity", "run", None, None, outcome, msg).key(key));
    };
    if !run.open_model {
        push(
            "closed_loop",
            v.allow_closed_loop,
            format!(
                "closed-loop client: latency is measured from the actual send, so stalls hide (coordinated omission){}",
                if v.allow_closed_loop {
                    "; accepted by --allow-closed-loop"
                } else {
                    "; use an open-model run (oha -q R --latency-correction and --oha-rate R) or --allow-closed-loop"
                }
            ),
        );
        return;
    }
    let ratio = run.achieved_rate / run.target_rate;
    push(
        "rate",
        ratio >= v.min_rate_ratio,
        format!(
            "achieved {:.1} req/s of {:.1} target ({:.1}%, at least {:.0}% needed)",
            run.achieved_rate,
            run.target_rate,
            ratio * 100.0,
            v.min_rate_ratio * 100.0
        ),
    );
    let dropped = run.dropped as f64 / run.scheduled.max(1) as f64;
    push(
        "dropped",
        dropped <= v.max_dropped,
        format!(
            "{} of {} scheduled sends dropped ({:.2}%, at most {:.2}%){}",
            run.dropped,
            run.scheduled,
            dropped * 100.0,
            v.max_dropped * 100.0,
            if dropped > v.max_dropped {
                ": the target rate cannot be reached within --max-in-flight"
            } else {
                ""
            }
        ),
    );
    let lag_ok = run.lag_p99_ms <= v.max_lag_p99.as_secs_f64() * 1000.0;
    push(
        "lag",
        lag_ok,
        format!(
            "schedule lag p99 {:.2}ms (at most {:.0}ms), max {:.1}ms",
            run.lag_p99_ms,
            v.max_lag_p99.as_secs_f64() * 1000.0,
            run.lag_max_ms
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p50: Option<f64>, p95: Option<f64>, p99: Option<f64>) -> BudgetReport {
        let policy = BudgetPolicy::from_toml(
            "[[budget]]\nname = \"order\"\nroute = \"GET /orders/{id}\"\nobjectives = [\"p95 < 100ms\"]\n",
        )
        .unwrap();
        let (_layer, handle) = perf_budget::BudgetLayer::pair(policy);
        let mut r = handle.report();
        r.budgets[0].objectives[0].status = Status::Pass;
        let o = &mut r.budgets[0].observed;
        (o.p50_ms, o.p95_ms, o.p99_ms) = (p50, p95, p99);
        r
    }

    fn client(p50: f64, p95: f64, p99: f64) -> Vec<ClientBudget> {
        vec![ClientBudget {
            budget: "order".into(),
            n: 1000,
            errors: 0,
            timeouts: 0,
            error_rate: 0.0,
            max_ms: p99,
            quantiles: [(0.5, p50), (0.95, p95), (0.99, p99)]
                .map(|(q, v)| (q, v, v, v))
                .to_vec(),
        }]
    }

    #[test]
    fn the_gap_check_names_each_quantile_that_gaps_where_both_views_have_it() {
        let mut checks = Vec::new();
        // p50: 30 vs 10 ms gaps; p95: 40 vs 30 does not (1.3x); p99: 50 vs 20 gaps.
        let server = report(Some(10.0), Some(30.0), Some(20.0));
        gap(&client(30.0, 40.0, 50.0), &server, 2.0, &mut checks);
        let [c] = &checks[..] else {
            panic!("one note: {checks:#?}")
        };
        assert_eq!((c.key.as_str(), c.outcome.as_str()), ("gap", "warn"));
        assert!(
            c.message
                .starts_with("client vs server p50 30.0ms vs 10.0ms, p99 50.0ms vs 20.0ms:"),
            "{}",
            c.message
        );
        // Small absolute gaps (under 5 ms) and a server view without quantiles say nothing.
        checks.clear();
        gap(
            &client(3.0, 4.0, 5.0),
            &report(Some(0.5), Some(0.5), Some(0.5)),
            2.0,
            &mut checks,
        );
        gap(
            &client(30.0, 40.0, 50.0),
            &report(None, None, None),
            2.0,
            &mut checks,
        );
        assert!(checks.is_empty(), "{checks:#?}");
    }

    #[test]
    fn server_checks_carry_the_runs_quantile_when_the_report_has_it() {
        let mut checks = Vec::new();
        judge_server(&report(None, Some(42.0), None), &mut checks);
        judge_server(&report(None, None, None), &mut checks);
        let messages: Vec<&str> = checks.iter().map(|c| c.message.as_str()).collect();
        assert!(messages[0].starts_with("p95 = 42.0ms: "), "{messages:?}");
        assert!(!messages[1].contains("p95 ="), "{messages:?}");
    }
}
