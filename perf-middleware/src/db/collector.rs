//! The per-request collector: the capture adds statements to it, the layer reads a
//! [`DbSummary`] from it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::fingerprint::Fingerprint;
use super::summary::{DbStatement, DbSummary, FingerprintStats};
use super::{Moment, NPlusOneProfile, now};
use crate::TraceId;

/// Distinct fingerprints tracked per request; statements past them count in the totals only.
pub const MAX_FINGERPRINTS: usize = 64;

/// Statements listed one by one per request ([`DbSummary::statements`]); later ones are counted
/// in [`DbSummary::statements_dropped`].
pub const MAX_STATEMENTS: usize = 64;

/// One statement heard by the capture.
pub(crate) struct Statement {
    pub(crate) fingerprint: Arc<Fingerprint>,
    pub(crate) elapsed: Duration,
    /// When the event fired (the statement's end, as sqlx measures it).
    pub(crate) end: Moment,
    /// Rows returned, or affected when none were returned.
    pub(crate) rows: u64,
    pub(crate) rows_returned: u64,
    /// The capture's `db.system.name`.
    pub(crate) system: &'static str,
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
    /// The first [`MAX_STATEMENTS`], with their monotonic start (made wall-clock in `summary`).
    statements: Vec<(Moment, DbStatement)>,
    statements_dropped: u32,
    system: &'static str,
}

#[derive(Debug)]
struct Entry {
    stats: FingerprintStats,
    /// The latest end among this fingerprint's statements.
    last_end: Moment,
}

/// What the layer reports when a request ends.
pub(crate) struct Report {
    pub(crate) queries: u32,
    pub(crate) total: Duration,
    pub(crate) n_plus_one: Vec<FingerprintStats>,
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

    fn lock(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, s: Statement) {
        let mut t = self.lock();
        t.queries += 1;
        t.total += s.elapsed;
        t.system = s.system;
        let start = s.end.checked_sub(s.elapsed).unwrap_or(s.end);
        if t.statements.len() < MAX_STATEMENTS {
            let listed = DbStatement {
                fingerprint: s.fingerprint.clone(),
                start: SystemTime::UNIX_EPOCH,
                duration: s.elapsed,
                rows_returned: s.rows_returned,
            };
            t.statements.push((start, listed));
        } else {
            t.statements_dropped += 1;
        }
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

    /// The statements so far and the N+1 findings under `profile`; `None` when nothing (no
    /// statement, no pool acquire) reached this request.
    pub(crate) fn summary(&self, profile: &NPlusOneProfile) -> Option<DbSummary> {
        let t = self.lock();
        if t.queries == 0 && t.acquires == 0 {
            return None;
        }
        // One reading of both clocks places every listed statement on the wall clock.
        let (moment, wall) = (now(), SystemTime::now());
        let statements = t
            .statements
            .iter()
            .map(|(start, s)| {
                let start = match moment.checked_duration_since(*start) {
                    Some(ago) => wall.checked_sub(ago),
                    None => wall.checked_add(start.duration_since(moment)),
                };
                DbStatement {
                    start: start.unwrap_or(wall),
                    ..s.clone()
                }
            })
            .collect();
        let fingerprints: Vec<FingerprintStats> =
            t.fingerprints.iter().map(|e| e.stats.clone()).collect();
        let n_plus_one = fingerprints
            .iter()
            .filter(|s| profile.flags(s))
            .map(|s| s.fingerprint.clone())
            .collect();
        Some(DbSummary {
            queries: t.queries,
            duration: t.total,
            acquires: t.acquires,
            acquire_wait: t.acquire_wait,
            untracked: t.untracked,
            fingerprints,
            n_plus_one,
            statements,
            statements_dropped: t.statements_dropped,
            system: t.system,
        })
    }

    /// The figures reported when the request ends: count, summed time, N+1 findings.
    pub(crate) fn report(&self, profile: &NPlusOneProfile) -> Report {
        let t = self.lock();
        Report {
            queries: t.queries,
            total: t.total,
            n_plus_one: t
                .fingerprints
                .iter()
                .filter(|e| profile.flags(&e.stats))
                .map(|e| e.stats.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
