//! perf-otel composed with perf-middleware in an axum server over a real socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use perf_otel::OtelLayer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn get_raw(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{headers}\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "current_thread")]
async fn slow_log_of_perf_middleware_carries_the_trace_id_and_the_span_arrives() {
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

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
    let res = get_raw(
        addr,
        "/slow/1",
        &format!("traceparent: 00-{trace}-00f067aa0ba902b7-01\r\n"),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains(&format!("traceparent: 00-{trace}-")), "{res}");

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

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("perf_middleware::slow"))
        .unwrap_or_else(|| panic!("no slow log in {text:?}"));
    assert!(line.contains(&format!("trace_id={trace}")), "{line}");
}
