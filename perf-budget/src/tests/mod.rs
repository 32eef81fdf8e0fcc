//! Behaviour tests of the layer on a paused Tokio clock, by behaviour: recording and verdicts,
//! modes, routes, the report.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tower::{Service, ServiceExt, service_fn};

use crate::{
    BudgetExceeded, BudgetHandle, BudgetLayer, BudgetPolicy, BudgetPolicyBuilder, Deadline,
    ExceededKind, Measure, Mode, OTHER, State, Status,
};

const MS: Duration = Duration::from_millis(1);

/// Sleeps `x-sleep-ms`, answers `x-status` (default 200) and echoes the remaining deadline.
async fn handler(req: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
    let num = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    };
    let remaining = req
        .extensions()
        .get::<Deadline>()
        .map(|d| d.remaining().as_millis() as u64);
    if let Some(ms) = num("x-sleep-ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut res = Response::new(Full::new(Bytes::from_static(b"hello")));
    *res.status_mut() =
        StatusCode::from_u16(num("x-status").unwrap_or(200) as u16).unwrap_or(StatusCode::OK);
    if let Some(ms) = remaining {
        res.headers_mut().insert("x-remaining-ms", ms.into());
    }
    Ok(res)
}

fn stack(
    b: BudgetPolicyBuilder,
) -> (
    impl Service<Request<()>, Response = Response<crate::ResponseBody<Full<Bytes>>>, Error = Infallible>
    + Clone,
    BudgetHandle,
) {
    stack_with(BudgetLayer::builder().policy(b.build().unwrap()))
}

/// The handler behind a layer built by `b`.
fn stack_with<T, X>(
    b: crate::BudgetLayerBuilder<T, X>,
) -> (
    impl Service<
        Request<()>,
        Response = Response<crate::ResponseBody<Full<Bytes>, T, X>>,
        Error = Infallible,
    > + Clone,
    BudgetHandle,
)
where
    T: crate::OnTransition,
    X: crate::ResponseForBudgetExceeded,
{
    let layer = b.build().unwrap();
    let handle = layer.handle();
    (
        tower::ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(handler)),
        handle,
    )
}

fn req(path: &str, sleep_ms: u64) -> Request<()> {
    Request::get(path)
        .header("x-sleep-ms", sleep_ms.to_string())
        .body(())
        .unwrap()
}

async fn send<S, B>(svc: &mut S, path: &str, n: usize, sleep_ms: u64) -> Vec<Response<B>>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            svc.ready()
                .await
                .unwrap()
                .call(req(path, sleep_ms))
                .await
                .unwrap(),
        );
    }
    out
}

fn p95_policy() -> BudgetPolicyBuilder {
    BudgetPolicy::builder()
        .window(Duration::from_secs(10))
        .slots(10)
        .confidence(0.5)
        .add_budget("users", "GET /users", |b| b.p95(MS).error_rate(0.5))
}

fn handle_start(h: &BudgetHandle) -> Instant {
    h.shared_start()
}

/// A request to an axum app, answered with its status, headers, extensions and whole body.
async fn axum_call<S, B>(app: &S, method: &str, path: &str) -> (http::response::Parts, Bytes)
where
    S: Service<Request<axum::body::Body>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let (parts, body) = app.clone().oneshot(req).await.unwrap().into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

mod modes;
mod recording;
mod report;
mod routes;
