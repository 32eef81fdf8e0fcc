//! The layer in an axum app over a real socket: hits, 304s, HEAD, invalidation, large bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use perf_cache_layer::{CacheLayer, MemoryStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve(calls: Arc<AtomicUsize>) -> SocketAddr {
    let item = {
        let calls = calls.clone();
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                (
                    [(header::CACHE_CONTROL, "max-age=60")],
                    format!("item v{n}"),
                )
            }
        }
    };
    let big =
        || async { ([(header::CACHE_CONTROL, "max-age=60")], "x".repeat(200_000)).into_response() };
    let store = MemoryStore::builder()
        .max_bytes(1 << 20)
        .max_object_size(64 * 1024)
        .build();
    let app = Router::new()
        .route("/item", get(item).post(|| async { "updated" }))
        .route("/big", get(big))
        .layer(CacheLayer::builder().store(store).build().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One HTTP/1.1 exchange on a fresh connection: (status, lower-cased head, body).
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: 0\r\n{extra}\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn cached_responses_over_a_socket() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = serve(calls.clone()).await;

    let (status, head, body) = exchange(addr, "GET", "/item", "").await;
    assert_eq!((status, &body[..]), (200, &b"item v1"[..]));
    assert!(
        header_value(&head, "cache-status")
            .unwrap()
            .contains("stored")
    );
    let etag = header_value(&head, "etag").unwrap().to_owned();

    let (status, head, body) = exchange(addr, "GET", "/item", "").await;
    assert_eq!((status, &body[..]), (200, &b"item v1"[..]));
    assert!(header_value(&head, "cache-status").unwrap().contains("hit"));
    assert!(header_value(&head, "age").is_some());

    let (status, _, body) =
        exchange(addr, "GET", "/item", &format!("if-none-match: {etag}\r\n")).await;
    assert_eq!((status, body.len()), (304, 0));

    let (status, head, body) = exchange(addr, "HEAD", "/item", "").await;
    assert_eq!(
        (status, body.len(), header_value(&head, "content-length")),
        (200, 0, Some("7"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    assert_eq!(exchange(addr, "POST", "/item", "").await.0, 200);
    let (_, _, body) = exchange(addr, "GET", "/item", "").await;
    assert_eq!(
        &body[..],
        b"item v2",
        "POST invalidated the stored response"
    );

    for _ in 0..2 {
        let (status, head, body) = exchange(addr, "GET", "/big", "").await;
        assert_eq!((status, body.len()), (200, 200_000));
        assert!(
            header_value(&head, "cache-status")
                .unwrap()
                .contains("detail=too-large")
        );
    }
}
