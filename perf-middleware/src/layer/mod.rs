//! The timing and metrics layer (feature `metrics`): [`PerfLayer`], its [`Perf`] service, the
//! named [`ResponseFuture`] and [`ResponseBody`], [`OnComplete`] hooks, metric names in
//! [`metrics`] and the Prometheus exporter in `prometheus` (feature `prometheus`).
//!
//! What is measured, the metric table, the slow log, `Server-Timing`, placement and an example:
//! the [`PerfLayer`] docs.

#[cfg(feature = "axum")]
mod around;
mod body;
mod builder;
mod future;
mod hooks;
pub mod metrics;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod record;
mod registry;
mod service;
#[cfg(test)]
mod tests;

#[cfg(feature = "axum")]
pub use around::{PerfRouter, PerfRouterFuture};
pub use body::ResponseBody;
pub use builder::{DEFAULT_SLOW_THRESHOLD, PerfLayer, PerfLayerBuilder};
pub use future::ResponseFuture;
pub use hooks::{Completion, OnComplete};
pub use service::Perf;
