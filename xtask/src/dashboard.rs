//! Real-tool check of the Grafana dashboard (`perf-middleware/grafana/tower-perf.json`):
//!
//! - the showcase runs under a bounded load (slow, cached, revalidated, written, erroring,
//!   unknown and cancelled requests) and exports its spans to a stub OTLP receiver, while
//!   Debian's `prometheus` scrapes it every second and evaluates the rules `perf-budget rules`
//!   generates;
//! - every panel query, with Grafana's variables and macros substituted, goes through
//!   `/api/v1/query` and must return non-empty, finite, plausible values (the slow route's p95 in
//!   the bucket of its sleep, a cache hit ratio above 0, burn rates present);
//! - the samples the lint test reads (`grafana/testdata/`) still match a fresh scrape and a fresh
//!   rule file.

mod load;
mod otlp;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Server, bin_path, free_port, http, project_root, require_tool, run, target_dir};

/// The sleep of the slow route under load; its p95 must land in the bucket (0.5 s, 0.75 s].
const SLOW_MS: u64 = 700;
const SLOW_BUCKET: (f64, f64) = (0.5, 0.75);
/// What `$__rate_interval` becomes (Grafana: max(4 × scrape interval, interval + scrape)).
const RATE_INTERVAL: &str = "15s";
/// How long Prometheus scrapes the loaded showcase before the queries (the load keeps running
/// while they run); `$__range` of the routes table.
const WARM_UP: Duration = Duration::from_secs(25);

/// Runs the check.
pub(crate) fn test() -> Result<(), String> {
    let prometheus = require_tool(
        "prometheus",
        "apt-get install -y prometheus (Debian's package; .ci/run does this)",
    )?;
    let dir = target_dir().join("xtask").join("dashboard");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let grafana = project_root().join("perf-middleware/grafana");
    let rules = dir.join("rules.yml");
    run(Command::new(bin_path("perf-budget"))
        .args([
            "rules",
            "--period",
            "30d",
            "--service",
            "showcase",
            "--config",
        ])
        .arg(project_root().join("examples/showcase/budgets.toml"))
        .arg("--out")
        .arg(&rules))?;
    same_text(&rules, &grafana.join("testdata/showcase-rules.yml"))?;

    let receiver = otlp::Receiver::start()?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(bin_path("showcase"));
    cmd.args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "error")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", receiver.addr),
        )
        .stdout(Stdio::null());
    let _showcase = Server::start("showcase", cmd, addr)?;
    let load = load::Load::start(addr, SLOW_MS);

    let prom_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, prometheus_config(addr, &rules)).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("prometheus.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(log);
    let _prometheus = Server::start("prometheus", cmd, prom_addr)?;
    std::thread::sleep(WARM_UP);

    let scrape = http(addr, "GET", "/metrics", &[], b"")?.text();
    let fresh = dir.join("showcase-metrics.txt");
    std::fs::write(&fresh, &scrape).map_err(|e| e.to_string())?;
    same_names(
        &scrape,
        &fresh,
        &grafana.join("testdata/showcase-metrics.txt"),
    )?;
    let rules_read = rules_read_exported(&rules, &scrape);

    let range = format!("{}s", WARM_UP.as_secs());
    let panels = check_panels(prom_addr, &grafana.join("tower-perf.json"), &scrape, &range);
    drop(load);
    drop(receiver);
    match (rules_read, panels) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
    }
}

fn prometheus_config(target: SocketAddr, rules: &Path) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: showcase\n    static_configs:\n      - targets: ['{target}']\n",
        rules.display()
    )
}

/// One query of one panel, its variables and macros substituted.
#[derive(Debug)]
struct Query {
    panel: String,
    row: String,
    unit: String,
    /// `heatmap`: bucket counts, whatever the axis unit.
    format: String,
    expr: String,
}

fn queries(dashboard: &Value, range: &str) -> Vec<Query> {
    let mut out = Vec::new();
    let mut row = String::new();
    let top = dashboard["panels"].as_array().cloned().unwrap_or_default();
    for p in &top {
        if p["type"] == "row" {
            row = p["title"].as_str().unwrap_or_default().to_owned();
        }
        let inner = p["panels"].as_array().cloned().unwrap_or_default();
        for p in inner.iter().chain(std::iter::once(p)) {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(Query {
                    panel: p["title"].as_str().unwrap_or_default().to_owned(),
                    row: row.clone(),
                    unit: p["fieldConfig"]["defaults"]["unit"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    format: t["format"].as_str().unwrap_or_default().to_owned(),
                    expr: substitute(t["expr"].as_str().unwrap_or_default(), range),
                });
            }
        }
    }
    out
}

/// Grafana's macros and the variables at "All" (`allValue` `.*`).
fn substitute(expr: &str, range: &str) -> String {
    let mut e = expr.to_owned();
    for (from, to) in [
        ("$__rate_interval", RATE_INTERVAL),
        ("$__interval", "5s"),
        ("$__range", range),
    ] {
        e = e.replace(from, to);
    }
    for var in ["job", "instance", "route", "method", "service"] {
        e = e
            .replace(&format!("${{{var}}}"), ".*")
            .replace(&format!("${var}"), ".*");
    }
    e
}

fn check_panels(prom: SocketAddr, file: &Path, scrape: &str, range: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let dashboard: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let db_exported = scrape.contains("\nperf_db_") || scrape.contains("\ndb_client_");
    let mut failures = Vec::new();
    let mut checked = 0;
    for q in queries(&dashboard, range) {
        if q.row.starts_with("Database") && !db_exported {
            println!(
                "skip (no perf_db_* metrics in the showcase yet): {}",
                q.panel
            );
            continue;
        }
        checked += 1;
        match query(prom, &q.expr).and_then(|r| plausible(&q, &r)) {
            Ok(summary) => println!("ok   {:<45} {summary}", q.panel),
            Err(e) => failures.push(format!("panel \"{}\": {e}\n  query: {}", q.panel, q.expr)),
        }
    }
    if failures.is_empty() {
        println!("dashboard: {checked} panel queries against Prometheus: ok");
        Ok(())
    } else {
        Err(format!(
            "{} of {checked} panel queries failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

/// `(labels, value)` of each series an instant query returns.
fn query(prom: SocketAddr, expr: &str) -> Result<Vec<(Value, f64)>, String> {
    let path = format!("/api/v1/query?query={}", percent_encode(expr));
    let res = http(prom, "GET", &path, &[], b"")?;
    let body: Value = serde_json::from_slice(&res.body)
        .map_err(|e| format!("status {}: {e}: {}", res.status, res.text()))?;
    if body["status"] != "success" {
        return Err(format!("Prometheus: {}", body["error"]));
    }
    let series = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(series
        .into_iter()
        .map(|s| {
            let v = s["value"][1].as_str().and_then(|v| v.parse().ok());
            (s["metric"].clone(), v.unwrap_or(f64::NAN))
        })
        .collect())
}

/// Non-empty, finite, in the range of the panel's unit, and the per-panel expectations.
fn plausible(q: &Query, series: &[(Value, f64)]) -> Result<String, String> {
    if series.is_empty() {
        return Err("empty result".into());
    }
    for (labels, v) in series {
        let unit = if q.format == "heatmap" {
            ""
        } else {
            q.unit.as_str()
        };
        let in_range = match unit {
            "percentunit" => (0.0..=1.0).contains(v),
            "s" => (0.0..=10.0).contains(v),
            "none" => [0.0, 1.0, 2.0].contains(v),
            _ => *v >= 0.0,
        };
        if !v.is_finite() || !in_range {
            return Err(format!("implausible value {v} ({}) for {labels}", q.unit));
        }
        let slow = unit == "s"
            && labels["http_route"] == "/api/slow"
            && q.expr.contains("0.95, sum by (le, http");
        if slow && !(*v > SLOW_BUCKET.0 && *v <= SLOW_BUCKET.1) {
            return Err(format!(
                "p95 of /api/slow?ms={SLOW_MS} is {v} s, outside the bucket ({}, {}] s",
                SLOW_BUCKET.0, SLOW_BUCKET.1
            ));
        }
    }
    let positive = ["Request rate", "Cache hit ratio", "Cancelled share"];
    if positive.contains(&q.panel.as_str()) && series.iter().all(|(_, v)| *v <= 0.0) {
        return Err("expected a value above 0 under the load".into());
    }
    let values: Vec<String> = series
        .iter()
        .take(4)
        .map(|(_, v)| format!("{v:.4}"))
        .collect();
    Ok(format!("{} series: {}", series.len(), values.join(" ")))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Series names of a Prometheus text scrape.
fn names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_owned))
        .collect()
}

fn same_names(scrape: &str, fresh: &Path, committed: &Path) -> Result<(), String> {
    let old =
        std::fs::read_to_string(committed).map_err(|e| format!("{}: {e}", committed.display()))?;
    let (now, before) = (names(scrape), names(&old));
    if now == before {
        println!("grafana/testdata/showcase-metrics.txt: same series names as the live scrape");
        return Ok(());
    }
    Err(format!(
        "the showcase's series names changed (new: {:?}, gone: {:?}); refresh the sample the lint \
         test reads: cp {} {}",
        now.difference(&before).collect::<Vec<_>>(),
        before.difference(&now).collect::<Vec<_>>(),
        fresh.display(),
        committed.display()
    ))
}

fn same_text(fresh: &Path, committed: &Path) -> Result<(), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    if read(fresh)? == read(committed)? {
        return Ok(());
    }
    Err(format!(
        "`perf-budget rules` output changed; refresh the sample the lint test reads: cp {} {}",
        fresh.display(),
        committed.display()
    ))
}

/// The series the generated rules read must be in the scrape (else every `slo:*` panel is empty).
fn rules_read_exported(rules: &Path, scrape: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(rules).map_err(|e| e.to_string())?;
    let exported = names(scrape);
    let missing: BTreeSet<&str> = text
        .match_indices('{')
        .filter_map(|(i, _)| {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |s| s + 1);
            let name = &text[start..i];
            (name.starts_with("perf_") && !exported.contains(name)).then_some(name)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the rules `perf-budget rules` generates read {missing:?}, which the showcase does not \
         export (counters are exported with `_total`), so every recorded slo:* series is empty"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_and_variables_are_substituted() {
        let e = r#"sum(rate(x_total{job=~"$job", r=~"${route}"}[$__rate_interval])) / y[$__range]"#;
        assert_eq!(
            substitute(e, "25s"),
            r#"sum(rate(x_total{job=~".*", r=~".*"}[15s])) / y[25s]"#
        );
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            percent_encode(r#"a{b="c d"}[1m]"#),
            "a%7Bb%3D%22c%20d%22%7D%5B1m%5D"
        );
    }

    #[test]
    fn plausibility_follows_the_unit() {
        let q = |unit: &str, expr: &str| Query {
            panel: "p".into(),
            row: String::new(),
            unit: unit.into(),
            format: String::new(),
            expr: expr.into(),
        };
        let slow = serde_json::json!({"http_route": "/api/slow"});
        let p95 = "histogram_quantile(0.95, sum by (le, http_route) (rate(x[15s])))";
        assert!(plausible(&q("s", p95), &[(slow.clone(), 0.7)]).is_ok());
        assert!(plausible(&q("s", p95), &[(slow.clone(), 0.2)]).is_err());
        assert!(plausible(&q("percentunit", "x"), &[(Value::Null, 1.5)]).is_err());
        assert!(plausible(&q("reqps", "x"), &[(Value::Null, f64::NAN)]).is_err());
        assert!(plausible(&q("reqps", "x"), &[]).is_err());
    }

    #[test]
    fn series_names_of_a_scrape() {
        let scrape = "# TYPE a counter\na_total{x=\"1\"} 1\nb 2\n";
        assert_eq!(
            names(scrape),
            BTreeSet::from(["a_total".into(), "b".into()])
        );
    }
}
