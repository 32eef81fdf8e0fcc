//! Bench variants for perf-budget, both in observe mode with three objectives (`p95`, `p99`,
//! `error_rate`) on `GET /json` and `GET /static`:
//!
//! - `budget`: the layer added with axum's `Router::layer` (every route, `MatchedPath` templates).
//! - `budget-outer`: the layer around the whole `Router` ([`outer`]): the configured templates
//!   are matched by the foundation's `RouteTable`, and axum does not box a second route service
//!   per route (the body is boxed once, into axum's `Body`, for the server).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use perf_budget::{Budget, BudgetLayer, BudgetPolicy, ResponseBody};
use tower::Layer;
use tower::util::MapResponse;

/// The `budget-outer` service: the layer around the router, answering with axum's `Body`.
pub(crate) type Outer = MapResponse<
    Budget<Router>,
    fn(axum::http::Response<ResponseBody<Body>>) -> axum::response::Response,
>;

fn policy() -> Option<BudgetPolicy> {
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
        .ok()
}

/// The router of variant `name`, if this module defines it as a router.
pub(crate) fn variant(name: &str) -> Option<Router> {
    match name {
        "budget" => Some(crate::routes().layer(BudgetLayer::new(policy()?))),
        _ => None,
    }
}

/// The service of variant `name` when it wraps the whole router (`budget-outer`).
pub(crate) fn outer(name: &str) -> Option<Outer> {
    match name {
        // `with_state` turns the handlers into routes once, as `axum::serve` does for a Router
        // per connection (a Router called as a plain service would do it per request).
        "budget-outer" => {
            let svc = BudgetLayer::new(policy()?).layer(crate::routes().with_state(()));
            let to_axum: fn(axum::http::Response<ResponseBody<Body>>) -> axum::response::Response =
                |res| res.map(Body::new);
            Some(MapResponse::new(svc, to_axum))
        }
        _ => None,
    }
}
