//! The server `cargo xtask test` drives against a real OTLP receiver (see `xtask/src/otel.rs`).
//!
//! `cargo run -p perf-otel --example e2e_server -- 127.0.0.1:PORT` with the `OTEL_*` variables set.
//! Routes: `/users/{id}` (with a handler `tracing` span `load_user`), `/boom` (500), `/teapot`
//! (418), `/slow` (10 s). On SIGTERM or SIGINT it drains, flushes the spans, and prints the export
//! counters as `otel-stats queued=.. exported=.. failed=.. dropped=..`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use perf_otel::{OtelConfig, OtelLayer};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:3901")
        .parse()?;
    let guard = OtelConfig::from_env()?.service_name("otel-e2e").install()?;
    tracing_subscriber::registry()
        .with(perf_otel::tracing_layer(guard.tracer()))
        .init();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async {
                async { tokio::time::sleep(Duration::from_millis(2)).await }
                    .instrument(tracing::info_span!("load_user"))
                    .await;
                "user"
            }),
        )
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/slow",
            get(|| async { tokio::time::sleep(Duration::from_secs(10)).await }),
        )
        .layer(
            OtelLayer::builder(guard.tracer())
                .inject_response_traceparent(true)
                .build()?,
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal())
    .await?;
    let stats = guard.shutdown().await?;
    println!(
        "otel-stats queued={} exported={} failed={} dropped={}",
        stats.queued, stats.exported, stats.failed, stats.dropped
    );
    Ok(())
}

async fn signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
