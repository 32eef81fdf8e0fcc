//! Behaviour tests of the layer on a paused Tokio clock.

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
fn stack_with(
    b: crate::BudgetLayerBuilder,
) -> (
    impl Service<Request<()>, Response = Response<crate::ResponseBody<Full<Bytes>>>, Error = Infallible>
    + Clone,
    BudgetHandle,
) {
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

async fn send<S>(
    svc: &mut S,
    path: &str,
    n: usize,
    sleep_ms: u64,
) -> Vec<Response<crate::ResponseBody<Full<Bytes>>>>
where
    S: Service<
            Request<()>,
            Response = Response<crate::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        >,
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
        .budget("users", "GET /users", |b| b.p95(MS).error_rate(0.5))
}

#[tokio::test(start_paused = true)]
async fn p95_verdict_flips_exactly_past_five_percent_with_enough_samples() {
    let (mut svc, handle) = stack(p95_policy());
    // 10 % slow but only 100 samples: no verdict yet (p95 needs 200).
    send(&mut svc, "/users", 90, 0).await;
    send(&mut svc, "/users", 10, 1).await;
    let o = |h: &BudgetHandle| h.report().budget("users").unwrap().objectives[0].clone();
    assert_eq!(o(&handle).status, Status::Insufficient);
    // 200 samples, exactly 5 % slow (10 of 200): still within p95.
    send(&mut svc, "/users", 100, 0).await;
    let v = o(&handle);
    assert_eq!(
        (v.samples, v.bad, v.allowed, v.status),
        (200, 10, 10, Status::Pass)
    );
    // One more slow request: 11 of 201 is 5.47 % and the verdict flips.
    send(&mut svc, "/users", 1, 1).await;
    assert_eq!(o(&handle).status, Status::Fail);
    assert!(!handle.report().pass);
    // Dilute back to 11 of 220 = 5 %: passes again.
    send(&mut svc, "/users", 19, 0).await;
    assert_eq!(o(&handle).status, Status::Pass);
}

#[tokio::test(start_paused = true)]
async fn wilson_bound_needs_evidence_at_95_percent_confidence() {
    let (mut svc, handle) = stack(p95_policy().confidence(0.95));
    // 14 of 200 slow = 7 %: the point estimate misses, the lower bound (4.6 %) does not.
    send(&mut svc, "/users", 186, 0).await;
    send(&mut svc, "/users", 14, 1).await;
    let o = handle.report().budget("users").unwrap().objectives[0].clone();
    assert_eq!(o.status, Status::Pass, "{o:?}");
    assert!(o.lower_bound < 0.05 && o.observed_ratio > 0.05);
    // 30 of 216 = 13.9 %: lower bound above 5 %.
    send(&mut svc, "/users", 16, 1).await;
    assert_eq!(
        handle.report().budget("users").unwrap().objectives[0].status,
        Status::Fail
    );
}

#[tokio::test(start_paused = true)]
async fn states_go_ok_warning_breached_ok_with_hysteresis() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let policy = p95_policy()
        .short_slots(2)
        .breach_evals(2)
        .recover_evals(2)
        .build()
        .unwrap();
    let (mut svc, handle) = stack_with(BudgetLayer::builder().policy(policy).on_transition(
        move |t: &crate::Transition| {
            log.lock()
                .unwrap()
                .push((t.objective.clone(), t.from, t.to));
        },
    ));
    let mut states = Vec::new();
    for epoch in 1..=16u32 {
        let slow = matches!(epoch, 2 | 3);
        send(&mut svc, "/users", 100, u64::from(slow)).await;
        // Jump to the start of the next slot and evaluate there.
        let next = handle_start(&handle) + Duration::from_secs(u64::from(epoch));
        tokio::time::advance(next.saturating_duration_since(Instant::now())).await;
        handle.evaluate();
        states.push(handle.state("users").unwrap());
    }
    use State::{Breached as B, Ok as O, Warning as W};
    // After slot 2 (50 % slow in the window): warning; after slot 3: breached. The short window
    // is calm again from slot 5, but the long one still holds the slow slots until slot 13.
    assert_eq!(
        states,
        [O, W, B, B, B, B, B, B, B, B, B, B, O, O, O, O],
        "{states:?}"
    );
    let t = seen.lock().unwrap().clone();
    assert_eq!(
        t,
        [
            ("p95 < 1ms".into(), O, W),
            ("p95 < 1ms".into(), W, B),
            ("p95 < 1ms".into(), B, O)
        ],
        "every transition reaches the hook once"
    );
}

fn handle_start(h: &BudgetHandle) -> Instant {
    h.shared_start()
}

#[tokio::test(start_paused = true)]
async fn deadline_answers_503_at_the_cap_and_counts_an_error_with_latency_cap() {
    let (mut svc, handle) = stack(p95_policy().mode(Mode::Deadline).budget(
        "slow",
        "GET /slow",
        |b| {
            b.objective("p99 < 1s")
                .error_rate(0.01)
                .deadline(Duration::from_secs(2))
        },
    ));
    let start = Instant::now();
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(req("/slow", 10_000))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "answered exactly at the cap"
    );
    let why = res.extensions().get::<BudgetExceeded>().unwrap();
    assert_eq!((why.budget(), why.kind()), ("slow", ExceededKind::Deadline));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"performance budget deadline exceeded"));
    // Under the cap the handler answers, and sees the remaining budget.
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(req("/slow", 500))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-remaining-ms"], "2000");
    let b = handle.report().budget("slow").unwrap().clone();
    assert_eq!((b.samples, b.errors), (2, 1));
    assert_eq!(
        b.objectives[0].bad, 1,
        "the cut request counts as latency = cap (2 s >= 1 s)"
    );
    assert_eq!(
        b.observed.p99_ms.map(|v| (v / 100.0).round() * 100.0),
        Some(2000.0)
    );
}

#[tokio::test(start_paused = true)]
async fn the_exceeded_response_can_be_rewritten() {
    let policy = p95_policy()
        .mode(Mode::Deadline)
        .deadline_status(StatusCode::GATEWAY_TIMEOUT)
        .budget("slow", "GET /slow", |b| {
            b.objective("p99 < 1s").deadline(Duration::from_secs(1))
        });
    let (mut svc, _handle) = stack_with(
        BudgetLayer::builder()
            .policy(policy.build().unwrap())
            .exceeded_response(|why: &BudgetExceeded, mut res: Response<Bytes>| {
                *res.body_mut() = Bytes::from(format!("{{\"budget\":\"{}\"}}", why.budget()));
                res.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                res
            }),
    );
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(req("/slow", 5_000))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["content-length"], "17");
    assert!(res.extensions().get::<BudgetExceeded>().is_some());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"budget":"slow"}"#);
}

#[tokio::test(start_paused = true)]
async fn shed_admits_exactly_the_configured_share_while_breached() {
    let (mut svc, handle) = stack(
        p95_policy()
            .mode(Mode::Shed)
            .breach_evals(1)
            .shed_share("live", 0.9)
            .budget("live", "GET /live", |b| b.p95(MS).priority("live")),
    );
    send(&mut svc, "/live", 300, 1).await;
    assert!(
        send(&mut svc, "/live", 10, 0)
            .await
            .iter()
            .all(|r| r.status() == StatusCode::OK),
        "not breached yet"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    handle.evaluate();
    assert_eq!(handle.state("live"), Some(State::Breached));
    let res = send(&mut svc, "/live", 1000, 0).await;
    let shed: Vec<_> = res
        .iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(shed.len(), 100, "exactly 10 % shed");
    assert_eq!(shed[0].headers()["retry-after"], "1");
    assert_eq!(
        shed[0].extensions().get::<BudgetExceeded>().unwrap().kind(),
        ExceededKind::Shed
    );
    let b = handle.report().budget("live").unwrap().clone();
    assert_eq!(
        (b.shed, b.errors, b.samples),
        (100, 100, 1310),
        "shed requests count as errors"
    );
    // Other budgets are not shed.
    assert!(
        send(&mut svc, "/users", 50, 0)
            .await
            .iter()
            .all(|r| r.status() == StatusCode::OK)
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_is_counted_once() {
    let (mut svc, handle) = stack(p95_policy());
    let fut = svc.ready().await.unwrap().call(req("/users", 10_000));
    assert!(
        tokio::time::timeout(Duration::from_millis(5), fut)
            .await
            .is_err()
    );
    let b = handle.report().budget("users").unwrap().clone();
    assert_eq!((b.cancelled, b.samples, b.errors), (1, 0, 0));
    // A completed request is never also counted as cancelled.
    let res = send(&mut svc, "/users", 1, 0).await;
    drop(res);
    let b = handle.report().budget("users").unwrap().clone();
    assert_eq!((b.cancelled, b.samples), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn measure_body_times_to_the_end_and_counts_a_dropped_body_as_cancelled() {
    let (mut svc, handle) = stack(p95_policy().budget("dl", "GET /dl", |b| {
        b.p95(Duration::from_secs(1)).measure(Measure::Body)
    }));
    let res = send(&mut svc, "/dl", 1, 0).await.pop().unwrap();
    assert_eq!(
        handle.report().budget("dl").unwrap().samples,
        0,
        "not finished before the body ends"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    let b = handle.report().budget("dl").unwrap().clone();
    assert_eq!(
        (b.samples, b.objectives[0].bad),
        (1, 1),
        "2 s to the last byte"
    );
    drop(send(&mut svc, "/dl", 1, 0).await);
    assert_eq!(handle.report().budget("dl").unwrap().cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn annotate_adds_perf_budget_and_server_timing() {
    let (mut svc, _handle) = stack(p95_policy().mode(Mode::Annotate));
    let res = send(&mut svc, "/users", 1, 3).await.pop().unwrap();
    assert_eq!(res.headers()["perf-budget"], "users; state=ok; dur=3.0ms");
    assert_eq!(
        res.headers()["server-timing"],
        "budget;dur=3.00;desc=\"users ok\""
    );
    let (mut svc, _handle) = stack(p95_policy());
    let res = send(&mut svc, "/users", 1, 3).await.pop().unwrap();
    assert!(
        res.headers().get("perf-budget").is_none(),
        "observe mode adds nothing"
    );
    assert!(res.headers().get("server-timing").is_none());
}

#[tokio::test(start_paused = true)]
async fn the_server_timing_switch_adds_the_budget_entry_in_any_mode() {
    use perf_middleware::ServerTiming;
    let builder = |st| {
        BudgetLayer::builder()
            .policy(p95_policy().build().unwrap())
            .server_timing(st)
    };
    let (mut svc, _handle) = stack_with(builder(ServerTiming::Always));
    let res = send(&mut svc, "/users", 1, 3).await.pop().unwrap();
    assert_eq!(
        res.headers()["server-timing"],
        "budget;dur=3.00;desc=\"users ok\""
    );
    assert!(
        res.headers().get("perf-budget").is_none(),
        "Perf-Budget is annotate mode's"
    );
    let (mut svc, _handle) = stack_with(builder(ServerTiming::when_header(
        http::HeaderName::from_static("x-timing"),
    )));
    let res = send(&mut svc, "/users", 1, 0).await.pop().unwrap();
    assert!(
        res.headers().get("server-timing").is_none(),
        "not asked for"
    );
    let asked = Request::get("/users")
        .header("x-timing", "1")
        .body(())
        .unwrap();
    let res = svc.ready().await.unwrap().call(asked).await.unwrap();
    assert_eq!(
        res.headers()["server-timing"],
        "budget;dur=0.00;desc=\"users ok\""
    );
}

#[tokio::test(start_paused = true)]
async fn classifies_5xx_as_errors_not_4xx_and_routes_unmatched_to_other() {
    let (mut svc, handle) = stack(p95_policy());
    for status in ["500", "503", "404", "429", "200"] {
        let r = Request::get("/users")
            .header("x-status", status)
            .body(())
            .unwrap();
        svc.ready().await.unwrap().call(r).await.unwrap();
    }
    send(&mut svc, "/nope/123", 3, 0).await;
    send(&mut svc, "/users/extra", 2, 0).await;
    let r = handle.report();
    let u = r.budget("users").unwrap();
    assert_eq!((u.samples, u.errors), (5, 2));
    assert_eq!(
        r.budget(OTHER).unwrap().samples,
        5,
        "unknown paths share one entry"
    );
}

#[tokio::test(start_paused = true)]
async fn axum_matched_path_selects_the_budget_and_the_report_is_served() {
    use axum::{Router, routing::get};
    let policy = BudgetPolicy::builder()
        .budget("user", "GET /users/{id}", |b| {
            b.p95(Duration::from_millis(100))
        })
        .budget("user-put", "PUT /users/{id}", |b| {
            b.p95(Duration::from_millis(100))
        })
        .build()
        .unwrap();
    let (layer, handle) = BudgetLayer::pair(policy);
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async { "{}" })
                .put(|| async { "{}" })
                .post(|| async { "{}" }),
        )
        .layer(layer)
        .route(
            "/perf/budgets",
            get(crate::axum::report).with_state(handle.clone()),
        );
    for (m, p) in [
        ("GET", "/users/1"),
        ("GET", "/users/2"),
        ("PUT", "/users/3"),
        ("POST", "/users/4"),
    ] {
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(m)
                    .uri(p)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let r = handle.report();
    assert_eq!(r.budget("user").unwrap().samples, 2);
    assert_eq!(r.budget("user-put").unwrap().samples, 1);
    assert_eq!(r.budget(OTHER).unwrap().samples, 1);
    let res = app
        .clone()
        .oneshot(
            Request::get("/perf/budgets")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let json: crate::BudgetReport =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(json.budget("user").unwrap().samples, 2);
    let res = app
        .oneshot(
            Request::get("/perf/budgets?format=text")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.lines().next().unwrap().starts_with("budget"), "{text}");
    assert!(
        text.contains("GET /users/{id}") && text.contains("PASS"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn assert_pass_panics_with_a_table_when_failing() {
    let (mut svc, handle) = stack(p95_policy());
    send(&mut svc, "/users", 250, 1).await;
    let report = handle.report();
    assert!(report.check().is_err());
    let panic = std::panic::catch_unwind(|| report.assert_pass()).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("| users | GET /users |") && msg.contains("FAIL"),
        "{msg}"
    );
}

#[cfg(feature = "metrics")]
#[tokio::test(start_paused = true)]
async fn exports_counters_and_states_through_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (mut svc, handle) = stack(p95_policy().breach_evals(1));
    send(&mut svc, "/users", 300, 1).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    metrics::with_local_recorder(&recorder, || handle.evaluate());
    let snap = snapshotter.snapshot().into_vec();
    let find = |name: &str, label: Option<(&str, &str)>| {
        snap.iter()
            .find(|(k, ..)| {
                k.key().name() == name
                    && label.is_none_or(|(l, v)| {
                        k.key().labels().any(|x| x.key() == l && x.value() == v)
                    })
            })
            .map(|(_, _, _, v)| v)
    };
    assert_eq!(
        find("perf.budget.requests", Some(("budget", "users"))),
        Some(&DebugValue::Counter(300))
    );
    assert_eq!(
        find("perf.budget.requests", Some(("http.route", "/users"))),
        Some(&DebugValue::Counter(300))
    );
    assert!(find("perf.budget.requests", Some(("http.request.method", "GET"))).is_some());
    assert_eq!(
        find("perf.budget.requests", Some(("http.route", "unmatched"))),
        Some(&DebugValue::Counter(0)),
        "__other__ is published under the family's unmatched route"
    );
    assert_eq!(
        find("perf.budget.slow_requests", Some(("objective", "p95"))),
        Some(&DebugValue::Counter(300))
    );
    assert!(
        matches!(find("perf.budget.state", Some(("objective", "p95"))), Some(DebugValue::Gauge(g)) if g.0 == 2.0)
    );
    assert!(find("perf.budget.transitions", Some(("to", "breached"))).is_some());
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

#[tokio::test(start_paused = true)]
async fn axum_body_passes_bodies_through_and_keeps_every_mode() {
    use axum::{Router, routing::get};
    let app = |policy: BudgetPolicyBuilder| {
        let (layer, handle) = BudgetLayer::pair(policy.build().unwrap());
        let router = Router::new()
            .route("/users", get(|| async { "users" }))
            .route(
                "/dl",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "dl"
                }),
            )
            .layer(layer);
        (router, handle)
    };
    // observe: the handler's body as it is, and the request recorded.
    let (router, handle) = app(p95_policy());
    let (parts, body) = axum_call(&router, "GET", "/users").await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"users"[..]));
    assert_eq!(handle.report().budget("users").unwrap().samples, 1);
    // annotate: the headers are added to the passed-through response.
    let (router, _) = app(p95_policy().mode(Mode::Annotate));
    let (parts, _) = axum_call(&router, "GET", "/users").await;
    assert_eq!(parts.headers["perf-budget"], "users; state=ok; dur=0.0ms");
    // deadline: the layer's own response as an axum body.
    let (router, handle) = app(p95_policy()
        .mode(Mode::Deadline)
        .budget("dl", "GET /dl", |b| {
            b.p99(Duration::from_secs(1))
                .deadline(Duration::from_secs(2))
        }));
    let start = Instant::now();
    let (parts, body) = axum_call(&router, "GET", "/dl").await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(parts.extensions.get::<BudgetExceeded>().is_some());
    assert!(body.starts_with(b"performance budget deadline exceeded"));
    assert_eq!(handle.report().budget("dl").unwrap().errors, 1);
    // measure = body: still timed to the end of the body, and a dropped body is cancelled.
    let (router, handle) = app(
        BudgetPolicy::builder().budget("users-body", "GET /users", |b| {
            b.p95(Duration::from_secs(1)).measure(Measure::Body)
        }),
    );
    let res = router
        .clone()
        .oneshot(
            Request::get("/users")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(handle.report().budget("users-body").unwrap().samples, 0);
    tokio::time::advance(Duration::from_secs(2)).await;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"users");
    let b = handle.report().budget("users-body").unwrap().clone();
    assert_eq!((b.samples, b.objectives[0].bad), (1, 1));
    drop(
        router
            .oneshot(
                Request::get("/users")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await,
    );
    assert_eq!(handle.report().budget("users-body").unwrap().cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn around_the_whole_router_the_configured_templates_select_the_budget() {
    use axum::{Router, routing::get};
    let policy = BudgetPolicy::builder()
        .budget("user", "GET /users/{id}", |b| {
            b.p95(Duration::from_millis(100))
        })
        .budget("any-static", "/static", |b| {
            b.p95(Duration::from_millis(100))
        })
        .budget("me", "GET /users/me", |b| b.p95(Duration::from_millis(100)))
        .build()
        .unwrap();
    let (layer, handle) = BudgetLayer::pair(policy);
    let router = Router::new()
        .route("/users/{id}", get(|| async { "{}" }).put(|| async { "{}" }))
        .route("/users/me", get(|| async { "me" }))
        .route("/static", get(|| async { "s" }).post(|| async { "s" }))
        .route("/other", get(|| async { "o" }));
    let app = tower::ServiceBuilder::new().layer(layer).service(router);
    for (m, p) in [
        ("GET", "/users/1"),
        ("GET", "/users/2"),
        ("PUT", "/users/3"),
        ("GET", "/users/me"),
        ("GET", "/users/me/"),
        ("GET", "/static"),
        ("POST", "/static"),
        ("GET", "/other"),
        ("GET", "/missing"),
    ] {
        axum_call(&app, m, p).await;
    }
    let r = handle.report();
    assert_eq!(r.budget("user").unwrap().samples, 2);
    assert_eq!(
        r.budget("me").unwrap().samples,
        1,
        "the static template wins"
    );
    assert_eq!(r.budget("any-static").unwrap().samples, 2);
    assert_eq!(r.budget(OTHER).unwrap().samples, 4);
}

#[tokio::test(start_paused = true)]
async fn matched_path_resolutions_stay_right_with_many_routes_and_routers() {
    use axum::{Router, routing::get};
    // More routes than the resolution cache has slots, two routers sharing one layer (equal
    // templates, distinct strings), budgets on some templates and methods only.
    let mut b = BudgetPolicy::builder();
    for i in (0..100).step_by(3) {
        b = b.budget(format!("r{i}"), &format!("GET /r{i}/{{id}}"), |b| {
            b.p95(Duration::from_secs(1))
        });
    }
    let (layer, handle) = BudgetLayer::pair(b.build().unwrap());
    let router = || {
        let mut r = Router::new();
        for i in 0..100 {
            r = r.route(
                &format!("/r{i}/{{id}}"),
                get(|| async { "" }).post(|| async { "" }),
            );
        }
        r.layer(layer.clone())
    };
    let (a, b) = (router(), router());
    for round in 0..3 {
        for i in 0..100 {
            let path = format!("/r{i}/{round}");
            axum_call(&a, "GET", &path).await;
            axum_call(&b, "GET", &path).await;
            axum_call(&a, "POST", &path).await;
        }
    }
    let r = handle.report();
    for i in (0..100).step_by(3) {
        assert_eq!(r.budget(&format!("r{i}")).unwrap().samples, 6, "r{i}");
    }
    assert_eq!(r.budget(OTHER).unwrap().samples, 3 * (100 * 3 - 34 * 2));
}
