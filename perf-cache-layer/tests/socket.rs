//! The layer in an axum app over a real socket: hits, 304s, HEAD, invalidation, large bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use perf_cache_layer::{CacheLayer, MemoryStore};
use perf_test_support::Reply;

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
    perf_test_support::serve(app).await
}

/// One exchange: (status, the response, body) through the shared test client.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: Option<(&str, &str)>,
) -> (u16, Reply, Vec<u8>) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "test");
    if let Some((name, value)) = extra {
        req = req.header(name, value);
    }
    let reply = perf_test_support::exchange(addr, req.body(Bytes::new()).unwrap()).await;
    (reply.status.as_u16(), reply.clone(), reply.body.to_vec())
}

fn header_value<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.header(name)
}

#[tokio::test]
async fn cached_responses_over_a_socket() {
    let calls = Arc::new(AtomicUsize::new(0));
    let addr = serve(calls.clone()).await;

    let (status, head, body) = exchange(addr, "GET", "/item", None).await;
    assert_eq!((status, &body[..]), (200, &b"item v1"[..]));
    assert!(
        header_value(&head, "cache-status")
            .unwrap()
            .contains("stored")
    );
    let etag = header_value(&head, "etag").unwrap().to_owned();

    let (status, head, body) = exchange(addr, "GET", "/item", None).await;
    assert_eq!((status, &body[..]), (200, &b"item v1"[..]));
    assert!(header_value(&head, "cache-status").unwrap().contains("hit"));
    assert!(header_value(&head, "age").is_some());

    let (status, _, body) = exchange(addr, "GET", "/item", Some(("if-none-match", &etag))).await;
    assert_eq!((status, body.len()), (304, 0));

    let (status, head, body) = exchange(addr, "HEAD", "/item", None).await;
    assert_eq!(
        (status, body.len(), header_value(&head, "content-length")),
        (200, 0, Some("7"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    assert_eq!(exchange(addr, "POST", "/item", None).await.0, 200);
    let (_, _, body) = exchange(addr, "GET", "/item", None).await;
    assert_eq!(
        &body[..],
        b"item v2",
        "POST invalidated the stored response"
    );

    for _ in 0..2 {
        let (status, head, body) = exchange(addr, "GET", "/big", None).await;
        assert_eq!((status, body.len()), (200, 200_000));
        assert!(
            header_value(&head, "cache-status")
                .unwrap()
                .contains("detail=too-large")
        );
    }
}

#[tokio::test]
async fn a_200_to_head_updates_the_stored_get_over_a_socket() {
    let calls = Arc::new(AtomicUsize::new(0));
    let rev = {
        let calls = calls.clone();
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            // Stored stale at once (it has a validator), then fresh for a minute.
            let cc = if n == 1 { "max-age=0" } else { "max-age=60" };
            async move {
                (
                    [
                        (header::CACHE_CONTROL, cc.to_owned()),
                        (header::ETAG, "\"r\"".to_owned()),
                        (header::HeaderName::from_static("x-rev"), n.to_string()),
                    ],
                    "rev body",
                )
            }
        }
    };
    let app = Router::new()
        .route("/rev", get(rev))
        .layer(CacheLayer::new());
    let addr = perf_test_support::serve(app).await;

    let (status, _, body) = exchange(addr, "GET", "/rev", None).await;
    assert_eq!((status, &body[..]), (200, &b"rev body"[..]));
    // The stored GET is stale: the HEAD goes through as a HEAD, and its matching 200 updates it.
    let (status, head, body) = exchange(addr, "HEAD", "/rev", None).await;
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header_value(&head, "x-rev"), Some("2"));
    let (status, head, body) = exchange(addr, "GET", "/rev", None).await;
    assert_eq!((status, &body[..]), (200, &b"rev body"[..]));
    assert_eq!(header_value(&head, "x-rev"), Some("2"));
    assert!(
        header_value(&head, "cache-status").unwrap().contains("hit"),
        "{:?}",
        header_value(&head, "cache-status")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
