// The README's examples use every feature: as doctests they run when those are on (`cargo xtask
// test` builds them all as printed either way).
#![cfg_attr(any(not(doctest), all(feature = "redis", feature = "metrics")), doc = include_str!("../README.md"))]
#![cfg_attr(
    all(doctest, not(all(feature = "redis", feature = "metrics"))),
    doc = "The README's examples are tested with every feature on."
)]

mod body;
pub mod etag;
mod flow;
mod future;
mod handle;
mod layer;
mod metrics;
mod rfc;
mod service;
mod shared;
pub mod store;

pub use perf_middleware::server_timing::ServerTiming;

pub use self::body::ResponseBody;
pub use self::etag::{ETag, ETagLayer};
pub use self::future::ResponseFuture;
pub use self::handle::CacheHandle;
pub use self::layer::{CacheLayer, CacheLayerBuilder, ConfigError};
pub use self::rfc::conditional::EtagMode;
pub use self::rfc::policy::SetCookiePolicy;
pub use self::service::Cache;
pub use self::store::{
    CacheStore, CachedResponse, CachedResponseBuilder, DecodeError, DecodeErrorKind, Fill,
    MemoryStore, MemoryStoreBuilder, StoreError, Tier,
};
#[cfg(feature = "redis")]
pub use self::store::{TieredStore, TieredStoreBuilder, TieredStoreError};

#[cfg(test)]
mod tests;
