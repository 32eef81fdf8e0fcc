//! [`ReportService`]: the report over HTTP, as JSON or text.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};

use crate::layer::BudgetHandle;
use crate::report::BudgetReport;

/// Serves a [`BudgetHandle`]'s report: JSON by default, the text table with `?format=text`
/// or `Accept: text/plain`. A plain `Service`, so it mounts in axum (`route_service`), tower
/// and hyper alike. See the module docs for an example.
#[derive(Debug, Clone)]
pub struct ReportService {
    handle: BudgetHandle,
}

impl ReportService {
    /// Serves this handle's report.
    pub fn new(handle: BudgetHandle) -> Self {
        Self { handle }
    }
}

/// Renders the report for a request's URI query and `Accept` header.
#[cfg(feature = "serde")]
fn json(report: &BudgetReport) -> (String, &'static str) {
    let body = serde_json::to_string_pretty(report).unwrap_or_default();
    (body, "application/json")
}

#[cfg(not(feature = "serde"))]
fn json(report: &BudgetReport) -> (String, &'static str) {
    (report.to_text(), "text/plain; charset=utf-8")
}

pub(crate) fn render(
    handle: &BudgetHandle,
    query: Option<&str>,
    accept: Option<&HeaderValue>,
) -> Response<String> {
    let report = handle.report();
    let text = query.is_some_and(|q| q.split('&').any(|p| p == "format=text"))
        || accept
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/plain") && !a.contains("json"));
    let (body, ct) = if text {
        (report.to_text(), "text/plain; charset=utf-8")
    } else {
        json(&report)
    };
    let mut res = Response::new(body);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl<B> tower_service::Service<Request<B>> for ReportService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(render(
            &self.handle,
            req.uri().query(),
            req.headers().get(header::ACCEPT),
        )))
    }
}
