//! The Redis side: key layout, the stamped value envelope, reads, writes and purges.
//!
//! Layout, all under `pc:{namespace}:`:
//! - `e:{digest(key)}`: a hash; field `k` holds the full primary key (checked on read), fields
//!   `v:{digest(vary selection)}` hold one variant each as `"PL2" 0x01 stamp entry`, where
//!   `stamp` is postcard `(epoch, [tag version])` and `entry` the versioned `CachedResponse`
//!   encoding. Redis TTL (the longest variant's retention) is garbage collection only.
//! - `ts:{digest(key)}`: the tombstone, the Unix milliseconds of the last purge of that key.
//! - `t:{digest(tag)}`: the tag state, `"version:purged_ms"`.
//! - `sp:{digest(tag)}`: the Unix milliseconds of the tag's last soft purge; an entry whose
//!   request began before it is read as stale from then.
//! - `epoch`: `"epoch:purged_ms"`, replaced by `purge_all`.
//! - `seq`: the number of the last bus message (see [`Remote::announce`]).
//!
//! A variant is valid only if its stamped epoch and tag versions equal the current ones and its
//! request started after the key's, the epoch's and every tag's last purge (minus the clock-skew
//! margin). A missing state is a mismatch, so eviction or `FLUSHALL` never revives a purged entry.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::RedisResult;
use redis::aio::ConnectionManager;

use super::keys::{Keys, field};
use super::stats;
use crate::store::CachedResponse;

const MAGIC: &[u8; 4] = b"PL2\x01";
/// `INCR` the bus sequence and `PUBLISH` the message with it, or without it if `INCR` fails.
const ANNOUNCE: &str = "local n = redis.pcall('INCR', KEYS[1]) \
    if type(n) == 'table' then redis.call('PUBLISH', ARGV[1], ARGV[2]) return 0 end \
    redis.call('PUBLISH', ARGV[1], ARGV[2] .. '#' .. n) return n";
/// Tag states live this long without a write refreshing them; a vanished state invalidates.
const TAG_STATE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A state value `"version:purged_ms"`.
fn parse_state(s: Option<&str>) -> Option<(u64, u64)> {
    let (v, p) = s?.split_once(':')?;
    Some((v.parse().ok()?, p.parse().ok()?))
}

fn state(version: u64, purged_ms: u64) -> String {
    format!("{version}:{purged_ms}")
}

/// One decoded variant with the states it was stamped with.
struct Stamped {
    epoch: u64,
    tags: Vec<u64>,
    entry: CachedResponse,
}

fn decode(bytes: Bytes) -> Option<Stamped> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        stats::decode_failure("version");
        return None;
    };
    let Ok(((epoch, tags), tail)) = postcard::take_from_bytes::<(u64, Vec<u64>)>(rest) else {
        stats::decode_failure("corrupt");
        return None;
    };
    let Ok(entry) = CachedResponse::from_shared(bytes.slice_ref(tail)) else {
        stats::decode_failure("corrupt");
        return None;
    };
    (entry.tags.len() == tags.len()).then_some(Stamped { epoch, tags, entry })
}

fn encode(epoch: u64, tags: &[u64], entry: &CachedResponse) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    if let Ok(stamp) = postcard::to_allocvec(&(epoch, tags)) {
        out.extend_from_slice(&stamp);
    }
    out.extend_from_slice(&entry.to_bytes());
    out
}

/// The Redis tier: a connection, the key names and the timing rules.
pub(crate) struct Remote {
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
    pub(crate) skew: Duration,
    pub(crate) max_variants: usize,
}

impl Remote {
    fn purged_after(&self, purged_ms: u64, request: SystemTime) -> bool {
        purged_ms + u64::try_from(self.skew.as_millis()).unwrap_or(0) >= unix_ms(request)
    }

    /// Reads every valid variant of `key`.
    pub(crate) async fn get(&self, key: &str) -> RedisResult<Vec<Arc<CachedResponse>>> {
        let mut conn = self.conn.clone();
        let (fields, tomb, epoch): (Vec<(Vec<u8>, Vec<u8>)>, Option<u64>, Option<String>) =
            redis::pipe()
                .hgetall(self.keys.entry(key))
                .get(self.keys.tombstone(key))
                .get(self.keys.epoch())
                .query_async(&mut conn)
                .await?;
        let mut stamped = Vec::new();
        let mut key_ok = false;
        for (name, value) in fields {
            if name == b"k" {
                key_ok = value == key.as_bytes();
            } else if let Some(s) = decode(Bytes::from(value)) {
                stamped.push(s);
            }
        }
        if stamped.is_empty() {
            return Ok(Vec::new());
        }
        if !key_ok {
            stats::decode_failure("key_mismatch");
            return Ok(Vec::new());
        }
        let Some((epoch, epoch_purged)) = parse_state(epoch.as_deref()) else {
            return Ok(Vec::new());
        };
        // Each tag's state, then each tag's last soft purge.
        let tags = stamped.iter().flat_map(|s| s.entry.tags.iter());
        let mut state_keys: Vec<String> = tags.clone().map(|t| self.keys.tag(t)).collect();
        let n = state_keys.len();
        state_keys.extend(tags.map(|t| self.keys.soft(t)));
        let mut states: Vec<Option<String>> = if state_keys.is_empty() {
            Vec::new()
        } else {
            redis::cmd("MGET")
                .arg(&state_keys)
                .query_async(&mut conn)
                .await?
        };
        let softs = states.split_off(n.min(states.len()));
        let mut softs = softs
            .iter()
            .map(|s| s.as_deref().and_then(|s| s.parse().ok()));
        let mut states = states.iter().map(|s| parse_state(s.as_deref()));
        let mut out = Vec::new();
        for s in stamped {
            let request = s.entry.request_time();
            let mut ok = s.epoch == epoch
                && !self.purged_after(epoch_purged, request)
                && !tomb.is_some_and(|t| self.purged_after(t, request));
            let mut stale_from: Option<u64> = None;
            for version in &s.tags {
                ok &= states
                    .next()
                    .flatten()
                    .is_some_and(|(v, p)| v == *version && !self.purged_after(p, request));
                if let Some(soft) = softs.next().flatten()
                    && self.purged_after(soft, request)
                {
                    stale_from = Some(stale_from.map_or(soft, |at: u64| at.min(soft)));
                }
            }
            match stale_from {
                _ if !ok => {}
                None => out.push(Arc::new(s.entry)),
                Some(ms) => {
                    let at = UNIX_EPOCH + Duration::from_millis(ms);
                    out.push(Arc::new(s.entry.stale_at(at)));
                }
            }
        }
        Ok(out)
    }

    /// Writes one variant, unless its key, a tag or the epoch was purged after its request began.
    /// Returns whether it was written.
    pub(crate) async fn put(&self, key: &str, entry: &CachedResponse) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let request = entry.request_time();
        let ekey = self.keys.entry(key);
        let tag_keys: Vec<String> = entry.tags.iter().map(|t| self.keys.tag(t)).collect();
        // Create missing states with random versions (never a predictable successor).
        let mut create = redis::pipe();
        create
            .cmd("SET")
            .arg(self.keys.epoch())
            .arg(state(fastrand::u64(..), 0))
            .arg("NX")
            .ignore();
        for t in &tag_keys {
            create
                .cmd("SET")
                .arg(t)
                .arg(state(fastrand::u64(..), 0))
                .arg("NX")
                .arg("PX")
                .arg(TAG_STATE_TTL_MS)
                .ignore();
        }
        create
            .hlen(&ekey)
            .get(self.keys.tombstone(key))
            .get(self.keys.epoch());
        if !tag_keys.is_empty() {
            create.cmd("MGET").arg(&tag_keys);
        }
        let reply: Vec<redis::Value> = create.query_async(&mut conn).await?;
        let mut reply = reply.into_iter();
        let variants: usize = redis::from_redis_value(reply.next().unwrap_or(redis::Value::Nil))?;
        let tomb: Option<u64> = redis::from_redis_value(reply.next().unwrap_or(redis::Value::Nil))?;
        let epoch: Option<String> =
            redis::from_redis_value(reply.next().unwrap_or(redis::Value::Nil))?;
        let tags: Vec<Option<String>> = match reply.next() {
            Some(v) => redis::from_redis_value(v)?,
            None => Vec::new(),
        };
        let Some((epoch, epoch_purged)) = parse_state(epoch.as_deref()) else {
            return Ok(false);
        };
        if self.purged_after(epoch_purged, request)
            || tomb.is_some_and(|t| self.purged_after(t, request))
        {
            return Ok(false);
        }
        let mut versions = Vec::with_capacity(tags.len());
        for t in &tags {
            match parse_state(t.as_deref()) {
                Some((v, p)) if !self.purged_after(p, request) => versions.push(v),
                _ => return Ok(false),
            }
        }
        let ttl = u64::try_from(entry.retain_for().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut write = redis::pipe();
        if variants > self.max_variants {
            write.del(&ekey).ignore();
        }
        write
            .hset(&ekey, "k", key)
            .ignore()
            .hset(&ekey, field(entry), encode(epoch, &versions, entry))
            .ignore();
        write.cmd("PEXPIRE").arg(&ekey).arg(ttl).arg("NX").ignore();
        write.cmd("PEXPIRE").arg(&ekey).arg(ttl).arg("GT").ignore();
        for t in &tag_keys {
            write
                .cmd("PEXPIRE")
                .arg(t)
                .arg(TAG_STATE_TTL_MS)
                .arg("GT")
                .ignore();
        }
        write.query_async::<()>(&mut conn).await?;
        Ok(true)
    }

    /// Deletes `key`'s entry and tombstones it; `window` is how long the tombstone lasts.
    pub(crate) async fn purge_key(
        &self,
        key: &str,
        window: Duration,
        msg: Vec<u8>,
    ) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .del(self.keys.entry(key))
            .ignore()
            .cmd("SET")
            .arg(self.keys.tombstone(key))
            .arg(unix_ms(SystemTime::now()))
            .arg("PX")
            .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1))
            .ignore()
            .add_command(self.announce(msg))
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// Gives `tag` a new random version (every entry stamped with the old one is invalid).
    pub(crate) async fn purge_tag(&self, tag: &str, msg: Vec<u8>) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let value = state(fastrand::u64(..), unix_ms(SystemTime::now()));
        redis::pipe()
            .cmd("SET")
            .arg(self.keys.tag(tag))
            .arg(value)
            .arg("PX")
            .arg(TAG_STATE_TTL_MS)
            .ignore()
            .add_command(self.announce(msg))
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// Records a soft purge of `tag` now: entries tagged with it whose requests began earlier
    /// are read as stale from now.
    pub(crate) async fn soft_purge_tag(&self, tag: &str, msg: Vec<u8>) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("SET")
            .arg(self.keys.soft(tag))
            .arg(unix_ms(SystemTime::now()))
            .arg("PX")
            .arg(TAG_STATE_TTL_MS)
            .ignore()
            .add_command(self.announce(msg))
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// Replaces the epoch (every stored entry is invalid; old keys expire by TTL, nothing is
    /// flushed on the shared server).
    pub(crate) async fn purge_all(&self, msg: Vec<u8>) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let value = state(fastrand::u64(..), unix_ms(SystemTime::now()));
        redis::pipe()
            .set(self.keys.epoch(), value)
            .ignore()
            .add_command(self.announce(msg))
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// `SET lk:{digest} <me> NX PX ttl`: whether this instance now holds the refresh lease.
    pub(crate) async fn lease(&self, key: &str, me: u64, ttl: Duration) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.lease(key))
            .arg(me)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Publishes a bus message (the heartbeat).
    pub(crate) async fn publish(&self, msg: Vec<u8>) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        self.announce(msg).query_async(&mut conn).await
    }

    /// The command that numbers `msg` (`INCR seq`) and publishes it as `msg "#" seq` on the bus,
    /// atomically, so that subscribers see consecutive numbers and can tell when they missed
    /// one. When the number cannot be taken (a full server refusing writes), `msg` is published
    /// unnumbered.
    pub(crate) fn announce(&self, msg: Vec<u8>) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ANNOUNCE)
            .arg(1)
            .arg(self.keys.seq())
            .arg(self.keys.channel())
            .arg(msg);
        cmd
    }
}
