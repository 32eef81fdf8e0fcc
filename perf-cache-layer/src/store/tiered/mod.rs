//! [`TieredStore`]: the in-process [`MemoryStore`] (L1) in front of Redis (L2), shared by every
//! instance, with purges that reach every instance's L1.
//!
//! - A fresh L1 hit never touches Redis.
//! - An L1 miss reads Redis under its own deadline ([`read_timeout`], 50 ms by default) and
//!   promotes what it finds into L1. A timeout or error is a miss and counts toward the breaker.
//! - A write goes to L1 at once and to Redis through a bounded background queue; when the queue
//!   is full the write is dropped and counted (a lost L2 write only means a later miss).
//! - Unsafe-method invalidations and [`CacheHandle`](crate::CacheHandle) purges (soft tag purges
//!   too) apply to L1, then to Redis and to every other instance through the bus; the purge
//!   returns an error when Redis could not be reached (the local purge has happened either way)
//!   and is queued, to be sent again until Redis takes it.
//! - Redis down costs nothing: the store builds with Redis unreachable, and after
//!   [`breaker`] failures in a row Redis is skipped (one atomic load) until a probe succeeds.
//! - While the bus is down, L1 entries older than [`degraded_window`] (5 s by default) are
//!   served only after revalidation with the origin.
//! - Fail-open by default; with [`shed_misses`] a miss is answered `503` while the breaker is
//!   open, to protect a fragile origin.
//! - A stale entry (`stale-while-revalidate`) is refreshed by one instance, the holder of a
//!   non-blocking lease; the others serve stale meanwhile.
//! - Opt-in, with [`coalesce_misses`]: a cold miss goes to the origin from one instance, the
//!   holder of a fill lease; the others wait (bounded) for its entry and serve it as an L2 hit.
//!
//! # Redis layout
//!
//! All keys are under `pc:{namespace}:`:
//! - `e:{digest(key)}`: a hash; field `k` holds the full primary key (checked on read), fields
//!   `v:{digest(vary selection)}` hold one variant each as `"PL2" 0x01 stamp entry`, where `stamp`
//!   is postcard `(epoch, [tag version])` and `entry` the versioned [`CachedResponse`] encoding.
//!   Freshness comes from the entry's stored wall-clock times; Redis TTL (the longest variant's
//!   retention) is garbage collection only.
//! - `ts:{digest(key)}`: the tombstone, the Unix milliseconds of the key's last purge (60 s).
//! - `t:{digest(tag)}`: the tag state, `"version:purged_ms"`, with a random version.
//! - `sp:{digest(tag)}`: the Unix milliseconds of the tag's last soft purge; an entry whose
//!   request began before it is read as stale from then (revalidated before it is fresh again).
//! - `lk:{digest(key)}`: the refresh lease, and `fill:{digest(key)}` the fill lease (value: the
//!   holder's instance id; `PX` the lease's length).
//! - `epoch`: `"epoch:purged_ms"`, replaced by `purge_all` (nothing is flushed on the server).
//! - `seq`: the number of the last bus message.
//! - the channel `bus`: invalidation messages and heartbeats, each numbered (`message "#" seq`,
//!   taken with `INCR seq` in the same script as the `PUBLISH`); a receiver that sees a number
//!   other than the next one flushes its L1.
//!
//! A variant is valid only if its stamped epoch and tag versions equal the current ones and its
//! request started after its key's, the epoch's and every tag's last purge (less the clock-skew
//! margin). A missing state is a mismatch, so eviction or `FLUSHALL` never revives a purged
//! entry, and a response that raced a purge is never served from L2. A value that does not decode
//! or whose `k` differs is a counted miss.
//!
//! [`read_timeout`]: TieredStoreBuilder::read_timeout
//! [`breaker`]: TieredStoreBuilder::breaker
//! [`degraded_window`]: TieredStoreBuilder::degraded_window
//! [`shed_misses`]: TieredStoreBuilder::shed_misses
//! [`coalesce_misses`]: TieredStoreBuilder::coalesce_misses

mod breaker;
mod builder;
mod bus;
mod fill;
mod keys;
mod l2;
mod recent;
mod replay;
mod stats;
mod writer;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use self::breaker::Breaker;
pub use self::builder::{TieredStoreBuilder, TieredStoreError};
use self::bus::{Kind, Liveness};
use self::l2::Remote;
use self::recent::{Recent, recent_key};
use self::replay::Pending;
use super::{CacheStore, CachedResponse, Fill, MemoryStore, StoreError, Tier, Variants};

/// An L1 [`MemoryStore`] in front of a Redis L2 shared by every instance. Clones share both.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use perf_cache_layer::{CacheLayer, TieredStore};
///
/// let store = TieredStore::builder("redis://127.0.0.1:6379/").namespace("shop").build()?;
/// let layer = CacheLayer::builder().store(store).build()?;
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TieredStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredStore")
            .field("l1", &self.inner.l1)
            .field("breaker", &self.inner.breaker.state())
            .field("bus_up", &self.inner.live.up())
            .finish_non_exhaustive()
    }
}

struct Inner {
    l1: MemoryStore,
    recent: Recent,
    remote: Arc<Remote>,
    breaker: Arc<Breaker>,
    live: Arc<Liveness>,
    queue: mpsc::Sender<(Arc<str>, Arc<CachedResponse>)>,
    depth: Arc<AtomicUsize>,
    me: u64,
    read_timeout: Duration,
    write_timeout: Duration,
    degraded_window: Duration,
    tombstone: Duration,
    /// Purges that did not reach Redis, sent again by the bus task.
    pending: Arc<Pending>,
    /// `shed_misses`: the `Retry-After` of a shed miss while the breaker is open.
    shed: Option<Duration>,
    /// `coalesce_misses`: how long an instance waits for another's fill of a cold miss.
    coalesce: Option<Duration>,
    /// Keys this instance holds the fill lease of (at most one per key in flight).
    filling: Mutex<HashSet<String>>,
    /// Keys this instance waits for another's fill of.
    waiting: Arc<fill::Waiting>,
    _stop: watch::Sender<()>,
}

impl TieredStore {
    /// A builder for a store on the Redis at `url` (`redis://host:port/db`, `rediss://…`,
    /// `redis+unix:///path`).
    pub fn builder(url: impl Into<String>) -> TieredStoreBuilder {
        TieredStoreBuilder {
            url: url.into(),
            l1: MemoryStore::default(),
            namespace: "default".into(),
            read_timeout: Duration::from_millis(50),
            write_timeout: Duration::from_millis(250),
            queue: 1024,
            threshold: 5,
            open_for: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            degraded_window: Duration::from_secs(5),
            skew: Duration::from_secs(1),
            tombstone: Duration::from_secs(60),
            shed: false,
            coalesce: None,
        }
    }

    /// The L1 store.
    pub fn l1(&self) -> &MemoryStore {
        &self.inner.l1
    }

    /// Whether the breaker currently lets calls through to Redis (closed).
    pub fn redis_up(&self) -> bool {
        self.inner.breaker.state() == 0
    }

    /// Purges made while Redis could not be reached, waiting to be sent to it and to the other
    /// instances (the bus task retries every coherence interval).
    pub fn pending_purges(&self) -> usize {
        self.inner.pending.len()
    }

    /// Whether the invalidation bus is live (subscribed, and heard from within three intervals).
    pub fn bus_up(&self) -> bool {
        self.inner.live.up()
    }

    /// L1 variants, with those older than the degraded window marked for revalidation while the
    /// bus is down.
    fn l1_get(&self, key: &str) -> Option<Variants> {
        let found = self.inner.l1.get_ready(key).flatten()?;
        if self.inner.live.up() {
            return Some(found);
        }
        let now = SystemTime::now();
        let window = self.inner.degraded_window;
        let old = |r: &CachedResponse| {
            !r.no_cache() && now.duration_since(r.response_time()).unwrap_or_default() > window
        };
        if !found.iter().any(|r| old(r)) {
            return Some(found);
        }
        let checked: Vec<Arc<CachedResponse>> = found
            .iter()
            .map(|r| {
                if old(r) {
                    let mut copy = CachedResponse::clone(r);
                    copy.freshness.no_cache = true;
                    Arc::new(copy)
                } else {
                    r.clone()
                }
            })
            .collect();
        Some(checked.into())
    }

    async fn l2_get(&self, key: &str) -> Option<Variants> {
        let inner = &self.inner;
        if !inner.breaker.allow() {
            stats::op("get", "skipped", None);
            return None;
        }
        let start = Instant::now();
        let found = match tokio::time::timeout(inner.read_timeout, inner.remote.get(key)).await {
            Ok(Ok(found)) => {
                inner.breaker.success();
                found
            }
            Ok(Err(e)) => {
                inner.breaker.report(&e);
                stats::op("get", "error", Some(start.elapsed()));
                return None;
            }
            Err(_) => {
                inner.breaker.failure();
                stats::op("get", "timeout", Some(start.elapsed()));
                return None;
            }
        };
        let result = if found.is_empty() { "miss" } else { "hit" };
        stats::op("get", result, Some(start.elapsed()));
        for entry in found.iter().rev() {
            let _ = inner.l1.put(key, entry.clone()).await;
        }
        (!found.is_empty()).then(|| found.into())
    }

    /// Sends a purge to Redis and the fleet under the read deadline. When Redis cannot take it,
    /// the purge is queued to be sent again when it can, and the error says so.
    async fn fleet(&self, op: &'static str, kind: Kind) -> Result<(), StoreError> {
        let inner = &self.inner;
        let label = kind.label();
        if !inner.breaker.allow() {
            stats::op(op, "skipped", None);
            inner.pending.push(kind);
            return Err(StoreError::new(
                "purged locally; fleet not reached (Redis skipped, breaker open); queued for replay",
            ));
        }
        let start = Instant::now();
        let call = replay::send(&inner.remote, inner.me, &kind, inner.tombstone);
        let outcome = tokio::time::timeout(inner.read_timeout, call).await;
        let (result, err) = match outcome {
            Ok(Ok(())) => ("ok", None),
            Ok(Err(e)) => ("error", Some(e.to_string())),
            Err(_) => ("timeout", Some("Redis timed out".to_owned())),
        };
        stats::op(op, result, Some(start.elapsed()));
        match err {
            None => {
                inner.breaker.success();
                inner.pending.sent(&kind);
                stats::invalidation("sent", label);
                Ok(())
            }
            Some(e) => {
                inner.breaker.failure();
                inner.pending.push(kind);
                Err(StoreError::new(format!(
                    "purged locally; fleet not reached ({e}); queued for replay"
                )))
            }
        }
    }
}

impl CacheStore for TieredStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Variants>, StoreError>> {
        async move {
            if let Some(found) = self.l1_get(key) {
                return Ok(Some(found));
            }
            Ok(self.l2_get(key).await)
        }
        .boxed()
    }

    fn lookup<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Variants, Tier)>, StoreError>> {
        async move {
            if let Some(found) = self.l1_get(key) {
                return Ok(Some((found, Tier::Local)));
            }
            Ok(self.l2_get(key).await.map(|found| (found, Tier::Shared)))
        }
        .boxed()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        response: Arc<CachedResponse>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let inner = &self.inner;
        if inner.recent.purged_since(key, &response) {
            stats::dropped("purged");
            return futures_util::future::ready(Ok(())).boxed();
        }
        // The memory store answers at once; `now_or_never` runs it without an executor.
        let _ = inner.l1.put(key, response.clone()).now_or_never();
        if response.body().len() <= inner.l1.max_object_size() {
            if self.take_filling(key) {
                // A fill others wait for: to Redis now, not behind the queue.
                self.write_fill(key, response);
                return futures_util::future::ready(Ok(())).boxed();
            }
            // Counted before the send, so the writer never takes the depth below zero.
            let depth = inner
                .depth
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            if inner.queue.try_send((key.into(), response)).is_ok() {
                stats::queue(depth);
            } else {
                inner.depth.fetch_sub(1, Ordering::Relaxed);
                stats::dropped("queue_full");
            }
        } else {
            stats::dropped("oversize");
        }
        futures_util::future::ready(Ok(())).boxed()
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.inner.recent.mark(recent_key('k', key));
            let _ = self.inner.l1.remove(key).await;
            self.fleet("del", Kind::Key(key.to_owned())).await
        }
        .boxed()
    }

    fn purge_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.inner.recent.mark(recent_key('t', tag));
            let _ = self.inner.l1.purge_tag(tag).await;
            self.fleet("purge", Kind::Tag(tag.to_owned())).await
        }
        .boxed()
    }

    fn soft_purge_tag<'a>(
        &'a self,
        tag: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            self.inner.recent.mark(recent_key('t', tag));
            let _ = self.inner.l1.soft_purge_tag(tag, now).await;
            self.fleet("purge", Kind::SoftTag(tag.to_owned())).await
        }
        .boxed()
    }

    fn purge_all(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            self.inner.recent.mark(recent_key('*', ""));
            let _ = self.inner.l1.purge_all().await;
            self.fleet("purge", Kind::All).await
        }
        .boxed()
    }

    fn max_object_size(&self) -> usize {
        self.inner.l1.max_object_size()
    }

    fn shed_misses(&self) -> Option<Duration> {
        self.inner.shed.filter(|_| !self.redis_up())
    }

    fn refresh_lease<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        async move {
            let inner = &self.inner;
            if !inner.breaker.allow() {
                return true; // Redis skipped: refresh locally (fail-open)
            }
            let lease = inner.remote.lease(key, inner.me, ttl);
            match tokio::time::timeout(inner.read_timeout, lease).await {
                Ok(Ok(granted)) => {
                    inner.breaker.success();
                    stats::op("lease", if granted { "ok" } else { "busy" }, None);
                    if !granted {
                        // Another instance refreshes it: read its result from Redis from now on
                        // rather than serve this stale copy until the lease ends.
                        let _ = inner.l1.remove(key).await;
                    }
                    granted
                }
                Ok(Err(e)) => {
                    inner.breaker.report(&e);
                    true
                }
                Err(_) => {
                    inner.breaker.failure();
                    true
                }
            }
        }
        .boxed()
    }

    fn fill<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Fill> {
        self.fill_miss(key).boxed()
    }

    fn fill_done(&self, key: &str) {
        self.end_fill(key);
    }

    fn get_ready(&self, key: &str) -> Option<Option<Variants>> {
        // An L1 hit answers at once; an L1 miss must go through `get` (and Redis).
        self.l1_get(key).map(Some)
    }
}
