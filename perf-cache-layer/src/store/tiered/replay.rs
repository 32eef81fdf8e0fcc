//! Purges that did not reach Redis, kept to be sent again once it answers.
//!
//! A purge made while Redis is unreachable (breaker open, error or timeout) has happened in this
//! instance's L1 only. It is queued here, bounded; the bus's heartbeat task sends the queue again
//! every coherence interval until Redis takes it: the tombstone, tag version or epoch is bumped
//! (with the replay's time, so entries stored in between are dropped too: more, never less) and
//! every instance's L1 hears it on the bus. Past [`MAX_PENDING`] distinct purges the queue
//! collapses into one `purge_all`, which covers them all.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::bus::{self, Kind};
use super::l2::Remote;
use super::stats;

/// Most distinct purges kept; one more turns the queue into a single `purge_all`.
pub(crate) const MAX_PENDING: usize = 1024;

/// The purges waiting for Redis, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    queue: Mutex<VecDeque<Kind>>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Kind>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `kind` (once; a queued `purge_all` already covers everything).
    pub(crate) fn push(&self, kind: Kind) {
        let mut queue = self.lock();
        if queue.contains(&kind) || queue.contains(&Kind::All) {
            return;
        }
        if kind == Kind::All || queue.len() >= MAX_PENDING {
            queue.clear();
            queue.push_back(Kind::All);
        } else {
            queue.push_back(kind);
        }
        stats::pending(queue.len());
    }

    /// `kind` reached Redis: a queued copy of it is no longer needed (nor anything else, for
    /// `purge_all`).
    pub(crate) fn sent(&self, kind: &Kind) {
        let mut queue = self.lock();
        if queue.is_empty() {
            return;
        }
        if *kind == Kind::All {
            queue.clear();
        } else {
            queue.retain(|k| k != kind);
        }
        stats::pending(queue.len());
    }

    /// How many purges wait.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Sends the queued purges in order, each under `timeout`, until one fails.
    pub(crate) async fn replay(
        &self,
        remote: &Remote,
        me: u64,
        tombstone: Duration,
        timeout: Duration,
    ) {
        loop {
            let Some(kind) = self.lock().front().cloned() else {
                return;
            };
            let sent = tokio::time::timeout(timeout, send(remote, me, &kind, tombstone)).await;
            if !matches!(sent, Ok(Ok(()))) {
                return;
            }
            let mut queue = self.lock();
            if queue.front() == Some(&kind) {
                queue.pop_front();
            }
            stats::pending(queue.len());
            stats::invalidation("replayed", kind.label());
        }
    }
}

/// Applies `kind` to Redis and publishes it to the other instances.
pub(crate) async fn send(
    remote: &Remote,
    me: u64,
    kind: &Kind,
    tombstone: Duration,
) -> redis::RedisResult<()> {
    let msg = bus::message(me, kind.clone());
    match kind {
        Kind::Key(key) => remote.purge_key(key, tombstone, msg).await,
        Kind::Tag(tag) => remote.purge_tag(tag, msg).await,
        Kind::SoftTag(tag) => remote.soft_purge_tag(tag, msg).await,
        Kind::All => remote.purge_all(msg).await,
        Kind::Heartbeat | Kind::Filled(_) => remote.publish(msg).await,
    }
}
