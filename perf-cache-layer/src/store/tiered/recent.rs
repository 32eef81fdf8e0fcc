//! Recent purges seen by this instance (its own and those received on the bus), so that a
//! response whose request started before a purge of its key, one of its tags or everything is not
//! stored over it. Bounded by count and by the tombstone window.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use moka::sync::Cache;

use crate::store::CachedResponse;

/// The name of a purge target: `k` key, `t` tag, `*` everything.
pub(crate) fn recent_key(kind: char, name: &str) -> Box<str> {
    let mut s = String::with_capacity(name.len() + 1);
    s.push(kind);
    s.push_str(name);
    s.into()
}

/// Purge times by target, kept for the tombstone window (longer than the slowest origin fetch).
#[derive(Clone)]
pub(crate) struct Recent {
    seen: Cache<Box<str>, SystemTime>,
    window: Duration,
}

impl Recent {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            seen: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            window,
        }
    }

    /// Records a purge of `target` now.
    pub(crate) fn mark(&self, target: Box<str>) {
        self.seen.insert(target, SystemTime::now());
    }

    /// Whether `key`, one of `entry`'s tags, or everything was purged at or after the moment the
    /// entry's request started.
    pub(crate) fn purged_since(&self, key: &str, entry: &Arc<CachedResponse>) -> bool {
        let start = entry.request_time();
        if SystemTime::now()
            .duration_since(start)
            .is_ok_and(|d| d > self.window)
        {
            // Older than anything remembered: refuse rather than guess.
            return true;
        }
        let after = |t: &str| self.seen.get(t).is_some_and(|at| at >= start);
        after("*")
            || after(&recent_key('k', key))
            || entry.tags().any(|tag| after(&recent_key('t', tag)))
    }
}
