//! Prometheus exporter setup and the `/metrics` service (feature `prometheus`).
//!
//! [`install`] installs `metrics-exporter-prometheus` as the global recorder with the buckets
//! this crate's histograms need, OpenTelemetry-style names rendered the Prometheus way
//! (`http_server_request_duration_seconds`), and an upkeep thread so histogram samples never
//! pile up when nobody scrapes. Install it once, at startup, and share the handle (it is
//! `Clone`). Calling it again with the same settings returns the handle installed first;
//! with different settings it fails with [`InstallErrorKind::AlreadyInstalled`] and hands the
//! settings back, rather than silently ignoring them.
//!
//! Recording a histogram sample in this exporter costs a few tens of nanoseconds (a timestamp,
//! a generation counter, a lock-free queue push); the upkeep thread later folds the samples into
//! the buckets. The layer records one sample per histogram per request (two by default:
//! duration and response body size; request body size when declared).
//!
//! ```
//! use axum::{Router, routing::get};
//! use perf_middleware::{PerfLayer, prometheus};
//!
//! let handle = prometheus::install().expect("no other metrics recorder is installed");
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "hi" }))
//!     .layer(PerfLayer::new())
//!     .route_service("/metrics", prometheus::MetricsService::new(handle));
//! # let _ = app;
//! ```

mod error;
mod exporter;
mod service;

pub use error::{InstallError, InstallErrorKind};
pub use exporter::{DEFAULT_UPKEEP_INTERVAL, Exporter, install};
pub use service::{CONTENT_TYPE, MetricsService};
