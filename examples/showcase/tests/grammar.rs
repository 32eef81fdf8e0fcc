//! The family grammar, checked as a newcomer would use it: the same six steps written for each of
//! the four crates — construct with defaults, with a builder, with a handle (where one exists),
//! place the layer around the whole router, read its `Server-Timing` entry, and skip a route
//! (`.skip_route("/health")`: no entry there).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Response};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use perf_budget::{BudgetLayer, BudgetPolicy};
use perf_cache_layer::CacheLayer;
use perf_middleware::{MatchRouteLayer, PerfLayer, RouteTable, ServerTiming};
use perf_otel::OtelLayer;
use tower::{Layer, ServiceExt};

/// A router and the route table written from the same templates.
fn app() -> (Router, RouteTable) {
    let mut routes = RouteTable::builder();
    let router = Router::new()
        .route(
            routes.add("/users/{id}"),
            get(|| async { ([("cache-control", "max-age=60")], "{}") }),
        )
        .route(routes.add("/health"), get(|| async { "ok" }));
    (router, routes.build().expect("valid templates"))
}

fn policy() -> BudgetPolicy {
    BudgetPolicy::builder()
        .add_budget("users", "GET /users/{id}", |b| {
            b.p95(Duration::from_millis(200))
        })
        .build()
        .expect("valid budgets")
}

/// Step 4 and 5 (and 6 with `/health`): `layer` around the whole router behind `MatchRouteLayer`,
/// one request to `path`, the `Server-Timing` values of the response.
async fn server_timing_around_the_router<L>(layer: L, path: &str) -> Vec<String>
where
    L: Layer<Router>,
    L::Service: tower::Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    <L::Service as tower::Service<Request<Body>>>::Error: std::fmt::Debug,
    <L::Service as tower::Service<Request<Body>>>::Future: Send,
{
    let (router, routes) = app();
    let svc = MatchRouteLayer::new(routes).layer(layer.layer(router));
    let res = svc
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .expect("a response");
    assert_eq!(res.status(), 200);
    let values: Vec<String> = res
        .headers()
        .get_all("server-timing")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    println!("{path} server-timing: {values:?}");
    values
}

/// Maps any layered router's response body back to axum's `Body`, as `axum::serve` wants.
fn boxed<S>(
    svc: S,
) -> impl tower::Service<Request<Body>, Response = Response<Body>, Error = S::Error, Future: Send>
+ Send
+ 'static
where
    S: tower::Service<Request<Body>> + Send + 'static,
    S::Future: Send,
    S::Response: axum::response::IntoResponse,
{
    tower::util::MapResponse::new(svc, axum::response::IntoResponse::into_response)
}

/// [`server_timing_around_the_router`] for any layer of the family (its body mapped back to axum's).
async fn entries<L>(layer: L, path: &str) -> Vec<String>
where
    L: Layer<Router>,
    L::Service: tower::Service<Request<Body>> + Send + 'static,
    <L::Service as tower::Service<Request<Body>>>::Future: Send,
    <L::Service as tower::Service<Request<Body>>>::Response: axum::response::IntoResponse,
    <L::Service as tower::Service<Request<Body>>>::Error: std::fmt::Debug,
{
    server_timing_around_the_router(tower::layer::layer_fn(move |r| boxed(layer.layer(r))), path)
        .await
}

#[tokio::test(start_paused = true)]
async fn perf_middleware_reads_the_grammar() {
    let _defaults = PerfLayer::new();
    let _built = PerfLayer::builder()
        .slow_threshold(Duration::from_millis(300))
        .build()
        .expect("valid");
    // No handle: the metrics go to the `metrics` recorder.
    let layer = PerfLayer::builder()
        .server_timing(ServerTiming::Always)
        .skip_route("/health")
        .build()
        .unwrap();
    let st = entries(layer.clone(), "/users/7").await;
    assert!(st.iter().any(|v| v.starts_with("total;dur=")), "{st:?}");
    let st = entries(layer, "/health").await;
    assert!(!st.iter().any(|v| v.starts_with("total;dur=")), "{st:?}");
}

#[tokio::test(start_paused = true)]
async fn perf_cache_layer_reads_the_grammar() {
    let _defaults = CacheLayer::new();
    let _built = CacheLayer::builder().build().expect("valid");
    let (_layer, _handle) = CacheLayer::pair();
    let (layer, _handle) = CacheLayer::builder()
        .server_timing(ServerTiming::Always)
        .skip_route("/health")
        .build_pair()
        .unwrap();
    let st = entries(layer.clone(), "/users/7").await;
    assert!(st.iter().any(|v| v.starts_with("cache")), "{st:?}");
    let st = entries(layer, "/health").await;
    assert!(!st.iter().any(|v| v.starts_with("cache")), "{st:?}");
}

#[tokio::test(start_paused = true)]
async fn perf_budget_reads_the_grammar() {
    let _defaults = BudgetLayer::new(policy());
    let _built = BudgetLayer::builder()
        .policy(policy())
        .build()
        .expect("valid");
    let (_layer, _handle) = BudgetLayer::pair(policy());
    let layer = BudgetLayer::builder()
        .policy(policy())
        .server_timing(ServerTiming::Always)
        .skip_route("/health")
        .build()
        .unwrap();
    let st = entries(layer.clone(), "/users/7").await;
    assert!(st.iter().any(|v| v.starts_with("budget")), "{st:?}");
    let st = entries(layer, "/health").await;
    assert!(!st.iter().any(|v| v.starts_with("budget")), "{st:?}");
}

/// A recording tracer (spans are dropped when the provider goes).
fn tracer() -> SdkTracer {
    SdkTracerProvider::builder().build().tracer("grammar")
}

#[tokio::test(start_paused = true)]
async fn perf_otel_reads_the_grammar() {
    let _defaults = OtelLayer::new(tracer());
    let _built = OtelLayer::builder(tracer()).build().expect("valid");
    // No handle: spans go to the tracer's provider.
    let layer = OtelLayer::builder(tracer())
        .server_timing(ServerTiming::Always)
        .skip_route("/health")
        .build()
        .unwrap();
    let st = entries(layer.clone(), "/users/7").await;
    assert!(st.iter().any(|v| v.starts_with("traceparent")), "{st:?}");
    let st = entries(layer, "/health").await;
    assert!(!st.iter().any(|v| v.starts_with("traceparent")), "{st:?}");
}
