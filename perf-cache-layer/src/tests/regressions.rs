//! Regression tests for the defects found by new users (issues 11 and 13): each fails without its fix.

use std::time::Duration;

use super::*;

const BODY: &str = "the full representation";

#[tokio::test(start_paused = true)]
async fn a_handler_that_says_nothing_is_never_stored_nor_etagged() {
    let origin = Origin::new(|_, _| response(&[], BODY));
    let svc = cache(&origin);
    for n in 1..=2 {
        let got = get(&svc, "/plain").await;
        assert_eq!(origin.calls(), n);
        assert_eq!(got.body, BODY);
        assert!(got.headers.get("etag").is_none(), "{:?}", got.headers);
        assert!(
            !got.cache_status().contains("stored"),
            "{}",
            got.cache_status()
        );
        assert!(got.cache_status().contains("detail=no-freshness"));
    }
}

#[tokio::test(start_paused = true)]
async fn heuristic_freshness_stores_only_where_allowed() {
    let lm = "Mon, 01 Jan 2024 00:00:00 GMT";
    let origin = Origin::new(move |_, _| response(&[("last-modified", lm)], BODY));
    // Last-Modified is a validator: stored, and heuristic freshness applies when enabled.
    let layer = CacheLayer::builder().heuristic(0.1).build().unwrap();
    let svc = cache_with(&layer, &origin);
    assert!(get(&svc, "/lm").await.cache_status().contains("stored"));
    assert!(get(&svc, "/lm").await.cache_status().contains("hit"));
    assert_eq!(origin.calls(), 1);
    // The per-layer default TTL is the explicit opt-in for responses with nothing.
    let plain = Origin::new(|_, _| response(&[], BODY));
    let layer = CacheLayer::builder()
        .default_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    let svc = cache_with(&layer, &plain);
    assert!(get(&svc, "/d").await.cache_status().contains("stored"));
    assert!(get(&svc, "/d").await.cache_status().contains("hit"));
    assert_eq!(plain.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn if_none_match_matching_a_new_or_refreshed_response_gets_304() {
    let origin = Origin::new(|_, _| response(&[("cache-control", "max-age=10")], BODY));
    let svc = cache(&origin);
    let etag = get(&svc, "/a").await.header("etag").to_owned();
    assert!(!etag.is_empty());
    // A miss: the origin answers 200, the cache stores it and the client's ETag matches.
    let got = send(&svc, "GET", "/b", &[("if-none-match", &etag)]).await;
    assert_eq!(got.status, 304, "{}", got.cache_status());
    assert!(got.body.is_empty());
    assert!(got.cache_status().contains("stored"));
    assert_eq!(got.header("etag"), etag);
    // After expiry: revalidation brings the same body, so the still-valid ETag gets a 304.
    tokio::time::advance(Duration::from_secs(11)).await;
    let got = send(&svc, "GET", "/b", &[("if-none-match", &etag)]).await;
    assert_eq!(got.status, 304, "{}", got.cache_status());
    assert_eq!(origin.calls(), 3);
    // A client without validators still gets the body.
    assert_eq!(get(&svc, "/b").await.body, BODY);
}

#[tokio::test(start_paused = true)]
async fn a_200_to_head_updates_the_stored_get_when_it_matches_else_makes_it_stale() {
    let origin = Origin::new(|_, n| {
        let etag = if n <= 2 { "\"a\"" } else { "\"b\"" };
        let rev = n.to_string();
        let headers = [
            ("cache-control", "max-age=100"),
            ("etag", etag),
            ("x-rev", rev.as_str()),
        ];
        response(&headers, if n == 4 { "new" } else { BODY })
    });
    let svc = cache(&origin);
    assert_eq!(get(&svc, "/h").await.body, BODY);
    tokio::time::advance(Duration::from_secs(200)).await;
    // Stale: the HEAD goes to the origin as a HEAD; its 200 matches and updates the stored GET.
    let head = send(&svc, "HEAD", "/h", &[]).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("x-rev"), "2");
    assert!(
        head.cache_status()
            .contains("fwd=stale; fwd-status=200; ttl=100"),
        "{}",
        head.cache_status()
    );
    let got = get(&svc, "/h").await;
    assert_eq!(
        (got.body.as_ref(), got.header("x-rev")),
        (BODY.as_bytes(), "2")
    );
    assert!(got.cache_status().contains("hit"));
    assert_eq!(origin.calls(), 2);

    // A HEAD (forced through by no-cache) sees another ETag: passed through, never stored, and the
    // stored GET is stale from now on, so the next GET goes to the origin.
    let head = send(&svc, "HEAD", "/h", &[("cache-control", "no-cache")]).await;
    assert_eq!((head.status, head.header("etag")), (200, "\"b\""));
    assert!(
        !head.cache_status().contains("stored"),
        "{}",
        head.cache_status()
    );
    let got = get(&svc, "/h").await;
    assert_eq!(got.body, "new", "{}", got.cache_status());
    assert_eq!(origin.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_head_response_is_never_served_for_a_get() {
    let origin = Origin::new(|_, _| response(&[("cache-control", "max-age=3600")], BODY));
    let svc = cache(&origin);
    let reference = get(&svc, "/reference").await.header("etag").to_owned();
    let head = send(&svc, "HEAD", "/x", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(!head.cache_status().contains("stored"));
    let got = get(&svc, "/x").await;
    assert_eq!(got.body, BODY, "{}", got.cache_status());
    assert_eq!(got.header("etag"), reference);
    assert_eq!(origin.calls(), 3);
    // The GET's entry answers the next HEAD.
    let head = send(&svc, "HEAD", "/x", &[]).await;
    assert!(head.cache_status().contains("hit"));
    assert_eq!(head.header("etag"), reference);
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn interim_responses_are_never_stored() {
    let origin = Origin::new(|_, _| {
        let mut r = response(&[("cache-control", "max-age=3600")], "");
        *r.status_mut() = http::StatusCode::EARLY_HINTS;
        r
    });
    let svc = cache(&origin);
    for _ in 0..2 {
        let got = get(&svc, "/early").await;
        assert_eq!(got.status, 103);
        assert!(!got.cache_status().contains("stored"));
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn cdn_cache_control_is_a_structured_dictionary() {
    let cases: [(&str, bool); 5] = [
        // Valid dictionary: it wins over Cache-Control (no-store) for this cache.
        ("max-age=60", true),
        ("max-age=60;edge, must-revalidate", true),
        // Invalid dictionaries are ignored as a whole: Cache-Control: no-store applies.
        ("max-age=60, Max-Age=1", false),
        ("max-age=60, \"quoted\"", false),
        // A value of the wrong type is an invalid directive (stale at once, nothing stored).
        ("max-age=\"60\"", false),
    ];
    for (field, stored) in cases {
        let origin = Origin::new(move |_, _| {
            response(
                &[("cache-control", "no-store"), ("cdn-cache-control", field)],
                BODY,
            )
        });
        let svc = cache(&origin);
        let got = get(&svc, "/cdn").await;
        assert_eq!(
            got.cache_status().contains("stored"),
            stored,
            "{field}: {}",
            got.cache_status()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn invalid_negative_float_or_duplicated_age_makes_a_response_stale() {
    for age in [
        &["abc"][..],
        &["-7200"],
        &["7200.0"],
        &["0", "7200"],
        &["0, 0"],
    ] {
        let origin = Origin::new(move |_, _| {
            let mut r = response(&[("cache-control", "max-age=3600")], BODY);
            for a in age {
                r.headers_mut().append("age", a.parse().unwrap());
            }
            r
        });
        let svc = cache(&origin);
        get(&svc, "/age").await;
        let got = get(&svc, "/age").await;
        assert!(
            !got.cache_status().contains("; hit"),
            "{age:?}: {}",
            got.cache_status()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_miss_does_not_store_over_a_later_invalidation() {
    let origin = Origin::new(|_, n| {
        let body = if n == 1 { "old" } else { "new" };
        response(&[("cache-control", "max-age=3600")], body)
    })
    .slow_gets(Duration::from_secs(5));
    let svc = cache(&origin);
    let slow = tokio::spawn({
        let svc = svc.clone();
        async move { get(&svc, "/r").await }
    });
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(origin.calls(), 1);
    let put = send(&svc, "PUT", "/r", &[]).await;
    assert_eq!(put.status, 200);
    let old = slow.await.unwrap();
    assert_eq!(old.body, "old");
    assert!(
        old.cache_status().contains("detail=invalidated"),
        "{}",
        old.cache_status()
    );
    let got = get(&svc, "/r").await;
    assert_eq!(got.body, "new");
    assert_eq!(origin.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_slow_miss_does_not_store_over_a_later_tag_purge() {
    let origin = Origin::new(|_, n| {
        let body = if n == 1 { "old" } else { "new" };
        response(
            &[("cache-control", "max-age=3600"), ("surrogate-key", "t")],
            body,
        )
    })
    .slow_gets(Duration::from_secs(5));
    let (layer, handle) = CacheLayer::pair();
    let svc = cache_with(&layer, &origin);
    let slow = tokio::spawn({
        let svc = svc.clone();
        async move { get(&svc, "/t").await }
    });
    tokio::time::advance(Duration::from_secs(1)).await;
    handle.purge_tag("t").await.unwrap();
    assert_eq!(slow.await.unwrap().body, "old");
    assert_eq!(get(&svc, "/t").await.body, "new");
    assert_eq!(origin.calls(), 2);
}
