//! Composed stacks over a real socket: axum router + perf-middleware + perf-budget.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use perf_budget::{BudgetLayer, BudgetPolicy, BudgetReport, Mode};
use perf_test_support::{get_text, serve as serve_app};

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
    (serve_app(app).await, handle)
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
    let res = get_text(addr, "/stuck").await;
    assert_eq!(res.status, 503, "{res:?}");
    assert!(
        res.text().contains("performance budget deadline exceeded"),
        "{res:?}"
    );
    for i in 0..5 {
        assert_eq!(get_text(addr, &format!("/fast/{i}")).await.status, 200);
    }
    let report: BudgetReport =
        serde_json::from_str(get_text(addr, "/perf/budgets").await.text()).unwrap();
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
    let res = get_text(addr, "/fast/1").await;
    let annotated = res.header("perf-budget").unwrap_or_default();
    assert!(annotated.starts_with("fast; state=ok; dur="), "{res:?}");
    let timing: Vec<&str> = res
        .headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(timing.iter().any(|v| v.contains("budget;dur=")), "{res:?}");
    let unbudgeted = get_text(addr, "/nowhere").await;
    let timing_other: Vec<&str> = unbudgeted
        .headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        unbudgeted.header("perf-budget").is_none()
            && !timing_other.iter().any(|v| v.contains("budget;dur=")),
        "`__other__` is no budget: no header, {unbudgeted:?}"
    );
}
