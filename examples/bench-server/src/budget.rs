//! Bench variants for perf-budget (filled in by its issue).

/// The router of variant `name`, if this module defines it.
pub(crate) fn variant(_name: &str) -> Option<axum::Router> {
    None
}
