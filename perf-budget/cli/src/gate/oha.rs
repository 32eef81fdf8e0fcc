//! An `oha --json` result as the client view.

use std::time::Duration;

use perf_budget::Objective;

use crate::gate::*;
use crate::load::{RunStats, View};

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
    let p50_us = get_ms("p50").map_or(1, |m| (m * 1000.0) as u64).max(1);
    view.hist.record_n(Duration::from_micros(p50_us), n);
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
