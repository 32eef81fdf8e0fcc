//! Recording into the `/perf` page allocates nothing per request once a route has been seen:
//! the same requests through the same router allocate exactly as often with the page as without.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::page::{PerfPage, Protection};
use perf_middleware::{PerfLayer, ServerTiming};
use tower::ServiceExt;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn app(page: Option<&PerfPage>) -> Router {
    let mut perf = PerfLayer::builder()
        .slow_threshold(Duration::from_millis(50))
        .server_timing(ServerTiming::Always);
    if let Some(page) = page {
        perf = perf.page(page);
    }
    Router::new()
        .route("/fast/{id}", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(60)).await;
                "slow"
            }),
        )
        .layer(perf.build().unwrap())
}

/// Allocations made by `n` rounds of a fast and a slow request.
async fn allocations(app: &Router, n: usize) -> usize {
    let before = dhat::HeapStats::get().total_blocks;
    for i in 0..n {
        for uri in [format!("/fast/{i}"), "/slow".to_owned()] {
            let res = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let _ = res.into_body().collect().await.unwrap();
        }
    }
    (dhat::HeapStats::get().total_blocks - before) as usize
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn recording_into_the_page_allocates_nothing_per_request() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let page = PerfPage::builder(Protection::unprotected())
        .build()
        .unwrap();
    let (plain, paged) = (app(None), app(Some(&page)));
    // Warm up: route rows, the layers' route entries, the slow ring filled past its capacity.
    allocations(&plain, 150).await;
    allocations(&paged, 150).await;
    let without = allocations(&plain, 300).await;
    let with = allocations(&paged, 300).await;
    assert_eq!(
        with, without,
        "allocations for 600 requests with the page vs without"
    );
    assert_eq!(
        page.footprint().slow_requests,
        perf_middleware::page::SLOW_RING
    );
}
