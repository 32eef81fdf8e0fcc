//! [`Violation`]: what a test-mode [`DbHandle`](super::DbHandle) reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::fingerprint::Fingerprint;

/// One request that broke a rule: an N+1, or more statements than
/// [`max_queries`](super::DbLayerBuilder::max_queries).
#[derive(Debug, Clone)]
pub struct Violation {
    pub(crate) kind: ViolationKind,
    pub(crate) route: Arc<str>,
    pub(crate) fingerprint: Option<Arc<Fingerprint>>,
    pub(crate) count: u32,
    pub(crate) total: Duration,
}

/// The rule a [`Violation`] broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A read statement repeated one after another (see
    /// [`NPlusOneProfile`](super::NPlusOneProfile)).
    NPlusOne,
    /// More statements than the cap.
    TooManyQueries,
}

impl Violation {
    /// The rule broken.
    pub fn kind(&self) -> ViolationKind {
        self.kind
    }

    /// The route template (or `unmatched`).
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The repeated statement, for an N+1.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_deref()
    }

    /// Statements: the sequential repeats for an N+1, all statements of the request otherwise.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Their summed time.
    pub fn total(&self) -> Duration {
        self.total
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.fingerprint) {
            (ViolationKind::NPlusOne, Some(fp)) => write!(
                f,
                "N+1 on {}: `{}` ran {} times in a row ({:?}); load them in one query (JOIN or IN)",
                self.route,
                fp.text(),
                self.count,
                self.total
            ),
            _ => write!(
                f,
                "{} ran {} statements ({:?}), more than the cap",
                self.route, self.count, self.total
            ),
        }
    }
}
