//! The per-route sliding window: a ring of time slots, each with exact counters and a histogram.
//!
//! A slot is claimed for a new epoch by one compare-and-swap; the winner folds the old counts
//! into the cumulative totals and zeroes the slot. Increments racing with that rotation may be
//! lost (a handful at a slot boundary, documented); nothing blocks and nothing allocates.
//! Latencies also go to one histogram since start, never reset, which is diffed between two
//! reports (`BudgetReport::since`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use crate::histogram::{AtomicHistogram, LatencyHistogram, TotalHistogram};

/// Maps instants to slot epochs (1-based; 0 means "never used").
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    slot_nanos: u64,
}

impl Clock {
    pub(crate) fn new(start: Instant, slot: Duration) -> Self {
        let slot_nanos = u64::try_from(slot.as_nanos()).unwrap_or(u64::MAX).max(1);
        Self { start, slot_nanos }
    }
    /// Nanoseconds since the clock's start: the request path's one time conversion per reading
    /// (latencies are differences of these, epochs are derived from them).
    pub(crate) fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }
    /// The epoch of a time given in [`nanos`](Self::nanos): `nanos / slot + 1`.
    pub(crate) fn epoch_at(&self, nanos: u64) -> u64 {
        (nanos / self.slot_nanos).saturating_add(1)
    }
    pub(crate) fn epoch(&self, now: Instant) -> u64 {
        self.epoch_at(self.nanos(now))
    }
    pub(crate) fn start(&self) -> Instant {
        self.start
    }
    pub(crate) fn slot(&self) -> Duration {
        Duration::from_nanos(self.slot_nanos)
    }
}

#[derive(Debug)]
struct Slot {
    epoch: AtomicU64,
    total: AtomicU64,
    errors: AtomicU64,
    cancelled: AtomicU64,
    shed: AtomicU64,
    over: Box<[AtomicU64]>,
    hist: AtomicHistogram,
}

/// Counters summed over some slots (or cumulative).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub(crate) total: u64,
    pub(crate) errors: u64,
    pub(crate) cancelled: u64,
    pub(crate) shed: u64,
    pub(crate) over: Vec<u64>,
}

/// One route's ring of slots (the configured number rounded up to a power of two, so a slot is
/// found with a mask; sums only read the slots of the epochs asked for). Built from each latency objective's `(threshold_ns, inclusive)`;
/// `slow_from[i]` is the smallest latency (ns) that misses the i-th one.
#[derive(Debug)]
pub(crate) struct Window {
    slots: Box<[Slot]>,
    /// `slots.len() - 1`.
    mask: u64,
    slow_from: Box<[u64]>,
    folded: [AtomicU64; 4],
    folded_over: Box<[AtomicU64]>,
    /// Every latency since start.
    total_hist: TotalHistogram,
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Window {
    pub(crate) fn new(slots: usize, thresholds: Vec<(u64, bool)>) -> Self {
        let k = thresholds.len();
        let ring = slots.max(1).next_power_of_two();
        Self {
            mask: ring as u64 - 1,
            slots: (0..ring)
                .map(|_| Slot {
                    epoch: AtomicU64::new(0),
                    total: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    cancelled: AtomicU64::new(0),
                    shed: AtomicU64::new(0),
                    over: zeros(k),
                    hist: AtomicHistogram::new(),
                })
                .collect(),
            // `< t` misses from t on, `<= t` from t + 1 on.
            slow_from: thresholds
                .iter()
                .map(|&(t, inclusive)| if inclusive { t.saturating_add(1) } else { t })
                .collect(),
            folded: Default::default(),
            folded_over: zeros(k),
            total_hist: TotalHistogram::new(),
        }
    }

    fn slot(&self, epoch: u64) -> &Slot {
        let s = &self.slots[(epoch & self.mask) as usize];
        let seen = s.epoch.load(Relaxed);
        if seen < epoch
            && s.epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            self.fold(s);
        }
        s
    }

    fn fold(&self, s: &Slot) {
        for (dst, src) in self
            .folded
            .iter()
            .zip([&s.total, &s.errors, &s.cancelled, &s.shed])
        {
            dst.fetch_add(src.swap(0, Relaxed), Relaxed);
        }
        for (dst, src) in self.folded_over.iter().zip(s.over.iter()) {
            dst.fetch_add(src.swap(0, Relaxed), Relaxed);
        }
        s.hist.clear();
    }

    /// Records a finished request. Fixed cost: 2 + objectives (at most) relaxed adds + 2
    /// histogram adds (the slot's and the one since start).
    pub(crate) fn record(&self, epoch: u64, nanos: u64, error: bool) {
        let s = self.slot(epoch);
        s.total.fetch_add(1, Relaxed);
        if error {
            s.errors.fetch_add(1, Relaxed);
        }
        for (c, &from) in s.over.iter().zip(self.slow_from.iter()) {
            if nanos >= from {
                c.fetch_add(1, Relaxed);
            }
        }
        s.hist.record(nanos / 1000);
        self.total_hist.record(nanos / 1000);
    }

    /// Counts a shed request (it is also recorded as a request by the caller).
    pub(crate) fn shed(&self, epoch: u64) {
        self.slot(epoch).shed.fetch_add(1, Relaxed);
    }

    /// Counts a request whose future or body was dropped before it finished.
    pub(crate) fn cancelled(&self, epoch: u64) {
        self.slot(epoch).cancelled.fetch_add(1, Relaxed);
    }

    /// Sums the `k` most recent slots up to and including `epoch`.
    pub(crate) fn sums(&self, epoch: u64, k: usize, hist: Option<&mut LatencyHistogram>) -> Sums {
        let mut out = Sums {
            over: vec![0; self.slow_from.len()],
            ..Sums::default()
        };
        let lo = epoch.saturating_sub(k as u64);
        let mut hist = hist;
        for s in self.slots.iter() {
            let e = s.epoch.load(Relaxed);
            if e <= lo || e > epoch {
                continue;
            }
            out.add(s);
            if let Some(h) = hist.as_deref_mut() {
                s.hist.add_to(h);
            }
        }
        out
    }

    /// Every latency recorded since the start.
    pub(crate) fn total_latency(&self) -> LatencyHistogram {
        self.total_hist.snapshot()
    }

    /// Everything recorded since the start.
    pub(crate) fn cumulative(&self) -> Sums {
        let mut out = Sums {
            total: self.folded[0].load(Relaxed),
            errors: self.folded[1].load(Relaxed),
            cancelled: self.folded[2].load(Relaxed),
            shed: self.folded[3].load(Relaxed),
            over: self.folded_over.iter().map(|c| c.load(Relaxed)).collect(),
        };
        for s in self.slots.iter() {
            out.add(s);
        }
        out
    }
}

impl Sums {
    fn add(&mut self, s: &Slot) {
        self.total += s.total.load(Relaxed);
        self.errors += s.errors.load(Relaxed);
        self.cancelled += s.cancelled.load(Relaxed);
        self.shed += s.shed.load(Relaxed);
        for (o, c) in self.over.iter_mut().zip(s.over.iter()) {
            *o += c.load(Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[tokio::test(start_paused = true)]
    async fn window_rolls_and_forgets() {
        let clock = Clock::new(Instant::now(), Duration::from_secs(5));
        let w = Window::new(4, vec![(100 * MS, false)]);
        let now = || clock.epoch(Instant::now());
        w.record(now(), 150 * MS, true);
        w.record(now(), 100 * MS, false); // exactly at the threshold counts as over for `<`
        w.record(now(), 99 * MS, false);
        let s = w.sums(now(), 4, None);
        assert_eq!((s.total, s.errors, s.over[0]), (3, 1, 2));

        tokio::time::advance(Duration::from_secs(5)).await;
        w.record(now(), MS, false);
        assert_eq!(w.sums(now(), 4, None).total, 4);
        assert_eq!(
            w.sums(now(), 1, None).total,
            1,
            "the short window sees only the new slot"
        );

        // 4 slots of 5 s: after 20 s the first slot has left the window.
        tokio::time::advance(Duration::from_secs(15)).await;
        let s = w.sums(now(), 4, None);
        assert_eq!((s.total, s.errors, s.over[0]), (1, 0, 0));
        // Reusing the slot folds its old counts into the cumulative totals exactly once.
        w.record(now(), MS, false);
        let c = w.cumulative();
        assert_eq!((c.total, c.errors, c.over[0]), (5, 1, 2));
        assert_eq!(w.sums(now(), 4, None).total, 2);

        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            w.sums(now(), 4, None),
            Sums {
                over: vec![0],
                ..Sums::default()
            }
        );
        assert_eq!(w.cumulative().total, 5);
    }
}
