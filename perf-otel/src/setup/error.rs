use std::fmt;
use std::time::Duration;

/// A configuration or installation error; the message names the variable and what to change.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// An `OTEL_*` variable has a value this crate does not support.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// gRPC export needs a Tokio runtime to drive its channel.
    NoRuntime,
    /// `opentelemetry-otlp` refused to build the exporter (e.g. an `https` endpoint: TLS is not enabled).
    Exporter(opentelemetry_otlp::ExporterBuildError),
    /// Shutdown did not finish within the timeout; the spans still queued are lost.
    ShutdownTimeout(Duration),
    /// The provider reported an error while flushing or shutting down.
    Shutdown(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEnv {
                var,
                value,
                expected,
            } => {
                write!(f, "invalid {var}={value:?}: expected {expected}")
            }
            Self::NoRuntime => {
                f.write_str("gRPC export needs a Tokio runtime: call install() from inside one")
            }
            Self::Exporter(e) => write!(
                f,
                "cannot build the OTLP exporter: {e} (use an http:// endpoint; TLS is not enabled in perf-otel)"
            ),
            Self::ShutdownTimeout(t) => {
                write!(f, "tracer provider shutdown did not finish within {t:?}")
            }
            Self::Shutdown(e) => write!(f, "tracer provider shutdown failed: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Exporter(e) => Some(e),
            _ => None,
        }
    }
}
