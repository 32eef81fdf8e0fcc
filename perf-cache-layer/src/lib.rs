#![doc = include_str!("../README.md")]

mod body;
mod coalesce;
mod conditional;
mod directives;
pub mod etag;
mod fetch;
mod flow;
mod future;
mod handle;
mod headers;
mod key;
mod layer;
mod metrics;
mod policy;
mod range;
mod serve;
mod service;
pub mod store;

pub use self::body::ResponseBody;
pub use self::conditional::EtagMode;
pub use self::etag::{ETag, ETagLayer};
pub use self::future::ResponseFuture;
pub use self::handle::CacheHandle;
pub use self::layer::{CacheLayer, CacheLayerBuilder, ConfigError};
pub use self::policy::SetCookiePolicy;
pub use self::service::Cache;
pub use self::store::{CacheStore, CachedResponse, MemoryStore, MemoryStoreBuilder, StoreError};

#[cfg(test)]
mod tests;
