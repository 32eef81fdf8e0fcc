//! `DbLayerBuilder::skip_route`: a skipped route's statements are not given to its request (no
//! summary, no `Server-Timing: db`); they count as orphans. Other routes are measured as before.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use perf_middleware::ServerTiming;
use perf_middleware::db::{DbCapture, DbLayer, DbSummary};
use perf_test_support::sqlx_statement;
use std::sync::Arc;
use tower::ServiceExt as _;
use tracing_subscriber::prelude::*;

fn app() -> Router {
    let db = DbLayer::builder()
        .server_timing(ServerTiming::Always)
        .metrics(false)
        .skip_route("/health")
        .build()
        .unwrap();
    let handler = || async {
        sqlx_statement("SELECT 1", 0.0);
        "ok"
    };
    Router::new()
        .route("/health", get(handler))
        .route("/users", get(handler))
        .layer(db)
}

/// The `db` `Server-Timing` value and whether a summary was attached.
async fn call(app: &Router, uri: &str) -> (Option<String>, bool) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let timing = res
        .headers()
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("db;"))
        .map(str::to_owned);
    (timing, res.extensions().get::<Arc<DbSummary>>().is_some())
}

#[tokio::test(start_paused = true)]
async fn a_skipped_route_is_left_alone_and_its_statements_are_orphans() {
    let (capture, heard) = DbCapture::pair();
    let _guard = tracing_subscriber::registry()
        .with(capture.filtered())
        .set_default();
    let app = app();

    let (timing, summary) = call(&app, "/users").await;
    assert!(summary, "a measured route carries its summary");
    assert!(
        timing
            .as_deref()
            .is_some_and(|t| t.contains(r#"desc="1 query""#)),
        "{timing:?}"
    );
    assert_eq!(heard.orphans(), 0);

    let (timing, summary) = call(&app, "/health").await;
    assert_eq!(
        (timing, summary),
        (None, false),
        "the skipped route is untouched"
    );
    assert_eq!(heard.orphans(), 1, "its statement belongs to no request");
}

#[test]
fn a_skipped_route_must_be_a_template() {
    let err = DbLayer::builder().skip_route("health").build().unwrap_err();
    assert!(err.to_string().contains("health"), "{err}");
}
