//! The response future and the per-request accounting ([`Pending`], the foundation's
//! completion guard state).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use perf_middleware::completion::{Complete, Guard, GuardedBody, Outcome};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::body::ResponseBody;
use crate::hooks::{OnTransition, ResponseForBudgetExceeded};
use crate::policy::Measure;
use crate::response::{ExceededKind, exceeded};
use crate::shared::Shared;

/// The `Perf-Budget` response header (mode `annotate`).
pub const PERF_BUDGET: HeaderName = HeaderName::from_static("perf-budget");

/// One request in flight, finished exactly once by the foundation's [`Guard`]: at the response
/// head, at the end of the body (`measure = "body"`), or — dropped unfinished — as a
/// cancellation (neither success nor latency).
pub(crate) struct Pending<T, X> {
    shared: Arc<Shared<T, X>>,
    idx: usize,
    /// When the request started, in [`Clock::nanos`](crate::window::Clock::nanos).
    start: u64,
    /// Add the `Perf-Budget` header (mode `annotate`).
    annotate: bool,
    /// Add the `Server-Timing` entry.
    timing: bool,
    /// The response status counts as an error.
    error: bool,
    /// The latency to record instead of the time since the start (the cap of mode `deadline`).
    latency: Option<Duration>,
}

impl<T, X> std::fmt::Debug for Pending<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("idx", &self.idx)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl<T, X> Pending<T, X> {
    pub(crate) fn new(
        shared: Arc<Shared<T, X>>,
        idx: usize,
        start: u64,
        annotate: bool,
        timing: bool,
    ) -> Self {
        Self {
            shared,
            idx,
            start,
            annotate,
            timing,
            error: false,
            latency: None,
        }
    }

    /// The time since the start.
    fn elapsed(&self) -> Duration {
        let now = self.shared.clock.nanos(Instant::now());
        Duration::from_nanos(now.saturating_sub(self.start))
    }

    fn is_error_status(&self, status: StatusCode) -> bool {
        let e = &self.shared.policy.errors;
        (status.is_server_error() && e.server) || (status.is_client_error() && e.client)
    }

    /// Adds `Perf-Budget` and `Server-Timing` as configured.
    fn annotate(&self, headers: &mut HeaderMap, latency: Duration) {
        if !(self.annotate || self.timing) {
            return;
        }
        let entry = &self.shared.entries[self.idx];
        let name = entry.budget.name();
        let state = entry.state().as_str();
        if self.annotate {
            let ms = latency.as_secs_f64() * 1000.0;
            let value = format!("{name}; state={state}; dur={ms:.1}ms");
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(PERF_BUDGET, v);
            }
        }
        let desc = format!("{name} {state}");
        perf_middleware::server_timing::append(headers, &[("budget", Some(latency), Some(&desc))]);
    }
}

impl<T: OnTransition, X> Complete for Pending<T, X> {
    fn complete(self, outcome: Outcome) {
        let now = self.shared.clock.nanos(Instant::now());
        let error = match outcome {
            Outcome::Cancelled => {
                let epoch = self.shared.clock.epoch_at(now);
                self.shared.entries[self.idx].window.cancelled(epoch);
                return;
            }
            Outcome::Completed => self.error,
            Outcome::ServiceError => self.shared.policy.errors.server,
            _ => true,
        };
        let nanos = match self.latency {
            Some(l) => u64::try_from(l.as_nanos()).unwrap_or(u64::MAX),
            None => now.saturating_sub(self.start),
        };
        self.shared.record(self.idx, now, nanos, error);
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T: OnTransition, X> {
        Inner {
            #[pin]
            fut: F,
            guard: Guard<Pending<T, X>>,
            // Mode `deadline` only: the timer and the cap. Boxed so the other modes' futures
            // stay small.
            deadline: Option<(Pin<Box<Sleep>>, Duration)>,
        },
        // A skipped route: the inner future, its response untouched.
        Skipped { #[pin] fut: F },
        // Boxed: shed responses are rare.
        Ready { response: Option<Box<Response<Bytes>>> },
    }
}

pin_project! {
    /// The response future of [`Budget`](crate::Budget).
    ///
    /// Dropping it before completion counts the request once as cancelled.
    ///
    /// `T` and `X` are the layer's hooks (see [`BudgetLayer`](crate::BudgetLayer)).
    pub struct ResponseFuture<F, T: OnTransition = (), X = ()> {
        #[pin]
        kind: Kind<F, T, X>,
    }
}

impl<F, T: OnTransition, X> std::fmt::Debug for ResponseFuture<F, T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T: OnTransition, X> ResponseFuture<F, T, X> {
    /// The inner future, accounted by `pending`; `deadline` is the instant and the cap of mode
    /// `deadline`.
    pub(crate) fn new(
        fut: F,
        pending: Pending<T, X>,
        deadline: Option<(Instant, Duration)>,
    ) -> Self {
        let deadline = deadline.map(|(at, cap)| (Box::pin(tokio::time::sleep_until(at)), cap));
        Self {
            kind: Kind::Inner {
                fut,
                guard: Guard::new(Some(pending)),
                deadline,
            },
        }
    }

    /// The inner future of a skipped route: no accounting, the response as it is.
    pub(crate) fn skipped(fut: F) -> Self {
        Self {
            kind: Kind::Skipped { fut },
        }
    }

    /// The layer's own response (shed).
    pub(crate) fn ready(res: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(Box::new(res)),
            },
        }
    }
}

impl<F, B, E, T, X> Future for ResponseFuture<F, T, X>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    T: OnTransition,
    X: ResponseForBudgetExceeded,
{
    type Output = Result<Response<ResponseBody<B, T, X>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (fut, guard, deadline) = match self.project().kind.project() {
            KindProj::Ready { response } => {
                // Polled after completion: never panic on the request path.
                return response.take().map_or(Poll::Pending, |r| {
                    Poll::Ready(Ok(r.map(ResponseBody::full)))
                });
            }
            KindProj::Skipped { fut } => {
                let res = ready!(fut.poll(cx))?;
                return Poll::Ready(Ok(
                    res.map(|b| ResponseBody::inner(GuardedBody::unguarded(b)))
                ));
            }
            KindProj::Inner {
                fut,
                guard,
                deadline,
            } => (fut, guard, deadline),
        };
        if guard.get().is_none() {
            // Polled after completion.
            return Poll::Pending;
        }
        let result = match fut.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let Some((sleep, cap)) = deadline.as_mut() else {
                    return Poll::Pending;
                };
                ready!(sleep.as_mut().poll(cx));
                return Poll::Ready(Ok(deadline_response(guard, *cap)));
            }
        };
        Poll::Ready(match result {
            Ok(res) => Ok(head(Guard::new(guard.take()), res)),
            Err(e) => {
                guard.finish(Outcome::ServiceError);
                Err(e)
            }
        })
    }
}

/// The response head from the inner service: annotated, and finished now or at the end of the
/// body (`measure = "body"`).
fn head<B: http_body::Body, T: OnTransition, X>(
    mut guard: Guard<Pending<T, X>>,
    mut res: Response<B>,
) -> Response<ResponseBody<B, T, X>> {
    let Some(p) = guard.get_mut() else {
        return res.map(|b| ResponseBody::inner(GuardedBody::unguarded(b)));
    };
    p.error = p.is_error_status(res.status());
    let latency = p.elapsed();
    p.annotate(res.headers_mut(), latency);
    if p.shared.entries[p.idx].measure() == Measure::Body {
        // Completes at once when the body is already at its end.
        return res.map(|b| ResponseBody::inner(guard.into_body(b)));
    }
    p.latency = Some(latency);
    guard.finish(Outcome::Completed);
    res.map(|b| ResponseBody::inner(GuardedBody::unguarded(b)))
}

/// The layer's answer when the deadline passes first: recorded with the cap as its latency.
fn deadline_response<B, T, X>(
    guard: &mut Guard<Pending<T, X>>,
    cap: Duration,
) -> Response<ResponseBody<B, T, X>>
where
    T: OnTransition,
    X: ResponseForBudgetExceeded,
{
    let mut guard = Guard::new(guard.take());
    let Some(p) = guard.get_mut() else {
        return Response::new(ResponseBody::full(Bytes::new()));
    };
    let shared = p.shared.clone();
    let idx = p.idx;
    p.error = shared.policy.errors.deadline;
    p.latency = Some(cap);
    guard.finish(Outcome::Completed);
    let name = shared.entries[idx].budget.name();
    let status = shared.policy.deadline_status;
    exceeded(&shared.exceeded, status, name, ExceededKind::Deadline, None).map(ResponseBody::full)
}
