//! The `perf.cache.l2.*` metrics. Labels are small fixed sets (`op`, `result`, `reason`, `dir`,
//! `kind`), never keys or tags. Without the `metrics` feature every function does nothing.
#![cfg_attr(
    not(feature = "metrics"),
    allow(
        unused_variables,
        dead_code,
        reason = "recorded only with the metrics feature"
    )
)]

use std::time::Duration;

/// `perf.cache.l2.ops{op, result}`: Redis operations by result.
pub(crate) const OPS: &str = "perf.cache.l2.ops";
/// `perf.cache.l2.duration{op}`: Redis operation latency, seconds.
pub(crate) const DURATION: &str = "perf.cache.l2.duration";
/// `perf.cache.l2.breaker_state`: 0 closed, 1 half-open, 2 open.
pub(crate) const BREAKER: &str = "perf.cache.l2.breaker_state";
/// `perf.cache.l2.write_queue`: entries waiting to be written to Redis.
pub(crate) const QUEUE: &str = "perf.cache.l2.write_queue";
/// `perf.cache.l2.writes_dropped{reason}`: writes not sent to Redis.
pub(crate) const DROPPED: &str = "perf.cache.l2.writes_dropped";
/// `perf.cache.l2.invalidations{dir, kind}`: bus messages sent and received.
pub(crate) const INVALIDATIONS: &str = "perf.cache.l2.invalidations";
/// `perf.cache.l2.invalidation_lag`: seconds from a purge to its receipt on another instance.
pub(crate) const LAG: &str = "perf.cache.l2.invalidation_lag";
/// `perf.cache.l2.resyncs{reason}`: L1 flushes because purges may have been missed.
pub(crate) const RESYNCS: &str = "perf.cache.l2.resyncs";
/// `perf.cache.l2.pending_purges`: purges made while Redis was unreachable, waiting to be sent.
pub(crate) const PENDING: &str = "perf.cache.l2.pending_purges";
/// `perf.cache.l2.bus_up`: 1 while the invalidation bus is live.
pub(crate) const BUS_UP: &str = "perf.cache.l2.bus_up";
/// `perf.cache.l2.decode_failures{reason}`: Redis values that were not usable entries.
pub(crate) const DECODE_FAILURES: &str = "perf.cache.l2.decode_failures";

/// `perf.cache.l2.fills{result}`: cold misses coordinated across instances (`coalesce_misses`):
/// `leader`, `follower_hit`, `follower_timeout`, `follower_unfilled` (the holder stored nothing),
/// `skipped` (breaker open), `error`.
pub(crate) const FILLS: &str = "perf.cache.l2.fills";

pub(crate) fn fill(result: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(FILLS, "result" => result).increment(1);
}

pub(crate) fn op(op: &'static str, result: &'static str, took: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(OPS, "op" => op, "result" => result).increment(1);
        if let Some(took) = took {
            metrics::histogram!(DURATION, "op" => op).record(took.as_secs_f64());
        }
    }
}

pub(crate) fn breaker(state: u8) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(BREAKER).set(f64::from(state));
}

pub(crate) fn queue(depth: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(QUEUE).set(depth as f64);
}

pub(crate) fn pending(n: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(PENDING).set(n as f64);
}

pub(crate) fn dropped(reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(DROPPED, "reason" => reason).increment(1);
}

pub(crate) fn invalidation(dir: &'static str, kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(INVALIDATIONS, "dir" => dir, "kind" => kind).increment(1);
}

pub(crate) fn lag(lag: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(LAG).record(lag.as_secs_f64());
}

pub(crate) fn resync(reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(RESYNCS, "reason" => reason).increment(1);
}

pub(crate) fn bus_up(up: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(BUS_UP).set(if up { 1.0 } else { 0.0 });
}

pub(crate) fn decode_failure(reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(DECODE_FAILURES, "reason" => reason).increment(1);
}

/// Describes the L2 metrics to the installed recorder (called when a store is built).
pub(crate) fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            OPS,
            Unit::Count,
            "Redis operations of the cache's L2, by op and result."
        );
        describe_histogram!(
            DURATION,
            Unit::Seconds,
            "Latency of the cache's Redis operations."
        );
        describe_gauge!(BREAKER, "The L2 breaker: 0 closed, 1 half-open, 2 open.");
        describe_gauge!(QUEUE, Unit::Count, "Writes waiting for Redis.");
        describe_counter!(DROPPED, Unit::Count, "Writes not sent to Redis, by reason.");
        describe_counter!(
            INVALIDATIONS,
            Unit::Count,
            "Invalidation messages sent, received, and replayed after Redis came back."
        );
        describe_histogram!(
            LAG,
            Unit::Seconds,
            "Time from a purge to its receipt by another instance."
        );
        describe_counter!(
            RESYNCS,
            Unit::Count,
            "L1 flushes because purges may have been missed."
        );
        describe_gauge!(
            PENDING,
            Unit::Count,
            "Purges made while Redis was unreachable, waiting to be sent."
        );
        describe_gauge!(BUS_UP, "1 while the invalidation bus is live.");
        describe_counter!(
            FILLS,
            Unit::Count,
            "Cold misses coordinated across instances, by role and result."
        );
        describe_counter!(
            DECODE_FAILURES,
            Unit::Count,
            "Redis values that were not usable entries."
        );
    }
}
