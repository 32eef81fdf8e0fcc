//! An axum handler serving the report.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use perf_budget::{BudgetLayer, BudgetPolicy};
//!
//! let policy = BudgetPolicy::builder()
//!     .add_budget("users", "GET /users", |b| b.p95(Duration::from_millis(200)))
//!     .build()
//!     .unwrap();
//! let (layer, handle) = BudgetLayer::pair(policy);
//! let app: Router = Router::new()
//!     .route("/users", get(|| async { "[]" }))
//!     .layer(layer)
//!     .route("/perf/budgets", get(perf_budget::axum::report).with_state(handle));
//! ```

use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::layer::BudgetHandle;

/// `GET` handler: the report as JSON, or as a text table with `?format=text`.
pub async fn report(State(handle): State<BudgetHandle>, uri: Uri, headers: HeaderMap) -> Response {
    crate::report::render(&handle, uri.query(), headers.get(header::ACCEPT)).into_response()
}
