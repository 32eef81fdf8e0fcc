//! [`BudgetLayer`], its builder and [`BudgetHandle`].

use std::sync::Arc;

use perf_middleware::{RouteTable, ServerTiming, SkipRoutes};
use tower_layer::Layer;

use crate::State;
use crate::error::ConfigError;
use crate::hooks::{OnTransition, ResponseForBudgetExceeded};
use crate::policy::{BudgetPolicy, BudgetPolicyBuilder};
use crate::report::BudgetReport;
use crate::service::Budget;
use crate::shared::Shared;

/// Applies [`Budget`] to a service. Clones share the same counters, windows and states.
///
/// `T` and `X` are the [`OnTransition`] and [`ResponseForBudgetExceeded`] hooks (`()`, none, by
/// default; set them with [`BudgetLayer::builder`]). See the crate docs for an example.
#[must_use]
pub struct BudgetLayer<T = (), X = ()> {
    pub(crate) shared: Arc<Shared<T, X>>,
}

impl<T, X> Clone for BudgetLayer<T, X> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T, X> std::fmt::Debug for BudgetLayer<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl BudgetLayer {
    /// A layer running `policy`, with the defaults of [`BudgetLayer::builder`].
    pub fn new(policy: BudgetPolicy) -> Self {
        Self::from_shared(Shared::new(policy, ServerTiming::Off, (), ()))
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
    ///             .add_budget("users", "GET /users/{id}", |b| b.p95(Duration::from_millis(200)))
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
            table: None,
            skip: SkipRoutes::default(),
            bad_skip: None,
            on_transition: (),
            exceeded: (),
        }
    }
}

impl<T, X> BudgetLayer<T, X>
where
    T: OnTransition,
    X: ResponseForBudgetExceeded,
{
    fn from_shared(shared: Shared<T, X>) -> Self {
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

impl<S, T, X> Layer<S> for BudgetLayer<T, X> {
    type Service = Budget<S, T, X>;

    fn layer(&self, inner: S) -> Self::Service {
        Budget {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Builder of a [`BudgetLayer`]; see [`BudgetLayer::builder`].
#[must_use]
pub struct BudgetLayerBuilder<T = (), X = ()> {
    policy: BudgetPolicyBuilder,
    server_timing: ServerTiming,
    table: Option<RouteTable>,
    skip: SkipRoutes,
    bad_skip: Option<String>,
    on_transition: T,
    exceeded: X,
}

impl<T, X> std::fmt::Debug for BudgetLayerBuilder<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetLayerBuilder")
            .field("policy", &self.policy)
            .field("server_timing", &self.server_timing)
            .finish_non_exhaustive()
    }
}

impl<T, X> BudgetLayerBuilder<T, X>
where
    T: OnTransition,
    X: ResponseForBudgetExceeded,
{
    /// Runs `policy` (built with [`BudgetPolicy::builder`] or read with `BudgetPolicy::from_toml`),
    /// replacing what [`budgets`](Self::budgets) set so far.
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

    /// The router's routes, checked in [`build`](Self::build): a budget whose route is none
    /// of them fails with [`ConfigError::UnknownRoute`] (a typo such as `GET /order/{id}` for
    /// `/orders/{id}` would otherwise count every request under `__other__`). Build the table
    /// while adding the routes (`router.route(routes.add("/orders/{id}"), ..)`, see
    /// [`RouteTable::builder`]). Without it, the first request that falls to `__other__` logs
    /// one WARN.
    ///
    /// ```
    /// use perf_budget::{BudgetLayer, BudgetPolicy, ConfigError};
    /// use perf_middleware::RouteTable;
    ///
    /// let table = RouteTable::new(["/orders/{id}", "/orders"])?;
    /// let policy = BudgetPolicy::from_toml(r#"
    ///     [[budget]]
    ///     name = "order"
    ///     route = "GET /order/{id}"
    ///     objectives = ["p95 < 50ms"]
    /// "#)?;
    /// let err = BudgetLayer::builder().policy(policy).route_table(&table).build().unwrap_err();
    /// assert!(matches!(err, ConfigError::UnknownRoute { .. }));
    /// assert!(err.to_string().contains(r#"did you mean "/orders/{id}""#), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn route_table(mut self, table: &RouteTable) -> Self {
        self.table = Some(table.clone());
        self
    }

    /// Passes requests to this route template through untouched: no accounting, no
    /// `Perf-Budget` or `Server-Timing`, never shed or deadlined (health checks). Call it once
    /// per route; a template must start with `/`, else [`build`](Self::build) fails with
    /// [`ConfigError::Route`].
    pub fn skip_route(mut self, route: &str) -> Self {
        if !route.starts_with('/') && self.bad_skip.is_none() {
            self.bad_skip = Some(route.to_owned());
        }
        self.skip.insert(route);
        self
    }

    /// Calls `hook` on every state transition (see [`OnTransition`]; a closure
    /// `|t: &Transition| ..` will do). Defaults to `()`, nothing.
    pub fn on_transition<H: OnTransition>(self, hook: H) -> BudgetLayerBuilder<H, X> {
        BudgetLayerBuilder {
            policy: self.policy,
            server_timing: self.server_timing,
            table: self.table,
            skip: self.skip,
            bad_skip: self.bad_skip,
            on_transition: hook,
            exceeded: self.exceeded,
        }
    }

    /// Rewrites the layer's own deadline and shed responses (see [`ResponseForBudgetExceeded`];
    /// a closure `|why: &BudgetExceeded, res| ..` will do). Defaults to `()`, the plain-text
    /// response.
    pub fn exceeded_response<H: ResponseForBudgetExceeded>(
        self,
        hook: H,
    ) -> BudgetLayerBuilder<T, H> {
        BudgetLayerBuilder {
            policy: self.policy,
            server_timing: self.server_timing,
            table: self.table,
            skip: self.skip,
            bad_skip: self.bad_skip,
            on_transition: self.on_transition,
            exceeded: hook,
        }
    }

    /// Validates the policy and returns the layer.
    ///
    /// # Errors
    ///
    /// The first mistake in the policy, saying what to fix.
    pub fn build(self) -> Result<BudgetLayer<T, X>, ConfigError> {
        if let Some(route) = self.bad_skip {
            return Err(ConfigError::Route {
                line: None,
                message: format!("skip_route({route:?}): a route template starts with `/`"),
            });
        }
        let policy = self.policy.build()?;
        if let Some(table) = &self.table {
            crate::route::check_known(policy.budgets(), table)?;
        }
        let mut shared = Shared::new(
            policy,
            self.server_timing,
            self.on_transition,
            self.exceeded,
        );
        shared.skip = self.skip;
        if self.table.is_some() {
            shared
                .other_seen
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(BudgetLayer::from_shared(shared))
    }

    /// Validates the policy and returns the layer with its [`BudgetHandle`] (the report), as
    /// [`BudgetLayer::pair`] does for a policy with the default settings.
    ///
    /// # Errors
    ///
    /// The first mistake in the policy, saying what to fix.
    pub fn build_pair(self) -> Result<(BudgetLayer<T, X>, BudgetHandle), ConfigError> {
        let layer = self.build()?;
        let handle = layer.handle();
        Ok((layer, handle))
    }
}

/// What a handle needs of a layer's shared state, whatever its hooks.
trait Cold: Send + Sync + std::fmt::Debug {
    fn report(&self) -> BudgetReport;
    fn evaluate(&self);
    fn state(&self, budget: &str) -> Option<State>;
    fn policy(&self) -> &BudgetPolicy;
    #[cfg(test)]
    fn start(&self) -> tokio::time::Instant;
}

impl<T: OnTransition, X: ResponseForBudgetExceeded> Cold for Shared<T, X> {
    fn report(&self) -> BudgetReport {
        Shared::report(self)
    }

    fn evaluate(&self) {
        self.evaluate_all();
    }

    fn state(&self, budget: &str) -> Option<State> {
        self.entries
            .iter()
            .find(|e| e.budget.name() == budget)
            .map(|e| e.state())
    }

    fn policy(&self) -> &BudgetPolicy {
        &self.policy
    }

    #[cfg(test)]
    fn start(&self) -> tokio::time::Instant {
        self.clock.start()
    }
}

/// A handle onto a [`BudgetLayer`]'s shared state: reports, on-demand evaluation, states.
///
/// Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone)]
pub struct BudgetHandle {
    shared: Arc<dyn Cold>,
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
        self.shared.evaluate();
    }

    /// The state of a budget by name (`__other__` for unmatched requests).
    pub fn state(&self, budget: &str) -> Option<State> {
        self.shared.state(budget)
    }

    #[cfg(test)]
    pub(crate) fn shared_start(&self) -> tokio::time::Instant {
        self.shared.start()
    }

    /// The policy this layer runs.
    pub fn policy(&self) -> &BudgetPolicy {
        self.shared.policy()
    }
}
