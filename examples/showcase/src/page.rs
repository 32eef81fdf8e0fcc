//! The live `/perf` page in the showcase: token-protected (the URL is printed at start), with
//! a cache card read from the cache's own metrics, the budget report as the budgets card, and a
//! header link to the shipped Grafana dashboard when `GRAFANA_URL` names Grafana's root URL
//! (no default: Grafana's own default port, 3000, is the showcase's).

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::PrometheusHandle;
use perf_budget::BudgetHandle;
use perf_middleware::ConfigError;
use perf_middleware::page::{PerfPage, Protection};
use serde_json::{Map, Value, json};

/// The trace UI the trace ids link to (Jaeger's default address); `PERF_TRACE_URL` overrides it.
const TRACE_URL: &str = "http://localhost:16686/trace/{trace_id}";

/// The shipped dashboard's path under Grafana's root (`perf-middleware/grafana/tower-perf.json`,
/// uid `tower-perf`).
const DASHBOARD_PATH: &str = "/d/tower-perf/tower-perf";

/// The budget handle, set once the budget layer is built (after the page, whose stores the timing
/// layer inside it records into).
#[derive(Debug, Clone, Default)]
pub struct BudgetSlot(Arc<OnceLock<BudgetHandle>>);

impl BudgetSlot {
    /// Sets the handle (the first call wins).
    pub fn set(&self, handle: BudgetHandle) {
        let _ = self.0.set(handle);
    }
}

/// Builds the page with its cards.
///
/// # Errors
///
/// No randomness for the token.
pub fn build(prometheus: PrometheusHandle, budgets: BudgetSlot) -> Result<PerfPage, ConfigError> {
    let trace_url = std::env::var("PERF_TRACE_URL").unwrap_or_else(|_| TRACE_URL.to_owned());
    let mut page = PerfPage::builder(Protection::token()).trace_url(&trace_url);
    if let Ok(grafana) = std::env::var("GRAFANA_URL") {
        page = page.dashboard_url(&format!(
            "{}{DASHBOARD_PATH}",
            grafana.trim_end_matches('/')
        ));
    }
    page.card("cache", move || cache_card(&prometheus.render()))
        .card("budgets", move || {
            budgets.0.get().map_or(Value::Null, budgets_card)
        })
        .build()
}

/// The cache's counters by outcome and its hit ratio, from `perf_cache_*` in the exposition text
/// (the cache layer reports through the `metrics` facade only).
fn cache_card(text: &str) -> Value {
    let mut outcomes = Map::new();
    let mut other = Map::new();
    for line in text.lines().filter(|l| l.starts_with("perf_cache_")) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if let Some(rest) = series.strip_prefix("perf_cache_requests_total{") {
            let outcome = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("outcome=\""))
                .map_or("?", |v| v.trim_end_matches(['"', '}']));
            let n = outcomes.get(outcome).and_then(Value::as_f64).unwrap_or(0.0);
            outcomes.insert(outcome.to_owned(), json!(n + value));
        } else if !series.contains('{') {
            other.insert(series.to_owned(), json!(value));
        }
    }
    let count = |k: &str| outcomes.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    // Lookups the cache could answer: everything but bypassed requests (unsafe methods, no-store).
    let total: f64 = outcomes.values().filter_map(Value::as_f64).sum::<f64>() - count("bypass");
    let hits = count("hit") + count("stale") + count("revalidated") + count("collapsed");
    json!({
        "hit_ratio": (total > 0.0).then(|| hits / total),
        "requests": outcomes,
        "store": other,
    })
}

/// One row per budget: state, observed percentiles and rate; the per-route badge column.
fn budgets_card(budgets: &BudgetHandle) -> Value {
    let report = budgets.report();
    let rows: Vec<Value> = report
        .budgets
        .iter()
        .map(|b| {
            json!({
                "budget": b.name,
                "route": b.route,
                "state": serde_json::to_value(b.state).unwrap_or(Value::Null),
                "p95_ms": b.observed.p95_ms,
                "p99_ms": b.observed.p99_ms,
                "error_rate": b.observed.error_rate,
                "rps": b.observed.rps,
            })
        })
        .collect();
    let routes: Map<String, Value> = report
        .budgets
        .iter()
        .filter_map(|b| {
            // Budget routes are `METHOD /template`; the page's rows are templates.
            let template = b.route.split_once(' ').map_or(&*b.route, |(_, t)| t);
            let state = serde_json::to_value(b.state).unwrap_or(Value::Null);
            template
                .starts_with('/')
                .then(|| (template.to_owned(), json!({ "state": state })))
        })
        .collect();
    json!({ "pass": report.pass, "budgets": rows, "routes": routes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_card_sums_outcomes() {
        let text = "perf_cache_requests_total{outcome=\"hit\"} 3\n\
                    perf_cache_requests_total{outcome=\"miss\"} 1\n\
                    perf_cache_stored_bytes 512\n";
        let v = cache_card(text);
        assert_eq!(v["hit_ratio"], 0.75);
        assert_eq!(v["requests"]["hit"], 3.0);
        assert_eq!(v["store"]["perf_cache_stored_bytes"], 512.0);
    }
}
