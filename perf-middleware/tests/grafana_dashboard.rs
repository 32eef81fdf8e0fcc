//! Lints the shipped Grafana dashboard (`grafana/tower-perf.json`) without a Grafana server.
//!
//! The rules are the structural ones of grafana/dashboard-linter (not installable here) plus the
//! defects found in other published dashboards: classic schema without `__inputs`, unique panel
//! ids, every query on the `${datasource}` variable, `$__rate_interval` in every rate of a range
//! query (`$__range` in the instant queries of the routes table), a unit and a description on every
//! panel, error ratios over `_count` (never `_bucket`), `_total` counters only inside
//! `rate`/`increase`, legend labels that the query keeps, and every metric name present in a real
//! scrape of the showcase (`grafana/testdata/showcase-metrics.txt`) or recorded by the rules
//! `perf-budget rules` generates (`grafana/testdata/showcase-rules.yml`). `cargo xtask test`
//! compares both samples with a fresh run and runs every query against a real Prometheus.

use std::collections::BTreeSet;

use serde_json::Value;

const DASHBOARD: &str = include_str!("../grafana/tower-perf.json");
const SCRAPE: &str = include_str!("../grafana/testdata/showcase-metrics.txt");
const RULES: &str = include_str!("../grafana/testdata/showcase-rules.yml");
const DATASOURCE: &str = "${datasource}";
/// The row whose panels may name metrics the showcase does not export yet (the database capture).
const DATABASE_ROW: &str = "Database (perf-middleware db)";

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("tower-perf.json is JSON")
}

/// Every panel, the ones inside collapsed rows included, with the title of the row it sits in.
fn panels(d: &Value) -> Vec<(&Value, String)> {
    let mut out = Vec::new();
    let mut row = String::new();
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            row = p["title"].as_str().unwrap_or_default().to_owned();
            for inner in p["panels"].as_array().into_iter().flatten() {
                out.push((inner, row.clone()));
            }
        }
        out.push((p, row.clone()));
    }
    out
}

/// Every query target: (panel title, row title, target).
fn targets(d: &Value) -> Vec<(String, String, &Value)> {
    panels(d)
        .into_iter()
        .flat_map(|(p, row)| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (title.clone(), row.clone(), t))
        })
        .collect()
}

fn expr(t: &Value) -> &str {
    t["expr"].as_str().unwrap_or_default()
}

/// Metric names in a PromQL expression: identifiers directly followed by a `{` selector.
fn metric_names(expr: &str) -> Vec<&str> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    for (i, _) in expr.match_indices('{') {
        let start = expr[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |s| s + 1);
        if start < i && !bytes[start].is_ascii_digit() {
            out.push(&expr[start..i]);
        }
    }
    out
}

/// The series names of a Prometheus text scrape.
fn scraped_names() -> BTreeSet<&'static str> {
    SCRAPE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect()
}

/// The names the generated rules record.
fn recorded_names() -> BTreeSet<&'static str> {
    RULES
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .collect()
}

/// `label_values(name, label)` as `name{}` so [`metric_names`] sees the metric; queries as they are.
fn selector_form(query: &str) -> String {
    match query
        .strip_prefix("label_values(")
        .and_then(|q| q.rsplit_once(','))
    {
        Some((selector, _)) if !selector.contains('{') => format!("{selector}{{}}"),
        Some((selector, _)) => selector.to_owned(),
        None => query.to_owned(),
    }
}

#[test]
fn classic_schema_without_inputs() {
    let d = dashboard();
    assert!(
        d.get("__inputs").is_none(),
        "`__inputs` breaks file provisioning (grafana/grafana#10786)"
    );
    assert!(
        d["id"].is_null(),
        "`id` must be null so imports never clash"
    );
    assert_eq!(d["uid"], "tower-perf", "a stable uid keeps links working");
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert!(d.get("elements").is_none(), "classic schema, not v2");
}

#[test]
fn panel_ids_are_unique() {
    let d = dashboard();
    let mut seen = BTreeSet::new();
    for (p, _) in panels(&d) {
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        assert!(seen.insert(id), "panel id {id} is used twice");
    }
}

#[test]
fn every_query_uses_the_datasource_variable() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&"datasource".into(), &"prometheus".into())
    );
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert_eq!(v["datasource"]["uid"], DATASOURCE, "variable {}", v["name"]);
    }
    for (p, _) in panels(&d).into_iter().filter(|(p, _)| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], DATASOURCE, "panel {}", p["title"]);
    }
    for (title, _, t) in targets(&d) {
        assert_eq!(t["datasource"]["uid"], DATASOURCE, "a target of {title}");
    }
}

#[test]
fn rates_use_the_grafana_interval_macros() {
    let d = dashboard();
    for (title, _, t) in targets(&d) {
        let e = expr(t);
        let want = if t["instant"] == true {
            "[$__range]"
        } else {
            "[$__rate_interval]"
        };
        for (i, _) in e.match_indices('[') {
            assert!(
                e[i..].starts_with(want),
                "{title}: range `{}` should be {want}: {e}",
                &e[i..e[i..].find(']').map_or(e.len(), |j| i + j + 1)]
            );
        }
        let calls = e.matches("rate(").count() + e.matches("increase(").count();
        assert_eq!(calls, e.matches(want).count(), "{title}: {e}");
        assert!(!e.contains("irate("), "{title}: irate skips samples");
    }
}

#[test]
fn every_panel_has_a_unit_and_a_description() {
    let d = dashboard();
    for (p, _) in panels(&d).into_iter().filter(|(p, _)| p["type"] != "row") {
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str();
        assert!(unit.is_some_and(|u| !u.is_empty()), "{}: unit", p["title"]);
        let desc = p["description"].as_str();
        assert!(
            desc.is_some_and(|s| s.len() > 20),
            "{}: description",
            p["title"]
        );
        assert!(
            p["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "{}: no query",
            p["title"]
        );
    }
}

#[test]
fn buckets_only_for_quantiles_and_heatmaps() {
    let d = dashboard();
    for (title, _, t) in targets(&d) {
        let e = expr(t);
        if e.contains("error_type") {
            assert!(
                !e.contains("_bucket"),
                "{title}: ratios over _bucket count each request once per bucket; use _count: {e}"
            );
        }
        if e.contains("_bucket") {
            let quantile = e.starts_with("histogram_quantile(");
            assert!(quantile || t["format"] == "heatmap", "{title}: {e}");
        }
    }
}

#[test]
fn counters_only_inside_rate_or_increase() {
    let d = dashboard();
    for (title, _, t) in targets(&d) {
        let e = expr(t);
        for name in metric_names(e)
            .into_iter()
            .filter(|n| n.ends_with("_total"))
        {
            let at = e.find(&format!("{name}{{")).unwrap_or_default();
            let before = e[..at].trim_end();
            assert!(
                before.ends_with("rate(") || before.ends_with("increase("),
                "{title}: counter {name} outside rate/increase: {e}"
            );
        }
    }
}

#[test]
fn legends_name_labels_the_query_keeps() {
    let d = dashboard();
    for (title, _, t) in targets(&d) {
        let e = expr(t);
        let legend = t["legendFormat"].as_str().unwrap_or_default();
        let kept: Vec<&str> = e
            .split("by (")
            .skip(1)
            .filter_map(|s| s.split_once(')'))
            .flat_map(|(labels, _)| labels.split(',').map(str::trim))
            .collect();
        if kept.is_empty() {
            continue; // a selector without aggregation keeps every label
        }
        for label in legend
            .split("{{")
            .skip(1)
            .filter_map(|s| s.split_once("}}"))
        {
            assert!(
                kept.contains(&label.0.trim()),
                "{title}: legend {{{{{}}}}} not in `by`: {e}",
                label.0
            );
        }
    }
}

#[test]
fn query_variables_have_all_values() {
    let d = dashboard();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            assert_eq!(v["allValue"], ".*", "{}: All without allValue", v["name"]);
            assert_eq!(
                v["refresh"], 2,
                "{}: refresh on time range change",
                v["name"]
            );
        }
    }
}

#[test]
fn every_metric_exists_in_the_showcase_scrape_or_the_rules() {
    let d = dashboard();
    let scraped = scraped_names();
    let recorded = recorded_names();
    assert!(scraped.contains("http_server_request_duration_seconds_bucket"));
    assert!(recorded.contains("slo:current_burn_rate:ratio"));
    // The database panels wait for the showcase to export the database capture's metrics; once
    // any of them is in the sample, every database panel is held to the same rule.
    let db_exported = scraped
        .iter()
        .any(|n| n.starts_with("perf_db_") || n.starts_with("db_client_"));
    let mut queries: Vec<(String, String, &str)> = targets(&d)
        .into_iter()
        .map(|(title, row, t)| (title, row, expr(t)))
        .collect();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["definition"].as_str() {
            let name = v["name"].as_str().unwrap_or_default();
            queries.push((format!("variable {name}"), String::new(), q));
        }
    }
    let mut missing = Vec::new();
    for (title, row, e) in queries {
        for name in metric_names(&selector_form(e)) {
            let known = scraped.contains(name) || recorded.contains(name);
            if !known && (row != DATABASE_ROW || db_exported) {
                missing.push(format!("{title}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "metric names absent from grafana/testdata/showcase-metrics.txt and showcase-rules.yml:\n{}",
        missing.join("\n")
    );
}

#[test]
fn metric_name_extraction() {
    let e =
        r#"sum(rate(a_total{job=~"$job"}[$__rate_interval])) / slo:x:ratio{s="1"} or vector(0)"#;
    assert_eq!(metric_names(e), ["a_total", "slo:x:ratio"]);
}
