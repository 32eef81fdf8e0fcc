//! `perf-budget rules`: Sloth-compatible recording rules and multi-window multi-burn-rate
//! alerts, built on the layer's `perf.budget.*` counters (Prometheus: `perf_budget_*`) (no histogram buckets needed).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

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

/// A Prometheus rule file.
#[derive(Serialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(Serialize)]
struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
    expr: String,
    labels: Labels,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    annotations: Labels,
}

type Labels = BTreeMap<String, String>;

impl Rule {
    fn record(name: &str, expr: String, labels: Labels) -> Self {
        Self {
            record: Some(name.to_owned()),
            alert: None,
            expr,
            labels,
            annotations: Labels::new(),
        }
    }
}

/// The `sloth_*` labels of an SLO's series, with `extra`.
fn labels(slo: &Slo, service: &str, extra: &[(&str, String)]) -> Labels {
    let mut l = Labels::from([
        ("sloth_id".to_owned(), slo.id.clone()),
        ("sloth_service".to_owned(), service.to_owned()),
        ("sloth_slo".to_owned(), slo.slo.clone()),
    ]);
    l.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    l
}

fn sel(slo: &Slo, service: &str) -> String {
    format!(
        "sloth_id={}, sloth_service={}, sloth_slo={}",
        q(&slo.id),
        q(service),
        q(&slo.slo)
    )
}

fn yaml<T: Serialize>(header: &str, value: &T) -> String {
    let body = serde_norway::to_string(value).unwrap_or_default();
    format!("{header}\n{body}")
}

/// The windows every SLI ratio is recorded over: the alert windows and 5m.
fn sli_windows(period_min: u64) -> Vec<u64> {
    let mut wins: Vec<u64> = windows(period_min)
        .iter()
        .flat_map(|(_, c)| c.iter().flat_map(|c| [c.short, c.long]))
        .collect();
    wins.push(5);
    wins.sort_unstable();
    wins.dedup();
    wins
}

/// Sloth's SLI recording rules: the error ratio per window, and over the period.
fn sli_recordings(slo: &Slo, opts: &Options) -> RuleGroup {
    let svc = &opts.service;
    let period = prom_dur(opts.period_min);
    let mut rules: Vec<Rule> = sli_windows(opts.period_min)
        .into_iter()
        .map(|w| {
            let d = prom_dur(w);
            let expr = format!(
                "(sum(rate({}[{d}])))\n/\n(sum(rate({}[{d}])))",
                slo.error_metric, slo.total_metric
            );
            let labels = labels(slo, svc, &[("sloth_window", d.clone())]);
            Rule::record(&format!("slo:sli_error:ratio_rate{d}"), expr, labels)
        })
        .collect();
    let s = sel(slo, svc);
    let expr = format!(
        "sum_over_time(slo:sli_error:ratio_rate5m{{{s}}}[{period}])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m{{{s}}}[{period}])"
    );
    let labels = labels(slo, svc, &[("sloth_window", period.clone())]);
    rules.push(Rule::record(
        &format!("slo:sli_error:ratio_rate{period}"),
        expr,
        labels,
    ));
    RuleGroup {
        name: format!("sloth-slo-sli-recordings-{}", slo.id),
        rules,
    }
}

/// Sloth's meta recording rules: objective, budget, period, burn rates, info.
fn meta_recordings(slo: &Slo, opts: &Options) -> RuleGroup {
    let svc = &opts.service;
    let period = prom_dur(opts.period_min);
    let s = sel(slo, svc);
    let on = "on(sloth_id, sloth_slo, sloth_service) group_left";
    let info = vec![
        ("sloth_mode", "cli-gen-prom".to_owned()),
        ("sloth_objective", format!("{}", slo.objective * 100.0)),
        ("perf_budget_objective", slo.expr.clone()),
    ];
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
        ("sloth_slo_info", "vector(1)".to_owned(), info),
    ];
    let rules = meta
        .into_iter()
        .map(|(name, expr, extra)| Rule::record(name, expr, labels(slo, svc, &extra)))
        .collect();
    RuleGroup {
        name: format!("sloth-slo-meta-recordings-{}", slo.id),
        rules,
    }
}

/// The multi-window multi-burn-rate alerts kept for an SLO.
fn alert_rules(slo: &Slo, alerts: &Alerts, opts: &Options) -> RuleGroup {
    let svc = &opts.service;
    let s = sel(slo, svc);
    let mut rules = Vec::new();
    for (name, (severity, sloth_severity), conds) in [
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
        let labels = labels(
            slo,
            svc,
            &[
                ("severity", severity.clone()),
                ("sloth_severity", sloth_severity.to_owned()),
            ],
        );
        let annotations = Labels::from([
            ("summary".to_owned(), annotation(slo)),
            (
                "title".to_owned(),
                format!("({sloth_severity}) {} budget burn", slo.id),
            ),
        ]);
        rules.push(Rule {
            record: None,
            alert: Some(name.to_owned()),
            expr,
            labels,
            annotations,
        });
    }
    RuleGroup {
        name: format!("sloth-slo-alerts-{}", slo.id),
        rules,
    }
}

/// Prometheus rule groups, Sloth's layout and names.
pub(crate) fn prometheus(policy: &BudgetPolicy, opts: &Options) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut groups = Vec::new();
    for slo in slos(policy, &opts.service) {
        let alerts = reachable(&slo, opts);
        notes.extend(alerts.notes.iter().cloned());
        groups.push(sli_recordings(&slo, opts));
        groups.push(meta_recordings(&slo, opts));
        groups.push(alert_rules(&slo, &alerts, opts));
    }
    let header = "# Generated by `perf-budget rules`; do not edit. Sloth-compatible names (slo:*).";
    (yaml(header, &RuleFile { groups }), notes)
}

pub(crate) fn annotation(slo: &Slo) -> String {
    format!(
        "{}: {} is burning its error budget too fast",
        slo.budget, slo.expr
    )
}

/// A Sloth `prometheus/v1` spec.
#[derive(Serialize)]
struct SlothSpec {
    version: &'static str,
    service: String,
    slos: Vec<SlothSlo>,
}

#[derive(Serialize)]
struct SlothSlo {
    name: String,
    objective: f64,
    description: String,
    sli: SlothSli,
    alerting: SlothAlerting,
}

#[derive(Serialize)]
struct SlothSli {
    events: SlothEvents,
}

#[derive(Serialize)]
struct SlothEvents {
    error_query: String,
    total_query: String,
}

#[derive(Serialize)]
struct SlothAlerting {
    name: &'static str,
    page_alert: SlothAlert,
    ticket_alert: SlothAlert,
}

#[derive(Serialize)]
struct SlothAlert {
    labels: Labels,
}

/// A Sloth `prometheus/v1` spec, for teams that already run Sloth.
pub(crate) fn sloth(policy: &BudgetPolicy, opts: &Options) -> String {
    let severity = |s: &str| SlothAlert {
        labels: Labels::from([("severity".to_owned(), s.to_owned())]),
    };
    let slos = slos(policy, &opts.service)
        .into_iter()
        .map(|slo| SlothSlo {
            objective: slo.objective * 100.0,
            description: format!("{}: {}", slo.budget, slo.expr),
            sli: SlothSli {
                events: SlothEvents {
                    error_query: format!("sum(rate({}[{{{{.window}}}}]))", slo.error_metric),
                    total_query: format!("sum(rate({}[{{{{.window}}}}]))", slo.total_metric),
                },
            },
            alerting: SlothAlerting {
                name: "PerfBudget",
                page_alert: severity(&opts.page_severity),
                ticket_alert: severity(&opts.ticket_severity),
            },
            name: slo.slo,
        })
        .collect();
    let spec = SlothSpec {
        version: "prometheus/v1",
        service: opts.service.clone(),
        slos,
    };
    serde_norway::to_string(&spec).unwrap_or_default()
}

/// A `promtool test rules` file.
#[derive(Serialize)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: &'static str,
    tests: Vec<TestCase>,
}

#[derive(Serialize)]
struct TestCase {
    name: String,
    interval: &'static str,
    input_series: Vec<Series>,
    alert_rule_test: Vec<AlertTest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Serialize)]
struct Series {
    series: String,
    values: String,
}

#[derive(Serialize)]
struct AlertTest {
    eval_time: String,
    alertname: &'static str,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Serialize)]
struct ExpAlert {
    exp_labels: Labels,
    exp_annotations: Labels,
}

#[derive(Serialize)]
struct ExprTest {
    expr: String,
    eval_time: String,
    exp_samples: Vec<Sample>,
}

#[derive(Serialize)]
struct Sample {
    labels: String,
    value: f64,
}

/// The burning and the healthy test of one SLO.
fn slo_tests(slo: &Slo, opts: &Options, minutes: u64) -> [TestCase; 2] {
    let svc = &opts.service;
    let alerts = reachable(slo, opts);
    let max_factor = alerts
        .page
        .iter()
        .chain(&alerts.ticket)
        .map(|c| c.factor)
        .fold(0.0, f64::max);
    let bad_ratio = (slo.budget_ratio * (max_factor + 1.0)).min(1.0);
    let bad_per_min = (1000.0 * bad_ratio).round() as u64;
    let series = |bad: u64| {
        vec![
            Series {
                series: slo.total_metric.clone(),
                values: format!("0+1000x{minutes}"),
            },
            Series {
                series: slo.error_metric.clone(),
                values: format!("0+{bad}x{minutes}"),
            },
        ]
    };
    let eval = prom_dur(minutes);
    let fires = |name, severity: &String, sloth_severity: &str| AlertTest {
        eval_time: eval.clone(),
        alertname: name,
        exp_alerts: vec![ExpAlert {
            exp_labels: labels(
                slo,
                svc,
                &[
                    ("severity", severity.clone()),
                    ("sloth_severity", sloth_severity.to_owned()),
                ],
            ),
            exp_annotations: Labels::from([
                ("summary".to_owned(), annotation(slo)),
                (
                    "title".to_owned(),
                    format!("({sloth_severity}) {} budget burn", slo.id),
                ),
            ]),
        }],
    };
    let mut burning_alerts = Vec::new();
    if !alerts.page.is_empty() {
        burning_alerts.push(fires("PerfBudgetFastBurn", &opts.page_severity, "page"));
    }
    if !alerts.ticket.is_empty() {
        burning_alerts.push(fires("PerfBudgetSlowBurn", &opts.ticket_severity, "ticket"));
    }
    let objective = format!("slo:objective:ratio{{{}}}", sel(slo, svc));
    let burning = TestCase {
        name: format!("{} burning", slo.id),
        interval: "1m",
        input_series: series(bad_per_min),
        alert_rule_test: burning_alerts,
        promql_expr_test: vec![ExprTest {
            expr: objective.clone(),
            eval_time: eval.clone(),
            exp_samples: vec![Sample {
                labels: objective,
                value: slo.objective,
            }],
        }],
    };
    let healthy = TestCase {
        name: format!("{} healthy", slo.id),
        interval: "1m",
        input_series: series(0),
        alert_rule_test: ["PerfBudgetFastBurn", "PerfBudgetSlowBurn"]
            .into_iter()
            .map(|alertname| AlertTest {
                eval_time: eval.clone(),
                alertname,
                exp_alerts: Vec::new(),
            })
            .collect(),
        promql_expr_test: Vec::new(),
    };
    [burning, healthy]
}

/// A `promtool test rules` file: per SLO, a burning series must fire the kept alerts and a
/// healthy one must fire nothing; the objective recording rule must hold the objective.
pub(crate) fn tests(policy: &BudgetPolicy, opts: &Options, rules_file: &str) -> String {
    // Long enough to fill the longest short window and reach the scaled 1h/6h page windows.
    let minutes = windows(opts.period_min)[0].1[1].long.max(60) + 10;
    let tests = slos(policy, &opts.service)
        .iter()
        .flat_map(|slo| slo_tests(slo, opts, minutes))
        .collect();
    let file = TestFile {
        rule_files: vec![rules_file.to_owned()],
        evaluation_interval: "1m",
        tests,
    };
    let header =
        "# Generated by `perf-budget rules --with-tests`; run `promtool test rules` on it.";
    yaml(header, &file)
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
    fn rule_and_test_files_are_yaml_of_sloths_layout() {
        let p = BudgetPolicy::builder()
            .budget("a", "GET /a", |b| {
                b.objective("p99 < 100ms").error_rate(0.01)
            })
            .build()
            .unwrap();
        let (rules, _) = prometheus(&p, &opts());
        let v: serde_norway::Value = serde_norway::from_str(&rules).unwrap();
        let groups = v["groups"].as_sequence().unwrap();
        assert_eq!(
            groups.len(),
            2 * 3,
            "sli, meta and alert groups per objective"
        );
        let alert = &groups[2]["rules"][0];
        assert_eq!(alert["alert"].as_str(), Some("PerfBudgetFastBurn"));
        assert_eq!(alert["labels"]["sloth_id"].as_str(), Some("svc-a-p99"));
        assert!(
            alert["expr"]
                .as_str()
                .unwrap()
                .contains("slo:sli_error:ratio_rate5m{sloth_id=\"svc-a-p99\""),
            "{rules}"
        );
        let tests: serde_norway::Value =
            serde_norway::from_str(&tests(&p, &opts(), "rules.yml")).unwrap();
        assert_eq!(tests["rule_files"][0].as_str(), Some("rules.yml"));
        assert_eq!(tests["tests"].as_sequence().unwrap().len(), 2 * 2);
    }

    #[test]
    fn scales_windows_to_the_period() {
        assert_eq!(windows(30 * 1440)[0].1[0].short, 5);
        assert_eq!(windows(7 * 1440)[1].1[1].long, 1008);
        assert_eq!(prom_dur(4320), "3d");
        assert_eq!(prom_dur(90), "90m");
    }
}
