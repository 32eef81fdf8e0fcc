//! Metric names (recorded through the `metrics` facade), their descriptions, and the per-outcome
//! request counters.
//!
//! Names follow the family convention: dotted, in the `perf.cache.` namespace, with units described
//! once. Labels carry only small fixed sets (`outcome`, `kind`), never keys, paths or tags.
//! Without the `metrics` feature every function here does nothing.
#![cfg_attr(
    not(feature = "metrics"),
    allow(
        dead_code,
        reason = "the names are recorded only with the metrics feature"
    )
)]

#[cfg(feature = "metrics")]
use std::sync::OnceLock;

#[cfg(feature = "metrics")]
use metrics::{Counter, Unit};

pub(crate) const REQUESTS: &str = "perf.cache.requests";
pub(crate) const REVALIDATIONS: &str = "perf.cache.revalidations";
pub(crate) const COALESCED: &str = "perf.cache.coalesced_waits";
pub(crate) const INVALIDATIONS: &str = "perf.cache.invalidations";
pub(crate) const PURGES: &str = "perf.cache.purges";
pub(crate) const SHARED_HITS: &str = "perf.cache.l2.served_hits";
pub(crate) const STORED_BYTES: &str = "perf.cache.store.bytes";
pub(crate) const EVICTIONS: &str = "perf.cache.store.evictions";

/// Adds one to the counter `name` (one without labels).
pub(crate) fn increment(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = name;
}

/// Counts a purge of `kind` (`tag`, `soft_tag` or `all`).
pub(crate) fn purged(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(PURGES, "kind" => kind).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// Sets the in-memory store's size gauge.
pub(crate) fn stored_bytes(bytes: u64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(STORED_BYTES).set(bytes as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = bytes;
}

/// Describes every metric to the installed recorder (called when a layer or store is built).
#[cfg(feature = "metrics")]
pub(crate) fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        Unit::Count,
        "Requests seen by the HTTP cache, by outcome (hit, miss, stale, revalidated, collapsed, bypass, only-if-cached, shed)."
    );
    metrics::describe_counter!(
        REVALIDATIONS,
        Unit::Count,
        "Revalidations of stored responses with the inner service."
    );
    metrics::describe_counter!(
        COALESCED,
        Unit::Count,
        "Requests that waited for an identical in-flight miss."
    );
    metrics::describe_counter!(
        INVALIDATIONS,
        Unit::Count,
        "Invalidations after unsafe methods."
    );
    metrics::describe_counter!(
        PURGES,
        Unit::Count,
        "Purges through the cache handle, by kind."
    );
    metrics::describe_counter!(
        SHARED_HITS,
        Unit::Count,
        "Fresh hits answered from the store's shared tier (Cache-Status detail=l2), a subset of outcome=hit."
    );
    metrics::describe_gauge!(
        STORED_BYTES,
        Unit::Bytes,
        "Bytes held by the in-memory cache store."
    );
    metrics::describe_counter!(
        EVICTIONS,
        Unit::Count,
        "Entries evicted from the in-memory store (size or expiry)."
    );
}

/// How a request was answered: the `outcome` label and the `Server-Timing` description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
    Collapsed,
    OnlyIfCached,
    Bypass,
    /// A miss refused with 503 while the store protects the origin.
    Shed,
}

impl Outcome {
    #[cfg(feature = "metrics")]
    const COUNT: usize = 8;

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Revalidated => "revalidated",
            Self::Collapsed => "collapsed",
            Self::OnlyIfCached => "only-if-cached",
            Self::Bypass => "bypass",
            Self::Shed => "shed",
        }
    }
}

/// Describes nothing: the `metrics` feature is off.
#[cfg(not(feature = "metrics"))]
pub(crate) fn describe() {}

/// The `perf.cache.requests{outcome}` handles of one layer, resolved on first use.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    #[cfg(feature = "metrics")]
    handles: [OnceLock<Counter>; Outcome::COUNT],
}

impl Counters {
    /// Counts an outcome.
    pub(crate) fn count(&self, outcome: Outcome) {
        #[cfg(feature = "metrics")]
        self.handles[outcome as usize]
            .get_or_init(|| metrics::counter!(REQUESTS, "outcome" => outcome.label()))
            .increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = outcome;
    }
}
