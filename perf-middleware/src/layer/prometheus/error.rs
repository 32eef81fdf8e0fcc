//! [`InstallError`]: why [`Exporter::install`](super::Exporter::install) did not install.

use std::fmt;

use metrics_exporter_prometheus::BuildError;

use super::Exporter;

/// Why the exporter could not be installed. It hands back the settings that were not
/// installed ([`into_exporter`](Self::into_exporter)), as `metrics`' `SetRecorderError` hands
/// back the recorder.
pub struct InstallError {
    kind: InstallErrorKind,
    /// Which bucket list, for [`InstallErrorKind::InvalidBuckets`].
    what: &'static str,
    exporter: Box<Exporter>,
    source: Option<BuildError>,
}

/// What kind of [`InstallError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallErrorKind {
    /// Another `metrics` recorder, not installed by this module, is the global one.
    OtherRecorder,
    /// This module already installed an exporter, with different settings.
    AlreadyInstalled,
    /// A bucket list is empty, not strictly increasing, or not finite.
    InvalidBuckets,
    /// `metrics-exporter-prometheus` rejected the settings (see [`source`](std::error::Error::source)).
    Build,
}

impl InstallError {
    pub(super) fn new(kind: InstallErrorKind, exporter: Exporter) -> Self {
        Self {
            kind,
            what: "",
            exporter: Box::new(exporter),
            source: None,
        }
    }

    pub(super) fn invalid_buckets(what: &'static str, exporter: Exporter) -> Self {
        Self {
            what,
            ..Self::new(InstallErrorKind::InvalidBuckets, exporter)
        }
    }

    pub(super) fn build(source: BuildError, exporter: Exporter) -> Self {
        Self {
            source: Some(source),
            ..Self::new(InstallErrorKind::Build, exporter)
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> InstallErrorKind {
        self.kind
    }

    /// The settings that were not installed.
    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    /// Returns the settings that were not installed.
    pub fn into_exporter(self) -> Exporter {
        *self.exporter
    }
}

impl fmt::Debug for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallError")
            .field("kind", &self.kind)
            .field("exporter", &self.exporter)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            InstallErrorKind::OtherRecorder => f.write_str(
                "another metrics recorder is already installed: install this exporter first, or apply these settings to your own builder with `Exporter::configure`",
            ),
            InstallErrorKind::AlreadyInstalled => f.write_str(
                "a prometheus exporter with different settings is already installed: install it once at startup and share its handle",
            ),
            InstallErrorKind::InvalidBuckets => write!(
                f,
                "{} buckets must be finite, non-empty and strictly increasing",
                self.what
            ),
            InstallErrorKind::Build => f.write_str("the prometheus exporter rejected the settings"),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}
