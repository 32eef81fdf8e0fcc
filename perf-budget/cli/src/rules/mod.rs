//! `perf-budget rules`: Sloth-compatible recording rules and multi-window multi-burn-rate
//! alerts, built on the layer's `perf.budget.*` counters (Prometheus: `perf_budget_*`) (no histogram buckets needed).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use perf_budget::{BudgetPolicy, Objective};

mod prometheus;
mod promtool;
mod sloth;

pub(crate) use prometheus::prometheus;
pub(crate) use promtool::tests;
pub(crate) use sloth::sloth;

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
                    format!(
                        "perf_budget_slow_requests_total{{{sel},objective={}}}",
                        q(&label)
                    )
                }
                _ => format!("perf_budget_errors_total{{{sel}}}"),
            };
            out.push(Slo {
                budget: b.name().to_owned(),
                expr: o.to_string(),
                id: format!("{service}-{slo}"),
                slo,
                objective: 1.0 - o.allowance(),
                budget_ratio: o.allowance(),
                error_metric,
                total_metric: format!("perf_budget_requests_total{{{sel}}}"),
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

/// Label names to values, in a stable order.
type Labels = BTreeMap<String, String>;

/// The `sloth_*` labels of an SLO's series, with `extra`.
pub(super) fn labels(slo: &Slo, service: &str, extra: &[(&str, String)]) -> Labels {
    let mut l = Labels::from([
        ("sloth_id".to_owned(), slo.id.clone()),
        ("sloth_service".to_owned(), service.to_owned()),
        ("sloth_slo".to_owned(), slo.slo.clone()),
    ]);
    l.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    l
}

pub(super) fn sel(slo: &Slo, service: &str) -> String {
    format!(
        "sloth_id={}, sloth_service={}, sloth_slo={}",
        q(&slo.id),
        q(service),
        q(&slo.slo)
    )
}

pub(super) fn yaml<T: Serialize>(header: &str, value: &T) -> String {
    let body = serde_norway::to_string(value).unwrap_or_default();
    format!("{header}\n{body}")
}

/// The labels of a burn-rate alert.
fn alert_labels(slo: &Slo, service: &str, severity: &str, sloth_severity: &str) -> Labels {
    let extra = [
        ("severity", severity.to_owned()),
        ("sloth_severity", sloth_severity.to_owned()),
    ];
    labels(slo, service, &extra)
}

/// The annotations of a burn-rate alert.
fn alert_annotations(slo: &Slo, sloth_severity: &str) -> Labels {
    Labels::from([
        ("summary".to_owned(), annotation(slo)),
        (
            "title".to_owned(),
            format!("({sloth_severity}) {} budget burn", slo.id),
        ),
    ])
}

pub(crate) fn annotation(slo: &Slo) -> String {
    format!(
        "{}: {} is burning its error budget too fast",
        slo.budget, slo.expr
    )
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
            .add_budget("a", "GET /a", |b| b.objective("p90 < 100ms"))
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
            .add_budget("a", "GET /a", |b| {
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
