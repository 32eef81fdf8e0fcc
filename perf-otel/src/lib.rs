// The README's examples use every feature: as doctests they run when those are on (`cargo xtask
// test` builds them all as printed either way).
#![cfg_attr(any(not(doctest), feature = "full"), doc = include_str!("../README.md"))]
#![cfg_attr(
    all(doctest, not(feature = "full")),
    doc = "The README's examples are tested with every feature on."
)]

#[cfg(feature = "tracing")]
mod bridge;
pub mod client;
mod propagation;
pub mod server;
#[cfg(feature = "otlp")]
pub mod setup;

#[cfg(feature = "tracing")]
pub use bridge::tracing_layer;
pub use client::{InjectContext, InjectContextLayer};
pub use propagation::default_propagator;
pub use server::{
    ConfigError, Otel, OtelLayer, OtelLayerBuilder, ResponseBody, ResponseFuture, SpanEnd,
};
#[cfg(feature = "otlp")]
pub use setup::{Export, ExportStats, OtelConfig, OtelGuard, SetupError, StatsHandle};

/// The socket peer of a connection, for servers that are not axum (axum's
/// `ConnectInfo<SocketAddr>` is read directly). Insert it into the request extensions to get
/// `network.peer.*` and `client.address`.
///
/// ```
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(perf_otel::PeerAddr("192.0.2.1:50000".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);
