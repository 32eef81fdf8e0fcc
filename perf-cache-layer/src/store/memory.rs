//! The in-process store: `moka`, bounded by bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::sync::Cache;

use super::{CacheStore, CachedResponse, StoreError, Tier, Variants, merge_variants};

/// Per-entry expiry: keep each key as long as its longest-lived variant needs.
struct Retain;

#[expect(
    clippy::disallowed_types,
    reason = "moka's Expiry trait is defined over std::time::Instant"
)]
impl moka::Expiry<Arc<str>, Variants> for Retain {
    fn expire_after_create(
        &self,
        _: &Arc<str>,
        v: &Variants,
        _: std::time::Instant,
    ) -> Option<Duration> {
        v.iter().map(|r| r.retain_for()).max()
    }

    fn expire_after_update(
        &self,
        _: &Arc<str>,
        v: &Variants,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        v.iter().map(|r| r.retain_for()).max()
    }
}

fn weight(v: &Variants) -> u64 {
    v.iter().map(|r| r.weight() as u64).sum()
}

/// An in-memory [`CacheStore`] on `moka`, bounded by the total **bytes** of stored responses.
///
/// Clones share the same cache. Entries expire when their freshness, stale windows and revalidation
/// keep time have passed, and are evicted (TinyLFU) when the byte budget is reached. A full cache
/// may decline to admit a new entry; the layer treats that like any other miss.
///
/// See the [module docs](crate::store) for an example.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<Arc<str>, Variants, foldhash::fast::RandomState>,
    bytes: Arc<AtomicU64>,
    max_bytes: u64,
    max_object_size: usize,
    max_variants: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_bytes", &self.max_bytes)
            .field("bytes", &self.bytes())
            .field("max_object_size", &self.max_object_size)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Builder for [`MemoryStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_bytes: u64,
    max_object_size: usize,
    max_variants: usize,
}

impl MemoryStoreBuilder {
    /// Total byte budget. Defaults to 64 MiB.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Largest body that is stored; larger ones stream through. Defaults to 1 MiB, and is capped at
    /// an eighth of `max_bytes`.
    pub fn max_object_size(mut self, bytes: usize) -> Self {
        self.max_object_size = bytes;
        self
    }

    /// Most `Vary` variants kept per URI (newest win). Defaults to 8.
    pub fn max_variants(mut self, n: usize) -> Self {
        self.max_variants = n.max(1);
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let bytes = Arc::new(AtomicU64::new(0));
        let released = bytes.clone();
        let cache = Cache::builder()
            .max_capacity(self.max_bytes)
            .weigher(|_, v: &Variants| u32::try_from(weight(v)).unwrap_or(u32::MAX))
            .expire_after(Retain)
            .support_invalidation_closures()
            .eviction_listener(move |_, v: Variants, cause| {
                released.fetch_sub(weight(&v), Ordering::Relaxed);
                if cause.was_evicted() || cause == RemovalCause::Size {
                    crate::metrics::increment(crate::metrics::EVICTIONS);
                }
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        let max_object_size = self
            .max_object_size
            .min(usize::try_from(self.max_bytes / 8).unwrap_or(usize::MAX));
        MemoryStore {
            cache,
            bytes,
            max_bytes: self.max_bytes,
            max_object_size,
            max_variants: self.max_variants,
        }
    }
}

impl MemoryStore {
    /// A builder with the defaults (64 MiB, 1 MiB objects, 8 variants).
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_bytes: 64 << 20,
            max_object_size: 1 << 20,
            max_variants: 8,
        }
    }

    /// Bytes currently held (inserted and not yet released by eviction, expiry or replacement).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Number of keys stored (approximate until pending maintenance runs).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs moka's pending maintenance (evictions, expiry). Useful in tests.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    fn insert(&self, key: &str, response: Arc<CachedResponse>) {
        if response.body.len() > self.max_object_size {
            return;
        }
        let key: Arc<str> = key.into();
        let old = self.cache.get(&key);
        let value = merge_variants(old.as_ref(), response, self.max_variants);
        let w = weight(&value);
        // Keep the budget strict: let moka apply pending evictions before going over it.
        if self.bytes.load(Ordering::Relaxed) + w > self.max_bytes {
            self.cache.run_pending_tasks();
        }
        self.bytes.fetch_add(w, Ordering::Relaxed);
        self.cache.insert(key, value);
        crate::metrics::stored_bytes(self.bytes());
    }
}

impl CacheStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Variants>, StoreError>> {
        futures_util::future::ready(Ok(self.cache.get(key))).boxed()
    }

    fn lookup<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Variants, Tier)>, StoreError>> {
        let found = self.cache.get(key).map(|v| (v, Tier::Local));
        futures_util::future::ready(Ok(found)).boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        response: Arc<CachedResponse>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.insert(key, response);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.cache.invalidate(key);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn purge_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let tag: Box<str> = tag.into();
        let result = self
            .cache
            .invalidate_entries_if(move |_, v| v.iter().any(|r| r.tags.contains(&tag)))
            .map(drop)
            .map_err(StoreError::new);
        futures_util::future::ready(result).boxed()
    }

    fn soft_purge_tag<'a>(
        &'a self,
        tag: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let tagged = |r: &Arc<CachedResponse>| r.tags().any(|t| t == tag);
        let keys: Vec<Arc<str>> = self
            .cache
            .iter()
            .filter(|(_, v)| v.iter().any(tagged))
            .map(|(k, _)| Arc::unwrap_or_clone(k))
            .collect();
        for key in keys {
            // Per key, atomically with other marks; a key removed meanwhile stays removed.
            self.cache.entry_by_ref(&key).and_compute_with(|found| {
                let Some(found) = found else {
                    return Op::Nop;
                };
                let marked: Variants = found
                    .value()
                    .iter()
                    .map(|r| {
                        if tagged(r) {
                            Arc::new(r.stale_at(now))
                        } else {
                            r.clone()
                        }
                    })
                    .collect();
                self.bytes.fetch_add(weight(&marked), Ordering::Relaxed);
                Op::Put(marked)
            });
        }
        futures_util::future::ready(Ok(())).boxed()
    }

    fn purge_all(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.cache.invalidate_all();
        futures_util::future::ready(Ok(())).boxed()
    }

    fn max_object_size(&self) -> usize {
        self.max_object_size
    }

    fn get_ready(&self, key: &str) -> Option<Option<Variants>> {
        Some(self.cache.get(key))
    }
}
