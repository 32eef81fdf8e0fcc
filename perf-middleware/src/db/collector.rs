//! The per-request collector: it lives in the request span's extensions (no allocation of its
//! own), the capture adds statements to it, the layer reads a [`DbSummary`] from it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::fingerprint::Fingerprint;
use super::layer::RouteEntry;
use super::summary::{DbStatement, DbSummary, FingerprintStats};
use super::{Moment, NPlusOneProfile};
use crate::TraceId;

/// Distinct fingerprints tracked per request; statements past them count in the totals only.
pub const MAX_FINGERPRINTS: usize = 64;

/// Statements listed one by one per request ([`DbSummary::statements`]); later ones are counted
/// in [`DbSummary::statements_dropped`].
pub const MAX_STATEMENTS: usize = 64;

/// One statement heard by the capture.
#[derive(Clone)]
pub(crate) struct Statement {
    pub(crate) fingerprint: Arc<Fingerprint>,
    pub(crate) elapsed: Duration,
    /// When the event fired (the statement's end, as sqlx measures it).
    pub(crate) end: Moment,
    /// Rows returned, or affected when none were returned.
    pub(crate) rows: u64,
    pub(crate) rows_returned: u64,
}

/// The per-request state, in the request span's extensions (guarded by their lock).
#[derive(Debug)]
pub(crate) struct Collector {
    pub(crate) route: Arc<RouteEntry>,
    pub(crate) trace_id: Option<TraceId>,
    /// The capture's `db.system.name`.
    pub(crate) system: &'static str,
    queries: u32,
    total: Duration,
    acquire_wait: Duration,
    acquires: u32,
    untracked: u32,
    fingerprints: Vec<Entry>,
    statements: Vec<DbStatement>,
    statements_dropped: u32,
    /// The monotonic and wall clocks read together at the first statement: each statement's
    /// wall-clock start is derived from its monotonic end, with no clock read of its own.
    anchor: Option<(Moment, SystemTime)>,
}

#[derive(Debug)]
struct Entry {
    stats: FingerprintStats,
    /// The latest end among this fingerprint's statements.
    last_end: Moment,
}

impl Collector {
    pub(crate) fn new(route: Arc<RouteEntry>, trace_id: Option<TraceId>) -> Self {
        Self {
            route,
            trace_id,
            system: "other_sql",
            queries: 0,
            total: Duration::ZERO,
            acquire_wait: Duration::ZERO,
            acquires: 0,
            untracked: 0,
            fingerprints: Vec::new(),
            statements: Vec::new(),
            statements_dropped: 0,
            anchor: None,
        }
    }

    /// Whether anything (a statement or a pool acquire) reached this request.
    pub(crate) fn is_empty(&self) -> bool {
        self.queries == 0 && self.acquires == 0
    }

    /// Statements so far.
    pub(crate) fn queries(&self) -> u32 {
        self.queries
    }

    /// Their summed time.
    pub(crate) fn total(&self) -> Duration {
        self.total
    }

    pub(crate) fn add(&mut self, s: Statement) {
        self.queries += 1;
        self.total += s.elapsed;
        let start = s.end.checked_sub(s.elapsed).unwrap_or(s.end);
        self.list(&s, start);
        let hash = s.fingerprint.hash();
        if let Some(e) = self
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
        } else if self.fingerprints.len() < MAX_FINGERPRINTS {
            self.fingerprints.push(Entry {
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
            self.untracked += 1;
        }
    }

    /// Lists the statement (the first [`MAX_STATEMENTS`]) with its wall-clock start.
    fn list(&mut self, s: &Statement, start: Moment) {
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements_dropped += 1;
            return;
        }
        let (moment, wall) = *self
            .anchor
            .get_or_insert_with(|| (s.end, SystemTime::now()));
        let start = match moment.checked_duration_since(start) {
            Some(before) => wall.checked_sub(before),
            None => wall.checked_add(start.duration_since(moment)),
        };
        self.statements.push(DbStatement {
            fingerprint: s.fingerprint.clone(),
            start: start.unwrap_or(wall),
            duration: s.elapsed,
            rows_returned: s.rows_returned,
        });
    }

    pub(crate) fn add_wait(&mut self, wait: Duration) {
        self.acquires += 1;
        self.acquire_wait += wait;
    }

    /// The per-fingerprint figures flagged as N+1 under `profile`.
    pub(crate) fn n_plus_one<'a>(
        &'a self,
        profile: &'a NPlusOneProfile,
    ) -> impl Iterator<Item = &'a FingerprintStats> {
        self.fingerprints
            .iter()
            .map(|e| &e.stats)
            .filter(|s| profile.flags(s))
    }

    /// The statements so far, and the N+1 findings under `profile`.
    pub(crate) fn summary(&self, profile: &NPlusOneProfile) -> DbSummary {
        DbSummary {
            queries: self.queries,
            duration: self.total,
            acquires: self.acquires,
            acquire_wait: self.acquire_wait,
            untracked: self.untracked,
            fingerprints: self.fingerprints.iter().map(|e| e.stats.clone()).collect(),
            n_plus_one: self
                .n_plus_one(profile)
                .map(|s| s.fingerprint.clone())
                .collect(),
            statements: self.statements.clone(),
            statements_dropped: self.statements_dropped,
            system: self.system,
        }
    }
}

#[cfg(test)]
mod tests;
