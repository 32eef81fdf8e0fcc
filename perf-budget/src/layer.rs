//! [`BudgetLayer`] and [`BudgetHandle`].

use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use crate::State;
use crate::body::Wrapped;
use crate::policy::BudgetPolicy;
use crate::report::BudgetReport;
use crate::service::Budget;
use crate::shared::Shared;

/// Applies [`Budget`] to a service. Clones share the same counters, windows and states.
///
/// `K` is the [`BodyKind`](crate::BodyKind) of the responses: [`Wrapped`] by default, axum's
/// `Body` after [`axum_body`](Self::axum_body). See the crate docs for an example.
#[derive(Debug)]
#[must_use]
pub struct BudgetLayer<K = Wrapped> {
    pub(crate) shared: Arc<Shared>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for BudgetLayer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            kind: PhantomData,
        }
    }
}

impl BudgetLayer {
    /// A layer and a handle onto its shared state (for reports and tests).
    pub fn pair(policy: BudgetPolicy) -> (Self, BudgetHandle) {
        let shared = Arc::new(Shared::new(policy));
        (
            Self {
                shared: shared.clone(),
                kind: PhantomData,
            },
            BudgetHandle { shared },
        )
    }

    /// A layer without a handle.
    pub fn new(policy: BudgetPolicy) -> Self {
        Self::pair(policy).0
    }

    /// The same layer (same state), answering with axum's `Body`
    /// ([`AxumBody`](crate::AxumBody)) instead of wrapping every body: axum then has nothing to
    /// box. Recommended with axum; the inner service must return `Response<axum::body::Body>`
    /// (every axum `Router` and route does).
    #[cfg(feature = "axum")]
    pub fn axum_body(self) -> BudgetLayer<crate::AxumBody> {
        BudgetLayer {
            shared: self.shared,
            kind: PhantomData,
        }
    }
}

impl<K> BudgetLayer<K> {
    /// A handle onto this layer's state.
    pub fn handle(&self) -> BudgetHandle {
        BudgetHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S, K> Layer<S> for BudgetLayer<K> {
    type Service = Budget<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Budget {
            inner,
            shared: self.shared.clone(),
            kind: PhantomData,
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

    /// One clock reading as the layer takes it at each end of a request (for the criterion
    /// bench; not a stable API).
    #[doc(hidden)]
    pub fn __clock(&self) -> u64 {
        self.shared.clock.nanos(tokio::time::Instant::now())
    }

    /// The policy this layer runs.
    pub fn policy(&self) -> &BudgetPolicy {
        &self.shared.policy
    }
}
