//! Per-request state: a [`Complete`] implementation that the family's completion guard finishes
//! exactly once, at the end of the body, on an error, or as cancelled. Each consumer (metrics,
//! slow log, hook) is one function.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response, StatusCode, Uri};
use tokio::time::Instant;

use super::builder::Shared;
use super::hooks::{Completion, OnComplete};
use super::registry::{RouteEntry, SeriesKey};
use crate::completion::{Complete, Outcome};
use crate::{KnownMethod, Scheme, TraceId, server_timing};

/// One measured request.
pub(crate) struct Record<H> {
    pub(crate) shared: Arc<Shared<H>>,
    pub(crate) route: Arc<RouteEntry>,
    pub(crate) start: Instant,
    pub(crate) method: Method,
    pub(crate) known: KnownMethod,
    pub(crate) scheme: Scheme,
    /// The request body size, when declared.
    pub(crate) request_size: Option<u64>,
    /// The URI, when the slow log shows the path or query (off by default). Boxed: a `Uri` is
    /// larger than the rest of the record, and the record moves with the response future.
    pub(crate) uri: Option<Box<Uri>>,
    pub(crate) trace_id: Option<TraceId>,
    /// Whether the response gets a `Server-Timing` value.
    pub(crate) server_timing: bool,
    /// When the inner service produced the response head.
    pub(crate) headers_at: Option<Instant>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) response_size: u64,
    /// The request's database statements, from an inner `DbLayer` (response extensions).
    #[cfg(feature = "db")]
    pub(crate) db: Option<Arc<crate::db::DbSummary>>,
    /// The response's `Server-Timing` phases and `Cache-Status` verdict, for the `/perf` page.
    #[cfg(feature = "page")]
    pub(crate) marks: crate::page::Marks,
}

impl<H> std::fmt::Debug for Record<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("route", &self.route.label)
            .field("method", &self.method)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<H: OnComplete> Complete for Record<H> {
    fn on_response<B>(&mut self, res: &mut Response<B>) {
        let now = Instant::now();
        self.headers_at = Some(now);
        self.status = Some(res.status());
        #[cfg(feature = "db")]
        {
            self.db = res.extensions().get::<Arc<crate::db::DbSummary>>().cloned();
        }
        if self.server_timing {
            let total = now.saturating_duration_since(self.start);
            server_timing::append(res.headers_mut(), &[("total", Some(total), None)]);
        }
        #[cfg(feature = "page")]
        if self.shared.page.is_some() {
            self.marks = crate::page::read_marks(res.headers());
        }
    }

    fn on_data(&mut self, len: u64) {
        self.response_size += len;
    }

    fn complete(self, outcome: Outcome) {
        let duration = self.start.elapsed();
        self.record_metrics(duration, outcome);
        let slow = self.route.threshold.is_some_and(|t| duration >= t);
        if let (true, Some(threshold)) = (slow, self.route.threshold) {
            self.log_slow(duration, threshold, outcome);
        }
        #[cfg(feature = "page")]
        self.record_page(duration, outcome, slow);
        self.shared.hook.on_complete(&Completion {
            method: &self.method,
            route: self.route.route(),
            status: self.status,
            time_to_headers: self.time_to_headers(),
            duration,
            outcome,
            request_body_size: self.request_size,
            response_body_size: self.response_size,
            #[cfg(feature = "db")]
            db: self.db.as_deref(),
        });
    }
}

impl<H> Record<H> {
    fn time_to_headers(&self) -> Option<Duration> {
        self.headers_at
            .map(|h| h.saturating_duration_since(self.start))
    }

    fn record_metrics(&self, duration: Duration, outcome: Outcome) {
        let Some(metrics) = &self.shared.metrics else {
            return;
        };
        metrics.active(self.known, self.scheme).decrement(1.0);
        let key = SeriesKey {
            method: self.known,
            scheme: self.scheme,
            status: self.status.map_or(0, |s| s.as_u16()),
            error: (outcome != Outcome::Completed).then_some(outcome),
        };
        let resolve = || metrics.resolve(&self.route.label, key);
        self.route.with_series(key, resolve, |h| {
            h.duration.record(duration.as_secs_f64());
            if let Some(size) = self.request_size {
                h.request_size.record(size as f64);
            }
            if self.status.is_some() {
                h.response_size.record(self.response_size as f64);
            }
            if let (Some(hist), Some(tth)) = (&h.time_to_headers, self.time_to_headers()) {
                hist.record(tth.as_secs_f64());
            }
        });
    }

    /// Hands the completion to the `/perf` page's stores: the end is `start + duration`.
    #[cfg(feature = "page")]
    fn record_page(&self, duration: Duration, outcome: Outcome, slow: bool) {
        if let Some(page) = &self.shared.page {
            page.record(&crate::page::Ended {
                route: &self.route.label,
                method: self.known,
                start: self.start,
                duration,
                time_to_headers: self.time_to_headers(),
                status: self.status,
                outcome,
                trace_id: self.trace_id,
                marks: self.marks,
                #[cfg(feature = "db")]
                db: self.db.as_deref(),
                slow,
            });
        }
    }

    fn log_slow(&self, duration: Duration, threshold: Duration, outcome: Outcome) {
        let slow = &self.shared.slow;
        let uri = self.uri.as_deref();
        #[cfg(feature = "db")]
        let (db_queries, db_ms) = match &self.db {
            Some(db) => (Some(db.queries), Some(round_ms(db.duration))),
            None => (None, None),
        };
        #[cfg(not(feature = "db"))]
        let (db_queries, db_ms): (Option<u32>, Option<f64>) = (None, None);
        tracing::warn!(
            target: "perf_middleware::slow",
            latency_ms = round_ms(duration),
            threshold_ms = round_ms(threshold),
            time_to_headers_ms = self.time_to_headers().map(round_ms),
            route = &*self.route.label,
            method = self.method.as_str(),
            status = self.status.map(|s| s.as_u16()),
            outcome = outcome.as_str(),
            response_body_bytes = self.response_size,
            trace_id = self.trace_id.as_ref().map(tracing::field::display),
            path = uri.filter(|_| slow.log_path).map(Uri::path),
            query = uri.filter(|_| slow.log_query).and_then(Uri::query),
            db_queries,
            db_ms,
            "slow request"
        );
    }
}

/// Milliseconds rounded to three decimals (microseconds), as logs print them.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
