//! placeholder
pub mod fingerprint;
