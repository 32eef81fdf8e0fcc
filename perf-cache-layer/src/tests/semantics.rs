//! RFC 9111 behaviour of the composed layer: Age, Cache-Status, Server-Timing, freshness, ETags.

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
async fn a_skipped_route_goes_straight_to_the_inner_service() {
    let origin = Origin::new(|_, _| response(&[("cache-control", "max-age=60")], "body"));
    let layer = CacheLayer::builder()
        .server_timing(perf_middleware::ServerTiming::Always)
        .skip_route("/health")
        .build()
        .unwrap();
    let svc = cache_with(&layer, &origin);
    let call = |path: &'static str, template: &'static str| {
        let mut req = http::Request::get(path)
            .header("host", "example.com")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(perf_middleware::RouteTemplate::new(template));
        tower::ServiceExt::oneshot(svc.clone(), req)
    };
    for _ in 0..2 {
        let res = call("/health", "/health").await.unwrap();
        assert!(res.headers().get("cache-status").is_none());
        assert!(res.headers().get("server-timing").is_none());
        assert!(res.headers().get("etag").is_none(), "no ETag generated");
    }
    assert_eq!(origin.calls(), 2, "no lookup, no store");
    call("/users", "/users").await.unwrap();
    let res = call("/users", "/users").await.unwrap();
    assert!(
        res.headers()["cache-status"]
            .to_str()
            .unwrap()
            .contains("hit"),
        "another route is still cached"
    );
    assert_eq!(origin.calls(), 3);
}
