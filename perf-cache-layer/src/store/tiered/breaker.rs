//! The circuit breaker in front of Redis: after repeated failures the store skips Redis for a
//! while (one atomic load per request), then lets one probe through.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const CLOSED: u8 = 0;
const HALF_OPEN: u8 = 1;
const OPEN: u8 = 2;

/// Breaker state: closed (Redis used), open (skipped), half-open (one probe in flight).
#[derive(Debug)]
pub(crate) struct Breaker {
    state: AtomicU8,
    failures: AtomicU32,
    opened_at_ms: AtomicU64,
    base: Instant,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
            base: Instant::now(),
            threshold: threshold.max(1),
            open_for,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call may go to Redis now. While open, the first caller after `open_for` becomes
    /// the half-open probe; everyone else is skipped until the probe reports.
    pub(crate) fn allow(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN => {
                let since = self
                    .now_ms()
                    .saturating_sub(self.opened_at_ms.load(Ordering::Relaxed));
                since >= u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX)
                    && self
                        .state
                        .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    && {
                        super::stats::breaker(HALF_OPEN);
                        true
                    }
            }
            _ => false,
        }
    }

    /// The numeric state (0 closed, 1 half-open, 2 open), as the gauge reports it.
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// A call succeeded: close.
    pub(crate) fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            super::stats::breaker(CLOSED);
        }
    }

    /// A Redis error: a failure when Redis is unreachable, a success when Redis answered (an
    /// out-of-memory or wrong-type reply says the server is up; it must not open the breaker).
    pub(crate) fn report(&self, err: &redis::RedisError) {
        if err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
        {
            self.failure();
        } else {
            self.success();
        }
    }

    /// A call failed or timed out: open after `threshold` in a row, or at once from half-open.
    pub(crate) fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let state = self.state.load(Ordering::Acquire);
        if state == HALF_OPEN || (state == CLOSED && n >= self.threshold) {
            self.opened_at_ms.store(self.now_ms(), Ordering::Relaxed);
            self.state.store(OPEN, Ordering::Release);
            super::stats::breaker(OPEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_half_opens_with_one_probe() {
        let b = Breaker::new(3, Duration::from_secs(2));
        assert!(b.allow());
        b.failure();
        b.failure();
        assert_eq!(b.state(), CLOSED);
        b.failure();
        assert_eq!(b.state(), OPEN);
        assert!(!b.allow());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.allow(), "the first caller after the window is the probe");
        assert!(!b.allow(), "only one probe");
        b.failure();
        assert_eq!(b.state(), OPEN);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), CLOSED);
        assert!(b.allow());
    }
}
