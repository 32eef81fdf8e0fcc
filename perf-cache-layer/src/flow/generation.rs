//! Invalidation generations: a response whose request started before an invalidation or purge of
//! its key, one of its tags, or the whole store is not stored over it (RFC 9111 §4.4).
//!
//! Without this, a slow miss that read the old representation, then a `PUT` that invalidates the
//! key, then the miss's response arriving, would store the old representation for its whole
//! lifetime. Every request notes the generation when it starts; every invalidation advances the
//! generation and records it for its key or tag; a store is allowed only if nothing it touches was
//! invalidated after the request started.
//!
//! The record is bounded: past [`MAX_TRACKED`] keys and tags it is cleared and the *floor* moves
//! up to the current generation, so every request that started before is refused (conservative:
//! those responses are served, not stored).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Most keys and tags remembered before the record is cleared.
pub(crate) const MAX_TRACKED: usize = 4096;

/// The invalidation record shared by every request of one layer.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The latest generation handed out.
    now: u64,
    /// Requests that started before this generation may not store anything.
    floor: u64,
    keys: HashMap<Box<str>, u64>,
    tags: HashMap<Box<str>, u64>,
}

impl State {
    fn advance(&mut self) -> u64 {
        self.now += 1;
        if self.keys.len() + self.tags.len() >= MAX_TRACKED {
            self.keys.clear();
            self.tags.clear();
            self.floor = self.now;
        }
        self.now
    }
}

impl Generations {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation a request notes when it starts.
    pub(crate) fn current(&self) -> u64 {
        self.state().now
    }

    /// Records an invalidation of `key`.
    pub(crate) fn invalidate_key(&self, key: &str) {
        let mut state = self.state();
        let now = state.advance();
        state.keys.insert(key.into(), now);
    }

    /// Records a purge of `tag`.
    pub(crate) fn invalidate_tag(&self, tag: &str) {
        let mut state = self.state();
        let now = state.advance();
        state.tags.insert(tag.into(), now);
    }

    /// Records a purge of everything.
    pub(crate) fn invalidate_all(&self) {
        let mut state = self.state();
        let now = state.advance();
        state.keys.clear();
        state.tags.clear();
        state.floor = now;
    }

    /// Whether a response for `key` with `tags`, from a request that started at generation
    /// `started`, may be stored: nothing it touches was invalidated since.
    pub(crate) fn allows(&self, started: u64, key: &str, tags: &[Box<str>]) -> bool {
        let state = self.state();
        let after = |generation: Option<&u64>| generation.is_some_and(|g| *g > started);
        started >= state.floor
            && !after(state.keys.get(key))
            && !tags.iter().any(|t| after(state.tags.get(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_invalidations_after_the_start_refuse() {
        let g = Generations::default();
        g.invalidate_key("a");
        let started = g.current();
        assert!(g.allows(started, "a", &[]));
        g.invalidate_key("a");
        assert!(!g.allows(started, "a", &[]));
        assert!(g.allows(started, "b", &[]));
        g.invalidate_tag("t");
        assert!(!g.allows(started, "b", &["t".into()]));
        assert!(g.allows(g.current(), "a", &["t".into()]));
        g.invalidate_all();
        let later = g.current();
        assert!(!g.allows(later - 1, "z", &[]));
        assert!(g.allows(later, "z", &[]));
    }

    #[test]
    fn the_record_is_bounded_and_refuses_older_requests_when_cleared() {
        let g = Generations::default();
        let started = g.current();
        for i in 0..MAX_TRACKED + 10 {
            g.invalidate_key(&i.to_string());
        }
        let state = g.state();
        assert!(state.keys.len() < MAX_TRACKED);
        drop(state);
        assert!(!g.allows(started, "untouched", &[]));
        assert!(g.allows(g.current(), "untouched", &[]));
    }
}
