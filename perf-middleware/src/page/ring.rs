//! One route's time-bucketed ring: [`SLOTS`] slots of [`SLOT`] each, every slot a request count,
//! error and cancel counts, the cache's seen and hit counts, the exact maximum and a log-linear
//! latency histogram. Fixed size,
//! allocated once when the route is first seen; recording never allocates.

use std::time::Duration;

/// The width of one slot.
pub(crate) const SLOT: Duration = Duration::from_secs(5);
/// Slots per route: 60 × 5 s = the last 5 minutes.
pub(crate) const SLOTS: usize = 60;
/// Sub-buckets per power of two (the histogram's relative error is below 1/4 = 25 %, halved by
/// reporting the bucket's midpoint, and the maximum is exact).
const SUB: u32 = 4;
/// The first bucket boundary is 2^`MIN_POW` µs (32 µs); faster requests share bucket 0.
const MIN_POW: u32 = 5;
/// Octaves covered: 32 µs to 2^(5+20) µs ≈ 33.5 s; slower requests share the last bucket.
const OCTAVES: u32 = 20;
/// Buckets per slot.
pub(crate) const BUCKETS: usize = (SUB * OCTAVES) as usize;

/// One slot: what ended during one [`SLOT`].
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The slot number (time since the stores' epoch / [`SLOT`]); slots of older ticks are stale.
    tick: u64,
    pub(crate) count: u32,
    pub(crate) errors: u32,
    pub(crate) cancelled: u32,
    /// Responses that carried a `Cache-Status` field.
    pub(crate) cache_seen: u32,
    /// Of those, the ones whose client-nearest cache had `hit`.
    pub(crate) cache_hits: u32,
    pub(crate) max_us: u64,
    pub(crate) buckets: [u32; BUCKETS],
}

impl Slot {
    const EMPTY: Slot = Slot {
        tick: u64::MAX,
        count: 0,
        errors: 0,
        cancelled: 0,
        cache_seen: 0,
        cache_hits: 0,
        max_us: 0,
        buckets: [0; BUCKETS],
    };
}

/// What one request adds to a slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) tick: u64,
    pub(crate) micros: u64,
    pub(crate) error: bool,
    pub(crate) cancelled: bool,
    /// `None` without `Cache-Status`; else whether it was a hit.
    pub(crate) cache_hit: Option<bool>,
}

/// The ring of one route.
#[derive(Debug)]
pub(crate) struct Ring {
    slots: Box<[Slot; SLOTS]>,
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            slots: Box::new([Slot::EMPTY; SLOTS]),
        }
    }
}

impl Ring {
    /// Adds one request to the slot of its tick, clearing the slot first when it held an older
    /// tick.
    pub(crate) fn record(&mut self, s: Sample) {
        let slot = &mut self.slots[(s.tick % SLOTS as u64) as usize];
        if slot.tick != s.tick {
            *slot = Slot::EMPTY;
            slot.tick = s.tick;
        }
        slot.count = slot.count.saturating_add(1);
        slot.errors = slot.errors.saturating_add(u32::from(s.error));
        slot.cancelled = slot.cancelled.saturating_add(u32::from(s.cancelled));
        if let Some(hit) = s.cache_hit {
            slot.cache_seen = slot.cache_seen.saturating_add(1);
            slot.cache_hits = slot.cache_hits.saturating_add(u32::from(hit));
        }
        slot.max_us = slot.max_us.max(s.micros);
        let b = &mut slot.buckets[bucket(s.micros)];
        *b = b.saturating_add(1);
    }

    /// Whether no request was ever recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.tick == u64::MAX)
    }

    /// The slot of `tick`, if it still holds that tick.
    pub(crate) fn slot(&self, tick: u64) -> Option<&Slot> {
        let slot = &self.slots[(tick % SLOTS as u64) as usize];
        (slot.tick == tick).then_some(slot)
    }

    /// The sum of the slots of ticks `from..=to` (at most [`SLOTS`] of them).
    pub(crate) fn window(&self, from: u64, to: u64) -> Slot {
        let mut sum = Slot::EMPTY;
        for tick in from.max(to.saturating_sub(SLOTS as u64 - 1))..=to {
            if let Some(s) = self.slot(tick) {
                sum.count += s.count;
                sum.errors += s.errors;
                sum.cancelled += s.cancelled;
                sum.cache_seen += s.cache_seen;
                sum.cache_hits += s.cache_hits;
                sum.max_us = sum.max_us.max(s.max_us);
                for (a, b) in sum.buckets.iter_mut().zip(&s.buckets) {
                    *a += b;
                }
            }
        }
        sum
    }
}

/// The bucket of a duration in microseconds.
pub(crate) fn bucket(micros: u64) -> usize {
    if micros < 1 << MIN_POW {
        return 0;
    }
    let pow = 63 - micros.leading_zeros(); // ≥ MIN_POW
    let sub = (micros >> (pow - SUB.trailing_zeros())) & u64::from(SUB - 1);
    let i = (pow - MIN_POW) * SUB + sub as u32;
    (i as usize).min(BUCKETS - 1)
}

/// The midpoint of bucket `i`, in microseconds.
fn midpoint(i: usize) -> f64 {
    let i = i as u32;
    let pow = MIN_POW + i / SUB;
    let width = (1u64 << pow) as f64 / f64::from(SUB);
    let lower = (1u64 << pow) as f64 + width * f64::from(i % SUB);
    if i == 0 {
        lower / 2.0
    } else {
        lower + width / 2.0
    }
}

/// The `q` quantile (0–1) of a slot's histogram, in microseconds, never above its maximum;
/// `None` when the slot is empty.
pub(crate) fn quantile(s: &Slot, q: f64) -> Option<f64> {
    if s.count == 0 {
        return None;
    }
    let rank = (q * f64::from(s.count)).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, n) in s.buckets.iter().enumerate() {
        seen += u64::from(*n);
        if seen >= rank {
            return Some(midpoint(i).min(s.max_us as f64));
        }
    }
    Some(s.max_us as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut last = 0;
        for us in [
            0,
            31,
            32,
            39,
            40,
            63,
            64,
            1_000,
            250_000,
            33_000_000,
            u64::MAX,
        ] {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us} µs → {b}");
            last = b;
        }
        assert_eq!(bucket(32), 0);
        assert_eq!(bucket(40), 1);
        assert_eq!(bucket(64), 4);
    }

    #[test]
    fn quantiles_are_within_the_bucket_error() {
        let mut ring = Ring::default();
        for us in 1..=1000u64 {
            ring.record(Sample {
                tick: 7,
                micros: us * 100,
                error: us % 10 == 0,
                cancelled: false,
                cache_hit: (us % 2 == 0).then_some(us % 4 == 0),
            });
        }
        let w = ring.window(0, 7);
        assert_eq!((w.count, w.errors, w.max_us), (1000, 100, 100_000));
        assert_eq!((w.cache_seen, w.cache_hits), (500, 250));
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0)] {
            let got = quantile(&w, q).unwrap();
            assert!((got - want).abs() / want < 0.13, "q{q}: {got} vs {want}");
        }
        // The slot is reused for tick 67 and no longer answers for tick 7.
        ring.record(Sample {
            tick: 67,
            micros: 1,
            error: false,
            cancelled: true,
            cache_hit: None,
        });
        assert!(ring.slot(7).is_none());
        assert_eq!(ring.window(60, 67).cancelled, 1);
    }
}
