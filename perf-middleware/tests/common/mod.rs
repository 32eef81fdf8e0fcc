//! What the `OnComplete` hook saw, shared by this crate's integration tests.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use perf_middleware::{Completion, Outcome};
use perf_test_support::Collector;
use tower::ServiceExt as _;

/// One finished request, as the hook saw it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    pub(crate) route: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) outcome: Outcome,
    pub(crate) duration: Duration,
    pub(crate) time_to_headers: Option<Duration>,
    pub(crate) response_body_size: u64,
}

/// A hook that pushes what it saw into `log`.
pub(crate) fn hook(log: &Collector<Seen>) -> impl Fn(&Completion<'_>) + Send + Sync + 'static {
    let log = log.clone();
    move |c: &Completion<'_>| {
        log.push(Seen {
            route: c.route.map(str::to_owned),
            status: c.status.map(|s| s.as_u16()),
            outcome: c.outcome,
            duration: c.duration,
            time_to_headers: c.time_to_headers,
            response_body_size: c.response_body_size,
        });
    }
}

/// Calls `svc` in process and collects the response; the hook has run when this returns.
pub(crate) async fn call<S, B>(svc: S, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes)
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let res = svc.oneshot(req).await.expect("a response");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("the whole body").to_bytes();
    (parts.status, parts.headers, body)
}

/// `GET path`, in process.
pub(crate) async fn get<S, B>(svc: S, path: &str) -> (StatusCode, HeaderMap, Bytes)
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    call(svc, Request::get(path).body(Body::empty()).unwrap()).await
}
