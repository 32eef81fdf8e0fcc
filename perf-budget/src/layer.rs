//! [`BudgetLayer`], its builder and [`BudgetHandle`].

use std::sync::Arc;

use perf_middleware::ServerTiming;
use tower_layer::Layer;

use crate::State;
use crate::error::ConfigError;
use crate::hooks::{Hooks, OnTransition, ResponseForBudgetExceeded};
use crate::policy::{BudgetPolicy, BudgetPolicyBuilder};
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
    /// A layer running `policy`, with the defaults of [`BudgetLayer::builder`].
    pub fn new(policy: BudgetPolicy) -> Self {
        Self::from_shared(Shared::new(policy, ServerTiming::Off, Hooks::default()))
    }

    /// A layer and a handle onto its shared state (for reports and tests).
    pub fn pair(policy: BudgetPolicy) -> (Self, BudgetHandle) {
        let layer = Self::new(policy);
        let handle = layer.handle();
        (layer, handle)
    }

    /// A builder: the policy (built here or given), the layer's `Server-Timing` switch and its
    /// hooks.
    ///
    /// ```
    /// use std::time::Duration;
    /// use perf_budget::{BudgetLayer, Mode};
    /// use perf_middleware::ServerTiming;
    ///
    /// let layer = BudgetLayer::builder()
    ///     .budgets(|p| {
    ///         p.mode(Mode::Observe)
    ///             .budget("users", "GET /users/{id}", |b| b.p95(Duration::from_millis(200)))
    ///     })
    ///     .server_timing(ServerTiming::Always)
    ///     .build()?;
    /// # let _ = layer;
    /// # Ok::<(), perf_budget::ConfigError>(())
    /// ```
    pub fn builder() -> BudgetLayerBuilder {
        BudgetLayerBuilder {
            policy: BudgetPolicy::builder(),
            server_timing: ServerTiming::Off,
            hooks: Hooks::default(),
        }
    }

    fn from_shared(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
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

/// Builder of a [`BudgetLayer`]; see [`BudgetLayer::builder`].
#[derive(Debug)]
#[must_use]
pub struct BudgetLayerBuilder {
    policy: BudgetPolicyBuilder,
    server_timing: ServerTiming,
    hooks: Hooks,
}

impl BudgetLayerBuilder {
    /// Runs `policy` (built with [`BudgetPolicy::builder`] or read with `BudgetPolicy::from_toml`).
    pub fn policy(mut self, policy: BudgetPolicy) -> Self {
        self.policy = BudgetPolicyBuilder::from(policy);
        self
    }

    /// Edits the policy being built: `.budgets(|p| p.window(..).budget(..))`.
    pub fn budgets(mut self, f: impl FnOnce(BudgetPolicyBuilder) -> BudgetPolicyBuilder) -> Self {
        self.policy = f(self.policy);
        self
    }

    /// When to add the `budget` entry to `Server-Timing` (`budget;dur=12.30;desc="users ok"`).
    /// Defaults to [`ServerTiming::Off`]; mode `annotate` adds it to every response.
    pub fn server_timing(mut self, server_timing: ServerTiming) -> Self {
        self.server_timing = server_timing;
        self
    }

    /// Calls `hook` on every state transition (see [`OnTransition`]; a closure
    /// `|t: &Transition| ..` will do). Defaults to `()`, nothing.
    pub fn on_transition(mut self, hook: impl OnTransition) -> Self {
        self.hooks.on_transition = Box::new(hook);
        self
    }

    /// Rewrites the layer's own deadline and shed responses (see [`ResponseForBudgetExceeded`];
    /// a closure `|why: &BudgetExceeded, res| ..` will do). Defaults to `()`, the plain-text
    /// response.
    pub fn exceeded_response(mut self, hook: impl ResponseForBudgetExceeded) -> Self {
        self.hooks.exceeded = Box::new(hook);
        self
    }

    /// Validates the policy and returns the layer.
    ///
    /// # Errors
    ///
    /// The first mistake in the policy, saying what to fix.
    pub fn build(self) -> Result<BudgetLayer, ConfigError> {
        let policy = self.policy.build()?;
        let shared = Shared::new(policy, self.server_timing, self.hooks);
        Ok(BudgetLayer::from_shared(shared))
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

    /// The policy this layer runs.
    pub fn policy(&self) -> &BudgetPolicy {
        &self.shared.policy
    }
}
