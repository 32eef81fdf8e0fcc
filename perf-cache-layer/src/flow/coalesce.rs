//! Request coalescing: concurrent misses for one key wait for a single inner call.
//!
//! The first miss becomes the *leader* and calls the inner service; later misses for the same key
//! become *waiters*. When the leader has stored the response it publishes the entry; a waiter whose
//! `Vary` selection matches serves it. If the response was not shareable (uncacheable, too large,
//! `private`), the leader was cancelled, or the wait timed out, each waiter makes its own call.
//!
//! Across instances, the leader then asks the store ([`CacheStore::fill`](crate::CacheStore::fill)):
//! a store shared by several instances may make it wait for another instance's entry, or make it
//! the fleet's one filler; [`FillDone`] tells the store when that fill ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::flow::generation::Generations;
use crate::shared::Shared;
use crate::store::CachedResponse;

/// What the leader published: `None` = nothing shareable.
type Outcome = Option<Option<Arc<CachedResponse>>>;

/// Keys with a leader in flight, and the invalidations in-flight fetches check before storing.
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    map: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
    /// Invalidation generations (see [`crate::flow::generation`]).
    pub(crate) generations: Generations,
}

/// The caller's role for a key.
pub(crate) enum Role {
    Leader(Leader),
    Waiter(watch::Receiver<Outcome>),
}

/// Held by the leader; dropping it without [`Leader::publish`] releases the waiters.
pub(crate) struct Leader {
    key: String,
    tx: watch::Sender<Outcome>,
    inflight: Arc<Inflight>,
}

impl Inflight {
    /// Joins the flight for `key`.
    pub(crate) fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = map.get(key) {
            return Role::Waiter(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), rx);
        Role::Leader(Leader {
            key: key.to_owned(),
            tx,
            inflight: self.clone(),
        })
    }

    /// Number of keys in flight (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Leader {
    /// Publishes the stored entry (or `None`) to the waiters and ends the flight.
    pub(crate) fn publish(self, entry: Option<Arc<CachedResponse>>) {
        self.remove();
        self.tx.send_replace(Some(entry));
    }

    fn remove(&self) {
        let mut map = self
            .inflight
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            map.remove(&self.key);
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Ends a fill the store granted across instances ([`Fill::Lead`](crate::store::Fill::Lead)):
/// calls [`CacheStore::fill_done`](crate::CacheStore::fill_done) when dropped, after the
/// response was stored, or when the request was dropped half-way.
pub(crate) struct FillDone {
    shared: Arc<Shared>,
    key: String,
}

impl FillDone {
    pub(crate) fn new(shared: &Arc<Shared>, key: &str) -> Self {
        Self {
            shared: shared.clone(),
            key: key.to_owned(),
        }
    }
}

impl Drop for FillDone {
    fn drop(&mut self) {
        self.shared.store.fill_done(&self.key);
    }
}

/// Waits up to `timeout` for the leader. `None` means "make your own call".
pub(crate) async fn wait(
    mut rx: watch::Receiver<Outcome>,
    timeout: Duration,
) -> Option<Arc<CachedResponse>> {
    let published = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
    match published {
        Ok(Ok(outcome)) => outcome.clone().flatten(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn dropped_leader_releases_waiters_and_the_key() {
        let inflight = Arc::new(Inflight::default());
        let Role::Leader(leader) = inflight.join("k") else {
            panic!("first caller must lead")
        };
        let Role::Waiter(rx) = inflight.join("k") else {
            panic!("second caller must wait")
        };
        drop(leader);
        assert_eq!(inflight.len(), 0);
        assert!(wait(rx, Duration::from_secs(5)).await.is_none());
        assert!(matches!(inflight.join("k"), Role::Leader(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_time_out_into_their_own_call() {
        let inflight = Arc::new(Inflight::default());
        let _leader = inflight.join("k");
        let Role::Waiter(rx) = inflight.join("k") else {
            panic!("second caller must wait")
        };
        let started = tokio::time::Instant::now();
        assert!(wait(rx, Duration::from_secs(2)).await.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
