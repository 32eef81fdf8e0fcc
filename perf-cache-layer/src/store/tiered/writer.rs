//! The background writer: entries queued by `put` go to Redis one at a time, under the write
//! deadline, unless the breaker is open (then they are dropped and counted).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::breaker::Breaker;
use super::l2::Remote;
use super::{Inner, stats};
use crate::store::CachedResponse;

/// What the background writer needs (not the whole store, so that dropping the store stops it).
pub(super) struct Writer {
    remote: Arc<Remote>,
    breaker: Arc<Breaker>,
    depth: Arc<AtomicUsize>,
    timeout: Duration,
}

impl Inner {
    pub(super) fn writer(&self) -> Writer {
        Writer {
            remote: self.remote.clone(),
            breaker: self.breaker.clone(),
            depth: self.depth.clone(),
            timeout: self.write_timeout,
        }
    }
}

pub(super) async fn writer(
    w: Writer,
    mut rx: mpsc::Receiver<(Arc<str>, Arc<CachedResponse>)>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let job = tokio::select! {
            job = rx.recv() => job,
            _ = stop.changed() => None,
        };
        let Some((key, entry)) = job else { return };
        stats::queue(w.depth.fetch_sub(1, Ordering::Relaxed).saturating_sub(1));
        w.write(&key, &entry).await;
    }
}

impl Writer {
    /// Writes one entry to Redis under the write deadline, unless the breaker is open.
    pub(super) async fn write(&self, key: &str, entry: &CachedResponse) {
        if !self.breaker.allow() {
            stats::dropped("breaker");
            return;
        }
        let start = Instant::now();
        match tokio::time::timeout(self.timeout, self.remote.put(key, entry)).await {
            Ok(Ok(written)) => {
                self.breaker.success();
                if !written {
                    stats::dropped("purged");
                }
                stats::op("put", "ok", Some(start.elapsed()));
            }
            Ok(Err(e)) => {
                self.breaker.report(&e);
                stats::op("put", "error", Some(start.elapsed()));
            }
            Err(_) => {
                self.breaker.failure();
                stats::op("put", "timeout", Some(start.elapsed()));
            }
        }
    }
}
