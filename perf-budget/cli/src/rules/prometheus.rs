//! The Prometheus rule file: Sloth's SLI and meta recording rules and the burn-rate alerts.

use perf_budget::BudgetPolicy;
use serde::Serialize;

use super::{
    Alerts, Cond, Labels, Options, Slo, alert_annotations, alert_labels, labels, prom_dur,
    reachable, sel, slos, windows, yaml,
};

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
                // An idle window records nothing (not 0/0 = NaN, which the period's
                // `sum_over_time` would carry for the whole period).
                "(sum(rate({}[{d}])))\n/\n(sum(rate({}[{d}])) > 0)",
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
        let labels = alert_labels(slo, svc, severity, sloth_severity);
        let annotations = alert_annotations(slo, sloth_severity);
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
