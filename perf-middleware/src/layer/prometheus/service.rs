//! [`MetricsService`]: the `/metrics` endpoint.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, header};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_service::Service;

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A service answering every request with the Prometheus text rendering of `handle`, marked
/// `Cache-Control: no-store` so no cache in between serves a stale scrape.
///
/// Mount it with axum's `route_service("/metrics", ..)` or call it from hyper.
#[derive(Debug, Clone)]
pub struct MetricsService {
    handle: PrometheusHandle,
}

impl MetricsService {
    /// Serves `handle`.
    pub fn new(handle: PrometheusHandle) -> Self {
        Self { handle }
    }
}

impl<B> Service<Request<B>> for MetricsService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut res = Response::new(self.handle.render());
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn scrapes_are_text_and_never_cached() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || metrics::counter!("scraped").increment(2));
        let res = MetricsService::new(handle)
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert!(res.body().contains("scraped 2"), "{}", res.body());
    }
}
