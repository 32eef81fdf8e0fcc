//! RFC 9111 behaviour of the composed layer.

use std::time::Duration;

use super::{Origin, cache, cache_with, get, response, send};
use crate::CacheLayer;

const LM: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

#[tokio::test(start_paused = true)]
async fn age_is_generated_and_date_is_not_rewritten() {
    let origin =
        Origin::new(|_, _| response(&[("cache-control", "max-age=60"), ("date", LM)], "x"));
    let svc = cache(&origin);
    let first = get(&svc, "/a").await;
    tokio::time::advance(Duration::from_secs(5)).await;
    let again = get(&svc, "/a").await;
    // Date is long ago, so the apparent age dominates: the entry is stale and was fetched again.
    assert_eq!(origin.calls(), 2);
    assert_eq!(again.header("date"), first.header("date"));
    let origin = Origin::new(|_, _| response(&[("cache-control", "max-age=60")], "x"));
    let svc = cache(&origin);
    get(&svc, "/a").await;
    tokio::time::advance(Duration::from_secs(5)).await;
    let hit = get(&svc, "/a").await;
    assert_eq!(hit.header("age"), "5");
    assert!(
        hit.cache_status().starts_with("perf-cache; hit; ttl=55"),
        "{}",
        hit.cache_status()
    );
    assert!(!hit.headers.contains_key("server-timing"));
    let layer = CacheLayer::builder()
        .server_timing(perf_middleware::ServerTiming::Always)
        .build()
        .unwrap();
    let svc = cache_with(&layer, &origin);
    get(&svc, "/t").await;
    let hit = get(&svc, "/t").await;
    assert!(hit.cache_status().starts_with("perf-cache; hit"));
    assert_eq!(hit.header("server-timing"), "cache;desc=\"hit\"");
}

#[tokio::test(start_paused = true)]
async fn hit_status_values_are_per_layer_and_per_second() {
    let origin = Origin::new(|_, _| response(&[("cache-control", "max-age=60")], "x"));
    let a = cache(&origin);
    let named = CacheLayer::builder().status_name("edge").build().unwrap();
    let b = cache_with(&named, &origin);
    get(&a, "/s").await;
    get(&b, "/s").await;
    for _ in 0..2 {
        assert_eq!(
            get(&a, "/s").await.cache_status(),
            "perf-cache; hit; ttl=60"
        );
        assert_eq!(get(&b, "/s").await.cache_status(), "edge; hit; ttl=60");
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        get(&a, "/s").await.cache_status(),
        "perf-cache; hit; ttl=59"
    );
    assert_eq!(get(&a, "/s").await.header("age"), "1");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(get(&a, "/s").await.cache_status().contains("fwd=stale"));
}

#[tokio::test(start_paused = true)]
async fn hits_append_to_upstream_fields_and_follow_the_serving_layers_server_timing() {
    let origin = Origin::new(|_, _| {
        response(
            &[
                ("cache-control", "max-age=60"),
                ("cache-status", "upstream; hit"),
                ("server-timing", "db;dur=3"),
            ],
            "x",
        )
    });
    let store = crate::MemoryStore::default();
    let timed = CacheLayer::builder()
        .store(store.clone())
        .server_timing(perf_middleware::ServerTiming::Always)
        .build()
        .unwrap();
    let plain = CacheLayer::builder().store(store).build().unwrap();
    let (timed, plain) = (cache_with(&timed, &origin), cache_with(&plain, &origin));
    get(&timed, "/u").await;
    let values = |got: &super::Got, name: &str| -> Vec<String> {
        got.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    // Stored by the layer with Server-Timing, served by both.
    let hit = get(&timed, "/u").await;
    assert_eq!(
        values(&hit, "cache-status"),
        ["upstream; hit", "perf-cache; hit; ttl=60"]
    );
    assert_eq!(
        values(&hit, "server-timing"),
        ["db;dur=3", "cache;desc=\"hit\""]
    );
    assert_eq!(values(&hit, "age"), ["0"]);
    let hit = get(&plain, "/u").await;
    assert_eq!(
        values(&hit, "cache-status"),
        ["upstream; hit", "perf-cache; hit; ttl=60"]
    );
    assert_eq!(values(&hit, "server-timing"), ["db;dur=3"]);
    // Stored by the layer without Server-Timing, served by the one with it.
    get(&plain, "/v").await;
    let hit = get(&timed, "/v").await;
    assert_eq!(
        values(&hit, "server-timing"),
        ["db;dur=3", "cache;desc=\"hit\""]
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn responses_without_freshness_are_not_reused_unless_a_default_ttl_is_set() {
    let origin = Origin::new(|_, n| response(&[], &format!("v{n}")));
    let svc = cache(&origin);
    get(&svc, "/a").await;
    assert_eq!(&get(&svc, "/a").await.body[..], b"v2");
    let layer = CacheLayer::builder()
        .default_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    let svc = cache_with(&layer, &origin);
    get(&svc, "/b").await;
    assert_eq!(&get(&svc, "/b").await.body[..], b"v3");
}

#[tokio::test(start_paused = true)]
async fn generated_etag_answers_conditional_requests_with_304() {
    let origin = Origin::new(|_, _| {
        response(
            &[
                ("cache-control", "max-age=60"),
                ("content-type", "text/plain"),
            ],
            "hello",
        )
    });
    let svc = cache(&origin);
    let first = get(&svc, "/e").await;
    let etag = first.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let weak = format!("W/{etag}");
    let not_modified = send(&svc, "GET", "/e", &[("if-none-match", &weak)]).await;
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    assert_eq!(not_modified.header("etag"), etag);
    assert_eq!(not_modified.header("cache-control"), "max-age=60");
    assert_eq!(not_modified.header("content-type"), "");
    let other = send(
        &svc,
        "GET",
        "/e",
        &[
            ("if-none-match", "\"nope\""),
            ("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ],
    )
    .await;
    assert_eq!(
        other.status, 200,
        "If-None-Match takes precedence over If-Modified-Since"
    );
    let head = send(&svc, "HEAD", "/e", &[]).await;
    assert_eq!(
        (head.status, head.body.len(), head.header("content-length")),
        (200, 0, "5")
    );
    assert_eq!(origin.calls(), 1);
}

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
    assert!(CacheLayer::builder().heuristic(1.5).build().is_err());
}
