//! Clients that go away, over a real socket: the only tests here that need one. They run on a
//! current-thread runtime, so the thread-local recorder sees the server's work, and wait for
//! signals (the handler started, the hook ran), never for time to pass.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use common::{Seen, hook};
use perf_middleware::metrics::{ACTIVE_REQUESTS, REQUEST_DURATION};
use perf_middleware::{Outcome, PerfLayer};
use perf_test_support::{Collector, TestRecorder, send_raw, serve};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

/// Fails instead of hanging when a signal never comes. Not a timing assertion: the signals
/// come within milliseconds.
async fn within<T>(signal: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), signal)
        .await
        .expect("the signal came")
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_request_returns_the_gauge_to_zero_and_records_cancelled() {
    let recorder = TestRecorder::new();
    let _local = recorder.local();
    let log = Collector::<Seen>::new();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let entered = Arc::new(Notify::new());
    let in_handler = entered.clone();
    let app = Router::new()
        .route(
            "/hang",
            get(move || async move {
                in_handler.notify_one();
                std::future::pending::<&str>().await
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let first =
                    futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"chunk"))]);
                let rest = futures_util::stream::pending();
                Body::from_stream(futures_util::StreamExt::chain(first, rest))
            }),
        )
        .layer(layer);
    let addr = serve(app).await;

    // 1. The client goes away while the handler is still running (no response yet).
    let conn = send_raw(addr, b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n").await;
    within(entered.notified()).await;
    assert_eq!(recorder.snapshot().gauge(ACTIVE_REQUESTS, &[]), 1.0);
    drop(conn);
    let seen = within(log.wait_for(1)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].outcome, Outcome::Cancelled);
    assert_eq!(seen[0].status, None);
    assert_eq!(recorder.snapshot().gauge(ACTIVE_REQUESTS, &[]), 0.0);

    // 2. The client goes away in the middle of a streaming body (after the headers).
    let mut conn = send_raw(addr, b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut head = Vec::new();
    while !head.ends_with(b"chunk\r\n") {
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed early: {head:?}");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    drop(conn);
    let seen = within(log.wait_for(2)).await;
    assert_eq!(seen[1].outcome, Outcome::Cancelled);
    assert_eq!(seen[1].status, Some(200));
    assert_eq!(seen[1].route.as_deref(), Some("/stream"));
    assert_eq!(seen[1].response_body_size, 5);
    let snap = recorder.snapshot();
    assert_eq!(snap.gauge(ACTIVE_REQUESTS, &[]), 0.0);
    let cancelled = snap.samples(REQUEST_DURATION, &[("error.type", "cancelled")]);
    assert_eq!(cancelled.len(), 2);
}
