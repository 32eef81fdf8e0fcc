use std::fmt;

/// A setting of [`OtelLayerBuilder`](super::OtelLayerBuilder) that cannot work, reported by
/// [`build`](super::OtelLayerBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A captured header name (`add_request_header`, `add_response_header`) is not a valid HTTP
    /// field name.
    InvalidHeaderName {
        /// The name as given.
        name: String,
    },
    /// The same header is captured twice on the same side.
    DuplicateHeader {
        /// The header name.
        name: String,
    },
    /// `redacted_query_keys` contains an empty key, which matches no query parameter.
    EmptyQueryKey,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidHeaderName { name } => write!(
                f,
                "invalid header name {name:?}: use a field name such as `x-request-id`"
            ),
            Self::DuplicateHeader { name } => {
                write!(f, "header {name:?} is captured twice: add it once")
            }
            Self::EmptyQueryKey => {
                f.write_str("empty key in redacted_query_keys: remove it or name a query parameter")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
