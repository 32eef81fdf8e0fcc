//! The page's stores: a [`Ring`] per route (at most [`MAX_ROUTES`], the rest share one row), a
//! ring of the last [`SLOW_RING`] slow requests, and the [`WORST`] slowest requests per route
//! within the last [`SLOTS`] × [`SLOT`]. Everything is allocated when a route is first seen;
//! recording a request only locks, compares and copies.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::ring::{Ring, SLOT, SLOTS, Sample};
use crate::{KnownMethod, Outcome, TraceId};

/// Routes with their own row; requests to further routes share the [`OTHER_ROUTES`] row.
pub const MAX_ROUTES: usize = 64;
/// Slow requests kept, newest first.
pub const SLOW_RING: usize = 100;
/// Slowest requests kept per route.
pub const WORST: usize = 5;
/// The row of requests to routes beyond [`MAX_ROUTES`].
pub const OTHER_ROUTES: &str = "(other routes)";

/// The phases the page draws, in `Server-Timing` metric names.
pub(crate) const PHASES: [&str; 4] = ["cache", "db", "app", "budget"];

/// A request as the page keeps it.
#[derive(Debug, Clone)]
pub(crate) struct RequestRecord {
    /// Assigned when it enters the slow ring (0 for worst-only entries).
    pub(crate) seq: u64,
    pub(crate) route: Arc<str>,
    pub(crate) method: KnownMethod,
    /// When it ended, as time since the stores' epoch.
    pub(crate) ended: Duration,
    pub(crate) duration: Duration,
    pub(crate) time_to_headers: Option<Duration>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) outcome: Outcome,
    pub(crate) trace_id: Option<TraceId>,
    /// `Server-Timing` durations of [`PHASES`], in microseconds.
    pub(crate) phases: [Option<u32>; 4],
}

/// One route's row.
#[derive(Debug)]
pub(crate) struct RouteStats {
    pub(crate) label: Arc<str>,
    pub(crate) ring: Mutex<Ring>,
    /// Slowest first.
    pub(crate) worst: Mutex<Vec<RequestRecord>>,
}

impl RouteStats {
    fn new(label: &str) -> Self {
        Self {
            label: label.into(),
            ring: Mutex::default(),
            worst: Mutex::new(Vec::with_capacity(WORST + 1)),
        }
    }
}

/// The page's stores, shared by the layer (writing) and the page's handlers (reading).
#[derive(Debug)]
pub(crate) struct Stores {
    pub(crate) epoch: Instant,
    /// The page's own path: requests to it and under it are not recorded, wherever the layer is.
    page_path: Box<str>,
    routes: RwLock<HashMap<Arc<str>, Arc<RouteStats>, foldhash::fast::RandomState>>,
    other: Arc<RouteStats>,
    slow: Mutex<VecDeque<RequestRecord>>,
    next_seq: Mutex<u64>,
    #[cfg(feature = "db")]
    pub(crate) queries: super::queries::Queries,
}

/// What the layer hands over when a request ends.
pub(crate) struct Ended<'a> {
    pub(crate) route: &'a str,
    pub(crate) method: KnownMethod,
    pub(crate) start: Instant,
    pub(crate) duration: Duration,
    pub(crate) time_to_headers: Option<Duration>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) outcome: Outcome,
    pub(crate) trace_id: Option<TraceId>,
    pub(crate) marks: super::Marks,
    /// The request's statements, from an inner `DbLayer` (none: no query ran, or no layer).
    #[cfg(feature = "db")]
    pub(crate) db: Option<&'a crate::db::DbSummary>,
    /// Whether it reached the route's slow threshold.
    pub(crate) slow: bool,
}

impl Stores {
    pub(crate) fn new(epoch: Instant, page_path: &str) -> Self {
        Self {
            epoch,
            page_path: page_path.into(),
            routes: RwLock::default(),
            other: Arc::new(RouteStats::new(OTHER_ROUTES)),
            slow: Mutex::new(VecDeque::with_capacity(SLOW_RING)),
            next_seq: Mutex::new(1),
            #[cfg(feature = "db")]
            queries: super::queries::Queries::default(),
        }
    }

    /// The tick (slot number) of an instant.
    pub(crate) fn tick(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.epoch).as_millis() / SLOT.as_millis()) as u64
    }

    /// Records one ended request. The end time is `start + duration`: no clock is read.
    pub(crate) fn record(&self, e: &Ended<'_>) {
        if self.is_page(e.route) {
            return;
        }
        let end = e.start + e.duration;
        let stats = self.route(e.route);
        let error = e.outcome == Outcome::ServiceError
            || e.outcome == Outcome::BodyError
            || e.status.is_some_and(|s| s.is_server_error());
        lock(&stats.ring).record(Sample {
            tick: self.tick(end),
            micros: e.duration.as_micros().min(u128::from(u64::MAX)) as u64,
            error,
            cancelled: e.outcome == Outcome::Cancelled,
            cache_hit: e.marks.cache_hit,
        });
        let ended = end.saturating_duration_since(self.epoch);
        #[cfg(feature = "db")]
        if let Some(db) = e.db {
            self.queries.record(db, &stats.label, ended, e.trace_id);
        }
        let worst_candidate = {
            let worst = lock(&stats.worst);
            worst.len() < WORST
                || worst.iter().any(|w| {
                    w.duration < e.duration || ended.saturating_sub(w.ended) > SLOT * SLOTS as u32
                })
        };
        if !worst_candidate && !e.slow {
            return;
        }
        let mut rec = RequestRecord {
            seq: 0,
            route: stats.label.clone(),
            method: e.method,
            ended,
            duration: e.duration,
            time_to_headers: e.time_to_headers,
            status: e.status,
            outcome: e.outcome,
            trace_id: e.trace_id,
            phases: e.marks.phases,
        };
        if e.slow {
            rec.seq = {
                let mut seq = lock(&self.next_seq);
                *seq += 1;
                *seq
            };
            let mut ring = lock(&self.slow);
            if ring.len() == SLOW_RING {
                ring.pop_back();
            }
            ring.push_front(rec.clone());
        }
        if worst_candidate {
            keep_worst(&mut lock(&stats.worst), rec);
        }
    }

    /// Whether a route label is the page's own (its path, or under it).
    fn is_page(&self, route: &str) -> bool {
        route
            .strip_prefix(&*self.page_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The row of a route, created on first sight while there is room.
    fn route(&self, label: &str) -> Arc<RouteStats> {
        if let Some(s) = read(&self.routes).get(label) {
            return s.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if routes.len() >= MAX_ROUTES && !routes.contains_key(label) {
            return self.other.clone();
        }
        routes
            .entry(label.into())
            .or_insert_with(|| Arc::new(RouteStats::new(label)))
            .clone()
    }

    /// Every row, the shared one last when it saw requests.
    pub(crate) fn rows(&self) -> Vec<Arc<RouteStats>> {
        let mut rows: Vec<_> = read(&self.routes).values().cloned().collect();
        rows.sort_by(|a, b| a.label.cmp(&b.label));
        if !lock(&self.other.ring).is_empty() {
            rows.push(self.other.clone());
        }
        rows
    }

    /// Slow requests newer than `since` (a sequence number), newest first.
    pub(crate) fn slow_since(&self, since: u64) -> Vec<RequestRecord> {
        lock(&self.slow)
            .iter()
            .take_while(|r| r.seq > since)
            .cloned()
            .collect()
    }

    /// The highest sequence number given so far.
    pub(crate) fn last_seq(&self) -> u64 {
        *lock(&self.next_seq)
    }

    /// Rows with their own entry (for the memory test).
    pub(crate) fn route_count(&self) -> usize {
        read(&self.routes).len()
    }

    /// Slow requests held (for the memory test).
    pub(crate) fn slow_len(&self) -> usize {
        lock(&self.slow).len()
    }
}

/// Inserts `rec` among the slowest, dropping entries older than the ring's span first, then the
/// fastest beyond [`WORST`].
fn keep_worst(worst: &mut Vec<RequestRecord>, rec: RequestRecord) {
    let span = SLOT * SLOTS as u32;
    worst.retain(|w| rec.ended.saturating_sub(w.ended) <= span);
    let at = worst.partition_point(|w| w.duration >= rec.duration);
    if at < WORST {
        worst.insert(at, rec);
        worst.truncate(WORST);
    }
}

/// Locks, ignoring poisoning: the stores hold plain counters, valid after any panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
