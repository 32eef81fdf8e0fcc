//! The response future and the per-request recording guard.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::body::ResponseBody;
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
    start: Instant,
    annotate: bool,
    error: bool,
    done: bool,
}

impl Pending {
    pub(crate) fn new(shared: Arc<Shared>, idx: usize, start: Instant, annotate: bool) -> Self {
        Self {
            shared,
            idx,
            start,
            annotate,
            error: false,
            done: false,
        }
    }

    /// Records the request and returns its latency.
    pub(crate) fn finish(&mut self, error: bool, latency: Option<Duration>) -> Duration {
        let now = Instant::now();
        let latency = latency.unwrap_or_else(|| now.saturating_duration_since(self.start));
        if !self.done {
            self.done = true;
            let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
            self.shared
                .record(self.idx, now, nanos, error || self.error);
        }
        latency
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
    #[project = SleepProj]
    enum MaybeSleep {
        Off,
        On { #[pin] sleep: Sleep, cap: Duration },
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] fut: F, #[pin] deadline: MaybeSleep },
        Ready { response: Option<Response<ResponseBody<B>>> },
    }
}

pin_project! {
    /// The response future of [`Budget`](crate::Budget).
    ///
    /// Dropping it before completion counts the request once as cancelled.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
        pending: Option<Pending>,
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(fut: F, pending: Pending, cap: Option<Duration>) -> Self {
        let deadline = match cap {
            Some(cap) => MaybeSleep::On {
                sleep: tokio::time::sleep_until(pending.start + cap),
                cap,
            },
            None => MaybeSleep::Off,
        };
        Self {
            kind: Kind::Inner { fut, deadline },
            pending: Some(pending),
        }
    }
    pub(crate) fn ready(res: Response<ResponseBody<B>>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(res),
            },
            pending: None,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (fut, deadline) = match this.kind.project() {
            KindProj::Ready { response } => {
                // Polled after completion: never panic on the request path.
                return response
                    .take()
                    .map_or(Poll::Pending, |r| Poll::Ready(Ok(r)));
            }
            KindProj::Inner { fut, deadline } => (fut, deadline),
        };
        let Some(pending) = this.pending.as_mut() else {
            return Poll::Pending;
        };
        let result = match fut.poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                if let SleepProj::On { sleep, cap } = deadline.project() {
                    ready!(sleep.poll(cx));
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
                    return Poll::Ready(Ok(res));
                }
                return Poll::Pending;
            }
        };
        match result {
            Ok(res) => {
                pending.error = pending.is_error_status(res.status());
                let (mut parts, body) = res.into_parts();
                let measure = pending.shared.entries[pending.idx].measure();
                let guard = if measure == Measure::Body && !body.is_end_stream() {
                    this.pending.take()
                } else {
                    let latency = pending.finish(false, None);
                    if pending.annotate {
                        annotate(&mut parts.headers, pending, latency);
                    }
                    None
                };
                if let Some(g) = guard.as_ref().filter(|g| g.annotate) {
                    let latency = Instant::now().saturating_duration_since(g.start);
                    annotate(&mut parts.headers, g, latency);
                }
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    ResponseBody::inner(body, guard),
                )))
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
