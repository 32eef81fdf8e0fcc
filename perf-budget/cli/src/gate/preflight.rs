//! What the gate can know before it sends a request, and how much it judged afterwards.
//!
//! Before the load: a `--request` that matches no budget, an error-severity budget that no
//! request reaches, a rate × duration below an objective's sample floor, a baseline of another
//! profile, and budgets that differ from the server's. Any of them stops the run before the
//! first request: a gate that would judge nothing must not pass.

use std::collections::HashSet;

use perf_budget::{BudgetPolicy, BudgetReport, OTHER, Severity};

use crate::gate::{Check, Output, check};
use crate::load::{Plan, Target};

/// The checks knowable before the load; `baseline` is the `--baseline` output, if given.
pub(crate) fn preflight(
    policy: &BudgetPolicy,
    targets: &[Target],
    plan: Option<&Plan>,
    baseline: Option<&Output>,
    profile: &str,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let other = policy.budgets().len();
    for t in targets.iter().filter(|t| t.budget == other) {
        let routes: Vec<String> = policy.budgets().iter().map(|b| b.route_key()).collect();
        let message = format!(
            "--request \"{} {}\" matches no budget, so nothing would judge it (budget routes: {}); fix the path or the budget's route",
            t.method,
            t.path,
            routes.join(", ")
        );
        let key = format!("request {} {}", t.method, t.path);
        checks.push(check("config", "run", None, None, "fail", message).key(&key));
    }
    if !targets.is_empty() {
        unreached(policy, targets, &mut checks);
    }
    if let Some(plan) = plan {
        floor(policy, targets, plan, &mut checks);
    }
    if let Some(base) = baseline.filter(|b| b.profile != profile) {
        let message = format!(
            "baseline profile differs: {:?} vs this run {profile:?}; compare like with like",
            base.profile
        );
        checks.push(check("config", "run", None, None, "fail", message).key("baseline"));
    }
    checks
}

/// Budgets that no `--request` reaches: their objectives would get no samples.
fn unreached(policy: &BudgetPolicy, targets: &[Target], checks: &mut Vec<Check>) {
    for (i, b) in policy.budgets().iter().enumerate() {
        if targets.iter().any(|t| t.budget == i) {
            continue;
        }
        let error = b.severity() == Severity::Error;
        let message = format!(
            "no --request reaches budget {:?} ({}): its {} objective(s) would get no samples; add a --request for it{}",
            b.name(),
            b.route_key(),
            b.objectives().len(),
            if error {
                ", or make it severity = \"warn\""
            } else {
                ""
            }
        );
        let outcome = if error { "fail" } else { "warn" };
        checks.push(check("config", "run", Some(b.name()), None, outcome, message).key("requests"));
    }
}

/// Rate × duration against each objective's sample floor, per budget share of the mix.
fn floor(policy: &BudgetPolicy, targets: &[Target], plan: &Plan, checks: &mut Vec<Check>) {
    let per_request = plan.rate * plan.duration.as_secs_f64() / targets.len().max(1) as f64;
    for (i, b) in policy.budgets().iter().enumerate() {
        let share = targets.iter().filter(|t| t.budget == i).count();
        if share == 0 {
            continue;
        }
        let expected = (per_request * share as f64).floor() as u64;
        for o in b.objectives() {
            let need = policy.min_samples_for(o);
            if expected >= need {
                continue;
            }
            let outcome = if b.severity() == Severity::Error {
                "fail"
            } else {
                "warn"
            };
            let message = format!(
                "too few samples planned: --rate {} for {}s sends about {expected} requests to {:?}, {o} needs {need}; run longer or faster",
                plan.rate,
                plan.duration.as_secs_f64(),
                b.name()
            );
            let expr = o.to_string();
            checks.push(check(
                "validity",
                "run",
                Some(b.name()),
                Some(&expr),
                outcome,
                message,
            ));
        }
    }
}

/// Where the budgets given to the gate differ from the server's: one failed check naming the
/// differing objectives, or none.
pub(crate) fn mismatch(policy: &BudgetPolicy, server: &BudgetReport) -> Option<Check> {
    let mut diffs = Vec::new();
    for b in policy.budgets() {
        let local: Vec<String> = b.objectives().iter().map(ToString::to_string).collect();
        let Some(s) = server.budget(b.name()) else {
            diffs.push(format!("{:?} [{}] only here", b.name(), local.join(", ")));
            continue;
        };
        if s.route != b.route_key() {
            diffs.push(format!(
                "{:?} route {} here, {} on the server",
                b.name(),
                b.route_key(),
                s.route
            ));
        }
        let theirs: HashSet<&str> = s.objectives.iter().map(|o| o.expr.as_str()).collect();
        let ours: HashSet<&str> = local.iter().map(String::as_str).collect();
        let mut only_here: Vec<&str> = ours.difference(&theirs).copied().collect();
        let mut only_there: Vec<&str> = theirs.difference(&ours).copied().collect();
        only_here.sort_unstable();
        only_there.sort_unstable();
        if !only_here.is_empty() || !only_there.is_empty() {
            diffs.push(format!(
                "{:?} [{}] here, [{}] on the server",
                b.name(),
                only_here.join(", "),
                only_there.join(", ")
            ));
        }
    }
    for s in server.budgets.iter().filter(|s| s.name != OTHER) {
        if !policy.budgets().iter().any(|b| b.name() == s.name) {
            let exprs: Vec<&str> = s.objectives.iter().map(|o| o.expr.as_str()).collect();
            diffs.push(format!(
                "{:?} [{}] only on the server",
                s.name,
                exprs.join(", ")
            ));
        }
    }
    (!diffs.is_empty()).then(|| {
        let message = format!(
            "the budgets given (--config) differ from the server's: {}; judge with the server's file",
            diffs.join("; ")
        );
        check("config", "server", None, None, "fail", message).key("budgets")
    })
}

/// `(judged, total)`: the policy's objectives that got a verdict in some view.
pub(crate) fn judged(policy: &BudgetPolicy, checks: &[Check]) -> (usize, usize) {
    let verdicts: HashSet<(&str, &str)> = checks
        .iter()
        .filter(|c| c.class == "budget" && matches!(c.outcome.as_str(), "pass" | "fail" | "warn"))
        .filter_map(|c| Some((c.budget.as_deref()?, c.objective.as_deref()?)))
        .collect();
    let mut judged = 0;
    let mut total = 0;
    for b in policy.budgets() {
        for o in b.objectives() {
            total += 1;
            judged += usize::from(verdicts.contains(&(b.name(), o.to_string().as_str())));
        }
    }
    (judged, total)
}
