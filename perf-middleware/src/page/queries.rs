//! The queries card's stores (features `page` and `db`): the top [`TOP_FINGERPRINTS`] statement
//! fingerprints by summed time since start, and the last [`N_PLUS_ONE_RING`] N+1 detections, fed
//! from the [`DbSummary`] an inner `DbLayer` puts in the response extensions.
//!
//! The top list is a space-saving top-k (Metwally, Agrawal, El Abbadi, 2005), weighted by time:
//! a fingerprint already listed adds to its entry; a new one takes a free entry, or, when all are
//! taken, replaces the entry with the smallest summed time and inherits its count and time
//! (its `error`). A fingerprint whose true summed time exceeds the smallest listed
//! one is therefore never pushed out by a stream of rare ones, and every listed figure is at most
//! `error` above the truth (exact when `error` is 0).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::TraceId;
use crate::db::DbSummary;
use crate::db::fingerprint::Fingerprint;

use super::store::lock;

/// Fingerprints in the top list.
pub const TOP_FINGERPRINTS: usize = 20;
/// N+1 detections kept, newest first.
pub const N_PLUS_ONE_RING: usize = 20;

/// One fingerprint of the top list.
#[derive(Debug, Clone)]
pub(crate) struct TopEntry {
    pub(crate) fingerprint: Arc<Fingerprint>,
    pub(crate) count: u64,
    pub(crate) total: Duration,
    /// The longest statement since it entered the list.
    pub(crate) max: Duration,
    /// The time inherited from the entry it replaced: the most `total` overstates (`count`
    /// overstates by that entry's count likewise).
    pub(crate) error: Duration,
}

/// One request flagged as N+1.
#[derive(Debug, Clone)]
pub(crate) struct Detection {
    pub(crate) route: Arc<str>,
    pub(crate) fingerprint: Arc<Fingerprint>,
    /// Statements of that fingerprint in the request, and their summed time.
    pub(crate) count: u32,
    pub(crate) total: Duration,
    /// When the request ended, as time since the stores' epoch.
    pub(crate) ended: Duration,
    pub(crate) trace_id: Option<TraceId>,
}

/// The top list and the detections ring.
#[derive(Debug)]
pub(crate) struct Queries {
    top: Mutex<Vec<TopEntry>>,
    detections: Mutex<VecDeque<Detection>>,
}

impl Default for Queries {
    fn default() -> Self {
        Self {
            top: Mutex::new(Vec::with_capacity(TOP_FINGERPRINTS)),
            detections: Mutex::new(VecDeque::with_capacity(N_PLUS_ONE_RING)),
        }
    }
}

impl Queries {
    /// Adds one request's statements. Copies `Arc`s into preallocated storage: no allocation.
    pub(crate) fn record(
        &self,
        summary: &DbSummary,
        route: &Arc<str>,
        ended: Duration,
        trace_id: Option<TraceId>,
    ) {
        if summary.fingerprints.is_empty() {
            return;
        }
        {
            let mut top = lock(&self.top);
            for s in &summary.fingerprints {
                add(&mut top, &s.fingerprint, u64::from(s.count), s.total, s.max);
            }
        }
        if summary.n_plus_one.is_empty() {
            return;
        }
        let mut ring = lock(&self.detections);
        for fp in &summary.n_plus_one {
            let stats = summary
                .fingerprints
                .iter()
                .find(|s| s.fingerprint.hash() == fp.hash());
            if ring.len() == N_PLUS_ONE_RING {
                ring.pop_back();
            }
            ring.push_front(Detection {
                route: route.clone(),
                fingerprint: fp.clone(),
                count: stats.map_or(0, |s| s.count),
                total: stats.map_or(Duration::ZERO, |s| s.total),
                ended,
                trace_id,
            });
        }
    }

    /// The top list, largest summed time first.
    pub(crate) fn top(&self) -> Vec<TopEntry> {
        let mut top = lock(&self.top).clone();
        top.sort_by_key(|e| std::cmp::Reverse(e.total));
        top
    }

    /// The detections, newest first.
    pub(crate) fn detections(&self) -> Vec<Detection> {
        lock(&self.detections).iter().cloned().collect()
    }

    /// Entries held: (fingerprints, detections).
    pub(crate) fn len(&self) -> (usize, usize) {
        (lock(&self.top).len(), lock(&self.detections).len())
    }
}

/// The space-saving step (see the module docs).
fn add(top: &mut Vec<TopEntry>, fp: &Arc<Fingerprint>, count: u64, total: Duration, max: Duration) {
    if let Some(e) = top.iter_mut().find(|e| e.fingerprint.hash() == fp.hash()) {
        e.count = e.count.saturating_add(count);
        e.total = e.total.saturating_add(total);
        e.max = e.max.max(max);
        return;
    }
    if top.len() < TOP_FINGERPRINTS {
        top.push(TopEntry {
            fingerprint: fp.clone(),
            count,
            total,
            max,
            error: Duration::ZERO,
        });
        return;
    }
    if let Some(min) = top.iter_mut().min_by_key(|e| e.total) {
        *min = TopEntry {
            fingerprint: fp.clone(),
            count: min.count.saturating_add(count),
            total: min.total.saturating_add(total),
            max,
            error: min.total,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(i: usize) -> Arc<Fingerprint> {
        Arc::new(Fingerprint::of(&format!("SELECT c{i} FROM t")))
    }

    #[test]
    fn heavy_fingerprints_survive_a_stream_of_rare_ones() {
        let mut top = Vec::new();
        let heavy = fp(1_000_000);
        let ms = Duration::from_millis;
        for i in 0..10_000 {
            add(&mut top, &fp(i), 1, ms(1), ms(1));
            if i % 100 == 0 {
                add(&mut top, &heavy, 1, ms(50), ms(50));
            }
        }
        assert_eq!(top.len(), TOP_FINGERPRINTS);
        let h = top
            .iter()
            .find(|e| e.fingerprint.hash() == heavy.hash())
            .expect("the heavy fingerprint is listed");
        assert_eq!((h.count, h.total, h.max), (100, ms(5_000), ms(50)));
        assert_eq!(h.error, Duration::ZERO, "listed from its first sight");
        // A replaced entry carries what it inherited.
        assert!(top.iter().any(|e| e.error > Duration::ZERO));
        assert!(top.iter().all(|e| e.total >= e.error));
    }
}
