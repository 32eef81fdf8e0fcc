//! Storage: the [`CacheStore`] trait and the stored [`CachedResponse`].
//!
//! A store maps a *primary key* (method class + URI, see the crate docs) to the list of stored
//! variants for that URI (one per distinct set of `Vary`-selected request headers). The trait is
//! async so that a remote store fits behind it; [`MemoryStore`] is the in-process store.
//!
//! A store outside this crate keeps entries as bytes: [`CachedResponse::to_bytes`] writes the
//! documented, versioned encoding and [`CachedResponse::from_bytes`] reads it back (an error, never
//! a panic, for foreign or corrupt bytes). Two variants of one key are the same variant when
//! [`CachedResponse::same_variant`] says so; a `put` replaces that one and keeps the others.
//!
//! # Entry encoding, version 1
//!
//! ```text
//! "PCLe"      4 bytes   magic: this is a perf-cache-layer entry
//! 0x01        1 byte    format version
//! meta        postcard  the fields below, in this order
//! body        the rest  the response body, raw
//! ```
//!
//! `meta` is encoded with [postcard] 1.x (its wire format is specified and stable across 1.x):
//! status (`u16`), header fields (a sequence of name and value bytes, in order, repeated names
//! kept), request time and response time (each a `Duration` since the Unix epoch), freshness
//! lifetime, initial age, `stale-while-revalidate`, `stale-if-error` (each a `Duration`),
//! must-revalidate and no-cache (`bool`), keep (`Duration`), the `Vary` selection (a sequence of
//! name and optional value), and the tags (a sequence of strings). A `Duration` is postcard's
//! `(u64 seconds, u32 nanoseconds)`.
//!
//! A new format gets a new version byte. Decoders reject versions they do not know, so during a
//! rolling deploy an older instance treats a newer entry as a miss rather than misreading it.
//!
//! [postcard]: https://docs.rs/postcard
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

mod encoding;
mod entry;
mod memory;
#[cfg(feature = "redis")]
mod tiered;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

pub use self::encoding::{DecodeError, DecodeErrorKind};
pub use self::entry::{CachedResponse, CachedResponseBuilder};
pub use self::memory::{MemoryStore, MemoryStoreBuilder};
#[cfg(feature = "redis")]
pub use self::tiered::{TieredStore, TieredStoreBuilder, TieredStoreError};

/// The stored variants for one primary key.
pub type Variants = Arc<[Arc<CachedResponse>]>;

/// Which level of a store answered a [`lookup`](CacheStore::lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// The instance's own memory (every answer of a single-level store).
    Local,
    /// A level shared by every instance (`TieredStore`'s Redis, after an L1 miss). A fresh hit
    /// from it is reported as `Cache-Status: …; hit; detail=l2`.
    Shared,
}

/// What [`CacheStore::fill`] decided for a cold miss (no stored variant at all).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Fill {
    /// Go to the origin, uncoordinated: the store does not coalesce across instances (the
    /// default), or it could not (its shared tier is down), or the wait for another instance
    /// ended without an entry.
    Fetch,
    /// Go to the origin as the one instance filling `key`. The layer stores the response as
    /// usual (or not), then calls [`fill_done`](CacheStore::fill_done), also when the request is
    /// dropped half-way.
    Lead,
    /// Another instance filled `key` while this one waited: its variants, served as a hit from
    /// the shared tier (`Cache-Status: …; hit; detail=l2`) when one matches and is fresh.
    Filled(Variants),
}

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

    /// [`get`](CacheStore::get), and which tier answered. The layer calls this one; the default
    /// says [`Tier::Local`], right for a store of one level.
    fn lookup<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Variants, Tier)>, StoreError>> {
        Box::pin(
            self.get(key)
                .map(|found| found.map(|v| v.map(|v| (v, Tier::Local)))),
        )
    }

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

    /// Marks every response tagged `tag` stale as of `now` (a soft purge): each is revalidated
    /// before it is served fresh again, while `stale-while-revalidate` and `stale-if-error` may
    /// still use it, counted from `now`. `now` is the layer's clock. The default removes them
    /// ([`purge_tag`](CacheStore::purge_tag)), which is always allowed.
    fn soft_purge_tag<'a>(
        &'a self,
        tag: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = now;
        self.purge_tag(tag)
    }

    /// Removes everything.
    fn purge_all(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The largest response body this store accepts; larger bodies stream through unstored.
    fn max_object_size(&self) -> usize;

    /// An optimisation hook: [`get`](CacheStore::get) without waiting, for stores that hold their
    /// entries in process memory and can answer at once. `Some(result)` lets the layer answer a fresh
    /// hit inline, without allocating the request's async state machine; `None` (the default, and
    /// the right answer for remote stores) makes the layer call `get`.
    fn get_ready(&self, key: &str) -> Option<Option<Variants>> {
        let _ = key;
        None
    }

    /// Whether a miss should be refused now instead of going to the origin, and when to try
    /// again (`Retry-After`): a store set to protect a fragile origin while its shared tier is
    /// down says so here. The layer then answers misses with `503 Service Unavailable`; fresh
    /// hits, revalidations and `stale-if-error` still work. The default never sheds.
    fn shed_misses(&self) -> Option<Duration> {
        None
    }

    /// Asks for the right to refresh `key` in the background (`stale-while-revalidate`) for the
    /// next `ttl`. A store shared by several instances grants it to one of them, so that a stale
    /// entry is refreshed once, not once per instance; it never waits for the holder. The default,
    /// right for a store of one instance, always grants it (in-process coalescing already applies).
    fn refresh_lease<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        let _ = (key, ttl);
        Box::pin(std::future::ready(true))
    }

    /// Coordinates a cold miss on `key` with the other instances sharing this store: one of them
    /// goes to the origin ([`Fill::Lead`]), the others wait (bounded) for its entry
    /// ([`Fill::Filled`]), or go to the origin themselves when it does not come ([`Fill::Fetch`]).
    /// The layer asks once per instance and key: in-process coalescing comes first. A store must
    /// never fail a request here; when unsure it answers [`Fill::Fetch`]. The default, right for
    /// a store of one instance, is [`Fill::Fetch`] at once.
    fn fill<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Fill> {
        let _ = key;
        Box::pin(std::future::ready(Fill::Fetch))
    }

    /// The fill of `key` that [`fill`](CacheStore::fill) granted ([`Fill::Lead`]) has ended, after
    /// the [`put`](CacheStore::put) of its response if it was stored. Called from `Drop` too, so
    /// it must not block: a store that releases something remote spawns the call. The default
    /// does nothing.
    fn fill_done(&self, key: &str) {
        let _ = key;
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
                .filter(|v| !v.same_variant(&new))
                .take(max.saturating_sub(1))
                .cloned(),
        );
    }
    list.into()
}
