//! The one latency histogram of the crate and its CLI: log-linear buckets of microseconds,
//! lock-free per window slot ([`AtomicHistogram`]) and per budget since start
//! ([`TotalHistogram`]), merged into a [`LatencyHistogram`] to *report* quantiles. Decisions
//! never use it: they come from exact counters.
//!
//! Values below 64 µs are exact; above, each octave is split into 32 equal buckets, up to
//! 2^26 µs (about 67 s); larger values share one overflow bucket. A quantile is reported as the
//! midpoint of the bucket holding the nearest-rank sample, so its relative error is at most
//! 1/64 ≈ **1.56 %** (`REL_ERROR`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per octave.
const SUB: u64 = 32;
/// Largest exactly-represented value + 1.
const LINEAR: u64 = 2 * SUB;
/// Highest octave (most significant bit) kept; above it values overflow.
const MAX_MSB: u32 = 25;
/// Number of buckets, the last one being the overflow bucket.
pub(crate) const BUCKETS: usize = (LINEAR + (MAX_MSB as u64 - 5) * SUB) as usize + 1;
/// The stated bound on the relative error of reported quantiles (values ≥ 64 µs).
pub(crate) const REL_ERROR: f64 = 1.0 / 64.0;

/// The bucket index of a value in µs.
#[inline]
pub(crate) fn index(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    if msb > MAX_MSB {
        return BUCKETS - 1;
    }
    let shift = msb - 5;
    let top = us >> shift; // 32..=63
    (LINEAR + u64::from(msb - 6) * SUB + (top - SUB)) as usize
}

/// The `[low, high)` range of a bucket in µs (the overflow bucket reports `[2^26, 2^26]`).
pub(crate) fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < LINEAR {
        return (i, i + 1);
    }
    if i as usize >= BUCKETS - 1 {
        return (1 << (MAX_MSB + 1), 1 << (MAX_MSB + 1));
    }
    let k = i - LINEAR;
    let msb = 6 + k / SUB;
    let top = SUB + k % SUB;
    let shift = msb - 5;
    (top << shift, (top + 1) << shift)
}

fn representative(i: usize) -> u64 {
    let (lo, hi) = bounds(i);
    if hi - lo <= 1 { lo } else { lo + (hi - lo) / 2 }
}

/// One slot's histogram: atomic counters, shared by all requests.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU32]>,
}

impl AtomicHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
    #[inline]
    pub(crate) fn record(&self, us: u64) {
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn clear(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }
    pub(crate) fn add_to(&self, c: &mut LatencyHistogram) {
        for (dst, b) in c.buckets.iter_mut().zip(self.buckets.iter()) {
            *dst += u64::from(b.load(Ordering::Relaxed));
        }
    }
}

/// One budget's latencies since start: 64-bit atomic counters (never reset, never wrap in
/// practice), so two reports can be diffed into the latencies between them.
#[derive(Debug)]
pub(crate) struct TotalHistogram {
    buckets: Box<[AtomicU64]>,
}

impl TotalHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    /// One relaxed add.
    #[inline]
    pub(crate) fn record(&self, us: u64) {
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// Request latencies in log-linear buckets: exact below 64 µs, then 32 buckets per octave up to
/// about 67 s (larger values share one bucket), so a reported quantile is within
/// [`RELATIVE_ERROR`](Self::RELATIVE_ERROR) (1/64 ≈ 1.56 %) of the true one.
///
/// The layer reports its p50/p95/p99 from the sum of its window's slots, and each budget's
/// latencies since start ([`BudgetEntry::total_latency`](crate::report::BudgetEntry::total_latency)),
/// whose difference between two reports gives the quantiles of the traffic between them
/// ([`BudgetReport::since`](crate::BudgetReport::since)); the `perf-budget gate` command
/// records its client-side latencies in the same type, so all views are quantized alike.
///
/// With the `serde` feature it serializes compactly, as the non-empty buckets only:
/// `[[from_us, count], ...]`, each bucket named by its lower bound in µs (a bucket runs to the
/// next one: 1 µs wide below 64 µs, 1/32 of an octave above, the last one from 2^26 µs on).
///
/// ```
/// use std::time::Duration;
/// use perf_budget::LatencyHistogram;
///
/// let mut h = LatencyHistogram::new();
/// for us in 1..=10_000u64 {
///     h.record(Duration::from_micros(us));
/// }
/// let p95 = h.quantile(0.95).unwrap().as_micros() as f64;
/// assert!((p95 - 9_500.0).abs() / 9_500.0 <= LatencyHistogram::RELATIVE_ERROR);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(into = "Buckets", from = "Buckets")
)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
}

/// The serde form of a [`LatencyHistogram`]: `[from_us, count]` per non-empty bucket.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Buckets(Vec<[u64; 2]>);

#[cfg(feature = "serde")]
impl From<LatencyHistogram> for Buckets {
    fn from(h: LatencyHistogram) -> Self {
        let non_empty = h.buckets.iter().enumerate().filter(|(_, c)| **c > 0);
        Self(non_empty.map(|(i, &c)| [bounds(i).0, c]).collect())
    }
}

#[cfg(feature = "serde")]
impl From<Buckets> for LatencyHistogram {
    fn from(b: Buckets) -> Self {
        let mut h = Self::default();
        for [from_us, count] in b.0 {
            h.buckets[index(from_us)] += count;
        }
        h
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
        }
    }
}

impl LatencyHistogram {
    /// The bound on the relative error of a reported quantile (values of 64 µs and more).
    pub const RELATIVE_ERROR: f64 = REL_ERROR;

    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        self.record_n(latency, 1);
    }

    /// Adds `n` requests of the same latency.
    pub fn record_n(&mut self, latency: Duration, n: u64) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[index(us)] += n;
    }

    /// The number of latencies recorded.
    pub fn len(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The nearest-rank `q` quantile (`0.95` for p95), or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.quantile_us(q).map(Duration::from_micros)
    }

    /// The largest latency recorded (within the same error), or `None` when empty.
    pub fn max(&self) -> Option<Duration> {
        self.quantile(1.0)
    }

    /// The latencies recorded after `earlier`, an earlier state of the same histogram: the
    /// bucket-wise difference, or `None` when a bucket went down (not the same histogram, or
    /// its process restarted).
    ///
    /// ```
    /// use std::time::Duration;
    /// use perf_budget::LatencyHistogram;
    ///
    /// let mut h = LatencyHistogram::new();
    /// h.record_n(Duration::from_millis(50), 100);
    /// let before = h.clone();
    /// h.record_n(Duration::from_millis(10), 100);
    /// let run = h.since(&before).unwrap();
    /// assert_eq!(run.len(), 100);
    /// assert!(run.quantile(0.99).unwrap() < Duration::from_millis(11));
    /// assert_eq!(before.since(&h), None, "counts that went down");
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Option<Self> {
        let buckets = (self.buckets.iter().zip(&earlier.buckets))
            .map(|(now, then)| now.checked_sub(*then))
            .collect::<Option<Vec<u64>>>()?;
        Some(Self { buckets })
    }

    /// The nearest-rank `q` quantile in µs (bucket midpoint), or `None` when empty.
    pub(crate) fn quantile_us(&self, q: f64) -> Option<u64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(representative(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_monotonic_and_bounds_contain_values() {
        let mut last = 0;
        for us in (0..5_000_000u64)
            .step_by(7)
            .chain([u64::MAX, 1 << 26, (1 << 26) - 1])
        {
            let i = index(us);
            let (lo, hi) = bounds(i);
            if i < BUCKETS - 1 {
                assert!(lo <= us && us < hi, "{us} not in [{lo},{hi}) of {i}");
                assert!((hi - lo) as f64 / lo.max(1) as f64 <= 1.0 / 32.0 || us < 64);
            }
            if us < 5_000_000 {
                assert!(i >= last);
                last = i;
            }
        }
        assert_eq!(index((1 << 26) - 1), BUCKETS - 2);
        assert_eq!(index(1 << 26), BUCKETS - 1);
        assert_eq!(BUCKETS, 705);
    }

    /// xorshift64* + Box-Muller: deterministic samples without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next_f64(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.next_f64(), self.next_f64());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
        fn lognormal(&mut self, median_us: f64, sigma: f64) -> u64 {
            (median_us * (sigma * self.normal()).exp()).round().max(1.0) as u64
        }
    }

    fn worst_error(samples: &mut [u64]) -> f64 {
        let h = AtomicHistogram::new();
        for &s in samples.iter() {
            h.record(s);
        }
        let mut c = LatencyHistogram::default();
        h.add_to(&mut c);
        samples.sort_unstable();
        let mut worst: f64 = 0.0;
        for q in [0.5, 0.95, 0.99] {
            let rank = (q * samples.len() as f64).ceil() as usize;
            let exact = samples[rank - 1] as f64;
            let est = c.quantile_us(q).unwrap() as f64;
            let err = (est - exact).abs() / exact;
            assert!(
                err <= REL_ERROR,
                "q{q}: estimate {est} vs exact {exact}: {err}"
            );
            worst = worst.max(err);
        }
        worst
    }

    #[test]
    fn quantiles_within_stated_error_on_1m_samples_of_two_distributions() {
        let mut rng = Rng(42);
        let mut lognormal: Vec<u64> = (0..1_000_000)
            .map(|_| rng.lognormal(20_000.0, 0.8))
            .collect();
        let mut bimodal: Vec<u64> = (0..1_000_000)
            .map(|i| {
                if i % 100 < 3 {
                    rng.lognormal(400_000.0, 0.5)
                } else {
                    rng.lognormal(5_000.0, 0.3)
                }
            })
            .collect();
        let a = worst_error(&mut lognormal);
        let b = worst_error(&mut bimodal);
        println!(
            "worst relative error: log-normal {:.3} %, bimodal {:.3} %",
            a * 100.0,
            b * 100.0
        );
        assert!(
            a > 0.0 && b > 0.0,
            "errors of exactly zero mean the test compares nothing"
        );
    }
}
