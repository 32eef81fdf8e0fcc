//! Metric names (recorded through the `metrics` facade) and their descriptions.

pub(crate) const REQUESTS: &str = "perf_cache_requests_total";
pub(crate) const REVALIDATIONS: &str = "perf_cache_revalidations_total";
pub(crate) const COALESCED: &str = "perf_cache_coalesced_waits_total";
pub(crate) const INVALIDATIONS: &str = "perf_cache_invalidations_total";
pub(crate) const PURGES: &str = "perf_cache_purges_total";
pub(crate) const STORED_BYTES: &str = "perf_cache_stored_bytes";
pub(crate) const EVICTIONS: &str = "perf_cache_evictions_total";

/// Describes every metric to the installed recorder (called when a layer or store is built).
pub(crate) fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "Requests seen by the HTTP cache, by outcome (hit, miss, stale, revalidated, collapsed, bypass, only-if-cached)."
    );
    metrics::describe_counter!(
        REVALIDATIONS,
        "Revalidations of stored responses with the inner service."
    );
    metrics::describe_counter!(
        COALESCED,
        "Requests that waited for an identical in-flight miss."
    );
    metrics::describe_counter!(INVALIDATIONS, "Invalidations after unsafe methods.");
    metrics::describe_counter!(PURGES, "Purges through the cache handle, by kind.");
    metrics::describe_gauge!(
        STORED_BYTES,
        metrics::Unit::Bytes,
        "Bytes held by the in-memory cache store."
    );
    metrics::describe_counter!(
        EVICTIONS,
        "Entries evicted from the in-memory store (size or expiry)."
    );
}
