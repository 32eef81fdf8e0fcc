//! The [`Budget`] service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use crate::State;
use crate::body::ResponseBody;
use crate::future::{Pending, ResponseFuture};
use crate::hooks::{OnTransition, ResponseForBudgetExceeded};
use crate::layer::BudgetLayer;
use crate::policy::{BudgetPolicy, Mode};
use crate::response::{Deadline, ExceededKind, exceeded};
use crate::shared::Shared;

/// Records every request against its route's budget and applies the policy's mode.
///
/// Built by [`BudgetLayer`](crate::BudgetLayer) or [`Budget::layer`]; see the crate docs for an
/// example.
///
/// `T` and `X` are the layer's hooks (see [`BudgetLayer`]).
pub struct Budget<S, T = (), X = ()> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<T, X>>,
}

impl<S: Clone, T, X> Clone for Budget<S, T, X> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug, T, X> std::fmt::Debug for Budget<S, T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl Budget<()> {
    /// A [`BudgetLayer`] running `policy` (the same as [`BudgetLayer::new`]).
    pub fn layer(policy: BudgetPolicy) -> BudgetLayer {
        BudgetLayer::new(policy)
    }
}

impl<S, T, X> Budget<S, T, X> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB, T, X> Service<Request<ReqB>> for Budget<S, T, X>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body,
    ResB::Data: From<Bytes>,
    T: OnTransition,
    X: ResponseForBudgetExceeded,
{
    type Response = Response<ResponseBody<ResB, T, X>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, T, X>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if self.shared.skip.matches(req.extensions()) {
            return ResponseFuture::skipped(self.inner.call(req));
        }
        let now = Instant::now();
        let start = self.shared.clock.nanos(now);
        let idx = self.shared.lookup(&req);
        let entry = &self.shared.entries[idx];
        let mode = self.shared.policy.mode;
        if mode == Mode::Shed && entry.state() == State::Breached && !entry.admit() {
            entry.window.shed(self.shared.clock.epoch_at(start));
            self.shared
                .record(idx, start, 0, self.shared.policy.errors.shed);
            let res = exceeded(
                &self.shared.exceeded,
                StatusCode::SERVICE_UNAVAILABLE,
                entry.budget.name(),
                ExceededKind::Shed,
                Some(self.shared.clock.slot()),
            );
            return ResponseFuture::ready(res);
        }
        let deadline = match mode {
            Mode::Deadline => entry.budget.deadline().map(|cap| (now + cap, cap)),
            _ => None,
        };
        if let Some((at, _)) = deadline {
            req.extensions_mut().insert(Deadline::new(at));
        }
        // `__other__` is no budget: no `Perf-Budget` or `Server-Timing` for it.
        let budgeted = !self.shared.is_other(idx);
        let annotate = budgeted && mode == Mode::Annotate;
        let timing = annotate
            || (budgeted
                && self
                    .shared
                    .server_timing
                    .wants(req.method(), req.uri(), req.headers()));
        let pending = Pending::new(self.shared.clone(), idx, start, annotate, timing);
        ResponseFuture::new(self.inner.call(req), pending, deadline)
    }
}
