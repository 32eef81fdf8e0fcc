//! perf-budget in the showcase: the budgets of `budgets.toml` in annotate mode, and the report
//! at `GET /perf/budgets` (JSON, or an aligned table with `?format=text`).

use axum::Router;
use axum::routing::get;
use perf_budget::{BudgetHandle, BudgetLayer, BudgetPolicy, ConfigError};

/// The showcase's budgets file, embedded.
pub const BUDGETS_TOML: &str = include_str!("../budgets.toml");

/// Adds the budget layer around `api` (outside every other layer, so their time counts) and
/// mounts the report, unbudgeted, at `/perf/budgets`.
///
/// # Errors
///
/// An invalid `budgets.toml`, with its line and what to fix.
pub fn wrap(api: Router) -> Result<(Router, BudgetHandle), ConfigError> {
    let policy = BudgetPolicy::from_toml(BUDGETS_TOML)?;
    for w in policy.warnings() {
        tracing::info!("budgets.toml: {w}");
    }
    let (layer, handle) = BudgetLayer::pair(policy);
    let router = api.layer(layer).route(
        "/perf/budgets",
        get(perf_budget::axum::report).with_state(handle.clone()),
    );
    Ok((router, handle))
}
