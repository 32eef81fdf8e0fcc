//! An `oha --json` result as the client view.

use std::collections::BTreeMap;
use std::time::Duration;

use perf_budget::Objective;
use serde::Deserialize;

use crate::gate::*;
use crate::load::{RunStats, View};

/// The parts of an `oha --json` result the gate reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaResult {
    summary: Summary,
    latency_percentiles: BTreeMap<String, Option<f64>>,
    #[serde(default)]
    status_code_distribution: BTreeMap<String, u64>,
    #[serde(default)]
    error_distribution: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    slowest: Option<f64>,
    requests_per_sec: Option<f64>,
    total: Option<f64>,
}

impl OhaResult {
    /// A percentile (`p95`) in milliseconds.
    fn ms(&self, key: &str) -> Option<f64> {
        self.latency_percentiles
            .get(key)
            .copied()
            .flatten()
            .map(|s| s * 1000.0)
    }
}

/// Reads an `oha --json` result (aggregate percentiles of one request kind).
pub(crate) fn read_oha(
    json: &str,
    objectives: &[Objective],
    open_rate: Option<f64>,
) -> Result<(View, ClientBudget, RunStats), String> {
    let oha: OhaResult =
        serde_json::from_str(json).map_err(|e| format!("not an oha JSON result: {e}"))?;
    let failed: u64 = oha.error_distribution.values().sum();
    let n = oha.status_code_distribution.values().sum::<u64>() + failed;
    let errors = failed
        + oha
            .status_code_distribution
            .iter()
            .filter(|(code, _)| code.starts_with('5'))
            .map(|(_, count)| count)
            .sum::<u64>();
    let mut view = View::new(objectives.len());
    // oha reports percentiles only: reconstruct the exact-count view per objective from them.
    for (i, o) in objectives.iter().enumerate() {
        if let Objective::Latency { threshold, .. } = o {
            let key = o.label();
            let ms = oha
                .ms(&key)
                .ok_or_else(|| format!("oha result has no {key} percentile"))?;
            let over = ms >= threshold.as_secs_f64() * 1000.0;
            view.over[i] = if over { n } else { 0 };
        }
    }
    let p50_us = oha.ms("p50").map_or(1, |m| (m * 1000.0) as u64).max(1);
    view.hist.record_n(Duration::from_micros(p50_us), n);
    view.errors = errors;
    let q = |qq: f64, key: &str| oha.ms(key).map(|m| (qq, m, m, m));
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
        max_ms: oha.summary.slowest.unwrap_or(0.0) * 1000.0,
        quantiles: [q(0.5, "p50"), q(0.95, "p95"), q(0.99, "p99")]
            .into_iter()
            .flatten()
            .collect(),
    };
    let rps = oha.summary.requests_per_sec.unwrap_or(0.0);
    let run = RunStats {
        target_rate: open_rate.unwrap_or(rps),
        achieved_rate: rps,
        scheduled: n,
        sent: n,
        dropped: 0,
        lag_p99_ms: 0.0,
        lag_max_ms: 0.0,
        duration_s: oha.summary.total.unwrap_or(0.0),
        warmup_s: 0.0,
        open_model: open_rate.is_some(),
        ..RunStats::default()
    };
    Ok((view, stats, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_oha_result() {
        let json = r#"{
            "summary": {"successRate": 1.0, "total": 10.0, "slowest": 0.25, "requestsPerSec": 100.0},
            "latencyPercentiles": {"p50": 0.01, "p95": 0.3, "p99": 0.4},
            "statusCodeDistribution": {"200": 990, "503": 10},
            "errorDistribution": {"timeout": 0}
        }"#;
        let p95 = Objective::parse("p95 < 200ms").unwrap();
        let (view, stats, run) = read_oha(json, &[p95], Some(100.0)).unwrap();
        assert_eq!((stats.n, stats.errors, view.over[0]), (1000, 10, 1000));
        assert_eq!(stats.max_ms, 250.0);
        assert!(run.open_model);
        assert!(
            read_oha("{}", &[], None)
                .unwrap_err()
                .starts_with("not an oha JSON result")
        );
    }
}
