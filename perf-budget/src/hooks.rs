//! Hooks of the layer: [`OnTransition`] and [`ResponseForBudgetExceeded`], type parameters of
//! the layer set on [`BudgetLayerBuilder`](crate::BudgetLayerBuilder). Closures implement both,
//! and `()` is the hook that does nothing (the default).

use bytes::Bytes;
use http::Response;

use crate::policy::Transition;
use crate::response::BudgetExceeded;

/// Called on every state transition of an objective (at evaluation, at most once per slot and
/// budget, never on the fast path of a request).
///
/// ```
/// use perf_budget::{BudgetLayer, Transition};
///
/// let layer = BudgetLayer::builder()
///     .on_transition(|t: &Transition| eprintln!("{} {}: {:?} -> {:?}", t.budget, t.objective, t.from, t.to))
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), perf_budget::ConfigError>(())
/// ```
pub trait OnTransition: Send + Sync + 'static {
    /// One objective of one budget changed state.
    fn on_transition(&self, transition: &Transition);
}

impl OnTransition for () {
    fn on_transition(&self, _: &Transition) {}
}

impl<F> OnTransition for F
where
    F: Fn(&Transition) + Send + Sync + 'static,
{
    fn on_transition(&self, transition: &Transition) {
        self(transition)
    }
}

/// Rewrites the layer's own responses (deadline 503/504, shed 503 + `Retry-After`): it gets the
/// reason and the default response and returns the one to send, e.g. a JSON problem document or
/// a gRPC status. [`BudgetExceeded`] is added to the extensions of what it returns, and
/// `Content-Length` set to its body.
pub trait ResponseForBudgetExceeded: Send + Sync + 'static {
    /// The response to send instead of `default`.
    fn response(&self, why: &BudgetExceeded, default: Response<Bytes>) -> Response<Bytes>;
}

impl ResponseForBudgetExceeded for () {
    fn response(&self, _: &BudgetExceeded, default: Response<Bytes>) -> Response<Bytes> {
        default
    }
}

impl<F> ResponseForBudgetExceeded for F
where
    F: Fn(&BudgetExceeded, Response<Bytes>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn response(&self, why: &BudgetExceeded, default: Response<Bytes>) -> Response<Bytes> {
        self(why, default)
    }
}
