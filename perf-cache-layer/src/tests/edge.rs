//! Failure paths: inner errors, broken bodies, ranges.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use tower::ServiceExt;

use super::{Origin, cache, response, send};
use crate::CacheLayer;

/// An origin that answers the first call and fails every later one with an error.
fn flaky(
    cache_control: &'static str,
) -> (
    impl tower::Service<
        Request<()>,
        Response = Response<http_body_util::Full<Bytes>>,
        Error = &'static str,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let svc = tower::service_fn(move |_: Request<()>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Ok(response(&[("cache-control", cache_control)], "old"))
            } else {
                Err("connection refused")
            }
        }
    });
    (svc, calls)
}

#[tokio::test(start_paused = true)]
async fn disconnected_origin_gets_stale_only_when_enabled_and_allowed() {
    let req = || {
        Request::builder()
            .uri("/d")
            .header("host", "h")
            .body(())
            .unwrap()
    };
    let on = CacheLayer::builder()
        .stale_on_disconnect(Duration::from_secs(60))
        .build()
        .unwrap();
    for (layer, cc, served) in [
        (on.clone(), "max-age=1", true),
        (on, "max-age=1, must-revalidate", false),
        (CacheLayer::new(), "max-age=1", false),
    ] {
        let (origin, calls) = flaky(cc);
        let svc = tower_layer::Layer::layer(&layer, origin);
        svc.clone().oneshot(req()).await.unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        let result = svc.clone().oneshot(req()).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        match result {
            Ok(res) => {
                assert!(served, "{cc}: stale served although forbidden");
                assert!(
                    res.headers()["cache-status"]
                        .to_str()
                        .unwrap()
                        .contains("detail=disconnected")
                );
                assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "old");
            }
            Err(err) => assert!(!served && err == "connection refused", "{cc}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_fails_part_way_is_passed_on_and_not_stored() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let inner = tower::service_fn(move |_: Request<()>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let (mut tx, body) = Channel::<Bytes, &'static str>::new(4);
        tokio::spawn(async move {
            tx.send_data(Bytes::from_static(b"partial")).await.unwrap();
            tx.abort("upstream reset");
        });
        let res = Response::builder()
            .header("cache-control", "max-age=60")
            .body(body)
            .unwrap();
        async move { Ok::<_, std::convert::Infallible>(res) }
    });
    let svc = tower_layer::Layer::layer(&CacheLayer::new(), inner);
    for _ in 0..2 {
        let res = svc
            .clone()
            .oneshot(Request::builder().uri("/e").body(()).unwrap())
            .await
            .unwrap();
        assert!(
            res.headers()["cache-status"]
                .to_str()
                .unwrap()
                .contains("detail=incomplete")
        );
        let mut body = res.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "partial");
        assert!(
            body.frame().await.unwrap().is_err(),
            "the error reaches the client"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn single_ranges_are_served_from_a_stored_response() {
    let origin = Origin::new(|_, _| response(&[("cache-control", "max-age=60")], "01234567890"));
    let svc = cache(&origin);
    send(&svc, "GET", "/r", &[]).await;
    let part = send(&svc, "GET", "/r", &[("range", "bytes=2-4")]).await;
    assert_eq!(
        (part.status, &part.body[..], part.header("content-range")),
        (206, &b"234"[..], "bytes 2-4/11")
    );
    assert_eq!(
        send(&svc, "GET", "/r", &[("range", "bytes=50-")])
            .await
            .status,
        416
    );
    assert_eq!(
        send(&svc, "GET", "/r", &[("range", "bytes=0-1, 3-4")])
            .await
            .status,
        200
    );
    assert_eq!(origin.calls(), 1);
}

#[cfg(feature = "metrics")]
#[test]
fn outcomes_are_counted_through_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let origin = Origin::new(|_, n| {
            response(
                &[("cache-control", "max-age=1"), ("etag", "\"e\"")],
                &format!("v{n}"),
            )
        })
        .delay(Duration::from_millis(10));
        let svc = cache(&origin);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let svc = svc.clone();
                tokio::spawn(async move { send(&svc, "GET", "/m", &[]).await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap();
        }
        send(&svc, "GET", "/m", &[]).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        send(&svc, "GET", "/m", &[]).await;
        send(&svc, "DELETE", "/m", &[]).await;
    });
    let mut seen = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = key.into_parts();
        let label = key
            .labels()
            .map(|l| l.value().to_owned())
            .collect::<Vec<_>>()
            .join(",");
        let value = match value {
            DebugValue::Counter(c) => c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => continue,
        };
        seen.insert(format!("{}{{{label}}}", key.name()), value);
    }
    let get = |k: &str| seen.get(k).copied().unwrap_or_default();
    // The first fetch, and the stale entry's revalidation that got a full 200.
    assert_eq!(get("perf.cache.requests{miss}"), 2.0, "{seen:?}");
    assert_eq!(get("perf.cache.requests{bypass}"), 1.0, "DELETE: {seen:?}");
    assert_eq!(get("perf.cache.requests{collapsed}"), 2.0, "{seen:?}");
    assert_eq!(get("perf.cache.requests{hit}"), 1.0, "{seen:?}");
    assert_eq!(
        get("perf.cache.requests{revalidated}"),
        0.0,
        "the origin answers 200, not 304"
    );
    assert_eq!(get("perf.cache.revalidations{}"), 1.0, "{seen:?}");
    assert_eq!(get("perf.cache.coalesced_waits{}"), 2.0, "{seen:?}");
    assert_eq!(get("perf.cache.invalidations{}"), 1.0, "{seen:?}");
    assert!(get("perf.cache.store.bytes{}") > 0.0, "{seen:?}");
}

/// A memory store that sheds misses while `shedding` is set (as a tiered store does while its
/// breaker is open).
#[derive(Clone, Default)]
struct Shedding {
    store: crate::MemoryStore,
    shedding: Arc<std::sync::atomic::AtomicBool>,
}

impl crate::CacheStore for Shedding {
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Option<crate::store::Variants>, crate::StoreError>,
    > {
        self.store.get(key)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        response: Arc<crate::CachedResponse>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::StoreError>> {
        self.store.put(key, response)
    }
    fn remove<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::StoreError>> {
        self.store.remove(key)
    }
    fn purge_tag<'a>(
        &'a self,
        tag: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::StoreError>> {
        self.store.purge_tag(tag)
    }
    fn purge_all(&self) -> futures_util::future::BoxFuture<'_, Result<(), crate::StoreError>> {
        self.store.purge_all()
    }
    fn max_object_size(&self) -> usize {
        self.store.max_object_size()
    }
    fn shed_misses(&self) -> Option<Duration> {
        self.shedding
            .load(Ordering::SeqCst)
            .then_some(Duration::from_millis(1500))
    }
}

#[tokio::test(start_paused = true)]
async fn a_shedding_store_answers_misses_503_and_still_serves_hits_and_stale_if_error() {
    let origin = Origin::new(|_, n| {
        let cc = "max-age=10, stale-if-error=60";
        response(&[("cache-control", cc)], &format!("v{n}"))
    });
    let store = Shedding::default();
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let svc = super::cache_with(&layer, &origin);
    assert_eq!(&send(&svc, "GET", "/kept", &[]).await.body[..], b"v1");
    store.shedding.store(true, Ordering::SeqCst);

    let shed = send(&svc, "GET", "/cold", &[]).await;
    assert_eq!(shed.status, 503);
    assert_eq!(shed.header("retry-after"), "2");
    assert_eq!(shed.header("cache-control"), "no-store");
    assert_eq!(shed.cache_status(), "perf-cache; fwd=uri-miss; detail=shed");
    assert_eq!(origin.calls(), 1, "the origin was not called");

    let hit = send(&svc, "GET", "/kept", &[]).await;
    assert_eq!((hit.status, &hit.body[..]), (200, &b"v1"[..]));
    tokio::time::advance(Duration::from_secs(20)).await;
    let stale = send(&svc, "GET", "/kept", &[]).await;
    assert_eq!((stale.status, &stale.body[..]), (200, &b"v1"[..]));
    assert!(stale.cache_status().contains("detail=stale-if-error"));
    assert_eq!(
        origin.calls(),
        1,
        "stale-if-error instead of a revalidation"
    );

    store.shedding.store(false, Ordering::SeqCst);
    assert_eq!(&send(&svc, "GET", "/cold", &[]).await.body[..], b"v2");
}
