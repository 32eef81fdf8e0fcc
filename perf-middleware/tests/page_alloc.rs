//! Recording into the `/perf` page allocates nothing per request once a route has been seen:
//! the same requests through the same router allocate exactly as often with the page as without,
//! including reading `Cache-Status` and (with `db`) the statements and N+1 findings of a
//! `DbLayer`.

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
        .route(
            "/cached",
            get(|| async { ([("cache-status", "cdn; fwd=miss, perf-cache; hit")], "ok") }),
        )
        .merge(db_routes())
        .layer(perf.build().unwrap())
}

/// A route running an N+1 (three sequential SELECTs, as sqlx's events report them) behind a
/// `DbLayer`.
#[cfg(feature = "db")]
fn db_routes() -> Router {
    use perf_middleware::db::{DbLayer, NPlusOneProfile};
    let statement = |sql: &str| perf_test_support::sqlx_statement(sql, 0.0);
    Router::new()
        .route(
            "/n1",
            get(move || async move {
                for _ in 0..3 {
                    statement("SELECT title FROM posts WHERE author_id = 1");
                }
                "n1"
            }),
        )
        .layer(
            DbLayer::builder()
                .n_plus_one(NPlusOneProfile::strict())
                .metrics(false)
                .build()
                .unwrap(),
        )
}

#[cfg(not(feature = "db"))]
fn db_routes() -> Router {
    Router::new()
}

/// Allocations made by `n` rounds of a fast and a slow request.
async fn allocations(app: &Router, n: usize) -> usize {
    let before = dhat::HeapStats::get().total_blocks;
    for i in 0..n {
        for uri in [
            format!("/fast/{i}"),
            "/slow".to_owned(),
            "/cached".to_owned(),
            "/n1".to_owned(),
        ] {
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
    #[cfg(feature = "db")]
    let _subscriber = {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry()
            .with(perf_middleware::db::DbCapture::new().filtered())
            .set_default()
    };
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
        "allocations for 1,200 requests with the page vs without"
    );
    assert_eq!(
        page.footprint().slow_requests,
        perf_middleware::page::SLOW_RING
    );
    // The N+1 ring was full (and so rotating) during the measured rounds.
    #[cfg(feature = "db")]
    assert_eq!(
        page.footprint().n_plus_one,
        perf_middleware::page::N_PLUS_ONE_RING
    );
}
