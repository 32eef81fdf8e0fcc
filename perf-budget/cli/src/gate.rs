//! `perf-budget gate`: judge a load run against the budgets, on the client's and the server's
//! view, compare with a baseline, and write text, JSON, JUnit XML and Markdown.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use perf_budget::{BudgetPolicy, BudgetReport, Objective, Severity, Status};
use serde::{Deserialize, Serialize};

use crate::load::{self, Plan, RunStats, Target, View};

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
    pub(crate) server: Option<BudgetReport>,
    pub(crate) checks: Vec<Check>,
}

fn check(
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

pub(crate) fn client_stats(policy: &BudgetPolicy, views: &[View]) -> Vec<ClientBudget> {
    let z = 1.96;
    views
        .iter()
        .enumerate()
        .filter(|(_, v)| v.n() > 0)
        .map(|(i, v)| {
            let n = v.n() as f64;
            let ms = |us: u64| us as f64 / 1000.0;
            let quantiles = [0.5, 0.95, 0.99]
                .iter()
                .map(|&q| {
                    let d = z * (n * q * (1.0 - q)).sqrt();
                    let lo = ((n * q - d).floor() / n).clamp(0.0, 1.0);
                    let hi = ((n * q + d).ceil() / n).clamp(0.0, 1.0);
                    (
                        q,
                        ms(v.hist.value_at_quantile(q)),
                        ms(v.hist.value_at_quantile(lo)),
                        ms(v.hist.value_at_quantile(hi)),
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
                error_rate: v.errors as f64 / n,
                max_ms: ms(v.hist.max()),
                quantiles,
            }
        })
        .collect()
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
                        s.q(*quantile).map_or_else(
                            || v.hist.value_at_quantile(*quantile) as f64 / 1000.0,
                            |x| x.0,
                        )
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

/// Judges the server's report.
pub(crate) fn judge_server(report: &BudgetReport, checks: &mut Vec<Check>) {
    for b in &report.budgets {
        for o in &b.objectives {
            let (outcome, msg) = match (o.status, b.severity) {
                (Status::Pass, _) => (
                    "pass",
                    format!(
                        "{} of {} missed, lower bound {:.2}%",
                        o.bad,
                        o.samples,
                        o.lower_bound * 100.0
                    ),
                ),
                (Status::Fail, Severity::Error) => (
                    "fail",
                    format!(
                        "{} of {} missed ({} allowed), lower bound {:.2}% > {:.2}%",
                        o.bad,
                        o.samples,
                        o.allowed,
                        o.lower_bound * 100.0,
                        o.allowance * 100.0
                    ),
                ),
                (Status::Fail, Severity::Warn) => (
                    "warn",
                    format!("{} of {} missed (warn severity)", o.bad, o.samples),
                ),
                (Status::Insufficient, _) => (
                    "skipped",
                    format!(
                        "{} samples in the server window, {} needed",
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

/// Client vs server p99: a large gap points at queueing outside the layer.
pub(crate) fn gap(
    stats: &[ClientBudget],
    report: &BudgetReport,
    factor: f64,
    checks: &mut Vec<Check>,
) {
    for s in stats {
        let (Some(c), Some(srv)) = (
            s.q(0.99),
            report.budget(&s.budget).and_then(|b| b.observed.p99_ms),
        ) else {
            continue;
        };
        if c.0 > srv * factor && c.0 - srv > 5.0 {
            checks.push(check("note", "client", Some(&s.budget), None, "warn", format!("client p99 {:.1}ms is more than {factor}x the server's {srv:.1}ms: queueing outside the layer (accept queue, proxies, client)", c.0)));
        }
    }
}

/// Regression against a baseline: relative tolerance, absolute floor and evidence.
pub(crate) fn regression(
    policy: &BudgetPolicy,
    new: &[ClientBudget],
    base: &[ClientBudget],
    checks: &mut Vec<Check>,
) {
    for b in policy.budgets() {
        let (Some(n), Some(o)) = (
            new.iter().find(|s| s.budget == b.name()),
            base.iter().find(|s| s.budget == b.name()),
        ) else {
            continue;
        };
        let r = b.regression();
        let quantiles = if r.quantiles.is_empty() && r.error_rate.is_none() {
            vec![(0.95, 0.2), (0.99, 0.25)]
        } else {
            r.quantiles.clone()
        };
        let floor = r.floor.as_secs_f64() * 1000.0;
        for (q, rel) in quantiles {
            let name = format!("p{}", q * 100.0);
            let (Some((nv, nlo, _)), Some((bv, _, bhi))) = (n.q(q), o.q(q)) else {
                checks.push(check(
                    "regression",
                    "client",
                    Some(b.name()),
                    Some(&name),
                    "skipped",
                    format!("{name} not recorded in both runs"),
                ));
                continue;
            };
            let limit = bv * (1.0 + rel);
            let worse = nv > limit && nv - bv > floor && nlo > bhi * (1.0 + rel);
            let msg = format!(
                "{name} {nv:.2}ms vs baseline {bv:.2}ms (+{:.0}% allowed, floor {floor}ms; new CI low {nlo:.2}ms vs baseline CI high x tolerance {:.2}ms)",
                rel * 100.0,
                bhi * (1.0 + rel)
            );
            checks.push(check(
                "regression",
                "client",
                Some(b.name()),
                Some(&name),
                if worse { "fail" } else { "pass" },
                msg,
            ));
        }
        if let Some(pp) = r.error_rate {
            let (p1, p2) = (o.error_rate, n.error_rate);
            let pooled = (o.errors + n.errors) as f64 / (o.n + n.n) as f64;
            let se = (pooled * (1.0 - pooled) * (1.0 / o.n as f64 + 1.0 / n.n as f64)).sqrt();
            let z = if se > 0.0 { (p2 - p1) / se } else { 0.0 };
            let worse = p2 - p1 > pp && z > 1.96;
            checks.push(check(
                "regression",
                "client",
                Some(b.name()),
                Some("error_rate"),
                if worse { "fail" } else { "pass" },
                format!(
                    "error rate {:.3}% vs baseline {:.3}% (+{:.2}pp allowed, z = {z:.2})",
                    p2 * 100.0,
                    p1 * 100.0,
                    pp * 100.0
                ),
            ));
        }
    }
}

/// Validity of the run itself.
pub(crate) fn validity(run: &RunStats, v: &Validity, checks: &mut Vec<Check>) {
    let mut push = |ok: bool, msg: String| {
        checks.push(check(
            "validity",
            "run",
            None,
            None,
            if ok { "pass" } else { "fail" },
            msg,
        ))
    };
    if !run.open_model {
        push(
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
        lag_ok,
        format!(
            "schedule lag p99 {:.2}ms (at most {:.0}ms), max {:.1}ms",
            run.lag_p99_ms,
            v.max_lag_p99.as_secs_f64() * 1000.0,
            run.lag_max_ms
        ),
    );
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

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Output {
    pub(crate) fn junit(&self) -> String {
        let failures = self.checks.iter().filter(|c| c.outcome == "fail").count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.outcome == "skipped")
            .count();
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"perf-budget\" tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"perf-budget gate\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n",
            n = self.checks.len()
        );
        for c in &self.checks {
            let class = format!(
                "perf-budget.{}.{}.{}",
                c.class,
                c.view,
                c.budget.as_deref().unwrap_or("run")
            );
            let name = c
                .objective
                .clone()
                .unwrap_or_else(|| c.message.split(':').next().unwrap_or("check").to_owned());
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}\">",
                xml(&class),
                xml(&name)
            );
            match c.outcome.as_str() {
                "fail" => {
                    let _ = write!(
                        x,
                        "<failure message=\"{}\" type=\"{}\">{}</failure>",
                        xml(&c.message),
                        xml(&c.class),
                        xml(&c.message)
                    );
                }
                "skipped" => {
                    let _ = write!(x, "<skipped message=\"{}\"/>", xml(&c.message));
                }
                _ => {
                    let _ = write!(
                        x,
                        "<system-out>{}</system-out>",
                        xml(&format!("{}: {}", c.outcome, c.message))
                    );
                }
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }

    fn rows(&self) -> Vec<[String; 6]> {
        self.checks
            .iter()
            .map(|c| {
                [
                    c.outcome.to_uppercase(),
                    c.class.clone(),
                    c.view.clone(),
                    c.budget.clone().unwrap_or_default(),
                    c.objective.clone().unwrap_or_default(),
                    c.message.clone(),
                ]
            })
            .collect()
    }

    fn header(&self) -> String {
        let mut s = format!(
            "perf-budget gate: {} (exit {})",
            self.verdict.to_uppercase(),
            self.exit_code
        );
        if let Some(r) = &self.run {
            let _ = write!(
                s,
                "\nrun: {:.1}/{:.1} req/s, {} sent, {} dropped, lag p99 {:.2}ms, {}s after {}s warm-up",
                r.achieved_rate,
                r.target_rate,
                r.sent,
                r.dropped,
                r.lag_p99_ms,
                r.duration_s,
                r.warmup_s
            );
        }
        s
    }

    pub(crate) fn text(&self) -> String {
        let head = ["outcome", "class", "view", "budget", "objective", "detail"];
        let rows = self.rows();
        let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, c) in w.iter_mut().zip(r).take(5) {
                *w = (*w).max(c.len());
            }
        }
        let mut out = self.header();
        out.push('\n');
        let line = |cells: Vec<&str>| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i < 5 {
                    let _ = write!(l, "{c:<w$}  ", w = w[i]);
                } else {
                    l.push_str(c);
                }
            }
            l.trim_end().to_owned() + "\n"
        };
        out += &line(head.to_vec());
        for r in &rows {
            out += &line(r.iter().map(String::as_str).collect());
        }
        if !self.client.is_empty() {
            out.push_str("\nclient view (latency from the scheduled send):\n");
            for c in &self.client {
                let q: Vec<String> = c
                    .quantiles
                    .iter()
                    .map(|q| format!("p{} {:.2}ms", q.0 * 100.0, q.1))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {:<20} n={:<7} errors={:<5} {} max {:.2}ms",
                    c.budget,
                    c.n,
                    c.errors,
                    q.join(" "),
                    c.max_ms
                );
            }
        }
        if let Some(s) = &self.server {
            out.push_str("\nserver view:\n");
            out += &s.to_text();
        }
        out
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "### {}\n\n| outcome | class | view | budget | objective | detail |\n|---|---|---|---|---|---|\n",
            self.header().replace('\n', "\n\n")
        );
        for r in self.rows() {
            let _ = writeln!(out, "| {} |", r.map(|c| c.replace('|', "\\|")).join(" | "));
        }
        out
    }
}

/// Reads an `oha --json` result (aggregate percentiles of one request kind).
pub(crate) fn read_oha(
    json: &str,
    objectives: &[Objective],
    open_rate: Option<f64>,
) -> Result<(View, ClientBudget, RunStats), String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not an oha JSON result: {e}"))?;
    let summary = v
        .get("summary")
        .ok_or("not an oha JSON result: no `summary`")?;
    let pct = v
        .get("latencyPercentiles")
        .ok_or("not an oha JSON result: no `latencyPercentiles`")?;
    let codes = v
        .get("statusCodeDistribution")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    let errs = v
        .get("errorDistribution")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    let count = |m: &serde_json::Map<String, serde_json::Value>, f: &dyn Fn(&str) -> bool| -> u64 {
        m.iter()
            .filter(|(k, _)| f(k))
            .filter_map(|(_, v)| v.as_u64())
            .sum()
    };
    let n = count(&codes, &|_| true) + count(&errs, &|_| true);
    let errors = count(&codes, &|k| k.starts_with('5')) + count(&errs, &|_| true);
    let get_ms = |key: &str| pct.get(key).and_then(|x| x.as_f64()).map(|s| s * 1000.0);
    let mut view = View::new(objectives.len());
    // oha reports percentiles only: reconstruct the exact-count view per objective from them.
    for (i, o) in objectives.iter().enumerate() {
        if let Objective::Latency {
            quantile,
            threshold,
            ..
        } = o
        {
            let _ = quantile;
            let key = o.label();
            let ms = get_ms(&key).ok_or_else(|| format!("oha result has no {key} percentile"))?;
            let over = ms >= threshold.as_secs_f64() * 1000.0;
            view.over[i] = if over { n } else { 0 };
        }
    }
    let _ = view
        .hist
        .record_n(get_ms("p50").map_or(1, |m| (m * 1000.0) as u64).max(1), n);
    view.errors = errors;
    let q = |qq: f64, key: &str| get_ms(key).map(|m| (qq, m, m, m));
    let stats = ClientBudget {
        budget: String::new(),
        n,
        errors,
        timeouts: 0,
        error_rate: if n == 0 {
            0.0
        } else {
            errors as f64 / n as f64
        },
        max_ms: summary
            .get("slowest")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0)
            * 1000.0,
        quantiles: [q(0.5, "p50"), q(0.95, "p95"), q(0.99, "p99")]
            .into_iter()
            .flatten()
            .collect(),
    };
    let rps = summary
        .get("requestsPerSec")
        .and_then(|x| x.as_f64())
        .unwrap_or(0.0);
    let run = RunStats {
        target_rate: open_rate.unwrap_or(rps),
        achieved_rate: rps,
        scheduled: n,
        sent: n,
        dropped: 0,
        lag_p99_ms: 0.0,
        lag_max_ms: 0.0,
        duration_s: summary.get("total").and_then(|x| x.as_f64()).unwrap_or(0.0),
        warmup_s: 0.0,
        open_model: open_rate.is_some(),
    };
    Ok((view, stats, run))
}

/// Fetches the server's report with one GET.
pub(crate) async fn fetch(addr: &str, host: &str, path: &str) -> Result<BudgetReport, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("GET {path}: status {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not a perf-budget report: {e}"))
}

/// The run profile a baseline must match: rate, duration, in-flight limit and request mix
/// (paths without query strings).
pub(crate) fn profile(plan: Option<&Plan>, targets: &[Target]) -> String {
    let mix: Vec<String> = targets
        .iter()
        .map(|t| format!("{} {}", t.method, t.path.split('?').next().unwrap_or("")))
        .collect();
    match plan {
        Some(p) => format!(
            "open rate={} duration={}s warmup={}s in-flight={} mix=[{}]",
            p.rate,
            p.duration.as_secs_f64(),
            p.warmup.as_secs_f64(),
            p.max_in_flight,
            mix.join(", ")
        ),
        None => format!("external mix=[{}]", mix.join(", ")),
    }
}

pub(crate) async fn run_load(
    plan: Plan,
    targets: Vec<Target>,
    views: &mut [View],
    thresholds: &[Vec<Option<u64>>],
) -> RunStats {
    load::run(plan, targets, views, thresholds).await
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

    #[test]
    fn junit_escapes_and_counts() {
        let out = Output {
            verdict: "budget failed".into(),
            exit_code: 1,
            profile: String::new(),
            run: None,
            client: vec![],
            server: None,
            checks: vec![check(
                "budget",
                "client",
                Some("a"),
                Some("p95 < 200ms"),
                "fail",
                "p95 = 300ms > \"x\" & y".into(),
            )],
        };
        let x = out.junit();
        assert!(
            x.contains("name=\"p95 &lt; 200ms\"")
                && x.contains("&amp; y")
                && x.contains("failures=\"1\""),
            "{x}"
        );
    }
}
