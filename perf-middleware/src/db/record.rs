//! Per-request state: the [`Complete`] implementation that reports a request's statements.

use std::sync::Arc;

use http::Response;

use super::TARGET;
use super::capture::round_ms;
use super::collector::Collector;
use super::layer::{RouteEntry, Shared};
use super::summary::DbSummary;
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
        let summary = self.collector.summary(&self.shared.profile);
        if self.server_timing {
            let desc = summary.description();
            let db = ("db", Some(summary.duration), Some(desc.as_str()));
            let wait = ("db-wait", Some(summary.acquire_wait), None);
            // `db-wait` only when sqlx logs pool acquires (`acquire_time_level`).
            let entries = if summary.acquires > 0 {
                &[db, wait][..]
            } else {
                &[db][..]
            };
            server_timing::append(res.headers_mut(), entries);
        }
        res.extensions_mut().insert(Arc::new(summary));
    }

    fn complete(self, _: Outcome) {
        let summary = self.collector.summary(&self.shared.profile);
        if let Some(m) = &self.route.metrics {
            m.queries.record(f64::from(summary.queries));
            m.duration.record(summary.duration.as_secs_f64());
        }
        self.report_n_plus_one(&summary);
        if let Some(max) = self.shared.max_queries
            && summary.queries > max
        {
            self.shared.violation(Violation {
                kind: ViolationKind::TooManyQueries,
                route: self.route.label.clone(),
                fingerprint: None,
                count: summary.queries,
                total: summary.duration,
            });
        }
    }
}

impl Record {
    fn report_n_plus_one(&self, summary: &DbSummary) {
        let route = &self.route.label;
        for stats in summary
            .fingerprints
            .iter()
            .filter(|s| self.shared.profile.flags(s))
        {
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
