//! Per-request cost of the hit path in a form `valgrind --tool=callgrind` can count exactly
//! (instructions are repeatable where wall-clock time on a shared machine is not):
//!
//! ```sh
//! cargo build --release -p perf-cache-layer --example cost_cache
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/cost_cache hit 20000
//! ```
//!
//! Run each variant with two request counts and divide the difference. Variants, all on an axum
//! `Router` with a handler returning a static 1 KiB `&str` (like `bench-server`'s `/static`):
//! `bare-static` (no layer), `noop` (an identity layer via `Router::layer`), `hit` (a fresh hit,
//! `CacheLayer` via `Router::layer`), `304` (a hit answered 304 to `If-None-Match`), `hit-outer`
//! (`CacheLayer` wrapped around the whole `Router`: hits skip routing), `hit-fallback` (that
//! wrapped `Router` as the fallback service of another `Router`: routing, and its cost, is back).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_cache_layer::CacheLayer;
use tower::{Layer, ServiceExt};

static BODY: &str = include_str!("../../examples/bench-server/src/static.txt");

fn request(etag: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/static").header("host", "127.0.0.1:8080");
    if let Some(etag) = etag {
        b = b.header("if-none-match", etag);
    }
    b.body(Body::empty()).expect("request")
}

fn layer() -> CacheLayer {
    CacheLayer::builder()
        .default_ttl(Duration::from_secs(3600))
        .build()
        .expect("valid")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "hit".into());
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let router = Router::new().route("/static", get(|| async { BODY }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        macro_rules! run {
            ($app:expr, $etag:expr) => {{
                let app = $app;
                let first = app.clone().oneshot(request(None)).await.expect("response");
                let etag = first
                    .headers()
                    .get("etag")
                    .map(|v| v.to_str().expect("ascii").to_owned());
                let etag = if $etag { etag } else { None };
                for _ in 0..n {
                    let res = app
                        .clone()
                        .oneshot(request(etag.as_deref()))
                        .await
                        .expect("response");
                    std::hint::black_box(res.into_body().collect().await.expect("body"));
                }
            }};
        }
        // `with_state(())` turns the handlers into routes once, as `axum::serve` does per
        // connection (a bare `Router<()>` would rebuild every route, layers included, per request).
        let router = router.with_state::<()>(());
        match variant.as_str() {
            "bare-static" => run!(router, false),
            "noop" => run!(
                router
                    .layer(tower::util::MapResponseLayer::new(
                        |r: axum::response::Response| r,
                    ))
                    .with_state::<()>(()),
                false
            ),
            "hit" => run!(router.layer(layer()).with_state::<()>(()), false),
            "304" => run!(router.layer(layer()).with_state::<()>(()), true),
            "hit-outer" => run!(layer().layer(router), false),
            "hit-fallback" => run!(
                Router::new()
                    .fallback_service(layer().layer(router))
                    .with_state::<()>(()),
                false
            ),
            other => panic!("unknown variant {other}"),
        }
    });
}
