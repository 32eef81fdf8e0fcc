//! Responses the layer produces itself (deadline and shed), and their extensions.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use tokio::time::Instant;

use crate::hooks::ResponseForBudgetExceeded;

/// Why the layer answered instead of the inner service; in the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded {
    budget: String,
    kind: ExceededKind,
}

impl BudgetExceeded {
    /// The name of the budget that was exceeded.
    pub fn budget(&self) -> &str {
        &self.budget
    }

    /// What happened.
    pub fn kind(&self) -> ExceededKind {
        self.kind
    }
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ExceededKind::Deadline => write!(f, "budget {:?}: deadline exceeded", self.budget),
            ExceededKind::Shed => write!(f, "budget {:?}: breached, request shed", self.budget),
        }
    }
}

impl std::error::Error for BudgetExceeded {}

/// What [`BudgetExceeded`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExceededKind {
    /// The request ran into its deadline (mode `deadline`).
    Deadline,
    /// The request was shed while the budget was breached (mode `shed`).
    Shed,
}

/// The time left for a request, in the request's extensions in mode `deadline`, so handlers
/// and outgoing clients can forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    pub(crate) fn new(at: Instant) -> Self {
        Self { at }
    }
    /// When the layer will answer 503 on the request's behalf.
    pub fn at(&self) -> Instant {
        self.at
    }
    /// The time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

pub(crate) fn exceeded(
    hook: &impl ResponseForBudgetExceeded,
    status: StatusCode,
    budget: &str,
    reason: ExceededKind,
    retry_after: Option<Duration>,
) -> Response<Bytes> {
    let text = match reason {
        ExceededKind::Deadline => "performance budget deadline exceeded\n",
        ExceededKind::Shed => "performance budget breached: request shed, retry later\n",
    };
    let mut res = Response::new(Bytes::from_static(text.as_bytes()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(after) = retry_after {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(after.as_secs().max(1)),
        );
    }
    let why = BudgetExceeded {
        budget: budget.to_owned(),
        kind: reason,
    };
    res = hook.response(&why, res);
    let (mut parts, body) = res.into_parts();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    parts.extensions.insert(why);
    Response::from_parts(parts, body)
}
