//! The response future and the per-request recording guard.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::body::{BodyKind, ResponseBody, Wrapped};
use crate::policy::Measure;
use crate::response::{ExceededReason, exceeded};
use crate::shared::Shared;

/// The `Perf-Budget` response header (mode `annotate`).
pub const PERF_BUDGET: HeaderName = HeaderName::from_static("perf-budget");

/// One request in flight. Recording happens exactly once: at the response head, at the end of
/// the body, or — when dropped unfinished — as a cancellation (neither success nor latency).
#[derive(Debug)]
pub(crate) struct Pending {
    shared: Arc<Shared>,
    idx: usize,
    /// When the request started, in [`Clock::nanos`](crate::window::Clock::nanos).
    start: u64,
    annotate: bool,
    error: bool,
    done: bool,
}

impl Pending {
    #[inline]
    pub(crate) fn new(shared: Arc<Shared>, idx: usize, start: u64, annotate: bool) -> Self {
        Self {
            shared,
            idx,
            start,
            annotate,
            error: false,
            done: false,
        }
    }

    /// Records the request (once) and returns its latency: `latency` if given, else the time
    /// since the start.
    pub(crate) fn finish(&mut self, error: bool, latency: Option<Duration>) -> Duration {
        let now = self.shared.clock.nanos(Instant::now());
        let nanos = match latency {
            Some(l) => u64::try_from(l.as_nanos()).unwrap_or(u64::MAX),
            None => now.saturating_sub(self.start),
        };
        if !self.done {
            self.done = true;
            self.shared
                .record(self.idx, now, nanos, error || self.error);
        }
        Duration::from_nanos(nanos)
    }

    /// The time since the start, without recording.
    fn elapsed(&self) -> Duration {
        let now = self.shared.clock.nanos(Instant::now());
        Duration::from_nanos(now.saturating_sub(self.start))
    }

    fn is_error_status(&self, status: http::StatusCode) -> bool {
        let e = &self.shared.policy.errors;
        (status.is_server_error() && e.server) || (status.is_client_error() && e.client)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let epoch = self.shared.epoch(Instant::now());
            self.shared.entries[self.idx].window.cancelled(epoch);
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] fut: F },
        // Boxed: shed responses are rare, and an inline response would make every request's
        // future (moved into axum's box) larger.
        Ready { response: Option<Box<Response<Bytes>>>, _body: PhantomData<fn() -> B> },
    }
}

pin_project! {
    /// The response future of [`Budget`](crate::Budget); `K` is its [`BodyKind`].
    ///
    /// Dropping it before completion counts the request once as cancelled.
    pub struct ResponseFuture<F, B, K = Wrapped> {
        #[pin]
        kind: Kind<F, B>,
        pending: Option<Pending>,
        // Mode `deadline` only; boxed so the other modes' futures stay small.
        deadline: Option<(Pin<Box<Sleep>>, Duration)>,
        _kind: PhantomData<fn() -> K>,
    }
}

impl<F, B, K> std::fmt::Debug for ResponseFuture<F, B, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, K> ResponseFuture<F, B, K> {
    /// The inner future, timed by `pending`; `deadline` is the instant and the cap of mode
    /// `deadline`.
    // Always inlined: the inner future is then written in place, not moved once more.
    #[inline(always)]
    pub(crate) fn new(fut: F, pending: Pending, deadline: Option<(Instant, Duration)>) -> Self {
        Self {
            kind: Kind::Inner { fut },
            pending: Some(pending),
            deadline: deadline.map(|(at, cap)| (Box::pin(tokio::time::sleep_until(at)), cap)),
            _kind: PhantomData,
        }
    }
    /// The layer's own response (shed).
    pub(crate) fn ready(res: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(Box::new(res)),
                _body: PhantomData,
            },
            pending: None,
            deadline: None,
            _kind: PhantomData,
        }
    }
}

impl<F, B, E, K> Future for ResponseFuture<F, B, K>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    K: BodyKind<B>,
{
    type Output = Result<Response<K::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let fut = match this.kind.project() {
            KindProj::Ready { response, .. } => {
                // Polled after completion: never panic on the request path.
                return response
                    .take()
                    .map_or(Poll::Pending, |r| Poll::Ready(Ok(r.map(K::text))));
            }
            KindProj::Inner { fut } => fut,
        };
        let Some(pending) = this.pending.as_mut() else {
            return Poll::Pending;
        };
        let result = match fut.poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                if let Some((sleep, cap)) = this.deadline.as_mut() {
                    ready!(sleep.as_mut().poll(cx));
                    let errs = pending.shared.policy.errors.deadline;
                    pending.finish(errs, Some(*cap));
                    let name = pending.shared.entries[pending.idx].budget.name();
                    let res = exceeded(
                        &pending.shared.policy,
                        pending.shared.policy.deadline_status,
                        name,
                        ExceededReason::Deadline,
                        None,
                    );
                    return Poll::Ready(Ok(res.map(K::text)));
                }
                return Poll::Pending;
            }
        };
        match result {
            Ok(mut res) => {
                let error = pending.is_error_status(res.status());
                let measure = pending.shared.entries[pending.idx].measure();
                if measure == Measure::Body && !res.body().is_end_stream() {
                    // Timed to the end of the body: the guard moves into it.
                    let mut guard = this.pending.take();
                    if let Some(g) = guard.as_mut() {
                        g.error = error;
                        if g.annotate {
                            annotate(res.headers_mut(), g, g.elapsed());
                        }
                    }
                    return Poll::Ready(Ok(res.map(|b| K::timed(ResponseBody::inner(b, guard)))));
                }
                let latency = pending.finish(error, None);
                if pending.annotate {
                    annotate(res.headers_mut(), pending, latency);
                }
                Poll::Ready(Ok(res.map(K::plain)))
            }
            Err(e) => {
                pending.finish(pending.shared.policy.errors.server, None);
                Poll::Ready(Err(e))
            }
        }
    }
}

fn annotate(headers: &mut http::HeaderMap, p: &Pending, latency: Duration) {
    let entry = &p.shared.entries[p.idx];
    let name = entry.budget.name();
    let state = entry.state().as_str();
    let value = format!(
        "{name}; state={state}; dur={:.1}ms",
        latency.as_secs_f64() * 1000.0
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(PERF_BUDGET, v);
    }
    let desc = format!("{name} {state}");
    perf_middleware::server_timing::append(headers, &[("budget", Some(latency), Some(&desc))]);
}

impl Pending {
    pub(crate) fn finish_body(&mut self, error: bool) {
        self.finish(error, None);
    }
}
