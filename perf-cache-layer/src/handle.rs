//! [`CacheHandle`]: purging from outside the request path.

use std::fmt;
use std::sync::Arc;

use crate::shared::Shared;
use crate::store::StoreError;

/// Purges entries from a [`CacheLayer`](crate::CacheLayer)'s store. Cheap to clone; obtained from
/// [`CacheLayer::handle`](crate::CacheLayer::handle) or [`CacheLayer::pair`](crate::CacheLayer::pair).
///
/// This is an in-process API: expose it over HTTP only behind authentication.
#[derive(Clone)]
pub struct CacheHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHandle").finish_non_exhaustive()
    }
}

impl CacheHandle {
    /// Removes every stored variant of `path_and_query` on `host` (as the client sent `Host`).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn purge_key(&self, host: &str, path_and_query: &str) -> Result<(), StoreError> {
        let key = crate::rfc::key::of(host, path_and_query);
        self.shared.inflight.generations.invalidate_key(&key);
        self.shared.store.remove(&key).await
    }

    /// Removes every response tagged `tag` (listed in its `Surrogate-Key`).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn purge_tag(&self, tag: &str) -> Result<(), StoreError> {
        crate::metrics::purged("tag");
        self.shared.inflight.generations.invalidate_tag(tag);
        self.shared.store.purge_tag(tag).await
    }

    /// Marks every response tagged `tag` stale (a soft purge): it is revalidated with the origin
    /// before it is served fresh again, and meanwhile `stale-while-revalidate` and
    /// `stale-if-error` may still serve it (counted from now), so a soft purge does not send a
    /// burst of misses to the origin. With a `TieredStore` it reaches every instance. A store
    /// without soft purges removes the responses instead.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn soft_purge_tag(&self, tag: &str) -> Result<(), StoreError> {
        crate::metrics::purged("soft_tag");
        self.shared.inflight.generations.invalidate_tag(tag);
        let now = self.shared.clock.now();
        self.shared.store.soft_purge_tag(tag, now).await
    }

    /// Removes everything.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn purge_all(&self) -> Result<(), StoreError> {
        crate::metrics::purged("all");
        self.shared.inflight.generations.invalidate_all();
        self.shared.store.purge_all().await
    }
}
