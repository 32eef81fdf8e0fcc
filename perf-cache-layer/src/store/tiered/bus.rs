//! The invalidation bus: Redis pub/sub on `pc:{ns}:bus`, with a heartbeat for liveness.
//!
//! Pub/sub is at-most-once, so the receiver never trusts silence: it flushes its L1 on every
//! (re)subscribe (purges sent while it was away are lost, so everything it holds is suspect), and
//! declares the bus down when it has seen no message, not even its own heartbeat, for three
//! coherence intervals. Every message, heartbeats included, carries a fleet-wide sequence number
//! taken atomically with its publication, so a receiver that sees a number other than the next
//! one has missed a message (or Redis lost its state) and flushes its L1 too. While the bus is down, the store revalidates old L1 entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::fill::Waiting;
use super::l2::{Remote, unix_ms};
use super::recent::{Recent, recent_key};
use super::replay::Pending;
use super::stats;
use crate::store::{CacheStore, MemoryStore};

/// What a bus message asks receivers to drop from their L1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Key(String),
    Tag(String),
    All,
    Heartbeat,
    /// A soft tag purge: mark stale from the message's time. (Appended last: postcard numbers
    /// variants in order, so older instances keep decoding the others, and skip this one.)
    SoftTag(String),
    /// A fill of a cold miss ended (stored or not): instances waiting for it look now. Sent
    /// unnumbered (a wake-up, not an invalidation), so older instances, which cannot decode it,
    /// see no gap.
    Filled(String),
}

impl Kind {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Key(_) => "key",
            Self::Tag(_) => "tag",
            Self::All => "all",
            Self::Heartbeat => "heartbeat",
            Self::SoftTag(_) => "soft_tag",
            Self::Filled(_) => "filled",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Msg {
    from: u64,
    at_ms: u64,
    kind: Kind,
}

/// A received message and its sequence number (`msg "#" seq`; absent from unnumbered messages).
fn decode(bytes: &[u8]) -> Option<(Msg, Option<u64>)> {
    let (msg, rest) = postcard::take_from_bytes::<Msg>(bytes).ok()?;
    let seq = rest
        .strip_prefix(b"#")
        .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok());
    Some((msg, seq))
}

pub(crate) fn message(from: u64, kind: Kind) -> Vec<u8> {
    postcard::to_allocvec(&Msg {
        from,
        at_ms: unix_ms(SystemTime::now()),
        kind,
    })
    .unwrap_or_default()
}

/// Bus liveness, read on the request path.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    up: AtomicBool,
}

impl Liveness {
    pub(crate) fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
    fn set(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            stats::bus_up(up);
        }
    }
}

/// Everything the bus tasks need.
pub(crate) struct Bus {
    pub(crate) client: redis::Client,
    pub(crate) remote: Arc<Remote>,
    pub(crate) l1: MemoryStore,
    pub(crate) recent: Recent,
    pub(crate) live: Arc<Liveness>,
    pub(crate) me: u64,
    pub(crate) interval: Duration,
    pub(crate) pending: Arc<Pending>,
    pub(crate) tombstone: Duration,
    pub(crate) waiting: Arc<Waiting>,
}

impl Bus {
    /// Runs the receiver and the heartbeat until `stop` is dropped.
    pub(crate) async fn run(self, mut stop: watch::Receiver<()>) {
        let this = Arc::new(self);
        let beat = tokio::spawn(this.clone().heartbeat());
        tokio::select! {
            () = this.receive() => {}
            _ = stop.changed() => {}
        }
        beat.abort();
    }

    async fn heartbeat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (remote, me) = (&self.remote, self.me);
            let replay = self
                .pending
                .replay(remote, me, self.tombstone, self.interval);
            replay.await;
            let msg = message(self.me, Kind::Heartbeat);
            let _ = tokio::time::timeout(self.interval, self.remote.publish(msg)).await;
        }
    }

    async fn receive(&self) {
        let mut backoff = Duration::from_millis(50);
        let mut first = true;
        loop {
            if self.session(first).await {
                backoff = Duration::from_millis(50);
                first = false;
            }
            self.live.set(false);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// One subscription, until it fails or goes silent. Returns whether it ever subscribed.
    ///
    /// Every subscription but the store's first starts with an empty L1, and refuses to store
    /// responses whose requests began before it: purges may have been missed in between. (Before
    /// the first one, the store is new; purges made earlier are in Redis's states.)
    async fn session(&self, first: bool) -> bool {
        let connect = async {
            let mut ps = self.client.get_async_pubsub().await?;
            ps.subscribe(self.remote.keys.channel()).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        let Ok(Ok(ps)) = tokio::time::timeout(self.interval, connect).await else {
            return false;
        };
        if !first {
            self.flush("reconnect").await;
        }
        self.live.set(true);
        let mut stream = ps.into_on_message();
        let mut last = None;
        loop {
            match tokio::time::timeout(self.interval * 3, stream.next()).await {
                Ok(Some(msg)) => {
                    let Some((msg, seq)) = decode(msg.get_payload_bytes()) else {
                        continue;
                    };
                    // Numbers are consecutive across the fleet: a jump (or a step back, after
                    // Redis lost its state) means messages were missed.
                    if let Some(seq) = seq {
                        if last.is_some_and(|last: u64| seq != last.wrapping_add(1)) {
                            self.flush("gap").await;
                        }
                        last = Some(seq);
                    }
                    self.apply(msg).await;
                }
                Ok(None) => return true,
                Err(_) => {
                    stats::resync("heartbeat");
                    return true;
                }
            }
        }
    }

    /// Empties L1 (and refuses stores from requests that began before): purges may have been
    /// missed.
    async fn flush(&self, reason: &'static str) {
        self.recent.mark(recent_key('*', ""));
        let _ = self.l1.purge_all().await;
        stats::resync(reason);
    }

    async fn apply(&self, msg: Msg) {
        if msg.from == self.me || matches!(msg.kind, Kind::Heartbeat) {
            return;
        }
        if let Kind::Filled(key) = &msg.kind {
            self.waiting.wake(key);
            return;
        }
        stats::invalidation("received", msg.kind.label());
        let now = unix_ms(SystemTime::now());
        stats::lag(Duration::from_millis(now.saturating_sub(msg.at_ms)));
        let _ = match &msg.kind {
            Kind::Key(key) => {
                self.recent.mark(recent_key('k', key));
                self.l1.remove(key).await
            }
            Kind::Tag(tag) => {
                self.recent.mark(recent_key('t', tag));
                self.l1.purge_tag(tag).await
            }
            Kind::SoftTag(tag) => {
                self.recent.mark(recent_key('t', tag));
                let at = UNIX_EPOCH + Duration::from_millis(msg.at_ms);
                self.l1.soft_purge_tag(tag, at).await
            }
            Kind::All => {
                self.recent.mark(recent_key('*', ""));
                self.l1.purge_all().await
            }
            Kind::Heartbeat | Kind::Filled(_) => Ok(()),
        };
    }
}
