//! Coalescing of cold misses across instances (opt-in: [`coalesce_misses`]).
//!
//! An instance whose L1 and L2 both miss takes the key's fill lease, `SET fill:{digest} <id> NX
//! PX <max_wait>`:
//! - **the holder** goes to the origin. When its response is stored, the `put` writes it to Redis
//!   at once (not through the background queue, where it could wait behind other writes), then
//!   releases the lease; when it is not stored, [`fill_done`](TieredStore::fill_done) releases it.
//!   The release is a compare-and-delete (the lease is deleted only if it is still ours).
//! - **the others** poll, with a backoff from 5 ms to 50 ms, and at once when the bus says the
//!   fill ended (the release publishes an unnumbered `Filled` message, which older instances
//!   ignore): first whether the lease is still held, then the entry. An entry is served as an L2
//!   hit. A released lease without an entry means the holder stored nothing (`no-store`, too
//!   large, an error, or it was dropped): they go to the origin at once rather than wait out
//!   `max_wait`. After `max_wait` they go to the origin too.
//! - Redis unreachable, the breaker open, or any error: straight to the origin. Coalescing never
//!   fails a request.
//!
//! The lease lives `max_wait`: a crashed holder delays the others by that much at most.
//!
//! [`coalesce_misses`]: super::TieredStoreBuilder::coalesce_misses

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::RedisResult;
use tokio::sync::watch;
use tokio::time::Instant;

use super::bus::{self, Kind};
use super::l2::Remote;
use super::{TieredStore, stats};
use crate::store::{CacheStore, CachedResponse, Fill};

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]`, and then publishes `ARGV[3]` on the bus
/// `ARGV[2]` (unnumbered: a wake-up, not an invalidation).
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[2], ARGV[3]) return 1 end return 0";
/// The first and the longest pause between two polls of a waiting instance.
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(50);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Remote {
    /// `SET fill:{digest} <me> NX PX ttl`: whether this instance now holds the fill lease.
    pub(crate) async fn take_fill(&self, key: &str, me: u64, ttl: Duration) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.fill(key))
            .arg(me)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Whether some instance holds `key`'s fill lease.
    pub(crate) async fn fill_held(&self, key: &str) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        redis::cmd("EXISTS")
            .arg(self.keys.fill(key))
            .query_async(&mut conn)
            .await
    }

    /// Releases `key`'s fill lease if `me` still holds it, and tells the waiting instances.
    pub(crate) async fn release_fill(&self, key: &str, me: u64) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let msg = bus::message(me, Kind::Filled(key.to_owned()));
        redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.keys.fill(key))
            .arg(me)
            .arg(self.keys.channel())
            .arg(msg)
            .query_async(&mut conn)
            .await
    }
}

/// The keys this instance waits for another's fill of (one waiter per key: in-process
/// coalescing comes first), woken by the bus when a fill ends.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    keys: Mutex<HashMap<String, watch::Sender<()>>>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<()>>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts waiting for `key`: the receiver sees a change when its fill ends. The wait ends
    /// when the guard is dropped (also when the request is).
    fn start<'a>(&'a self, key: &'a str) -> (watch::Receiver<()>, WaitGuard<'a>) {
        let (tx, rx) = watch::channel(());
        self.lock().insert(key.to_owned(), tx);
        (rx, WaitGuard { waiting: self, key })
    }

    /// A fill of `key` ended (a bus message): its waiter looks now.
    pub(crate) fn wake(&self, key: &str) {
        if let Some(tx) = self.lock().get(key) {
            tx.send_replace(());
        }
    }
}

/// Removes a key from [`Waiting`] when dropped.
struct WaitGuard<'a> {
    waiting: &'a Waiting,
    key: &'a str,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.waiting.lock().remove(self.key);
    }
}

/// Why a waiting instance stopped waiting.
enum Polled {
    Held,
    Found(Vec<Arc<CachedResponse>>),
    Released,
    Failed,
}

impl TieredStore {
    /// [`CacheStore::fill`](crate::CacheStore::fill): take the lease, or wait for its holder's entry.
    pub(super) async fn fill_miss(&self, key: &str) -> Fill {
        let inner = &self.inner;
        let Some(max_wait) = inner.coalesce else {
            return Fill::Fetch;
        };
        if !inner.breaker.allow() {
            stats::fill("skipped");
            return Fill::Fetch;
        }
        let take = inner.remote.take_fill(key, inner.me, max_wait);
        match tokio::time::timeout(inner.read_timeout, take).await {
            Ok(Ok(true)) => {
                inner.breaker.success();
                self.filling().insert(key.to_owned());
                stats::fill("leader");
                Fill::Lead
            }
            Ok(Ok(false)) => {
                inner.breaker.success();
                self.follow(key, max_wait).await
            }
            Ok(Err(e)) => {
                inner.breaker.report(&e);
                stats::fill("error");
                Fill::Fetch
            }
            Err(_) => {
                inner.breaker.failure();
                stats::fill("error");
                Fill::Fetch
            }
        }
    }

    /// Waits up to `max_wait` for the lease holder's entry.
    async fn follow(&self, key: &str, max_wait: Duration) -> Fill {
        let (woken, waiting) = self.inner.waiting.start(key);
        let result = self.poll_until(key, max_wait, woken).await;
        drop(waiting);
        match result {
            Polled::Found(found) => {
                for entry in found.iter().rev() {
                    let _ = self.inner.l1.put(key, entry.clone()).await;
                }
                stats::fill("follower_hit");
                Fill::Filled(found.into())
            }
            Polled::Held => {
                stats::fill("follower_timeout");
                Fill::Fetch
            }
            Polled::Released => {
                stats::fill("follower_unfilled");
                Fill::Fetch
            }
            Polled::Failed => {
                stats::fill("error");
                Fill::Fetch
            }
        }
    }

    /// Polls with a backoff, and at once when the bus says a fill of `key` ended, until the
    /// lease is released or `max_wait` has passed (then [`Polled::Held`]).
    async fn poll_until(
        &self,
        key: &str,
        max_wait: Duration,
        mut woken: watch::Receiver<()>,
    ) -> Polled {
        let deadline = Instant::now() + max_wait;
        let mut pause = FIRST_POLL;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Polled::Held;
            }
            tokio::select! {
                () = tokio::time::sleep(pause.min(deadline - now)) => {}
                _ = woken.changed() => {}
            }
            pause = (pause * 2).min(MAX_POLL);
            match self.poll(key).await {
                Polled::Held => {}
                done => return done,
            }
        }
    }

    /// The lease first, then the entry: the holder writes the entry before it releases the
    /// lease, so a lease seen released means its entry (if any) is readable.
    async fn poll(&self, key: &str) -> Polled {
        let inner = &self.inner;
        if !inner.breaker.allow() {
            return Polled::Failed;
        }
        let timeout = inner.read_timeout;
        let held = match tokio::time::timeout(timeout, inner.remote.fill_held(key)).await {
            Ok(Ok(held)) => held,
            Ok(Err(e)) => {
                inner.breaker.report(&e);
                return Polled::Failed;
            }
            Err(_) => {
                inner.breaker.failure();
                return Polled::Failed;
            }
        };
        match tokio::time::timeout(timeout, inner.remote.get(key)).await {
            Ok(Ok(found)) if !found.is_empty() => Polled::Found(found),
            Ok(Ok(_)) if held => Polled::Held,
            Ok(Ok(_)) => Polled::Released,
            Ok(Err(e)) => {
                inner.breaker.report(&e);
                Polled::Failed
            }
            Err(_) => {
                inner.breaker.failure();
                Polled::Failed
            }
        }
    }

    /// Keys this instance holds the fill lease of.
    fn filling(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.inner
            .filling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this instance holds `key`'s fill lease, which the caller now ends.
    pub(super) fn take_filling(&self, key: &str) -> bool {
        self.filling().remove(key)
    }

    /// Writes a filled entry to Redis now, then releases the lease (in the background).
    pub(super) fn write_fill(&self, key: &str, entry: Arc<CachedResponse>) {
        let (writer, remote, me) = (
            self.inner.writer(),
            self.inner.remote.clone(),
            self.inner.me,
        );
        let timeout = self.inner.write_timeout;
        let key = key.to_owned();
        spawn(async move {
            writer.write(&key, &entry).await;
            let _ = tokio::time::timeout(timeout, remote.release_fill(&key, me)).await;
        });
    }

    /// [`CacheStore::fill_done`](crate::CacheStore::fill_done): releases the lease if the fill stored nothing.
    pub(super) fn end_fill(&self, key: &str) {
        if !self.take_filling(key) {
            return;
        }
        let (remote, me) = (self.inner.remote.clone(), self.inner.me);
        let timeout = self.inner.write_timeout;
        let key = key.to_owned();
        spawn(async move {
            let _ = tokio::time::timeout(timeout, remote.release_fill(&key, me)).await;
        });
    }
}

/// Spawns `task` on the current runtime (none: the lease simply expires).
fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_waiter_is_woken_by_its_key_only_and_forgotten_when_dropped() {
        let waiting = Waiting::default();
        let (mut woken, guard) = waiting.start("/a");
        waiting.wake("/b");
        assert!(!woken.has_changed().unwrap(), "another key's fill");
        waiting.wake("/a");
        tokio::time::timeout(Duration::from_millis(1), woken.changed())
            .await
            .expect("woken at once")
            .unwrap();
        drop(guard);
        assert!(
            waiting.lock().is_empty(),
            "a dropped wait leaves nothing behind"
        );
        waiting.wake("/a");
    }
}
