//! The completion guard: per-request state that is finished exactly once, when the response body
//! ends, when the inner service or the body fails, or — when the response future or body is
//! dropped first — as [`Outcome::Cancelled`].
//!
//! Every layer of the family that observes a request to its end (the metrics record of
//! `perf-middleware`, the budget accounting of `perf-budget`, the server span of `perf-otel`)
//! implements [`Complete`] for its per-request state and lets [`GuardedFuture`] and
//! [`GuardedBody`] call it. The rules live here once:
//!
//! - a response whose body is already at its end (`is_end_stream`) completes at the head;
//! - a body completes on its last frame (`None`, or a frame after which `is_end_stream` is true);
//! - an error from the service or the body completes with [`Outcome::ServiceError`] or
//!   [`Outcome::BodyError`];
//! - anything dropped before one of those completes with [`Outcome::Cancelled`].
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use perf_middleware::completion::{Complete, GuardedFuture, Outcome};
//!
//! #[derive(Debug)]
//! struct Log(Arc<Mutex<Vec<(Outcome, u64)>>>, u64);
//!
//! impl Complete for Log {
//!     fn on_data(&mut self, len: u64) {
//!         self.1 += len;
//!     }
//!     fn complete(self, outcome: Outcome) {
//!         self.0.lock().unwrap().push((outcome, self.1));
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let inner = async { Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from_static(b"hello")))) };
//! let res = GuardedFuture::new(inner, Some(Log(seen.clone(), 0))).await.unwrap();
//! assert!(seen.lock().unwrap().is_empty(), "not complete before the body ends");
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "hello");
//! assert_eq!(*seen.lock().unwrap(), [(Outcome::Completed, 5)]);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The response body was sent to its end.
    Completed,
    /// The client went away (the response future or the body was dropped) before the end.
    Cancelled,
    /// The inner service returned an error instead of a response.
    ServiceError,
    /// The response body returned an error while streaming.
    BodyError,
}

impl Outcome {
    /// A short lowercase name: `completed`, `cancelled`, `service_error`, `body_error`. The
    /// family uses it as the `error.type` value of failed requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::ServiceError => "service_error",
            Outcome::BodyError => "body_error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-request state finished exactly once by [`Guard`], [`GuardedFuture`] or [`GuardedBody`].
///
/// Only [`complete`](Complete::complete) is required; the other methods observe the exchange on
/// the way and default to doing nothing.
pub trait Complete {
    /// The inner service produced the response head. Runs before the body is polled; may edit
    /// the headers (a `Server-Timing` value, a `traceparent`).
    fn on_response<B>(&mut self, response: &mut Response<B>) {
        let _ = response;
    }

    /// A data frame of `len` bytes went through the body.
    fn on_data(&mut self, len: u64) {
        let _ = len;
    }

    /// The inner service failed; [`complete`](Complete::complete) follows with
    /// [`Outcome::ServiceError`].
    fn on_service_error<E>(&mut self, error: &E) {
        let _ = error;
    }

    /// The body failed; [`complete`](Complete::complete) follows with [`Outcome::BodyError`].
    fn on_body_error<E>(&mut self, error: &E) {
        let _ = error;
    }

    /// The exchange ended. Called exactly once.
    fn complete(self, outcome: Outcome);
}

/// Holds a [`Complete`] value and finishes it once: explicitly with [`finish`](Guard::finish),
/// or as [`Outcome::Cancelled`] when dropped first. An empty guard (`Guard::none()`) does nothing.
#[derive(Debug)]
pub struct Guard<G: Complete> {
    state: Option<G>,
}

impl<G: Complete> Guard<G> {
    /// A guard over `state` (`None`: nothing to finish).
    pub fn new(state: Option<G>) -> Self {
        Self { state }
    }

    /// A guard with nothing to finish.
    pub fn none() -> Self {
        Self { state: None }
    }

    /// The state, while not finished.
    pub fn get_mut(&mut self) -> Option<&mut G> {
        self.state.as_mut()
    }

    /// The state, while not finished.
    pub fn get(&self) -> Option<&G> {
        self.state.as_ref()
    }

    /// Finishes the state with `outcome`; later calls (and the drop) do nothing.
    pub fn finish(&mut self, outcome: Outcome) {
        if let Some(state) = self.state.take() {
            state.complete(outcome);
        }
    }

    /// Takes the state out unfinished (the caller becomes responsible for it).
    pub fn take(&mut self) -> Option<G> {
        self.state.take()
    }

    /// Moves the guard into `body`: completes at once when the body is already at its end.
    pub fn into_body<B: Body>(mut self, body: B) -> GuardedBody<B, G> {
        if body.is_end_stream() {
            self.finish(Outcome::Completed);
        }
        GuardedBody {
            inner: body,
            guard: self,
        }
    }
}

impl<G: Complete> Drop for Guard<G> {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

pin_project! {
    /// A response future that hands the response head to its [`Complete`] state and moves the
    /// state into the response body ([`GuardedBody`]). An error completes it with
    /// [`Outcome::ServiceError`]; dropping the future first, with [`Outcome::Cancelled`].
    pub struct GuardedFuture<F, G: Complete> {
        #[pin]
        inner: F,
        guard: Guard<G>,
    }
}

impl<F, G: Complete> GuardedFuture<F, G> {
    /// Guards `inner` with `state` (`None`: the future and the body pass through).
    pub fn new(inner: F, state: Option<G>) -> Self {
        Self {
            inner,
            guard: Guard::new(state),
        }
    }
}

impl<F, G: Complete + std::fmt::Debug> std::fmt::Debug for GuardedFuture<F, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl<F, B, E, G> Future for GuardedFuture<F, G>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    G: Complete,
{
    type Output = Result<Response<GuardedBody<B, G>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut guard = Guard::new(this.guard.take());
        Poll::Ready(match result {
            Ok(mut res) => {
                if let Some(state) = guard.get_mut() {
                    state.on_response(&mut res);
                }
                Ok(res.map(|body| guard.into_body(body)))
            }
            Err(e) => {
                if let Some(state) = guard.get_mut() {
                    state.on_service_error(&e);
                }
                guard.finish(Outcome::ServiceError);
                Err(e)
            }
        })
    }
}

pin_project! {
    /// A response body that reports its data frames to its [`Complete`] state and completes it
    /// at the end of the stream, on an error, or — dropped first — as cancelled. Data, errors,
    /// `is_end_stream` and `size_hint` pass through unchanged, so `Content-Length` is kept.
    pub struct GuardedBody<B, G: Complete> {
        #[pin]
        inner: B,
        guard: Guard<G>,
    }
}

impl<B, G: Complete> GuardedBody<B, G> {
    /// `inner` with nothing to finish.
    pub fn unguarded(inner: B) -> Self {
        Self {
            inner,
            guard: Guard::none(),
        }
    }

    /// The inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: std::fmt::Debug, G: Complete + std::fmt::Debug> std::fmt::Debug for GuardedBody<B, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedBody")
            .field("inner", &self.inner)
            .field("guard", &self.guard)
            .finish()
    }
}

impl<B: Body, G: Complete> Body for GuardedBody<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(state), Some(data)) = (this.guard.get_mut(), f.data_ref()) {
                    state.on_data(bytes::Buf::remaining(data) as u64);
                }
                if this.inner.is_end_stream() {
                    this.guard.finish(Outcome::Completed);
                }
            }
            Some(Err(e)) => {
                if let Some(state) = this.guard.get_mut() {
                    state.on_body_error(e);
                }
                this.guard.finish(Outcome::BodyError);
            }
            None => this.guard.finish(Outcome::Completed),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    use super::*;

    type Seen = Arc<Mutex<Vec<(Outcome, u64, bool)>>>;

    #[derive(Debug)]
    struct Probe {
        seen: Seen,
        bytes: u64,
        head: bool,
    }

    impl Probe {
        fn new(seen: &Seen) -> Self {
            Self {
                seen: seen.clone(),
                bytes: 0,
                head: false,
            }
        }
    }

    impl Complete for Probe {
        fn on_response<B>(&mut self, res: &mut Response<B>) {
            self.head = true;
            res.headers_mut().insert("x-probe", "1".parse().unwrap());
        }
        fn on_data(&mut self, len: u64) {
            self.bytes += len;
        }
        fn complete(self, outcome: Outcome) {
            self.seen
                .lock()
                .unwrap()
                .push((outcome, self.bytes, self.head));
        }
    }

    fn ok<B>(body: B) -> impl Future<Output = Result<Response<B>, &'static str>> {
        std::future::ready(Ok(Response::new(body)))
    }

    #[tokio::test]
    async fn an_empty_body_completes_at_the_head() {
        let seen = Seen::default();
        let res = GuardedFuture::new(ok(Empty::<Bytes>::new()), Some(Probe::new(&seen)))
            .await
            .unwrap();
        assert_eq!(res.headers()["x-probe"], "1");
        assert_eq!(*seen.lock().unwrap(), [(Outcome::Completed, 0, true)]);
        drop(res);
        assert_eq!(seen.lock().unwrap().len(), 1, "never twice");
    }

    #[tokio::test]
    async fn a_body_completes_at_its_end_with_its_byte_count() {
        let seen = Seen::default();
        let res = GuardedFuture::new(ok(Full::<Bytes>::from("abcdef")), Some(Probe::new(&seen)))
            .await
            .unwrap();
        assert!(seen.lock().unwrap().is_empty());
        res.into_body().collect().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [(Outcome::Completed, 6, true)]);
    }

    #[tokio::test]
    async fn dropping_the_future_or_the_body_early_is_a_cancellation() {
        let seen = Seen::default();
        drop(GuardedFuture::new(
            std::future::pending::<Result<Response<Full<Bytes>>, ()>>(),
            Some(Probe::new(&seen)),
        ));
        let res = GuardedFuture::new(ok(Full::<Bytes>::from("x")), Some(Probe::new(&seen)))
            .await
            .unwrap();
        drop(res);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (Outcome::Cancelled, 0, false),
                (Outcome::Cancelled, 0, true)
            ]
        );
    }

    #[tokio::test]
    async fn errors_complete_with_their_outcome() {
        let seen = Seen::default();
        let fut = std::future::ready(Err::<Response<Full<Bytes>>, _>("boom"));
        assert!(
            GuardedFuture::new(fut, Some(Probe::new(&seen)))
                .await
                .is_err()
        );
        let frames: Vec<Result<Frame<Bytes>, &str>> =
            vec![Ok(Frame::data(Bytes::from_static(b"ab"))), Err("broken")];
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let res = GuardedFuture::new(ok(body), Some(Probe::new(&seen)))
            .await
            .unwrap();
        assert!(res.into_body().collect().await.is_err());
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (Outcome::ServiceError, 0, false),
                (Outcome::BodyError, 2, true)
            ]
        );
    }

    #[tokio::test]
    async fn without_state_everything_passes_through() {
        let res = GuardedFuture::<_, Probe>::new(ok(Full::<Bytes>::from("x")), None)
            .await
            .unwrap();
        assert!(res.headers().get("x-probe").is_none());
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "x");
    }
}
