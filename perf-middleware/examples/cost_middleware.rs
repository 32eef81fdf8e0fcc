//! Per-request cost in a form `valgrind --tool=callgrind` can count exactly (instructions are
//! repeatable where wall-clock time on a shared machine is not):
//!
//! ```sh
//! cargo build --release -p perf-middleware --features prometheus --example cost_middleware
//! for n in 10000 20000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         --collect-atstart=no --toggle-collect='cost_middleware::measured*' \
//!         target/release/examples/cost_middleware perf $n 2>&1 | grep Collected
//! done
//! ```
//!
//! and divide the difference of the two instruction counts by 10,000: the fixed cost of the
//! first requests cancels. Only the request loop is counted (after a warm-up that resolves
//! metric handles), on the calling thread: the exporter's upkeep thread (which drains
//! histogram samples every 5 s) is not.
//!
//! The router gets its state (`with_state(())`) once, as `axum::serve` does per connection:
//! calling a `Router` without it re-boxes every handler on every request, which a server never
//! does.
//!
//! Variants: `bare`, `noop` (an identity layer via `Router::layer`: axum's per-layer cost),
//! `perf-nometrics`, `perf`, `perf-st` (with `Server-Timing`), `perf-outer` (`PerfLayer::around`
//! the whole router, route templates from a `RouteTable`).

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::{PerfLayer, RouteTable, RouteTableBuilder, ServerTiming, prometheus};
use tower::{Service, ServiceExt};

fn router(routes: &mut RouteTableBuilder) -> Router {
    Router::new().route(routes.add("/users/{id}"), get(|| async { r#"{"id":1}"# }))
}

/// The variant's service, as `axum::serve` would call it.
fn run(variant: &str, n: u32) {
    let mut routes = RouteTable::builder();
    let router = router(&mut routes);
    match variant {
        "bare" => measure(router.with_state(()), n),
        "noop" => measure(
            router
                .layer(tower::util::MapResponseLayer::new(
                    |r: axum::response::Response| r,
                ))
                .with_state(()),
            n,
        ),
        "perf-nometrics" => measure(
            router
                .layer(PerfLayer::builder().metrics(false).build().expect("valid"))
                .with_state(()),
            n,
        ),
        "perf" => measure(router.layer(PerfLayer::new()).with_state(()), n),
        "perf-st" => measure(
            router
                .layer(
                    PerfLayer::builder()
                        .server_timing(ServerTiming::Always)
                        .build()
                        .expect("valid"),
                )
                .with_state(()),
            n,
        ),
        "perf-outer" => {
            let perf = PerfLayer::builder()
                .route_table(routes.build().expect("valid templates"))
                .build()
                .expect("valid");
            measure(perf.around(router), n)
        }
        other => panic!("unknown variant {other}"),
    }
}

fn measure<S>(app: S, n: u32)
where
    S: Service<Request<Body>, Response = axum::response::Response> + Clone,
    S::Error: std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(requests(&app, 1_000));
    measured(&rt, &app, n);
}

async fn requests<S, B>(app: &S, n: u32)
where
    S: Service<Request<Body>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let req = Request::get("/users/7")
            .body(Body::empty())
            .expect("request");
        let mut svc = app.clone();
        let res = svc
            .ready()
            .await
            .expect("ready")
            .call(req)
            .await
            .expect("response");
        std::hint::black_box(res.into_body().collect().await.expect("body"));
    }
}

/// The counted part (see `--toggle-collect` above).
#[inline(never)]
fn measured<S, B>(rt: &tokio::runtime::Runtime, app: &S, n: u32)
where
    S: Service<Request<Body>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    rt.block_on(requests(app, n));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "perf".into());
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let _handle = prometheus::install().expect("recorder");
    run(&variant, n);
}
