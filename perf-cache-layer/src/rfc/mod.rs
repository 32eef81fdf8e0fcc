//! The HTTP caching rules as pure functions (RFC 9111, RFC 9110): cache-control directives,
//! storability and freshness, conditional requests, byte ranges and cache keys.
//!
//! Nothing here performs I/O or reads the layer's shared state, and nothing here imports the rest
//! of the crate: every decision takes plain `http` values and returns a value, so each rule can be
//! tested alone. The request flow applies them.

pub(crate) mod conditional;
pub(crate) mod directives;
pub(crate) mod key;
pub(crate) mod policy;
pub(crate) mod range;
pub(crate) mod reuse;
