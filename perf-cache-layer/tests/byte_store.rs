//! A [`CacheStore`] written outside the crate, the way a remote store is: it keeps each entry as
//! bytes (`CachedResponse::to_bytes`) in a `HashMap<String, Vec<u8>>` and reads them back with
//! `CachedResponse::from_bytes`. Only the public API is used.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, ready};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use perf_cache_layer::store::Variants;
use perf_cache_layer::{CacheLayer, CacheStore, CachedResponse, StoreError};
use tower::{Service, ServiceExt};

/// Bytes by primary key; one variant per key (a newer variant replaces the older one).
#[derive(Clone, Default)]
struct ByteStore {
    map: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl ByteStore {
    fn read(&self, key: &str) -> Result<Option<Variants>, StoreError> {
        let map = self.map.lock().unwrap();
        let Some(bytes) = map.get(key) else {
            return Ok(None);
        };
        let entry = CachedResponse::from_bytes(bytes).map_err(StoreError::new)?;
        Ok(Some(vec![Arc::new(entry)].into()))
    }
}

impl CacheStore for ByteStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Variants>, StoreError>> {
        ready(self.read(key)).boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        response: Arc<CachedResponse>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let bytes = response.to_bytes();
        self.map.lock().unwrap().insert(key.to_owned(), bytes);
        ready(Ok(())).boxed()
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.map.lock().unwrap().remove(key);
        ready(Ok(())).boxed()
    }

    fn purge_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.map.lock().unwrap().retain(|_, bytes| {
            CachedResponse::from_bytes(bytes).is_ok_and(|entry| entry.tags().all(|t| t != tag))
        });
        ready(Ok(())).boxed()
    }

    fn purge_all(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.map.lock().unwrap().clear();
        ready(Ok(())).boxed()
    }

    fn max_object_size(&self) -> usize {
        1 << 20
    }
}

struct Got {
    status: u16,
    cache_status: String,
    body: Bytes,
}

async fn get<S>(svc: &mut S, path: &str) -> Got
where
    S: Service<Request<()>, Response = Response<perf_cache_layer::ResponseBody<Full<Bytes>>>>,
    S::Error: std::fmt::Debug,
{
    let req = Request::builder()
        .uri(path)
        .header("host", "example.com")
        .body(())
        .unwrap();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Got {
        status: parts.status.as_u16(),
        cache_status: parts.headers["cache-status"].to_str().unwrap().to_owned(),
        body: body.collect().await.unwrap().to_bytes(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_byte_store_outside_the_crate_serves_hits() {
    let store = ByteStore::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Request<()>| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                let res = Response::builder()
                    .header("cache-control", "max-age=60")
                    .header("surrogate-key", "items")
                    .body(Full::new(Bytes::from(format!("item v{n}"))))
                    .unwrap();
                Ok::<_, Infallible>(res)
            }
        })
    };
    let (layer, handle) = CacheLayer::builder()
        .store(store.clone())
        .build_pair()
        .unwrap();
    let mut svc = tower::Layer::layer(&layer, origin);

    let miss = get(&mut svc, "/item").await;
    assert_eq!(miss.status, 200);
    assert!(
        miss.cache_status.contains("stored"),
        "{}",
        miss.cache_status
    );
    let stored = store.map.lock().unwrap()["example.com\n/item"].clone();
    assert!(stored.starts_with(b"PCLe"));

    tokio::time::advance(Duration::from_secs(5)).await;
    let hit = get(&mut svc, "/item").await;
    assert_eq!(hit.cache_status, "perf-cache; hit; ttl=55");
    assert_eq!(hit.body, "item v1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A purge by tag goes through the store's own decoding.
    handle.purge_tag("items").await.unwrap();
    let after = get(&mut svc, "/item").await;
    assert!(
        after.cache_status.contains("fwd=uri-miss"),
        "{}",
        after.cache_status
    );
    assert_eq!(after.body, "item v2");

    // Corrupt bytes are a store error: the layer treats it as a miss and stores a fresh entry.
    store
        .map
        .lock()
        .unwrap()
        .insert("example.com\n/item".to_owned(), b"PCLe\x01garbage".to_vec());
    let corrupt = get(&mut svc, "/item").await;
    assert_eq!(corrupt.body, "item v3");
    assert!(
        corrupt.cache_status.contains("stored"),
        "{}",
        corrupt.cache_status
    );
    let hit = get(&mut svc, "/item").await;
    assert_eq!(hit.body, "item v3");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
