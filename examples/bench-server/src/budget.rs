//! Bench variants for perf-budget.
//!
//! - `budget`: the budget layer in observe mode with three objectives (`p95`, `p99`,
//!   `error_rate`) on the benchmarked route, every route under the same layer.

use std::time::Duration;

use perf_budget::{BudgetLayer, BudgetPolicy};

/// The router of variant `name`, if this module defines it.
pub(crate) fn variant(name: &str) -> Option<axum::Router> {
    match name {
        "budget" => {
            let policy = BudgetPolicy::builder()
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
                .ok()?;
            Some(crate::routes().layer(BudgetLayer::new(policy)))
        }
        _ => None,
    }
}
