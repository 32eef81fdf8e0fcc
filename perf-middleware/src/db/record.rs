//! Per-request state: the [`Complete`] implementation that reports a request's statements.

use std::sync::Arc;
use std::time::Duration;

use http::Response;

use super::TARGET;
use super::capture::round_ms;
use super::collector::Collector;
use super::layer::{RouteEntry, Shared};
use super::summary::FingerprintStats;
use super::violation::{Violation, ViolationKind};
use crate::completion::{Complete, Outcome};
use crate::server_timing;

/// One request's database state.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) shared: Arc<Shared>,
    pub(crate) route: Arc<RouteEntry>,
    pub(crate) collector: Arc<Collector>,
    pub(crate) server_timing: bool,
}

impl Complete for Record {
    fn on_response<B>(&mut self, res: &mut Response<B>) {
        // A request that ran nothing gets no summary (nothing is allocated for it).
        let summary = self.collector.summary(&self.shared.profile);
        if self.server_timing {
            let (queries, duration) = summary
                .as_ref()
                .map_or((0, Duration::ZERO), |s| (s.queries, s.duration));
            let desc = super::summary::description(queries);
            let db = ("db", Some(duration), Some(desc.as_str()));
            // `db-wait` only when sqlx logs pool acquires (`acquire_time_level`).
            match summary.as_ref().filter(|s| s.acquires > 0) {
                Some(s) => {
                    let wait = ("db-wait", Some(s.acquire_wait), None);
                    server_timing::append(res.headers_mut(), &[db, wait]);
                }
                None => server_timing::append(res.headers_mut(), &[db]),
            }
        }
        if let Some(summary) = summary {
            res.extensions_mut().insert(Arc::new(summary));
        }
    }

    fn complete(self, _: Outcome) {
        let report = self.collector.report(&self.shared.profile);
        // Every request is in the per-route histograms, those that ran nothing as 0.
        if let Some(m) = &self.route.metrics {
            m.queries.record(f64::from(report.queries));
            m.duration.record(report.total.as_secs_f64());
        }
        self.report_n_plus_one(&report.n_plus_one);
        if let Some(max) = self.shared.max_queries
            && report.queries > max
        {
            self.shared.violation(Violation {
                kind: ViolationKind::TooManyQueries,
                route: self.route.label.clone(),
                fingerprint: None,
                count: report.queries,
                total: report.total,
            });
        }
    }
}

impl Record {
    fn report_n_plus_one(&self, findings: &[FingerprintStats]) {
        let route = &self.route.label;
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
                    trace_id = self.collector.trace_id.map(tracing::field::display),
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
