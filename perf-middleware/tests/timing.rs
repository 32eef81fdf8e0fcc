//! What the layer measures and reports about time, on paused Tokio time: durations are exact.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use common::{Seen, call, get as get_path, hook};
use perf_middleware::{Outcome, PerfLayer, ServerTiming};
use perf_test_support::{Collector, Events, FieldValue};

fn sleepy(ms: u64) -> axum::routing::MethodRouter {
    get(move || async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        "ok"
    })
}

#[tokio::test(start_paused = true)]
async fn streaming_body_duration_covers_the_body_and_time_to_headers_does_not() {
    let log = Collector::<Seen>::new();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/stream",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let chunks = futures_util::stream::unfold(0u32, |i| async move {
                    if i == 3 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Ok::<_, Infallible>(Bytes::from(vec![b'x'; 1000])), i + 1))
                });
                Body::from_stream(chunks)
            }),
        )
        .layer(layer);
    let (status, _, body) = get_path(app, "/stream").await;
    assert_eq!((status.as_u16(), body.len()), (200, 3000));
    let seen = log.items();
    assert_eq!(
        seen,
        [Seen {
            route: Some("/stream".into()),
            status: Some(200),
            outcome: Outcome::Completed,
            duration: Duration::from_millis(320),
            time_to_headers: Some(Duration::from_millis(20)),
            response_body_size: 3000,
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn slow_log_fires_at_the_threshold_and_not_below() {
    let events = Events::for_target("perf_middleware::slow");
    let _sub = events.set_default();
    let log = Collector::<Seen>::new();
    let layer = PerfLayer::builder()
        .slow_threshold(Duration::from_millis(150))
        .route_slow_threshold("/override", Duration::from_secs(10))
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/fast", sleepy(149))
        .route("/slow/{id}", sleepy(250))
        .route("/edge", sleepy(150))
        .route("/override", sleepy(250))
        .layer(layer);
    for path in ["/fast", "/override", "/slow/7?secret=1", "/edge"] {
        get_path(app.clone(), path).await;
    }
    assert_eq!(log.len(), 4);

    let ev = events.events();
    let routes: Vec<_> = ev.iter().map(|e| e.str("route")).collect();
    assert_eq!(routes, [Some("/slow/{id}"), Some("/edge")], "{ev:?}");
    let slow = &ev[0];
    assert_eq!(slow.level, tracing::Level::WARN);
    assert_eq!(slow.str("method"), Some("GET"));
    assert_eq!(slow.u64("status"), Some(200));
    assert_eq!(slow.f64("threshold_ms"), Some(150.0));
    assert_eq!(slow.f64("latency_ms"), Some(250.0));
    assert_eq!(slow.f64("time_to_headers_ms"), Some(250.0));
    assert_eq!(slow.str("outcome"), Some("completed"));
    assert_eq!(slow.u64("response_body_bytes"), Some(2));
    assert_eq!(
        slow.field("query"),
        None,
        "the raw query is not logged by default"
    );
    assert_eq!(slow.field("path"), None);
    assert_eq!(ev[1].field("latency_ms"), Some(&FieldValue::F64(150.0)));
}

#[tokio::test(start_paused = true)]
async fn slow_log_carries_path_and_query_only_when_asked() {
    let events = Events::for_target("perf_middleware::slow");
    let _sub = events.set_default();
    let layer = PerfLayer::builder()
        .slow_threshold(Duration::from_millis(10))
        .log_path(true)
        .log_query(true)
        .build()
        .unwrap();
    let app = Router::new().route("/slow/{id}", sleepy(10)).layer(layer);
    get_path(app, "/slow/7?secret=1").await;
    let ev = events.events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].str("path"), Some("/slow/7"));
    assert_eq!(ev[0].str("query"), Some("secret=1"));
}

#[tokio::test(start_paused = true)]
async fn server_timing_only_when_enabled() {
    let app = |st: ServerTiming| {
        Router::new()
            .route("/x", sleepy(5))
            .layer(PerfLayer::builder().server_timing(st).build().unwrap())
    };
    let timing = |headers: &http::HeaderMap| {
        headers
            .get_all("server-timing")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (_, headers, _) = get_path(app(ServerTiming::Off), "/x").await;
    assert!(timing(&headers).is_empty());
    let (_, headers, _) = get_path(app(ServerTiming::Always), "/x").await;
    assert_eq!(timing(&headers), ["total;dur=5.00"]);

    let gated = app(ServerTiming::when_header(http::HeaderName::from_static(
        "x-timing",
    )));
    let (_, headers, _) = get_path(gated.clone(), "/x").await;
    assert!(timing(&headers).is_empty());
    let req = http::Request::get("/x")
        .header("x-timing", "1")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = call(gated, req).await;
    assert_eq!(timing(&headers), ["total;dur=5.00"]);
}
