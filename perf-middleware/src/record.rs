//! Per-request state. Everything is recorded exactly once, when the state is dropped: at the end
//! of the body, on an error, or when the future or body is dropped early (cancellation).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode, Uri};
use tokio::time::Instant;

use crate::hooks::{Completion, OnComplete, Outcome};
use crate::layer::Shared;
use crate::metrics::{ErrorKind, Handles, LabelSet};
use crate::registry::{OVERFLOW, series_key};
use crate::route::{Route, TraceId, method_label, standard_method};

/// Kept small: it travels inside the response future and body, which are moved several times.
pub(crate) struct Record<H: OnComplete> {
    pub(crate) shared: Arc<Shared<H>>,
    pub(crate) start: Instant,
    /// Fields most requests do not need: boxed only when present.
    pub(crate) cold: Option<Box<Cold>>,
    pub(crate) request_size: Option<u64>,
    /// When the inner service produced the response head (time to headers is derived from it
    /// only where a consumer needs it).
    pub(crate) headers_at: Option<Instant>,
    pub(crate) response_size: u64,
    /// The route entry id (see `registry`); [`OVERFLOW`] when the template is in `cold`.
    pub(crate) route: u32,
    pub(crate) status: Option<StatusCode>,
    pub(crate) method_idx: u8,
    pub(crate) scheme_idx: u8,
    pub(crate) outcome: Outcome,
}

/// Rarely present request facts.
#[derive(Debug, Default)]
pub(crate) struct Cold {
    /// The method, when it is not one of the standard ones (those are found from the index).
    pub(crate) method: Option<Method>,
    /// The URI, when the slow log is configured to show the path or query.
    pub(crate) uri: Option<Uri>,
    pub(crate) trace_id: Option<TraceId>,
    /// The template, when it found no room in the route table.
    pub(crate) route: Option<Route>,
}

impl<H: OnComplete> Record<H> {
    /// Marks the end of the exchange with `outcome`; the drop that follows records it.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl<H: OnComplete> Record<H> {
    #[inline]
    fn time_to_headers(&self) -> Option<Duration> {
        self.headers_at
            .map(|h| h.saturating_duration_since(self.start))
    }
}

impl<H: OnComplete> Drop for Record<H> {
    fn drop(&mut self) {
        let duration = self.start.elapsed();
        let shared = &*self.shared;
        let overflow = match &self.cold {
            Some(c) if self.route == OVERFLOW => c.route.as_ref(),
            _ => None,
        };
        let (entry, route, threshold) = match overflow {
            Some(r) => (
                None,
                Some(r.as_str()),
                shared.slow.threshold_for(Some(r.as_str())),
            ),
            None => {
                let e = shared.routes.get(self.route);
                (Some(e), e.route(), e.threshold)
            }
        };
        if let Some(cache) = &shared.metrics {
            cache
                .active(self.method_idx, self.scheme_idx)
                .decrement(1.0);
            let status = self.status.map_or(0, |s| s.as_u16());
            let error = match self.outcome {
                Outcome::Completed => None,
                Outcome::Cancelled => Some(ErrorKind::Cancelled),
                Outcome::ServiceError => Some(ErrorKind::Service),
                Outcome::BodyError => Some(ErrorKind::Body),
            };
            let labels = || LabelSet {
                route: entry.map_or(route.unwrap_or(&shared.unmatched_route), |e| &e.label),
                method: self.method_idx,
                scheme: self.scheme_idx,
                status,
                error,
            };
            let record = |h: &Handles| {
                h.duration.record(duration.as_secs_f64());
                if let Some(size) = self.request_size {
                    h.request_size.record(size as f64);
                }
                if self.status.is_some() {
                    h.response_size.record(self.response_size as f64);
                }
                if let Some(hist) = &h.time_to_headers
                    && let Some(tth) = self.time_to_headers()
                {
                    hist.record(tth.as_secs_f64());
                }
            };
            let key = series_key(self.method_idx, self.scheme_idx, status, error);
            match entry.and_then(|e| e.series(key, || cache.resolve(&labels()))) {
                Some(h) => record(h),
                None => cache.with(&labels(), record),
            }
        }
        if let Some(threshold) = threshold
            && duration >= threshold
        {
            self.log_slow(duration, threshold, route);
        }
        // The no-op hook `()` needs no record (the check is resolved at compile time).
        if std::any::TypeId::of::<H>() == std::any::TypeId::of::<()>() {
            return;
        }
        let method = match self.cold.as_ref().and_then(|c| c.method.as_ref()) {
            Some(m) => m,
            None => standard_method(self.method_idx),
        };
        shared.hook.on_complete(&Completion {
            method,
            route,
            status: self.status,
            time_to_headers: self.time_to_headers(),
            duration,
            outcome: self.outcome,
            request_body_size: self.request_size,
            response_body_size: self.response_size,
        });
    }
}

impl<H: OnComplete> Record<H> {
    #[cold]
    fn log_slow(&self, duration: Duration, threshold: Duration, route: Option<&str>) {
        let slow = &self.shared.slow;
        let cold = self.cold.as_deref();
        let uri = cold.and_then(|c| c.uri.as_ref());
        let method = cold
            .and_then(|c| c.method.as_ref())
            .map_or(method_label(self.method_idx), Method::as_str);
        tracing::warn!(
            target: "perf_middleware::slow",
            latency_ms = duration.as_secs_f64() * 1000.0,
            threshold_ms = threshold.as_secs_f64() * 1000.0,
            time_to_headers_ms = self.time_to_headers().map(|d| d.as_secs_f64() * 1000.0),
            route = route.unwrap_or(&self.shared.unmatched_route),
            method,
            status = self.status.map(|s| s.as_u16()),
            outcome = self.outcome.as_str(),
            response_body_bytes = self.response_size,
            trace_id = cold.and_then(|c| c.trace_id.as_ref()).map(tracing::field::display),
            path = uri.filter(|_| slow.log_path).map(Uri::path),
            query = uri.filter(|_| slow.log_query).and_then(Uri::query),
            "slow request"
        );
    }
}
