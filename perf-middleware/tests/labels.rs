//! The metric labels a request gets, on paused Tokio time with a local recorder.

mod common;

use axum::Router;
use axum::routing::get;
use common::get as get_path;
use perf_middleware::metrics::{ACTIVE_REQUESTS, LABEL_ROUTE, REQUEST_DURATION};
use perf_middleware::{PerfLayer, UNMATCHED_ROUTE};
use perf_test_support::TestRecorder;

#[tokio::test(start_paused = true)]
async fn unknown_paths_share_one_route_label_and_5xx_carries_error_type() {
    let recorder = TestRecorder::new();
    let _local = recorder.local();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "u" }))
        .route(
            "/boom",
            get(|| async { http::StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(PerfLayer::new());
    for i in 0..50 {
        get_path(app.clone(), &format!("/users/{i}")).await;
        get_path(app.clone(), &format!("/random/{i}/{}", i * 7919)).await;
    }
    get_path(app, "/boom").await;

    let snap = recorder.snapshot();
    assert_eq!(
        snap.label_values(REQUEST_DURATION, LABEL_ROUTE),
        ["/boom", "/users/{id}", UNMATCHED_ROUTE]
            .map(String::from)
            .into()
    );
    let unmatched = [
        (LABEL_ROUTE, UNMATCHED_ROUTE),
        ("http.response.status_code", "404"),
    ];
    assert_eq!(snap.samples(REQUEST_DURATION, &unmatched).len(), 50);
    let users = [
        (LABEL_ROUTE, "/users/{id}"),
        ("http.request.method", "GET"),
        ("url.scheme", "http"),
    ];
    assert_eq!(snap.samples(REQUEST_DURATION, &users).len(), 50);
    assert_eq!(
        snap.samples(REQUEST_DURATION, &[("error.type", "500")])
            .len(),
        1
    );
    assert_eq!(
        snap.matching(REQUEST_DURATION, &[("error.type", "404")])
            .count(),
        0
    );
    assert_eq!(snap.gauge(ACTIVE_REQUESTS, &[]), 0.0);
}
