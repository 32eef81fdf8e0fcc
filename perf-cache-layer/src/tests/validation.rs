//! RFC 9111 behaviour of the composed layer: validation, invalidation, variants, directives.

use std::time::Duration;

use super::{Origin, cache, cache_with, get, response, send};
use crate::CacheLayer;

const LM: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

#[tokio::test(start_paused = true)]
async fn stale_entries_are_revalidated_and_a_304_refreshes_stored_headers() {
    let origin = Origin::new(|req, n| {
        if req.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            let mut r = response(
                &[
                    ("etag", "\"v1\""),
                    ("cache-control", "max-age=100"),
                    ("x-updated", "yes"),
                ],
                "",
            );
            *r.status_mut() = http::StatusCode::NOT_MODIFIED;
            r
        } else {
            response(
                &[
                    ("etag", "\"v1\""),
                    ("cache-control", "max-age=1"),
                    ("last-modified", LM),
                ],
                &format!("body{n}"),
            )
        }
    });
    let svc = cache(&origin);
    get(&svc, "/r").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let revalidated = get(&svc, "/r").await;
    let seen = origin.last_seen();
    assert_eq!(
        (
            seen["if-none-match"].to_str().unwrap(),
            seen["if-modified-since"].to_str().unwrap()
        ),
        ("\"v1\"", LM)
    );
    assert_eq!(
        (revalidated.status, &revalidated.body[..]),
        (200, &b"body1"[..])
    );
    assert_eq!(revalidated.header("x-updated"), "yes");
    assert_eq!(revalidated.header("content-length"), "5");
    assert!(
        revalidated
            .cache_status()
            .contains("fwd=stale; fwd-status=304")
    );
    tokio::time::advance(Duration::from_secs(50)).await;
    assert!(get(&svc, "/r").await.cache_status().contains("hit"));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn must_revalidate_never_serves_stale_but_stale_if_error_does() {
    let origin = Origin::new(|_, n| match n {
        1 => response(
            &[(
                "cache-control",
                "max-age=1, stale-if-error=60, must-revalidate",
            )],
            "old",
        ),
        3 => response(&[("cache-control", "max-age=1, stale-if-error=60")], "old"),
        _ => http::Response::builder()
            .status(503)
            .body("down".into())
            .unwrap(),
    });
    let svc = cache(&origin);
    get(&svc, "/m").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(get(&svc, "/m").await.status, 503);
    get(&svc, "/s").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let stale = get(&svc, "/s").await;
    assert_eq!((stale.status, &stale.body[..]), (200, &b"old"[..]));
    assert!(stale.cache_status().contains("stale-if-error"));
}

#[tokio::test(start_paused = true)]
async fn unsafe_methods_invalidate_the_target_and_same_origin_locations() {
    let origin = Origin::new(|req, n| match req.get("x-m").map(|v| v.to_str().unwrap()) {
        Some("post") => response(
            &[
                ("location", "/other"),
                ("content-location", "http://evil.com/a"),
            ],
            "",
        ),
        _ => response(&[("cache-control", "max-age=60")], &format!("v{n}")),
    });
    let svc = cache(&origin);
    for p in ["/a", "/other"] {
        get(&svc, p).await;
        get(&svc, p).await;
    }
    assert_eq!(origin.calls(), 2);
    let post = send(&svc, "POST", "/a", &[("x-m", "post")]).await;
    assert!(post.cache_status().contains("fwd=method"));
    assert_eq!(origin.calls(), 3);
    get(&svc, "/a").await;
    get(&svc, "/other").await;
    assert_eq!(origin.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn vary_selects_variants_and_vary_star_is_never_reused() {
    let origin = Origin::new(|req, n| {
        let lang = req
            .get("accept-language")
            .map_or("none", |v| v.to_str().unwrap())
            .to_owned();
        let vary = if lang == "star" {
            "*"
        } else {
            "Accept-Language"
        };
        response(
            &[("cache-control", "max-age=60"), ("vary", vary)],
            &format!("{lang}{n}"),
        )
    });
    let svc = cache(&origin);
    send(&svc, "GET", "/v", &[("accept-language", "en")]).await;
    send(&svc, "GET", "/v", &[("accept-language", "fr")]).await;
    assert_eq!(
        &send(&svc, "GET", "/v", &[("accept-language", "en")])
            .await
            .body[..],
        b"en1"
    );
    assert_eq!(
        &send(&svc, "GET", "/v", &[("accept-language", "fr")])
            .await
            .body[..],
        b"fr2"
    );
    assert!(
        send(&svc, "GET", "/v", &[])
            .await
            .cache_status()
            .contains("fwd=vary-miss")
    );
    send(&svc, "GET", "/star", &[("accept-language", "star")]).await;
    send(&svc, "GET", "/star", &[("accept-language", "star")]).await;
    assert_eq!(origin.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn hop_by_hop_and_surrogate_fields_are_stripped_and_tags_purge() {
    let origin = Origin::new(|_, n| {
        let tags = if n % 2 == 1 { "p1 all" } else { "p2 all" };
        let headers = [
            ("cache-control", "max-age=60"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("surrogate-key", tags),
        ];
        response(&headers, &format!("v{n}"))
    });
    let (layer, handle) = CacheLayer::pair();
    let svc = cache_with(&layer, &origin);
    let first = get(&svc, "/p").await;
    assert_eq!(
        (first.header("x-hop"), first.header("surrogate-key")),
        ("", "")
    );
    get(&svc, "/q").await;
    assert_eq!(origin.calls(), 2);
    handle.purge_tag("p1").await.unwrap();
    assert_eq!(&get(&svc, "/p").await.body[..], b"v3");
    assert_eq!(&get(&svc, "/q").await.body[..], b"v2");
    handle.purge_key("example.com", "/q").await.unwrap();
    assert_eq!(&get(&svc, "/q").await.body[..], b"v4");
    handle.purge_all().await.unwrap();
    assert_eq!(&get(&svc, "/p").await.body[..], b"v5");
}

#[tokio::test(start_paused = true)]
async fn request_directives() {
    let origin = Origin::new(|_, n| response(&[("cache-control", "max-age=60")], &format!("v{n}")));
    let svc = cache(&origin);
    assert_eq!(
        send(&svc, "GET", "/o", &[("cache-control", "only-if-cached")])
            .await
            .status,
        504
    );
    get(&svc, "/o").await;
    assert_eq!(
        &send(&svc, "GET", "/o", &[("cache-control", "only-if-cached")])
            .await
            .body[..],
        b"v1"
    );
    assert_eq!(
        &send(&svc, "GET", "/o", &[("cache-control", "no-cache")])
            .await
            .body[..],
        b"v2"
    );
    let forced = send(&svc, "GET", "/o", &[("cache-control", "no-cache")]).await;
    assert!(
        forced.cache_status().contains("fwd=request"),
        "{}",
        forced.cache_status()
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        &send(&svc, "GET", "/o", &[("cache-control", "max-age=5")])
            .await
            .body[..],
        b"v4"
    );
    assert_eq!(
        &send(&svc, "GET", "/o", &[("cache-control", "min-fresh=100")])
            .await
            .body[..],
        b"v5"
    );
    assert_eq!(
        &send(&svc, "GET", "/o", &[("pragma", "no-cache")])
            .await
            .body[..],
        b"v6"
    );
    let layer = CacheLayer::builder()
        .honor_request_directives(false)
        .build()
        .unwrap();
    let svc = cache_with(&layer, &origin);
    get(&svc, "/o").await;
    assert_eq!(
        &send(&svc, "GET", "/o", &[("cache-control", "no-cache")])
            .await
            .body[..],
        b"v7"
    );
}

#[test]
fn bad_configuration_fails_at_build_time() {
    let err = CacheLayer::builder()
        .status_name("bad name")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("perf-cache"));
    assert!(matches!(err, crate::ConfigError::StatusName { ref name, .. } if name == "bad name"));
    let err = CacheLayer::builder().heuristic(1.5).build().unwrap_err();
    assert!(
        matches!(err, crate::ConfigError::HeuristicFraction { fraction, .. } if fraction == 1.5)
    );
    assert!(
        err.to_string()
            .starts_with("invalid heuristic fraction 1.5")
    );
}

#[tokio::test(start_paused = true)]
async fn soft_purge_marks_tagged_responses_stale_from_now() {
    let origin = Origin::new(|_, n| {
        let headers = [
            ("cache-control", "max-age=60, stale-while-revalidate=30"),
            ("surrogate-key", "items"),
        ];
        response(&headers, &format!("v{n}"))
    });
    let (layer, handle) = CacheLayer::pair();
    let svc = cache_with(&layer, &origin);
    get(&svc, "/p").await;
    tokio::time::advance(Duration::from_secs(40)).await;
    assert!(get(&svc, "/p").await.cache_status().contains("hit; ttl=20"));

    handle.soft_purge_tag("items").await.unwrap();
    // Stale from the purge on, not from its Date: still within stale-while-revalidate.
    let stale = get(&svc, "/p").await;
    assert_eq!(&stale.body[..], b"v1");
    assert!(
        stale
            .cache_status()
            .contains("detail=stale-while-revalidate"),
        "{}",
        stale.cache_status()
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(origin.calls(), 2, "one background refresh");
    let refreshed = get(&svc, "/p").await;
    assert_eq!(&refreshed.body[..], b"v2");
    assert!(refreshed.cache_status().contains("hit; ttl=60"));
}

#[tokio::test(start_paused = true)]
async fn soft_purge_keeps_the_memory_store_byte_count() {
    use crate::CacheStore;
    let store = crate::MemoryStore::default();
    let now = std::time::SystemTime::now();
    let entry = crate::CachedResponse::builder(
        http::StatusCode::OK,
        http::HeaderMap::new(),
        bytes::Bytes::from_static(b"body"),
        now,
    )
    .lifetime(Duration::from_secs(60))
    .add_tag("t")
    .build();
    store.put("k", std::sync::Arc::new(entry)).await.unwrap();
    store.run_pending_tasks();
    let before = store.bytes();
    store.soft_purge_tag("t", now).await.unwrap();
    store.soft_purge_tag("t", now).await.unwrap();
    store.run_pending_tasks();
    assert_eq!(store.bytes(), before, "a replaced entry releases its bytes");
    let stored = store.get("k").await.unwrap().unwrap();
    assert_eq!(stored[0].lifetime(), Duration::ZERO, "stale from the purge");
}
