//! The acceptance tests.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use tokio::sync::oneshot;
use tower::ServiceExt;

use super::{Origin, cache, cache_with, get, response, send};
use crate::{CacheLayer, MemoryStore, SetCookiePolicy};

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_misses_make_one_inner_call() {
    let origin = Origin::new(|_, n| response(&[("cache-control", "max-age=60")], &format!("v{n}")))
        .delay(Duration::from_millis(50));
    let svc = cache(&origin);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { get(&svc, "/hot").await })
        })
        .collect();
    let mut collapsed = 0;
    for task in tasks {
        let got = task.await.unwrap();
        assert_eq!((got.status, &got.body[..]), (200, &b"v1"[..]));
        collapsed += usize::from(got.cache_status().contains("collapsed"));
    }
    assert_eq!(origin.calls(), 1);
    assert_eq!(collapsed, 999);
}

#[tokio::test(start_paused = true)]
async fn uncacheable_coalesced_response_is_not_shared_with_waiters() {
    let origin = Origin::new(|_, n| {
        response(
            &[("cache-control", "private, max-age=60")],
            &format!("user{n}"),
        )
    })
    .delay(Duration::from_millis(50));
    let svc = cache(&origin);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { get(&svc, "/me").await.body })
        })
        .collect();
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    bodies.sort();
    bodies.dedup();
    assert_eq!(
        (origin.calls(), bodies.len()),
        (5, 5),
        "each waiter made its own call"
    );
}

#[tokio::test(start_paused = true)]
async fn oversized_body_streams_through_and_is_not_stored() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let go = Arc::new(std::sync::Mutex::new(Some(go_rx)));
    let counter = calls.clone();
    let inner = tower::service_fn(move |_: Request<()>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(1);
        let mut go = go.lock().unwrap().take();
        tokio::spawn(async move {
            for i in 0..10u8 {
                if i == 2
                    && let Some(go) = go.take()
                {
                    // The client must have the head (and the first bytes) before the rest exists.
                    go.await.unwrap();
                }
                tx.send_data(Bytes::from(vec![b'a' + i; 600]))
                    .await
                    .unwrap();
            }
        });
        let res = Response::builder()
            .header("cache-control", "max-age=60")
            .body(body)
            .unwrap();
        async move { Ok::<_, Infallible>(res) }
    });
    let store = MemoryStore::builder()
        .max_bytes(1 << 20)
        .max_object_size(1024)
        .build();
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let svc = tower_layer::Layer::layer(&layer, inner);
    let req = || {
        Request::builder()
            .uri("/big")
            .header("host", "example.com")
            .body(())
            .unwrap()
    };
    let res = svc.clone().oneshot(req()).await.unwrap();
    assert!(!res.body().is_buffered());
    assert!(
        res.headers()["cache-status"]
            .to_str()
            .unwrap()
            .contains("detail=too-large")
    );
    go_tx.send(()).unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 6000);
    assert!(
        body.chunks(600)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == b'a' + i as u8))
    );
    let again = svc.clone().oneshot(req()).await.unwrap();
    drop(again.into_body().collect().await.unwrap());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "not stored");
    store.run_pending_tasks();
    assert_eq!(store.entry_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn store_bytes_stay_within_one_object_of_the_bound_under_a_random_key_flood() {
    let origin = Origin::new(|_, n| {
        let size = 100 + (n * 7919) % 3900;
        response(&[("cache-control", "max-age=600")], &"x".repeat(size))
    });
    let budget = 64 * 1024;
    let store = MemoryStore::builder()
        .max_bytes(budget)
        .max_object_size(4096)
        .build();
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let svc = cache_with(&layer, &origin);
    let mut largest = 0;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let got = get(&svc, &format!("/k/{seed:x}")).await;
        largest = largest.max(got.body.len() as u64 + 1024);
        assert!(
            store.bytes() <= budget + largest,
            "{} bytes held, budget {budget}",
            store.bytes()
        );
    }
    store.run_pending_tasks();
    assert!(store.bytes() <= budget);
    assert!(store.entry_count() > 10, "the store holds entries at all");
}

#[tokio::test(start_paused = true)]
async fn set_cookie_private_and_authorization_responses_are_never_served_to_another_client() {
    let origin = Origin::new(|req, n| {
        let who = req
            .get("x-user")
            .map_or("anon", |v| v.to_str().unwrap())
            .to_owned();
        match req.get("x-case").unwrap().to_str().unwrap() {
            "cookie" => response(
                &[
                    ("cache-control", "max-age=60"),
                    ("set-cookie", &format!("session={who}")),
                ],
                "c",
            ),
            "private" => response(
                &[("cache-control", "private, max-age=60")],
                &format!("{who}{n}"),
            ),
            _ => response(&[("cache-control", "max-age=60")], &format!("{who}{n}")),
        }
    });
    let svc = cache(&origin);
    let a = send(
        &svc,
        "GET",
        "/cookie",
        &[("x-case", "cookie"), ("x-user", "alice")],
    )
    .await;
    assert_eq!(a.header("set-cookie"), "session=alice");
    let b = send(
        &svc,
        "GET",
        "/cookie",
        &[("x-case", "cookie"), ("x-user", "bob")],
    )
    .await;
    assert_eq!(b.header("set-cookie"), "session=bob");
    assert_eq!(origin.calls(), 2);

    send(
        &svc,
        "GET",
        "/private",
        &[("x-case", "private"), ("x-user", "alice")],
    )
    .await;
    let b = send(
        &svc,
        "GET",
        "/private",
        &[("x-case", "private"), ("x-user", "bob")],
    )
    .await;
    assert!(b.body.starts_with(b"bob"));

    let a = send(
        &svc,
        "GET",
        "/auth",
        &[
            ("x-case", "auth"),
            ("x-user", "alice"),
            ("authorization", "Bearer a"),
        ],
    )
    .await;
    let b = send(
        &svc,
        "GET",
        "/auth",
        &[("x-case", "auth"), ("x-user", "bob")],
    )
    .await;
    assert!(a.body.starts_with(b"alice") && b.body.starts_with(b"bob"));
    assert_eq!(origin.calls(), 6);

    // A client's max-stale does not resurrect anything (ignored by default).
    tokio::time::advance(Duration::from_secs(61)).await;
    send(
        &svc,
        "GET",
        "/auth",
        &[("x-case", "auth"), ("cache-control", "max-stale")],
    )
    .await;
    assert_eq!(origin.calls(), 7);

    // With `Strip`, the stored copy has no Set-Cookie: only the first client sees its cookie.
    let layer = CacheLayer::builder()
        .set_cookie(SetCookiePolicy::Strip)
        .build()
        .unwrap();
    let svc = cache_with(&layer, &origin);
    let a = send(
        &svc,
        "GET",
        "/cookie2",
        &[("x-case", "cookie"), ("x-user", "alice")],
    )
    .await;
    let b = send(
        &svc,
        "GET",
        "/cookie2",
        &[("x-case", "cookie"), ("x-user", "bob")],
    )
    .await;
    assert_eq!(
        (a.header("set-cookie"), b.header("set-cookie")),
        ("session=alice", "")
    );
    assert!(b.cache_status().contains("hit"));
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_stale_exactly_once_per_refresh() {
    let origin = Origin::new(|_, n| {
        response(
            &[("cache-control", "max-age=10, stale-while-revalidate=60")],
            &format!("v{n}"),
        )
    })
    .delay(Duration::from_millis(100));
    let svc = cache(&origin);
    assert_eq!(&get(&svc, "/swr").await.body[..], b"v1");
    for round in 1..=3 {
        tokio::time::advance(Duration::from_secs(11)).await;
        let stale = get(&svc, "/swr").await;
        assert_eq!(stale.body, format!("v{round}"));
        assert!(
            stale.cache_status().contains("stale-while-revalidate"),
            "{}",
            stale.cache_status()
        );
        assert!(stale.header("age").parse::<u64>().unwrap() >= 11);
        // Let the single background refresh finish.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(origin.calls(), round + 1, "one refresh per stale serve");
        let fresh = get(&svc, "/swr").await;
        assert_eq!(fresh.body, format!("v{}", round + 1));
        assert!(
            fresh.cache_status().contains("; hit; ttl="),
            "{}",
            fresh.cache_status()
        );
        assert!(!fresh.cache_status().contains("stale"));
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_stale_requests_share_one_background_refresh() {
    let origin = Origin::new(|_, n| {
        response(
            &[("cache-control", "max-age=1, stale-while-revalidate=60")],
            &format!("v{n}"),
        )
    })
    .delay(Duration::from_millis(500));
    let svc = cache(&origin);
    get(&svc, "/swr").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..20 {
        assert_eq!(&get(&svc, "/swr").await.body[..], b"v1");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(origin.calls(), 2);
    assert_eq!(&get(&svc, "/swr").await.body[..], b"v2");
}
