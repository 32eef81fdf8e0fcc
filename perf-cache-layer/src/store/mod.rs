//! Storage: the [`CacheStore`] trait and the stored [`CachedResponse`].
//!
//! A store maps a *primary key* (method class + URI, see the crate docs) to the list of stored
//! variants for that URI (one per distinct set of `Vary`-selected request headers). The trait is
//! async so that a remote store (Redis) fits behind it; [`MemoryStore`] is the in-process store.
//!
//! # Example
//!
//! ```
//! use perf_cache_layer::{CacheLayer, MemoryStore};
//!
//! let store = MemoryStore::builder().max_bytes(32 << 20).max_object_size(1 << 20).build();
//! let layer = CacheLayer::builder().store(store).build();
//! # let _ = layer;
//! ```

mod memory;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, StatusCode};

pub use self::memory::{MemoryStore, MemoryStoreBuilder};
use crate::policy::Freshness;
use crate::{conditional, serve};

/// A complete stored response plus what the cache needs to reuse it.
///
/// Built by the layer; stores keep it behind an `Arc` and never mutate it.
#[derive(Clone)]
pub struct CachedResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) freshness: Freshness,
    /// `Vary`-selected request headers: name and normalised value (`None` when absent).
    pub(crate) vary: Vec<(HeaderName, Option<String>)>,
    /// Surrogate keys (tags) for purging.
    pub(crate) tags: Vec<Box<str>>,
    pub(crate) keep: Duration,
    /// What a hit sends: `headers` plus placeholders for `Age` and `Cache-Status`, so a hit
    /// clones one map and overwrites two values instead of rebuilding the map field by field.
    pub(crate) reply: HeaderMap,
    /// The same for a 304 to a client's matching precondition (RFC 9110 §15.4.5 fields only).
    pub(crate) reply_304: HeaderMap,
    /// Whether the templates hold a `Server-Timing` placeholder.
    pub(crate) reply_timing: bool,
}

impl fmt::Debug for CachedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("vary", &self.vary)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl CachedResponse {
    #[expect(
        clippy::too_many_arguments,
        reason = "internal constructor; every field but the derived templates"
    )]
    pub(crate) fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        freshness: Freshness,
        vary: Vec<(HeaderName, Option<String>)>,
        tags: Vec<Box<str>>,
        keep: Duration,
        server_timing: bool,
    ) -> Self {
        let reply = serve::reply_template(&headers, server_timing);
        let reply_304 =
            serve::reply_template(&conditional::not_modified_headers(&headers), server_timing);
        Self {
            status,
            headers,
            body,
            freshness,
            vary,
            tags,
            keep,
            reply,
            reply_304,
            reply_timing: server_timing,
        }
    }

    /// The stored status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stored header fields (hop-by-hop fields already removed).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The stored body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Surrogate keys this response was tagged with.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(|t| &**t)
    }

    /// When the response was received from the inner service.
    pub fn response_time(&self) -> SystemTime {
        self.freshness.response_time
    }

    /// Approximate memory footprint in bytes (body + header fields + bookkeeping).
    pub fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum();
        let vary: usize = self
            .vary
            .iter()
            .map(|(n, v)| n.as_str().len() + v.as_ref().map_or(0, String::len))
            .sum();
        let tags: usize = self.tags.iter().map(|t| t.len() + 16).sum();
        // The reply templates share the stored values; their own cost is their tables.
        let templates = (self.reply.len() + self.reply_304.len()) * 48;
        self.body.len() + headers + vary + tags + templates + 256
    }

    /// How long a store should retain it (freshness + stale windows + revalidation keep).
    pub fn retain_for(&self) -> Duration {
        let validator = self.headers.contains_key(http::header::ETAG)
            || self.headers.contains_key(http::header::LAST_MODIFIED);
        self.freshness.retain(self.keep, validator)
    }
}

/// The stored variants for one primary key.
pub type Variants = Arc<[Arc<CachedResponse>]>;

/// A store failure (the layer treats it as a miss and keeps serving).
#[derive(Debug)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps a backend error.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cache store error: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// An async cache backend.
///
/// Implementations must be cheap to call concurrently; the layer calls `get` on every cacheable
/// request and never holds a lock across calls. Errors are logged and treated as misses.
pub trait CacheStore: Send + Sync + 'static {
    /// All stored variants for `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Variants>, StoreError>>;

    /// Stores `response` under `key`, replacing a variant with the same `Vary`-selected headers.
    /// A store may decline (too large, admission policy); that is not an error.
    fn put<'a>(
        &'a self,
        key: &'a str,
        response: Arc<CachedResponse>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes every variant of `key`.
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes every response tagged with `tag`.
    fn purge_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes everything.
    fn purge_all(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The largest response body this store accepts; larger bodies stream through unstored.
    fn max_object_size(&self) -> usize;

    /// [`get`](CacheStore::get) without waiting, for stores that can answer at once (in memory):
    /// `Some(result)` lets the layer answer a fresh hit without an async state machine. Remote stores
    /// keep the default, `None`.
    fn get_ready(&self, key: &str) -> Option<Option<Variants>> {
        let _ = key;
        None
    }
}

/// Replaces (or adds) `new` in `old`'s variants, keeping at most `max` variants (newest first).
pub(crate) fn merge_variants(
    old: Option<&Variants>,
    new: Arc<CachedResponse>,
    max: usize,
) -> Variants {
    let mut list: Vec<Arc<CachedResponse>> = vec![new.clone()];
    if let Some(old) = old {
        list.extend(
            old.iter()
                .filter(|v| v.vary != new.vary)
                .take(max.saturating_sub(1))
                .cloned(),
        );
    }
    list.into()
}
