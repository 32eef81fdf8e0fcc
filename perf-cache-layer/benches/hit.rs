//! In-process cost of a cache hit: a bare service returning a 1 KiB body vs the same service
//! behind `CacheLayer` (fresh hit, answered on the synchronous fast path), a 304, the store lookup
//! alone, and building the request (included in every other row).
//!
//! `cargo bench -p perf-cache-layer --bench hit`
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use perf_cache_layer::CacheLayer;
use tower::{Service, ServiceExt};

fn origin() -> impl Service<
    Request<()>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    let body = Bytes::from(vec![b'x'; 1024]);
    tower::service_fn(move |_: Request<()>| {
        let res = Response::builder()
            .header("cache-control", "max-age=3600")
            .body(Full::new(body.clone()))
            .unwrap();
        async move { Ok::<_, Infallible>(res) }
    })
}

fn request(etag: Option<&str>) -> Request<()> {
    let mut b = Request::builder().uri("/static").header("host", "bench");
    if let Some(etag) = etag {
        b = b.header("if-none-match", etag);
    }
    b.body(()).unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("hit");
    let mut bare = origin();
    group.bench_function("bare service", |b| {
        b.iter(|| black_box(bare.call(request(None)).now_or_never()));
    });
    let mut cached = tower_layer::Layer::layer(&CacheLayer::new(), origin());
    let first = runtime
        .block_on(cached.clone().oneshot(request(None)))
        .unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let _guard = runtime.enter();
    group.bench_function("cache hit", |b| {
        b.iter(|| black_box(cached.call(request(None)).now_or_never()));
    });
    group.bench_function("cache 304", |b| {
        b.iter(|| black_box(cached.call(request(Some(&etag))).now_or_never()));
    });
    let store = perf_cache_layer::MemoryStore::default();
    let layer = CacheLayer::builder().store(store.clone()).build().unwrap();
    runtime
        .block_on(tower_layer::Layer::layer(&layer, origin()).oneshot(request(None)))
        .unwrap();
    group.bench_function("store lookup", |b| {
        b.iter(|| {
            black_box(perf_cache_layer::CacheStore::get_ready(
                &store,
                "bench\n/static",
            ))
        });
    });
    group.bench_function("request construction (baseline)", |b| {
        b.iter(|| black_box(request(None)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
