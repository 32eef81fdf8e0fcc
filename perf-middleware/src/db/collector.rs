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
        if let Some(e) = t
            .fingerprints
            .iter_mut()
            .find(|e| e.stats.fingerprint.hash() == hash)
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, end: Moment, elapsed_ms: u64) -> Statement {
        Statement {
            fingerprint: Arc::new(Fingerprint::of(sql)),
            elapsed: Duration::from_millis(elapsed_ms),
            end,
            rows: 1,
        }
    }

    fn collector() -> Collector {
        Collector::new("/r".into(), None, None)
    }

    #[test]
    fn a_loop_is_sequential_and_flagged_by_the_strict_profile_only_when_short() {
        let c = collector();
        let t0 = crate::db::now();
        for i in 0..6u64 {
            // Each starts 10 ms after the previous ended.
            c.add(statement(
                "SELECT * FROM posts WHERE author_id = $1",
                t0 + Duration::from_millis(20 * i + 10),
                5,
            ));
        }
        let strict = c.summary(&NPlusOneProfile::strict());
        assert_eq!(strict.queries, 6);
        assert_eq!(strict.fingerprints[0].sequential, 6);
        assert_eq!(strict.n_plus_one.len(), 1);
        // 6 × 5 ms = 30 ms: under the production floor of 50 ms.
        assert!(
            c.summary(&NPlusOneProfile::production())
                .n_plus_one
                .is_empty()
        );
        assert_eq!(
            c.summary(&NPlusOneProfile::new(5, Duration::from_millis(30)))
                .n_plus_one
                .len(),
            1
        );
    }

    #[test]
    fn overlapping_statements_are_fan_out() {
        let c = collector();
        let t0 = crate::db::now() + Duration::from_secs(1);
        // Four statements of 50 ms ending within 3 ms of each other: they ran at the same time.
        for i in 0..4u64 {
            c.add(statement(
                "SELECT pg_sleep(0.05)",
                t0 + Duration::from_millis(i),
                50,
            ));
        }
        let s = c.summary(&NPlusOneProfile::strict());
        assert_eq!(s.fingerprints[0].count, 4);
        assert_eq!(s.fingerprints[0].sequential, 1);
        assert!(s.n_plus_one.is_empty());
    }

    #[test]
    fn writes_are_never_n_plus_one_and_fingerprints_are_capped() {
        let c = collector();
        let t0 = crate::db::now();
        for i in 0..3u64 {
            c.add(statement(
                "UPDATE t SET a = 1",
                t0 + Duration::from_millis(10 * i + 10),
                1,
            ));
        }
        assert!(c.summary(&NPlusOneProfile::strict()).n_plus_one.is_empty());
        for i in 0..(MAX_FINGERPRINTS as u64 + 5) {
            c.add(statement(&format!("SELECT c{i} FROM t"), t0, 0));
        }
        let s = c.summary(&NPlusOneProfile::strict());
        assert_eq!(s.fingerprints.len(), MAX_FINGERPRINTS);
        assert_eq!(s.untracked, 6);
        assert_eq!(s.queries, 3 + MAX_FINGERPRINTS as u32 + 5);
    }
}
