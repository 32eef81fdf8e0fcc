//! The per-request collector: the capture adds statements to it, the layer reads a
//! [`DbSummary`] from it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fingerprint::Fingerprint;
use super::summary::{DbSummary, FingerprintStats};
use super::{Moment, NPlusOneProfile};
use crate::TraceId;

/// Distinct fingerprints tracked per request; statements past them count in the totals only.
pub const MAX_FINGERPRINTS: usize = 64;

/// One statement heard by the capture.
pub(crate) struct Statement {
    pub(crate) fingerprint: Arc<Fingerprint>,
    pub(crate) elapsed: Duration,
    /// When the event fired (the statement's end, as sqlx measures it).
    pub(crate) end: Moment,
    pub(crate) rows: u64,
}

/// The per-request state, in the request span's extensions and in the layer's record.
#[derive(Debug)]
pub(crate) struct Collector {
    pub(crate) route: Arc<str>,
    pub(crate) trace_id: Option<TraceId>,
    /// Slow-statement threshold of this route.
    pub(crate) slow: Option<Duration>,
    tally: Mutex<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    queries: u32,
    total: Duration,
    acquire_wait: Duration,
    acquires: u32,
    untracked: u32,
    fingerprints: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    stats: FingerprintStats,
    /// The latest end among this fingerprint's statements.
    last_end: Moment,
}

impl Collector {
    pub(crate) fn new(route: Arc<str>, trace_id: Option<TraceId>, slow: Option<Duration>) -> Self {
        Self {
            route,
            trace_id,
            slow,
            tally: Mutex::new(Tally::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, s: Statement) {
        let mut t = self.lock();
        t.queries += 1;
        t.total += s.elapsed;
        let start = s.end.checked_sub(s.elapsed).unwrap_or(s.end);
        let hash = s.fingerprint.hash();
        if let Some(e) = t.fingerprints.iter_mut().find(|e| e.stats.fingerprint.hash() == hash) {
            let st = &mut e.stats;
            st.count += 1;
            st.total += s.elapsed;
            st.max = st.max.max(s.elapsed);
            st.rows += s.rows;
            // Sequential: it started after every earlier one of its kind had ended. Statements
            // that overlap an earlier one are concurrent fan-out.
            if start >= e.last_end {
                st.sequential += 1;
                st.sequential_total += s.elapsed;
            }
            e.last_end = e.last_end.max(s.end);
        } else if t.fingerprints.len() < MAX_FINGERPRINTS {
            t.fingerprints.push(Entry {
                stats: FingerprintStats {
                    fingerprint: s.fingerprint,
                    count: 1,
                    total: s.elapsed,
                    max: s.elapsed,
                    rows: s.rows,
                    sequential: 1,
                    sequential_total: s.elapsed,
                },
                last_end: s.end,
            });
        } else {
            t.untracked += 1;
        }
    }

    pub(crate) fn add_wait(&self, wait: Duration) {
        let mut t = self.lock();
        t.acquires += 1;
        t.acquire_wait += wait;
    }

    /// The statements so far, and the N+1 findings under `profile`.
    pub(crate) fn summary(&self, profile: &NPlusOneProfile) -> DbSummary {
        let t = self.lock();
        let fingerprints: Vec<FingerprintStats> =
            t.fingerprints.iter().map(|e| e.stats.clone()).collect();
        let n_plus_one = fingerprints
            .iter()
            .filter(|s| profile.flags(s))
            .map(|s| s.fingerprint.clone())
            .collect();
        DbSummary {
            queries: t.queries,
            duration: t.total,
            acquires: t.acquires,
            acquire_wait: t.acquire_wait,
            untracked: t.untracked,
            fingerprints,
            n_plus_one,
        }
    }
}
