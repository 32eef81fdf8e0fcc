//! [`BudgetLayer`] and [`BudgetHandle`].

use std::sync::Arc;

use tower_layer::Layer;

use crate::State;
use crate::policy::BudgetPolicy;
use crate::report::BudgetReport;
use crate::service::Budget;
use crate::shared::Shared;

/// Applies [`Budget`] to a service. Clones share the same counters, windows and states.
///
/// See the crate docs for an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct BudgetLayer {
    pub(crate) shared: Arc<Shared>,
}

impl BudgetLayer {
    /// A layer and a handle onto its shared state (for reports and tests).
    pub fn pair(policy: BudgetPolicy) -> (Self, BudgetHandle) {
        let shared = Arc::new(Shared::new(policy));
        (
            Self {
                shared: shared.clone(),
            },
            BudgetHandle { shared },
        )
    }

    /// A layer without a handle.
    pub fn new(policy: BudgetPolicy) -> Self {
        Self::pair(policy).0
    }

    /// A handle onto this layer's state.
    pub fn handle(&self) -> BudgetHandle {
        BudgetHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = Budget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Budget {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A handle onto a [`BudgetLayer`]'s shared state: reports, on-demand evaluation, states.
///
/// Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone)]
pub struct BudgetHandle {
    shared: Arc<Shared>,
}

impl BudgetHandle {
    /// The current report. Steps the state machines first if a slot has passed since the last
    /// evaluation, so a quiet service still recovers.
    pub fn report(&self) -> BudgetReport {
        self.shared.report()
    }

    /// Runs one evaluation step now for every budget whose state machine has not yet seen the
    /// current slot. Requests trigger the same step lazily, at most once per slot.
    pub fn evaluate(&self) {
        self.shared.evaluate_all();
    }

    /// The state of a budget by name (`__other__` for unmatched requests).
    pub fn state(&self, budget: &str) -> Option<State> {
        self.shared
            .entries
            .iter()
            .find(|e| e.budget.name() == budget)
            .map(|e| e.state())
    }

    #[cfg(test)]
    pub(crate) fn shared_start(&self) -> tokio::time::Instant {
        self.shared.clock.start()
    }

    /// Records one finished request for the `index`-th budget, as the layer does (for the
    /// criterion bench of the record path; not a stable API).
    #[doc(hidden)]
    pub fn __record(&self, index: usize, latency: std::time::Duration, error: bool) {
        let now = self.shared.clock.nanos(tokio::time::Instant::now());
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.shared
            .record(index.min(self.shared.entries.len() - 1), now, nanos, error);
    }

    /// The policy this layer runs.
    pub fn policy(&self) -> &BudgetPolicy {
        &self.shared.policy
    }
}
