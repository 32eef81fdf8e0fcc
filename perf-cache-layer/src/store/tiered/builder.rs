//! [`TieredStoreBuilder`]: the settings, and the start of the background tasks.

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};

use super::breaker::Breaker;
use super::bus::{Bus, Liveness};
use super::keys::Keys;
use super::l2::Remote;
use super::recent::Recent;
use super::writer::writer;
use super::{Inner, TieredStore, stats};
use crate::store::MemoryStore;

/// Why a [`TieredStore`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TieredStoreError {
    /// The Redis URL did not parse.
    Url {
        /// The client's message.
        reason: String,
    },
    /// `build` was called outside a Tokio runtime (the store runs background tasks).
    NoRuntime,
}

impl fmt::Display for TieredStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url { reason } => write!(f, "invalid Redis URL: {reason}"),
            Self::NoRuntime => f.write_str("TieredStore::build needs a Tokio runtime"),
        }
    }
}

impl std::error::Error for TieredStoreError {}

/// Builder for [`TieredStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TieredStoreBuilder {
    pub(super) url: String,
    pub(super) l1: MemoryStore,
    pub(super) namespace: String,
    pub(super) read_timeout: Duration,
    pub(super) write_timeout: Duration,
    pub(super) queue: usize,
    pub(super) threshold: u32,
    pub(super) open_for: Duration,
    pub(super) interval: Duration,
    pub(super) degraded_window: Duration,
    pub(super) skew: Duration,
    pub(super) tombstone: Duration,
    pub(super) shed: bool,
    pub(super) coalesce: Option<Duration>,
}

impl TieredStoreBuilder {
    /// The L1. Defaults to [`MemoryStore::default`].
    pub fn l1(mut self, l1: MemoryStore) -> Self {
        self.l1 = l1;
        self
    }
    /// Prefix of every Redis key (`pc:{namespace}:…`) and of the bus channel. Defaults to `default`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
    /// Deadline of an L2 read on a miss, and of a purge. Defaults to 50 ms.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }
    /// Deadline of a background write. Defaults to 250 ms.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Most writes waiting for Redis; more are dropped and counted. Defaults to 1,024.
    pub fn write_queue(mut self, entries: usize) -> Self {
        self.queue = entries.max(1);
        self
    }
    /// Opens the breaker after `failures` failed or timed-out calls in a row, for `open_for`,
    /// then lets one probe through. Defaults to 5 and 2 s.
    pub fn breaker(mut self, failures: u32, open_for: Duration) -> Self {
        self.threshold = failures;
        self.open_for = open_for;
        self
    }
    /// Heartbeat period; the bus is declared down after three without a message. Defaults to 1 s.
    pub fn coherence_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }
    /// While the bus is down, L1 entries older than this are revalidated before they are served.
    /// Defaults to 5 s.
    pub fn degraded_window(mut self, window: Duration) -> Self {
        self.degraded_window = window;
        self
    }
    /// Clock-skew margin between instances when comparing a purge with a request's start.
    /// Defaults to 1 s.
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Protects a fragile origin while Redis is down: with `true`, while the breaker is open a
    /// miss is answered `503 Service Unavailable` with `Retry-After` (the breaker's `open_for`)
    /// and `Cache-Status: …; detail=shed` instead of going to the origin. L1 hits, revalidations
    /// and `stale-if-error` are still served. Defaults to `false`: fail-open, every miss goes to
    /// the origin.
    pub fn shed_misses(mut self, shed: bool) -> Self {
        self.shed = shed;
        self
    }

    /// Coalesces cold misses across instances: when L1 and Redis both miss, one instance (the
    /// holder of a fill lease in Redis) goes to the origin; the others wait up to `max_wait` for
    /// its entry and serve it as an L2 hit (`Cache-Status: …; hit; detail=l2`). Each instance
    /// takes part with one request per key; its other requests wait in process as always.
    ///
    /// The holder's stored response is written to Redis at once (not through the write queue),
    /// then the lease is released. The others go to the origin themselves as soon as the lease is
    /// released with nothing stored (`no-store`, too large, an error), after `max_wait`, or when
    /// Redis fails: coalescing never fails a request. The lease lasts `max_wait`, so a crashed
    /// holder delays the others by that much at most. Choose `max_wait` above the origin's usual
    /// latency and below the layer's
    /// [`coalesce_timeout`](crate::CacheLayerBuilder::coalesce_timeout) (in-process waiters give
    /// up after that).
    ///
    /// Off by default (each instance goes to the origin on its own cold miss: no Redis round
    /// trip on the miss path, N instances make up to N origin calls). `Duration::ZERO` turns it
    /// off.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use perf_cache_layer::{CacheLayer, TieredStore};
    ///
    /// let store = TieredStore::builder("redis://127.0.0.1:6379/")
    ///     .coalesce_misses(Duration::from_secs(2))
    ///     .build()?;
    /// let layer = CacheLayer::builder().store(store).build()?;
    /// # let _ = layer; Ok(()) }
    /// ```
    pub fn coalesce_misses(mut self, max_wait: Duration) -> Self {
        self.coalesce = (!max_wait.is_zero()).then_some(max_wait);
        self
    }

    /// Builds the store and starts its background tasks (connection, writer, bus). Redis need not
    /// be reachable: the store serves from L1 and the origin until it is.
    ///
    /// # Errors
    ///
    /// [`TieredStoreError`] for a malformed URL or when called outside a Tokio runtime.
    pub fn build(self) -> Result<TieredStore, TieredStoreError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TieredStoreError::NoRuntime)?;
        stats::describe();
        stats::breaker(0);
        stats::bus_up(false);
        let url_err = |e: redis::RedisError| TieredStoreError::Url {
            reason: e.to_string(),
        };
        let client = redis::Client::open(self.url.as_str()).map_err(url_err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.read_timeout.max(Duration::from_millis(200))))
            .set_response_timeout(Some(self.write_timeout))
            .set_max_delay(Duration::from_secs(1));
        let conn = {
            let _in_runtime = runtime.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(url_err)?
        };
        let remote = Arc::new(Remote {
            conn,
            keys: Keys::new(&self.namespace),
            skew: self.skew,
            max_variants: 8,
        });
        let (stop, stopped) = watch::channel(());
        let (tx, rx) = mpsc::channel(self.queue);
        let recent = Recent::new(self.tombstone);
        let inner = Arc::new(Inner {
            l1: self.l1.clone(),
            recent: recent.clone(),
            remote: remote.clone(),
            breaker: Arc::new(Breaker::new(self.threshold, self.open_for)),
            live: Arc::new(Liveness::default()),
            queue: tx,
            depth: Arc::new(AtomicUsize::new(0)),
            me: fastrand::u64(..),
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
            degraded_window: self.degraded_window,
            tombstone: self.tombstone,
            pending: Arc::default(),
            shed: self.shed.then_some(self.open_for),
            coalesce: self.coalesce,
            filling: Mutex::default(),
            waiting: Arc::default(),
            _stop: stop,
        });
        runtime.spawn(writer(inner.writer(), rx, stopped.clone()));
        let bus = Bus {
            client,
            remote,
            l1: self.l1,
            recent,
            live: inner.live.clone(),
            me: inner.me,
            interval: self.interval,
            pending: inner.pending.clone(),
            tombstone: self.tombstone,
            waiting: inner.waiting.clone(),
        };
        runtime.spawn(bus.run(stopped));
        Ok(TieredStore { inner })
    }
}
