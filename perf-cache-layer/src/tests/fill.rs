//! The flow's side of coalescing cold misses across instances ([`CacheStore::fill`]), over a
//! store whose `fill` answers what the test says and logs the calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::{Origin, cache_with, get, response};
use crate::store::{Fill, Variants};
use crate::{CacheLayer, CacheStore, CachedResponse, MemoryStore, StoreError};

/// A memory store that answers `fill` with `answer` and logs `fill`, `put` and `done`.
#[derive(Clone)]
struct Fleet {
    store: MemoryStore,
    answer: Arc<Mutex<Fill>>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Fleet {
    fn new(answer: Fill) -> Self {
        Self {
            store: MemoryStore::default(),
            answer: Arc::new(Mutex::new(answer)),
            log: Arc::default(),
        }
    }
    fn log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }
    fn note(&self, what: &'static str) {
        self.log.lock().unwrap().push(what);
    }
}

impl CacheStore for Fleet {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Variants>, StoreError>> {
        self.store.get(key)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        response: Arc<CachedResponse>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.note("put");
        self.store.put(key, response)
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.remove(key)
    }
    fn purge_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.purge_tag(tag)
    }
    fn purge_all(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store.purge_all()
    }
    fn max_object_size(&self) -> usize {
        self.store.max_object_size()
    }
    fn fill<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Fill> {
        self.note("fill");
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move {
            // A round trip to the shared tier.
            tokio::time::sleep(Duration::from_millis(1)).await;
            answer
        })
    }
    fn fill_done(&self, _key: &str) {
        self.note("done");
    }
}

fn cacheable(cc: &'static str) -> Origin {
    Origin::new(move |_, n| response(&[("cache-control", cc)], &format!("v{n}")))
        .slow_gets(Duration::from_millis(200))
}

#[tokio::test(start_paused = true)]
async fn the_filling_instance_stores_then_ends_the_fill() {
    let origin = cacheable("max-age=60");
    let store = Fleet::new(Fill::Lead);
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let svc = cache_with(&layer, &origin);

    let (a, b) = tokio::join!(get(&svc, "/x"), get(&svc, "/x"));
    assert_eq!((&a.body[..], &b.body[..]), (&b"v1"[..], &b"v1"[..]));
    assert_eq!(origin.calls(), 1);
    assert_eq!(
        store.log(),
        ["fill", "put", "done"],
        "one request per instance takes part (in-process coalescing first); the put comes before the end"
    );
    assert!(get(&svc, "/x").await.cache_status().contains("hit"));
    assert_eq!(store.log().len(), 3, "a hit asks nothing");
}

#[tokio::test(start_paused = true)]
async fn a_fill_that_stores_nothing_still_ends() {
    let origin = cacheable("no-store");
    let store = Fleet::new(Fill::Lead);
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let got = get(&cache_with(&layer, &origin), "/x").await;
    assert_eq!(&got.body[..], b"v1");
    assert_eq!(store.log(), ["fill", "done"]);
}

#[tokio::test(start_paused = true)]
async fn a_fill_dropped_half_way_ends() {
    let origin = cacheable("max-age=60");
    let store = Fleet::new(Fill::Lead);
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let svc = cache_with(&layer, &origin);
    let cut = tokio::time::timeout(Duration::from_millis(50), get(&svc, "/x")).await;
    assert!(
        cut.is_err(),
        "the client went away while the origin answered"
    );
    assert_eq!(store.log(), ["fill", "done"]);
}

/// A fresh entry, as another instance stored it.
fn filled(body: &'static str, lifetime: Duration) -> Fill {
    let mut headers = HeaderMap::new();
    headers.insert("content-length", HeaderValue::from(body.len()));
    let entry = CachedResponse::builder(
        StatusCode::OK,
        headers,
        Bytes::from_static(body.as_bytes()),
        SystemTime::now(),
    )
    .lifetime(lifetime)
    .build();
    Fill::Filled(vec![Arc::new(entry)].into())
}

#[tokio::test(start_paused = true)]
async fn an_entry_filled_by_another_instance_is_an_l2_hit_for_every_waiter() {
    let origin = cacheable("max-age=60");
    let store = Fleet::new(filled("theirs", Duration::from_secs(60)));
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let svc = cache_with(&layer, &origin);

    let (a, b) = tokio::join!(get(&svc, "/x"), get(&svc, "/x"));
    for got in [&a, &b] {
        assert_eq!((got.status, &got.body[..]), (200, &b"theirs"[..]));
    }
    assert!(
        a.cache_status().starts_with("perf-cache; hit; detail=l2"),
        "{}",
        a.cache_status()
    );
    assert!(
        b.cache_status().contains("collapsed"),
        "{}",
        b.cache_status()
    );
    assert_eq!(origin.calls(), 0, "another instance called the origin");
    assert_eq!(store.log(), ["fill"], "no fill of our own to end");
}

#[tokio::test(start_paused = true)]
async fn a_filled_entry_that_is_not_fresh_is_fetched() {
    let origin = cacheable("max-age=60");
    let store = Fleet::new(filled("theirs", Duration::ZERO));
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    let got = get(&cache_with(&layer, &origin), "/x").await;
    assert_eq!(&got.body[..], b"v1");
    assert_eq!(origin.calls(), 1);
}
