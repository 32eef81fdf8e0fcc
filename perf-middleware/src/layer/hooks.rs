//! The completion record handed to hooks, and the [`OnComplete`] hook trait.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::Outcome;

/// Everything measured about one request, handed to [`OnComplete`] hooks when the request ends
/// (end of the response body, an error, or cancellation).
#[derive(Debug)]
#[non_exhaustive]
pub struct Completion<'a> {
    /// The request method as sent (not folded into `_OTHER`).
    pub method: &'a Method,
    /// The route template (`/users/{id}`), when a router recorded one.
    pub route: Option<&'a str>,
    /// The response status, when the inner service produced a response.
    pub status: Option<StatusCode>,
    /// Time from the request entering this layer until the response headers were produced.
    pub time_to_headers: Option<Duration>,
    /// Time from the request entering this layer until the end of the response body (or until
    /// the error or cancellation).
    pub duration: Duration,
    /// How the request ended.
    pub outcome: Outcome,
    /// The request body size, when known from `Content-Length` / the body's exact size hint.
    pub request_body_size: Option<u64>,
    /// Bytes of response body data that were polled through the layer.
    pub response_body_size: u64,
    /// The request's database statements, when a `DbLayer` runs inside this layer (feature
    /// `db`; snapshot taken when the response head was produced).
    #[cfg(feature = "db")]
    pub db: Option<&'a crate::db::DbSummary>,
}

/// A hook called once per request when it ends. See [`PerfLayer`](crate::PerfLayer) for an example.
///
/// `()` is the no-op hook; any `Fn(&Completion<'_>) + Send + Sync + 'static` closure is a hook.
pub trait OnComplete: Send + Sync + 'static {
    /// Called exactly once per request, on the task that finished it. Keep it short and
    /// non-blocking: it runs on the request path.
    fn on_complete(&self, completion: &Completion<'_>);
}

impl OnComplete for () {
    #[inline]
    fn on_complete(&self, _: &Completion<'_>) {}
}

impl<F> OnComplete for F
where
    F: Fn(&Completion<'_>) + Send + Sync + 'static,
{
    fn on_complete(&self, completion: &Completion<'_>) {
        self(completion)
    }
}
