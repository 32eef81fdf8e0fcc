//! perf-otel composed with perf-middleware in an axum server over a real socket.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use perf_otel::OtelLayer;
use perf_test_support::{Events, exchange};

#[tokio::test(flavor = "current_thread")]
async fn slow_log_of_perf_middleware_carries_the_trace_id_and_the_span_arrives() {
    let slow = Events::for_target("perf_middleware::slow");
    let _default = slow.set_default();

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let perf = perf_middleware::PerfLayer::builder()
        .slow_threshold(Duration::from_millis(5))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/slow/{n}",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                "done"
            }),
        )
        .layer(perf)
        .layer(
            OtelLayer::builder(provider.tracer("t"))
                .inject_response_traceparent(true)
                .build()
                .unwrap(),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = http::Request::get("/slow/1")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(Bytes::new())
        .unwrap();
    let res = exchange(addr, req).await;
    assert_eq!(res.status, 200);
    let echoed = res.header("traceparent").unwrap_or_default();
    assert!(echoed.starts_with(&format!("00-{trace}-")), "{echoed}");

    // The span ends after the body is written; give the server task a moment to finish.
    for _ in 0..100 {
        if !exporter.get_finished_spans().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "GET /slow/{n}");
    assert_eq!(spans[0].span_context.trace_id().to_string(), trace);
    let client = spans[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "network.peer.address")
        .map(|kv| kv.value.to_string());
    assert_eq!(client.as_deref(), Some("127.0.0.1"));

    let events = slow.events();
    assert_eq!(events.len(), 1, "one slow request: {events:?}");
    assert_eq!(events[0].str("trace_id"), Some(trace), "{events:?}");
}
