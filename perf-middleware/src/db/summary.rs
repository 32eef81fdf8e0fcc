//! [`DbSummary`]: what one request did to the database, and the N+1 profiles.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::fingerprint::Fingerprint;

/// What one request did to the database: its statements, their summed time, per-fingerprint
/// figures and the N+1 findings.
///
/// [`DbLayer`](super::DbLayer) puts an `Arc<DbSummary>` into the response extensions when the
/// response head is produced, if the request ran a statement or waited for a pool connection
/// (read it from an outer layer: the timing layer's completion record and slow log, an
/// OpenTelemetry span; no summary means no statement). Statements run while the body streams
/// are in the metrics and logs, not in this snapshot.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DbSummary {
    /// Statements run.
    pub queries: u32,
    /// Their summed time as the caller saw it (preparation, waiting behind another command on the
    /// connection and result streaming included; pool acquire excluded).
    pub duration: Duration,
    /// Pool acquires heard (only when sqlx logs them: `PoolOptions::acquire_time_level`).
    pub acquires: u32,
    /// Summed time waiting for a pool connection.
    pub acquire_wait: Duration,
    /// Statements past the first [`MAX_FINGERPRINTS`](super::MAX_FINGERPRINTS) distinct
    /// fingerprints: counted in the totals only.
    pub untracked: u32,
    /// Per distinct fingerprint, in first-seen order.
    pub fingerprints: Vec<FingerprintStats>,
    /// The fingerprints flagged as N+1 by the layer's profile.
    pub n_plus_one: Vec<Arc<Fingerprint>>,
    /// The first [`MAX_STATEMENTS`](super::MAX_STATEMENTS) statements one by one, in the order
    /// they ended (for per-statement spans).
    pub statements: Vec<DbStatement>,
    /// Statements past [`MAX_STATEMENTS`](super::MAX_STATEMENTS): in the totals, not in
    /// [`statements`](Self::statements).
    pub statements_dropped: u32,
    /// The `db.system.name` of the capture that heard them ([`DbCapture::system`](super::DbCapture::system)).
    pub system: &'static str,
}

/// One statement of a request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DbStatement {
    /// Its fingerprint (the normalized, literal-free text).
    pub fingerprint: Arc<Fingerprint>,
    /// When it started on the wall clock: its end as the capture heard it, minus
    /// [`duration`](Self::duration).
    pub start: SystemTime,
    /// Its time as the caller saw it (sqlx's `elapsed_secs`).
    pub duration: Duration,
    /// Rows it returned (0 for a write; sqlx reports the affected rows apart).
    pub rows_returned: u64,
}

impl DbStatement {
    /// When it ended on the wall clock.
    pub fn end(&self) -> SystemTime {
        self.start + self.duration
    }
}

impl DbSummary {
    /// The `Server-Timing` description: `12 queries` (`1 query`).
    pub fn description(&self) -> String {
        description(self.queries)
    }
}

/// `12 queries` (`1 query`).
pub(crate) fn description(queries: u32) -> String {
    let noun = if queries == 1 { "query" } else { "queries" };
    format!("{queries} {noun}")
}

/// The statements of one request that share a fingerprint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FingerprintStats {
    /// The fingerprint.
    pub fingerprint: Arc<Fingerprint>,
    /// Statements.
    pub count: u32,
    /// Their summed time.
    pub total: Duration,
    /// The longest one.
    pub max: Duration,
    /// Rows returned or affected, summed.
    pub rows: u64,
    /// Statements that started after every earlier one of this fingerprint had ended (a loop);
    /// the others overlapped one (concurrent fan-out, `join_all`).
    pub sequential: u32,
    /// The summed time of the sequential ones.
    pub sequential_total: Duration,
}

/// When a repeated statement is reported as N+1: a read (`SELECT`, `WITH`) fingerprint run at
/// least `min_repeats` times one after another in one request, taking at least `min_total`
/// together. Overlapping (concurrent) runs do not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NPlusOneProfile {
    min_repeats: u32,
    min_total: Duration,
}

impl Default for NPlusOneProfile {
    fn default() -> Self {
        Self::production()
    }
}

impl NPlusOneProfile {
    /// The production default: 5 sequential repeats and 50 ms summed (Sentry's thresholds).
    pub const fn production() -> Self {
        Self {
            min_repeats: 5,
            min_total: Duration::from_millis(50),
        }
    }

    /// For development and tests: 2 sequential repeats, any duration (prosopite, django-zeal).
    pub const fn strict() -> Self {
        Self {
            min_repeats: 2,
            min_total: Duration::ZERO,
        }
    }

    /// A custom profile; `min_repeats` below 2 counts as 2.
    pub const fn new(min_repeats: u32, min_total: Duration) -> Self {
        Self {
            min_repeats: if min_repeats < 2 { 2 } else { min_repeats },
            min_total,
        }
    }

    /// Sequential repeats needed.
    pub fn min_repeats(&self) -> u32 {
        self.min_repeats
    }

    /// Summed time needed.
    pub fn min_total(&self) -> Duration {
        self.min_total
    }

    /// Whether these statements are an N+1 under this profile.
    pub fn flags(&self, stats: &FingerprintStats) -> bool {
        stats.fingerprint.operation().is_read()
            && stats.sequential >= self.min_repeats
            && stats.sequential_total >= self.min_total
    }
}
