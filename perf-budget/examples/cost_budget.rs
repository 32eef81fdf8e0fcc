//! Per-request cost in a form `valgrind --tool=callgrind` can count exactly (instructions are
//! repeatable where wall-clock time on a shared machine is not):
//!
//! ```sh
//! cargo build --release -p perf-budget --example cost_budget
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/cost_budget budget 20000
//! ```
//!
//! Run with two request counts and take the difference per request. Variants: `bare`, `noop`
//! (an identity axum layer), `budget` (observe, three objectives, `Router::layer`),
//! `budget-outer` (that layer around the whole Router: the budgets' templates matched by the
//! foundation's `RouteTable`, no per-route boxing), `svc-template` and `svc-path` (the layer
//! around a no-op service, with and without a `RouteTemplate`).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_budget::{BudgetLayer, BudgetPolicy};
use tower::{Layer, Service, ServiceExt};

fn policy() -> BudgetPolicy {
    BudgetPolicy::builder()
        .add_budget("json", "GET /json", |b| {
            b.p95(Duration::from_millis(200))
                .p99(Duration::from_millis(500))
                .error_rate(0.01)
        })
        .add_budget("static", "GET /static", |b| {
            b.p95(Duration::from_millis(200))
                .p99(Duration::from_millis(500))
                .error_rate(0.01)
        })
        .build()
        .expect("valid policy")
}

/// Serves `n` requests, as `axum::serve` does per connection: the Router with its state
/// applied (handlers turned into routes once, not per request).
async fn run<S, B>(app: S, n: u32)
where
    S: tower::Service<
            Request<Body>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let req = Request::get("/json").body(Body::empty()).expect("request");
        let res = app.clone().oneshot(req).await.expect("response");
        std::hint::black_box(res.into_body().collect().await.expect("body"));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "budget".into());
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let router = Router::new()
        .route("/json", get(|| async { r#"{"id":1}"# }))
        .route("/static", get(|| async { "static" }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        match variant.as_str() {
            "bare" => run(router.with_state(()), n).await,
            "noop" => {
                run(
                    router
                        .layer(tower::util::MapResponseLayer::new(
                            |r: axum::response::Response| r,
                        ))
                        .with_state(()),
                    n,
                )
                .await
            }
            "budget" => run(router.layer(BudgetLayer::new(policy())).with_state(()), n).await,
            "budget-outer" => {
                let layer = BudgetLayer::new(policy());
                run(layer.layer(router.with_state(())), n).await
            }
            "svc-template" | "svc-path" => {
                let template = perf_middleware::RouteTemplate::new("/json");
                let mut svc = BudgetLayer::new(policy()).layer(tower::service_fn(
                    |_req: Request<()>| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
                    },
                ));
                for _ in 0..n {
                    let mut req = Request::get("/json").body(()).expect("request");
                    if variant == "svc-template" {
                        req.extensions_mut().insert(template.clone());
                    }
                    std::hint::black_box(svc.call(req).await.expect("response"));
                }
            }
            other => panic!("unknown variant {other}"),
        }
    });
}
