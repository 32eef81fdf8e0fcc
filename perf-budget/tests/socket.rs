//! Composed stacks over a real socket: axum router + perf-middleware + perf-budget.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use perf_budget::{BudgetLayer, BudgetPolicy, BudgetReport, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

async fn serve(policy: BudgetPolicy) -> (std::net::SocketAddr, perf_budget::BudgetHandle) {
    let (layer, handle) = BudgetLayer::pair(policy);
    let app = Router::new()
        .route("/fast/{id}", get(|| async { "fast" }))
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "never"
            }),
        )
        .layer(perf_middleware::PerfLayer::new())
        .layer(layer)
        .route(
            "/perf/budgets",
            get(perf_budget::axum::report).with_state(handle.clone()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, handle)
}

#[tokio::test]
async fn deadline_and_annotate_over_a_socket_with_perf_middleware() {
    let policy = BudgetPolicy::builder()
        .mode(Mode::Deadline)
        .add_budget("fast", "GET /fast/{id}", |b| b.objective("p95 < 1s"))
        .add_budget("stuck", "GET /stuck", |b| {
            b.objective("error_rate < 1%")
                .deadline(Duration::from_millis(100))
        })
        .build()
        .unwrap();
    let (addr, handle) = serve(policy).await;
    let res = get_raw(addr, "/stuck").await;
    assert!(res.starts_with("HTTP/1.1 503"), "{res}");
    assert!(
        res.contains("performance budget deadline exceeded"),
        "{res}"
    );
    for i in 0..5 {
        assert!(
            get_raw(addr, &format!("/fast/{i}"))
                .await
                .starts_with("HTTP/1.1 200")
        );
    }
    let report: BudgetReport = {
        let raw = get_raw(addr, "/perf/budgets").await;
        let body = raw.split("\r\n\r\n").nth(1).unwrap();
        serde_json::from_str(body).unwrap()
    };
    let stuck = report.budget("stuck").unwrap();
    assert_eq!((stuck.samples, stuck.errors), (1, 1));
    assert_eq!(report.budget("fast").unwrap().samples, 5);
    assert_eq!(
        handle.report().budget("fast").unwrap().samples,
        5,
        "the handle sees the same state"
    );
}

#[tokio::test]
async fn annotate_mode_adds_its_server_timing_entry_next_to_perf_middleware() {
    let policy = BudgetPolicy::builder()
        .mode(Mode::Annotate)
        .add_budget("fast", "GET /fast/{id}", |b| b.objective("p95 < 1s"))
        .build()
        .unwrap();
    let (addr, _handle) = serve(policy).await;
    let res = get_raw(addr, "/fast/1").await.to_ascii_lowercase();
    assert!(
        res.contains("\r\nperf-budget: fast; state=ok; dur="),
        "{res}"
    );
    assert!(res.contains("budget;dur="), "{res}");
    let unbudgeted = get_raw(addr, "/nowhere").await.to_ascii_lowercase();
    assert!(
        !unbudgeted.contains("perf-budget:") && !unbudgeted.contains("budget;dur="),
        "`__other__` is no budget: no header, {unbudgeted}"
    );
}
