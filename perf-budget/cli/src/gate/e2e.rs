//! The gate end to end, against an in-process axum server with the budget layer on
//! `127.0.0.1:0`: exit codes and what the JSON output judged, never wall-clock timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::{Router, extract::State, routing::get};
use clap::Parser;
use perf_budget::{BudgetHandle, BudgetLayer, BudgetPolicy};

use crate::gate::{BUDGET, CONFIG, Output, PASS};
use crate::{Cli, Cmd};

/// A server answering `GET /orders/{id}` after `delay` ms, with the budgets of `toml`.
fn serve(toml: &str) -> (String, BudgetHandle, Arc<AtomicU64>) {
    let policy = BudgetPolicy::from_toml(toml).expect("server budgets");
    let (layer, handle) = BudgetLayer::pair(policy);
    let delay = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|State(d): State<Arc<AtomicU64>>| async move {
                tokio::time::sleep(Duration::from_millis(d.load(Relaxed))).await;
                "{}"
            }),
        )
        .with_state(delay.clone())
        .layer(layer)
        .route(
            "/perf/budgets",
            get(perf_budget::axum::report).with_state(handle.clone()),
        );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().expect("server address");
    (format!("http://{addr}"), handle, delay)
}

/// Runs `perf-budget gate` with `toml` as `--config`: the exit code and the JSON output.
fn gate(dir: &std::path::Path, toml: &str, target: &str, request: &str) -> (u8, Output) {
    let config = dir.join("budgets.toml");
    let json = dir.join("gate.json");
    let junit = dir.join("gate.xml");
    std::fs::write(&config, toml).unwrap();
    let _ = std::fs::remove_file(&json);
    let args = [
        "perf-budget",
        "gate",
        "--config",
        config.to_str().unwrap(),
        "--target",
        target,
        "--request",
        request,
        "--rate",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--min-rate-ratio",
        "0.5",
        "--max-dropped",
        "0.5",
        "--max-lag-p99",
        "1s",
        "--client-server-gap",
        "1000",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    let Cmd::Gate(a) = Cli::try_parse_from(args).unwrap().cmd else {
        unreachable!("gate arguments")
    };
    let code = crate::gate::run(&a);
    let out = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (code, out)
}

/// The server view's p95 of the run, in ms.
fn server_p95(out: &Output) -> f64 {
    let order = out.server.as_ref().and_then(|s| s.budget("order"));
    let p95 = order.and_then(|b| b.observed.p95_ms);
    p95.unwrap_or_else(|| panic!("the run's server view has a p95: {order:#?}"))
}

/// The server view's check of `order`'s p95 objective.
fn server_check(out: &Output) -> &crate::gate::Check {
    let mut checks = out.checks.iter();
    checks
        .find(|c| c.view == "server" && c.class == "budget" && c.budget.as_deref() == Some("order"))
        .unwrap_or_else(|| panic!("a server check of order: {:#?}", out.checks))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("perf-budget-e2e-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const ORDERS: &str = r#"
[defaults]
sample_floor = 20
[[budget]]
name = "order"
route = "GET /orders/{id}"
objectives = ["p95 < 100ms"]
"#;

#[test]
fn a_request_that_matches_no_budget_exits_4_before_any_request() {
    let typo = ORDERS.replace("/orders/{id}", "/order/{id}");
    let (url, handle, _) = serve(&typo);
    let (code, out) = gate(&tmp("typo"), &typo, &url, "GET /orders/1");
    assert_eq!(code, CONFIG, "{:#?}", out.checks);
    let c = out.checks.iter().find(|c| c.outcome == "fail").unwrap();
    assert!(c.message.contains("matches no budget"), "{}", c.message);
    assert_eq!((out.judged, out.objectives), (0, 1));
    assert!(out.run.is_none(), "no load was sent");
    assert_eq!(handle.report().budgets.last().unwrap().total_requests, 0);
}

#[test]
fn budgets_that_differ_from_the_servers_exit_4_naming_the_objectives() {
    let (url, handle, _) = serve(&ORDERS.replace("100ms", "50ms"));
    let (code, out) = gate(
        &tmp("mismatch"),
        &ORDERS.replace("100ms", "5ms"),
        &url,
        "GET /orders/1",
    );
    assert_eq!(code, CONFIG, "{:#?}", out.checks);
    let c = out.checks.iter().find(|c| c.outcome == "fail").unwrap();
    assert!(
        c.message
            .contains(r#""order" [p95 < 5ms] here, [p95 < 50ms] on the server"#),
        "{}",
        c.message
    );
    assert_eq!(
        handle.report().budget("order").unwrap().total_requests,
        0,
        "no load"
    );
}

#[test]
fn a_run_after_a_bad_run_judges_only_its_own_requests() {
    // The server keeps the default floor (200 for p95); the gate's file lowers it to 20, and
    // judges both views with it.
    let (url, handle, delay) = serve(&ORDERS.replace("sample_floor = 20", ""));
    let dir = tmp("after-bad");
    delay.store(150, Relaxed);
    let (code, out) = gate(&dir, ORDERS, &url, "GET /orders/1");
    assert_eq!(code, BUDGET, "{:#?}", out.checks);
    // The run's server quantiles, from the histograms since start: a Tokio sleep never ends
    // early, so every request took 150 ms or more, whose bucket's midpoint is 149.504 ms.
    let p95 = server_p95(&out);
    assert!(p95 >= 149.5, "server p95 {p95} ms of a 150 ms handler");
    let check = server_check(&out);
    assert!(check.message.starts_with("p95 = "), "{}", check.message);
    // The HTML's server curve: the same run's histogram, from its fastest request to its slowest.
    let spectra = &out.run.as_ref().unwrap().server_spectra;
    let order = spectra
        .iter()
        .find(|s| s.budget == "order")
        .expect("a server spectrum");
    assert!(
        order.points.iter().all(|p| p.1 >= 149.5),
        "{:?}",
        order.points
    );
    delay.store(0, Relaxed);
    let (code, out) = gate(&dir, ORDERS, &url, "GET /orders/1");
    assert_eq!(code, PASS, "{:#?}", out.checks);
    // The window still holds the slow run (p95 ≥ 149.5 ms); the run's view does not. The
    // client view passed `p95 < 100ms` on exact counts, and each request took at least as long
    // on the client as inside the layer, so the server's p95 is in a bucket below 100 ms.
    let window = handle.report().budget("order").unwrap().observed.p95_ms;
    assert!(window.is_some_and(|w| w >= 149.5), "window p95 {window:?}");
    let p95 = server_p95(&out);
    assert!(p95 < 100.4, "the run's server p95 {p95} ms");
    let spectra = &out.run.as_ref().unwrap().server_spectra;
    let points = &spectra.iter().find(|s| s.budget == "order").unwrap().points;
    let slowest = points.last().unwrap().1;
    // Every request of the slow run took 150 ms or more.
    assert!(
        slowest < 149.5,
        "the run's slowest is this run's, not the slow run's: {slowest} ms"
    );
    let run = out.server.as_ref().unwrap().budget("order").unwrap();
    let sent = out.run.as_ref().unwrap().sent;
    let window = handle.report().budget("order").unwrap().samples;
    assert!(
        run.samples <= sent && window >= run.samples + 20,
        "run {} of window {window}",
        run.samples
    );
    assert_eq!((out.judged, out.objectives), (1, 1));
    let json = serde_json::to_string(&out.client).unwrap();
    let longest = json
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|n| n.split_once('.').map(|(_, d)| d.len()))
        .max();
    assert!(
        longest.is_some_and(|d| d <= 6),
        "numbers are rounded: {json}"
    );
    let junit = std::fs::read_to_string(dir.join("gate.xml")).unwrap();
    assert!(
        junit.contains(r#"name="order.p95""#) && junit.contains(r#"name="validity.rate""#),
        "{junit}"
    );
}
