//! Bench variants for perf-budget, both in observe mode with three objectives (`p95`, `p99`,
//! `error_rate`) on `GET /json` and `GET /static`, answering with axum's `Body`
//! ([`BudgetLayer::axum_body`], the configuration the crate recommends with axum):
//!
//! - `budget`: the layer added with axum's `Router::layer` (every route, `MatchedPath` templates).
//! - `budget-outer`: the layer around the whole `Router` ([`outer`]): the configured templates
//!   are matched with `matchit`, and axum does not box a second route service per route.

use std::time::Duration;

use axum::Router;
use perf_budget::{AxumBody, Budget, BudgetLayer, BudgetPolicy};
use tower::Layer;

fn policy() -> Option<BudgetPolicy> {
    BudgetPolicy::builder()
        .budget("json", "GET /json", |b| {
            b.p95(Duration::from_millis(200))
                .p99(Duration::from_millis(500))
                .error_rate(0.01)
        })
        .budget("static", "GET /static", |b| {
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
        "budget" => Some(crate::routes().layer(BudgetLayer::new(policy()?).axum_body())),
        _ => None,
    }
}

/// The service of variant `name` when it wraps the whole router (`budget-outer`).
pub(crate) fn outer(name: &str) -> Option<Budget<Router, AxumBody>> {
    match name {
        // `with_state` turns the handlers into routes once, as `axum::serve` does for a Router
        // per connection (a Router called as a plain service would do it per request).
        "budget-outer" => Some(
            BudgetLayer::new(policy()?)
                .axum_body()
                .layer(crate::routes().with_state(())),
        ),
        _ => None,
    }
}
