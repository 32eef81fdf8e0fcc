//! The comparison with an earlier run (`--baseline`): the same profile, then regressions.

use perf_budget::BudgetPolicy;

use crate::gate::*;
use crate::load::{Plan, Target};

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
