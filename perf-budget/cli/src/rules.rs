//! `perf-budget rules`: Sloth-compatible recording rules and multi-window multi-burn-rate
//! alerts, built on the layer's `perf_budget_*` counters (no histogram buckets needed).

use std::fmt::Write as _;
use std::time::Duration;

use perf_budget::{BudgetPolicy, Objective};

/// One generated SLO (one per objective).
pub(crate) struct Slo {
    pub(crate) budget: String,
    pub(crate) expr: String,
    pub(crate) slo: String,
    pub(crate) id: String,
    pub(crate) objective: f64,
    pub(crate) budget_ratio: f64,
    pub(crate) error_metric: String,
    pub(crate) total_metric: String,
}

/// A burn-rate condition: short and long window (minutes) over `factor`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cond {
    pub(crate) short: u64,
    pub(crate) long: u64,
    pub(crate) factor: f64,
}

/// The Google SRE workbook windows for 30 days (as Sloth's `google-30d`), scaled to `period`.
pub(crate) fn windows(period_min: u64) -> [(&'static str, [Cond; 2]); 2] {
    let scale = |m: u64| ((m as f64 * period_min as f64 / (30.0 * 1440.0)).round() as u64).max(1);
    let c = |s, l, factor| Cond {
        short: scale(s),
        long: scale(l),
        factor,
    };
    [
        ("page", [c(5, 60, 14.4), c(30, 360, 6.0)]),
        ("ticket", [c(120, 1440, 3.0), c(360, 4320, 1.0)]),
    ]
}

/// `5m`, `1h`, `1d`: the Prometheus duration of a whole number of minutes.
pub(crate) fn prom_dur(min: u64) -> String {
    if min.is_multiple_of(1440) {
        format!("{}d", min / 1440)
    } else if min.is_multiple_of(60) {
        format!("{}h", min / 60)
    } else {
        format!("{min}m")
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

pub(crate) fn slos(policy: &BudgetPolicy, service: &str) -> Vec<Slo> {
    let mut out = Vec::new();
    for b in policy.budgets() {
        for o in b.objectives() {
            let label = o.label();
            let slo = format!("{}-{}", b.name(), label.replace(['.', '_'], "-"));
            let sel = format!("budget={}", q(b.name()));
            let error_metric = match o {
                Objective::Latency { .. } => {
                    format!("perf_budget_slow_requests{{{sel},objective={}}}", q(&label))
                }
                _ => format!("perf_budget_errors{{{sel}}}"),
            };
            out.push(Slo {
                budget: b.name().to_owned(),
                expr: o.to_string(),
                id: format!("{service}-{slo}"),
                slo,
                objective: 1.0 - o.allowance(),
                budget_ratio: o.allowance(),
                error_metric,
                total_metric: format!("perf_budget_requests{{{sel}}}"),
            });
        }
    }
    out
}

/// Options of the generator.
pub(crate) struct Options {
    pub(crate) service: String,
    pub(crate) period_min: u64,
    pub(crate) clamp_burn: bool,
    pub(crate) min_rps: Option<f64>,
    pub(crate) page_severity: String,
    pub(crate) ticket_severity: String,
}

/// Alerts kept for one SLO, with the notes about dropped or clamped conditions.
pub(crate) struct Alerts {
    pub(crate) page: Vec<Cond>,
    pub(crate) ticket: Vec<Cond>,
    pub(crate) notes: Vec<String>,
}

/// Drops (or clamps) burn conditions that can never fire: the largest possible burn is
/// 1 / budget, so `factor × budget ≥ 1` is unreachable.
pub(crate) fn reachable(slo: &Slo, opts: &Options) -> Alerts {
    let mut a = Alerts {
        page: Vec::new(),
        ticket: Vec::new(),
        notes: Vec::new(),
    };
    for (sev, conds) in windows(opts.period_min) {
        for mut c in conds {
            if c.factor * slo.budget_ratio >= 1.0 {
                let max = 1.0 / slo.budget_ratio;
                if opts.clamp_burn {
                    let clamped = (0.9 * max * 10.0).floor() / 10.0;
                    a.notes.push(format!(
                        "{}: {sev} burn {}x can never fire (max burn {max:.1}x for a {:.1} % budget); clamped to {clamped}x",
                        slo.id,
                        c.factor,
                        slo.budget_ratio * 100.0
                    ));
                    c.factor = clamped;
                } else {
                    a.notes.push(format!(
                        "{}: {sev} burn {}x can never fire (max burn {max:.1}x for a {:.1} % budget); dropped (use --clamp-burn to keep it at 0.9 x max)",
                        slo.id,
                        c.factor,
                        slo.budget_ratio * 100.0
                    ));
                    continue;
                }
            }
            if sev == "page" {
                a.page.push(c)
            } else {
                a.ticket.push(c)
            }
        }
    }
    a
}

fn labels(slo: &Slo, service: &str, extra: &[(&str, String)]) -> String {
    let mut s = format!(
        "        sloth_id: {}\n        sloth_service: {}\n        sloth_slo: {}\n",
        q(&slo.id),
        q(service),
        q(&slo.slo)
    );
    for (k, v) in extra {
        let _ = writeln!(s, "        {k}: {}", q(v));
    }
    s
}

fn sel(slo: &Slo, service: &str) -> String {
    format!(
        "sloth_id={}, sloth_service={}, sloth_slo={}",
        q(&slo.id),
        q(service),
        q(&slo.slo)
    )
}

/// Prometheus rule groups, Sloth's layout and names.
pub(crate) fn prometheus(policy: &BudgetPolicy, opts: &Options) -> (String, Vec<String>) {
    let svc = &opts.service;
    let mut notes = Vec::new();
    let mut y = String::from(
        "# Generated by `perf-budget rules`; do not edit. Sloth-compatible names (slo:*).\ngroups:\n",
    );
    let period = prom_dur(opts.period_min);
    for slo in slos(policy, svc) {
        let alerts = reachable(&slo, opts);
        notes.extend(alerts.notes.iter().cloned());
        let mut wins: Vec<u64> = windows(opts.period_min)
            .iter()
            .flat_map(|(_, c)| c.iter().flat_map(|c| [c.short, c.long]))
            .collect();
        wins.push(5);
        wins.sort_unstable();
        wins.dedup();
        let _ = writeln!(
            y,
            "  - name: {}\n    rules:",
            q(&format!("sloth-slo-sli-recordings-{}", slo.id))
        );
        for w in &wins {
            let d = prom_dur(*w);
            let expr = format!(
                "(sum(rate({}[{d}])))\n/\n(sum(rate({}[{d}])))",
                slo.error_metric, slo.total_metric
            );
            let _ = write!(
                y,
                "      - record: slo:sli_error:ratio_rate{d}\n        expr: {}\n        labels:\n{}",
                q(&expr),
                labels(&slo, svc, &[("sloth_window", d.clone())]).replace("        ", "          ")
            );
        }
        let s = sel(&slo, svc);
        let expr = format!(
            "sum_over_time(slo:sli_error:ratio_rate5m{{{s}}}[{period}])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m{{{s}}}[{period}])"
        );
        let _ = write!(
            y,
            "      - record: slo:sli_error:ratio_rate{period}\n        expr: {}\n        labels:\n{}",
            q(&expr),
            labels(&slo, svc, &[("sloth_window", period.clone())])
                .replace("        ", "          ")
        );
        let _ = writeln!(
            y,
            "  - name: {}\n    rules:",
            q(&format!("sloth-slo-meta-recordings-{}", slo.id))
        );
        let on = "on(sloth_id, sloth_slo, sloth_service) group_left";
        let meta = [
            (
                "slo:objective:ratio",
                format!("vector({})", slo.objective),
                vec![],
            ),
            (
                "slo:error_budget:ratio",
                format!("vector(1-{})", slo.objective),
                vec![],
            ),
            (
                "slo:time_period:days",
                format!("vector({})", opts.period_min as f64 / 1440.0),
                vec![],
            ),
            (
                "slo:current_burn_rate:ratio",
                format!("slo:sli_error:ratio_rate5m{{{s}}}\n/ {on}\nslo:error_budget:ratio{{{s}}}"),
                vec![],
            ),
            (
                "slo:period_burn_rate:ratio",
                format!(
                    "slo:sli_error:ratio_rate{period}{{{s}}}\n/ {on}\nslo:error_budget:ratio{{{s}}}"
                ),
                vec![],
            ),
            (
                "slo:period_error_budget_remaining:ratio",
                format!("1 - slo:period_burn_rate:ratio{{{s}}}"),
                vec![],
            ),
            (
                "sloth_slo_info",
                "vector(1)".to_owned(),
                vec![
                    ("sloth_mode", "cli-gen-prom".to_owned()),
                    ("sloth_objective", format!("{}", slo.objective * 100.0)),
                    ("perf_budget_objective", slo.expr.clone()),
                ],
            ),
        ];
        for (name, expr, extra) in meta {
            let _ = write!(
                y,
                "      - record: {name}\n        expr: {}\n        labels:\n{}",
                q(&expr),
                labels(&slo, svc, &extra).replace("        ", "          ")
            );
        }
        let _ = writeln!(
            y,
            "  - name: {}\n    rules:",
            q(&format!("sloth-slo-alerts-{}", slo.id))
        );
        for (name, sev, conds) in [
            (
                "PerfBudgetFastBurn",
                (&opts.page_severity, "page"),
                &alerts.page,
            ),
            (
                "PerfBudgetSlowBurn",
                (&opts.ticket_severity, "ticket"),
                &alerts.ticket,
            ),
        ] {
            if conds.is_empty() {
                continue;
            }
            let branch = |c: &Cond| {
                let one = |w: u64| {
                    let guard = opts.min_rps.map_or(String::new(), |r| {
                        format!(
                            " and on() sum(rate({}[{}])) > {r}",
                            slo.total_metric,
                            prom_dur(c.long)
                        )
                    });
                    format!(
                        "max(slo:sli_error:ratio_rate{}{{{s}}} > ({} * {})) without (sloth_window){guard}",
                        prom_dur(w),
                        c.factor,
                        slo.budget_ratio
                    )
                };
                format!("(\n    {}\n    and\n    {}\n)", one(c.short), one(c.long))
            };
            let expr = conds.iter().map(branch).collect::<Vec<_>>().join("\nor\n");
            let _ = write!(
                y,
                "      - alert: {name}\n        expr: {}\n        labels:\n          severity: {}\n          sloth_severity: {}\n{}        annotations:\n          summary: {}\n          title: {}\n",
                q(&expr),
                q(sev.0),
                q(sev.1),
                labels(&slo, svc, &[]).replace("        ", "          "),
                q(&annotation(&slo)),
                q(&format!("({}) {} budget burn", sev.1, slo.id)),
            );
        }
    }
    (y, notes)
}

pub(crate) fn annotation(slo: &Slo) -> String {
    format!(
        "{}: {} is burning its error budget too fast",
        slo.budget, slo.expr
    )
}

/// A Sloth `prometheus/v1` spec, for teams that already run Sloth.
pub(crate) fn sloth(policy: &BudgetPolicy, opts: &Options) -> String {
    let mut y = format!(
        "version: \"prometheus/v1\"\nservice: {}\nslos:\n",
        q(&opts.service)
    );
    for slo in slos(policy, &opts.service) {
        let _ = write!(
            y,
            "  - name: {}\n    objective: {}\n    description: {}\n    sli:\n      events:\n        error_query: {}\n        total_query: {}\n    alerting:\n      name: PerfBudget\n      page_alert:\n        labels:\n          severity: {}\n      ticket_alert:\n        labels:\n          severity: {}\n",
            q(&slo.slo),
            slo.objective * 100.0,
            q(&format!("{}: {}", slo.budget, slo.expr)),
            q(&format!("sum(rate({}[{{{{.window}}}}]))", slo.error_metric)),
            q(&format!("sum(rate({}[{{{{.window}}}}]))", slo.total_metric)),
            q(&opts.page_severity),
            q(&opts.ticket_severity),
        );
    }
    y
}

/// A `promtool test rules` file: per SLO, a burning series must fire the kept alerts and a
/// healthy one must fire nothing; the objective recording rule must hold the objective.
pub(crate) fn tests(policy: &BudgetPolicy, opts: &Options, rules_file: &str) -> String {
    let svc = &opts.service;
    let mut y = format!(
        "# Generated by `perf-budget rules --with-tests`; run `promtool test rules` on it.\nrule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n",
        q(rules_file)
    );
    // Long enough to fill the longest short window and reach the scaled 1h/6h page windows.
    let minutes = windows(opts.period_min)[0].1[1].long.max(60) + 10;
    for slo in slos(policy, svc) {
        let alerts = reachable(&slo, opts);
        let max_factor = alerts
            .page
            .iter()
            .chain(&alerts.ticket)
            .map(|c| c.factor)
            .fold(0.0, f64::max);
        let bad_ratio = (slo.budget_ratio * (max_factor + 1.0)).min(1.0);
        let bad_per_min = (1000.0 * bad_ratio).round() as u64;
        let series = |bad: u64| {
            format!(
                "      - series: {}\n        values: \"0+1000x{minutes}\"\n      - series: {}\n        values: \"0+{bad}x{minutes}\"\n",
                q(&slo.total_metric),
                q(&slo.error_metric)
            )
        };
        let eval = prom_dur(minutes);
        let label_block = |sev: &str, sloth_sev: &str, pad: &str| {
            format!(
                "{pad}severity: {}\n{pad}sloth_id: {}\n{pad}sloth_service: {}\n{pad}sloth_slo: {}\n{pad}sloth_severity: {}\n",
                q(sev),
                q(&slo.id),
                q(svc),
                q(&slo.slo),
                q(sloth_sev)
            )
        };
        // Burning: every kept alert fires.
        let _ = write!(
            y,
            "  - name: {}\n    interval: 1m\n    input_series:\n{}",
            q(&format!("{} burning", slo.id)),
            series(bad_per_min)
        );
        y.push_str("    alert_rule_test:\n");
        for (name, sev, sloth_sev, conds) in [
            (
                "PerfBudgetFastBurn",
                &opts.page_severity,
                "page",
                &alerts.page,
            ),
            (
                "PerfBudgetSlowBurn",
                &opts.ticket_severity,
                "ticket",
                &alerts.ticket,
            ),
        ] {
            if conds.is_empty() {
                continue;
            }
            let _ = write!(
                y,
                "      - eval_time: {eval}\n        alertname: {name}\n        exp_alerts:\n          - exp_labels:\n{}            exp_annotations:\n              summary: {}\n              title: {}\n",
                label_block(sev, sloth_sev, "              "),
                q(&annotation(&slo)),
                q(&format!("({sloth_sev}) {} budget burn", slo.id)),
            );
        }
        let s = sel(&slo, svc);
        let _ = write!(
            y,
            "    promql_expr_test:\n      - expr: {}\n        eval_time: {eval}\n        exp_samples:\n          - labels: {}\n            value: {}\n",
            q(&format!("slo:objective:ratio{{{s}}}")),
            q(&format!("slo:objective:ratio{{{s}}}")),
            slo.objective
        );
        // Healthy: nothing fires.
        let _ = write!(
            y,
            "  - name: {}\n    interval: 1m\n    input_series:\n{}    alert_rule_test:\n",
            q(&format!("{} healthy", slo.id)),
            series(0)
        );
        for name in ["PerfBudgetFastBurn", "PerfBudgetSlowBurn"] {
            let _ = writeln!(
                y,
                "      - eval_time: {eval}\n        alertname: {name}\n        exp_alerts: []"
            );
        }
    }
    y
}

pub(crate) fn parse_period(s: &str) -> Result<u64, String> {
    let d: Duration = crate::parse_duration(s)?;
    let min = d.as_secs() / 60;
    if min < 60 {
        return Err(format!(
            "period {s:?} is too short; use at least 1h (typically 7d, 28d or 30d)"
        ));
    }
    Ok(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            service: "svc".into(),
            period_min: 30 * 1440,
            clamp_burn: false,
            min_rps: None,
            page_severity: "critical".into(),
            ticket_severity: "warning".into(),
        }
    }

    #[test]
    fn drops_or_clamps_unreachable_burn_rates() {
        let p = BudgetPolicy::builder()
            .budget("a", "GET /a", |b| b.objective("p90 < 100ms"))
            .build()
            .unwrap();
        let slo = &slos(&p, "svc")[0];
        let a = reachable(slo, &opts());
        assert_eq!(a.page.len(), 1, "14.4 x 10 % >= 1 is dropped, 6x stays");
        assert!(a.notes[0].contains("can never fire"));
        let a = reachable(
            slo,
            &Options {
                clamp_burn: true,
                ..opts()
            },
        );
        assert_eq!(a.page[0].factor, 9.0);
    }

    #[test]
    fn scales_windows_to_the_period() {
        assert_eq!(windows(30 * 1440)[0].1[0].short, 5);
        assert_eq!(windows(7 * 1440)[1].1[1].long, 1008);
        assert_eq!(prom_dur(4320), "3d");
        assert_eq!(prom_dur(90), "90m");
    }
}
