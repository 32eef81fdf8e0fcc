//! The capture starved by a global filter at `info` (the usual `fmt().with_env_filter("info")`
//! set-up): the startup check WARNs with the fix, and the counters show the capture hears nothing.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::ServerTiming;
use perf_middleware::db::{DbCapture, DbLayer, check_capture};
use sqlx::sqlite::SqlitePoolOptions;
use tower::ServiceExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == perf_middleware::db::TARGET {
            let mut text = String::new();
            struct V<'a>(&'a mut String);
            impl tracing::field::Visit for V<'_> {
                fn record_debug(&mut self, _: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{v:?}"));
                }
            }
            event.record(&mut V(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_info_filter_starves_the_capture_and_says_so() {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let (capture, counters) = DbCapture::pair();
    tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(Warnings(warnings.clone()))
        .with(capture.filtered())
        .init();

    assert!(!check_capture(), "the probe sees the filter");
    let warned = warnings.lock().unwrap().clone();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("sqlx::query=debug"),
        "the WARN says how to fix it: {warned:?}"
    );

    let pool = SqlitePoolOptions::new()
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let db = DbLayer::builder()
        .server_timing(ServerTiming::Always)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|State(pool): State<sqlx::SqlitePool>| async move {
                sqlx::query("SELECT 1").execute(&pool).await.unwrap();
                "ok"
            }),
        )
        .with_state(pool)
        .layer(db);
    let res = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    // The request span is filtered out too: no collector, no `db` entry.
    assert!(res.headers().get("server-timing").is_none());
    res.into_body().collect().await.unwrap();
    assert_eq!(counters.events(), 0, "the \"hears nothing\" counter");
    // The layer's own first-request check found the same and did not say it again: one WARN
    // per process.
    assert_eq!(warnings.lock().unwrap().len(), 1);
}
