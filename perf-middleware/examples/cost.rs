//! Per-request cost in a form `valgrind --tool=callgrind` can count exactly (instructions are
//! repeatable where wall-clock time on a shared machine is not):
//!
//! ```sh
//! cargo build --release -p perf-middleware --example cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/cost perf 20000
//! ```
//!
//! Variants: `bare`, `noop` (an identity axum layer), `perf-nometrics`, `perf`, `perf-st`.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::{PerfLayer, ServerTiming, prometheus};
use tower::ServiceExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "perf".into());
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let _handle = prometheus::install().expect("recorder");
    let router = Router::new().route("/users/{id}", get(|| async { r#"{"id":1}"# }));
    let app = match variant.as_str() {
        "bare" => router,
        "noop" => router.layer(tower::util::MapResponseLayer::new(
            |r: axum::response::Response| r,
        )),
        "perf-nometrics" => {
            router.layer(PerfLayer::builder().metrics(false).build().expect("valid"))
        }
        "perf" => router.layer(PerfLayer::new()),
        "perf-st" => router.layer(
            PerfLayer::builder()
                .server_timing(ServerTiming::Always)
                .build()
                .expect("valid"),
        ),
        other => panic!("unknown variant {other}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for _ in 0..n {
            let req = Request::get("/users/7")
                .body(Body::empty())
                .expect("request");
            let res = app.clone().oneshot(req).await.expect("response");
            std::hint::black_box(res.into_body().collect().await.expect("body"));
        }
    });
}
