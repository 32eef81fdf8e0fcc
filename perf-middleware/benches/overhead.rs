//! In-process cost of `PerfLayer` per request: an axum `Router` called as `axum::serve` calls it
//! (state resolved once, `with_state(())`), its body collected, bare vs behind the layer
//! (metrics off / metrics on / metrics + Server-Timing, per route via `Router::layer`, and
//! around the whole router via `PerfLayer::around`).
//!
//! `cargo bench -p perf-middleware --bench overhead`
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::{PerfLayer, RouteTable, RouteTableBuilder, ServerTiming, prometheus};
use tower::{Service, ServiceExt};

fn router(routes: &mut RouteTableBuilder) -> Router {
    Router::new().route(
        routes.add("/users/{id}"),
        get(|| async { axum::Json(serde_json_like()) }),
    )
}

fn serde_json_like() -> &'static str {
    r#"{"id":1,"name":"Ada Lovelace"}"#
}

fn bench_one<S>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    app: S,
) where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    c.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let mut app = app.clone();
            async move {
                let req = Request::get("/users/7").body(Body::empty()).unwrap();
                let res = app.ready().await.unwrap().call(req).await.unwrap();
                black_box(res.into_body().collect().await.unwrap());
            }
        });
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _handle = prometheus::install().unwrap();
    let mut unused = RouteTable::builder();
    let layered = |layer: PerfLayer| {
        router(&mut RouteTable::builder())
            .layer(layer)
            .with_state(())
    };
    let mut group = c.benchmark_group("request");
    bench_one(&mut group, &rt, "bare", router(&mut unused).with_state(()));
    bench_one(
        &mut group,
        &rt,
        "no-op layer (axum per-layer cost)",
        router(&mut unused)
            .layer(tower::util::MapResponseLayer::new(|r: Response| r))
            .with_state(()),
    );
    bench_one(
        &mut group,
        &rt,
        "perf, metrics off",
        layered(PerfLayer::builder().metrics(false).build().unwrap()),
    );
    bench_one(
        &mut group,
        &rt,
        "perf, metrics + slow log",
        layered(PerfLayer::new()),
    );
    bench_one(
        &mut group,
        &rt,
        "perf, metrics + slow log + Server-Timing",
        layered(
            PerfLayer::builder()
                .server_timing(ServerTiming::Always)
                .build()
                .unwrap(),
        ),
    );
    let mut routes = RouteTable::builder();
    let whole = router(&mut routes);
    let around = PerfLayer::builder()
        .route_table(routes.build().unwrap())
        .build()
        .unwrap()
        .around(whole);
    bench_one(
        &mut group,
        &rt,
        "perf around the whole router, metrics + slow log",
        around,
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
