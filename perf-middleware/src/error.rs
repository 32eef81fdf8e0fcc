//! [`ConfigError`]: what `build()` returns when a setting is wrong.

use std::fmt;

/// An invalid setting of a builder of this crate ([`RouteTable`](crate::RouteTable) and, with
/// feature `metrics`, `PerfLayerBuilder`). The message says what to fix.
///
/// Every crate of the family reports configuration mistakes the same way: a `#[non_exhaustive]`
/// enum named `ConfigError` with struct variants, returned by `build()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A per-route setting named something that is not a route template.
    InvalidRoute {
        /// The value given.
        route: String,
    },
    /// A [`RouteTable`](crate::RouteTable) template is malformed or conflicts with another one.
    InvalidRouteTemplate {
        /// The template given.
        route: String,
        /// What the matcher objected to.
        reason: String,
    },
    /// The operating system gave no randomness for a generated secret (the `/perf` page token).
    NoRandomness {
        /// What the operating system reported.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidRoute { route } => write!(
                f,
                "route `{route}` is not a route template: write it as the router does, starting with `/` (e.g. `/users/{{id}}`)"
            ),
            ConfigError::InvalidRouteTemplate { route, reason } => write!(
                f,
                "route template `{route}` is rejected: {reason} (write it as for axum's `Router::route`, e.g. `/users/{{id}}`)"
            ),
            ConfigError::NoRandomness { reason } => write!(
                f,
                "no randomness for the generated token ({reason}): pass a token with `Protection::given_token`"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
