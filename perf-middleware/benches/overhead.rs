//! In-process cost of `PerfLayer` per request: an axum `Router` called with `oneshot` and its
//! body collected, bare vs behind the layer (metrics off / metrics on / metrics + Server-Timing).
//!
//! `cargo bench -p perf-middleware --bench overhead`
#![allow(missing_docs)]

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::{PerfLayer, ServerTiming, prometheus};
use tower::ServiceExt;

fn router() -> Router {
    Router::new().route(
        "/users/{id}",
        get(|| async { axum::Json(serde_json_like()) }),
    )
}

fn serde_json_like() -> &'static str {
    r#"{"id":1,"name":"Ada Lovelace"}"#
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _handle = prometheus::install().unwrap();
    let variants: [(&str, Router); 5] = [
        ("bare", router()),
        (
            "no-op layer (axum per-layer cost)",
            router().layer(tower::util::MapResponseLayer::new(
                |r: axum::response::Response| r,
            )),
        ),
        (
            "perf, metrics off",
            router().layer(PerfLayer::builder().metrics(false).build().unwrap()),
        ),
        ("perf, metrics + slow log", router().layer(PerfLayer::new())),
        (
            "perf, metrics + slow log + Server-Timing",
            router().layer(
                PerfLayer::builder()
                    .server_timing(ServerTiming::Always)
                    .build()
                    .unwrap(),
            ),
        ),
    ];
    let mut group = c.benchmark_group("request");
    for (name, app) in variants {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let app = app.clone();
                async move {
                    let req = Request::get("/users/7").body(Body::empty()).unwrap();
                    let res = app.oneshot(req).await.unwrap();
                    black_box(res.into_body().collect().await.unwrap());
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
