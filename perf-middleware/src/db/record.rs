//! Per-request state: the [`Complete`] implementation that reports a request's statements.

use std::sync::Arc;
use std::time::Duration;

use http::Response;
use tracing::Span;
use tracing_subscriber::registry::{LookupSpan, Registry};

use super::TARGET;
use super::capture::round_ms;
use super::collector::Collector;
use super::layer::{RouteEntry, Shared};
use super::summary::FingerprintStats;
use super::violation::{Violation, ViolationKind};
use crate::completion::{Complete, Outcome};
use crate::server_timing;

/// One request's database state: its collector lives in the request span's extensions.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) shared: Arc<Shared>,
    pub(crate) route: Arc<RouteEntry>,
    pub(crate) trace_id: Option<crate::TraceId>,
    pub(crate) span: Span,
    pub(crate) server_timing: bool,
}

impl Record {
    /// Reads the request's collector (always there while the record holds the span).
    fn read<R>(&self, f: impl FnOnce(&Collector) -> R) -> Option<R> {
        self.span
            .with_subscriber(|(id, dispatch)| {
                let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
                let ext = span.extensions();
                ext.get::<Collector>().map(f)
            })
            .flatten()
    }
}

impl Complete for Record {
    fn on_response<B>(&mut self, res: &mut Response<B>) {
        // A request that ran nothing gets no summary (and allocates nothing here).
        let summary = self
            .read(|c| (!c.is_empty()).then(|| c.summary(&self.shared.profile)))
            .flatten();
        if self.server_timing {
            let (queries, duration, wait) =
                summary.as_ref().map_or((0, Duration::ZERO, None), |s| {
                    (
                        s.queries,
                        s.duration,
                        (s.acquires > 0).then_some(s.acquire_wait),
                    )
                });
            let desc = super::summary::description(queries);
            let db = ("db", Some(duration), Some(desc.as_str()));
            // `db-wait` only when sqlx logs pool acquires (`acquire_time_level`).
            match wait {
                Some(wait) => {
                    server_timing::append(res.headers_mut(), &[db, ("db-wait", Some(wait), None)]);
                }
                None => server_timing::append(res.headers_mut(), &[db]),
            }
        }
        if let Some(summary) = summary {
            res.extensions_mut().insert(Arc::new(summary));
        }
    }

    fn complete(self, _: Outcome) {
        let profile = &self.shared.profile;
        let findings = self.read(|c| {
            if let Some(m) = &self.route.metrics {
                m.queries.record(f64::from(c.queries()));
                m.duration.record(c.total().as_secs_f64());
            }
            let n_plus_one: Vec<FingerprintStats> = c.n_plus_one(profile).cloned().collect();
            (c.queries(), c.total(), n_plus_one)
        });
        let Some((queries, total, n_plus_one)) = findings else {
            return;
        };
        // Logged outside the span's lock (a subscriber may read the span's extensions).
        self.report_n_plus_one(&n_plus_one);
        if let Some(max) = self.shared.max_queries
            && queries > max
        {
            self.shared.violation(Violation {
                kind: ViolationKind::TooManyQueries,
                route: self.route.label.clone(),
                fingerprint: None,
                count: queries,
                total,
            });
        }
    }
}

impl Record {
    fn report_n_plus_one(&self, findings: &[FingerprintStats]) {
        let route = &self.route.label;
        let trace_id = self.trace_id;
        for stats in findings {
            let fp = &stats.fingerprint;
            if let Some(m) = &self.route.metrics {
                m.n_plus_one.increment(1);
            }
            if self.shared.may_warn(route, fp.hash()) {
                tracing::warn!(
                    target: TARGET,
                    route = &**route,
                    fingerprint = %fp,
                    statement = fp.text(),
                    count = stats.sequential,
                    total_ms = round_ms(stats.sequential_total),
                    trace_id = trace_id.map(tracing::field::display),
                    "N+1 query: the same statement ran {} times in a row; load the rows in one query (JOIN or IN)",
                    stats.sequential,
                );
            }
            self.shared.violation(Violation {
                kind: ViolationKind::NPlusOne,
                route: route.clone(),
                fingerprint: Some(fp.clone()),
                count: stats.sequential,
                total: stats.sequential_total,
            });
        }
    }
}
