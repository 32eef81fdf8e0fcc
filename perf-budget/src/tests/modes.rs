//! The modes: deadline, shed, annotate, and the `Server-Timing` switch.

use super::*;

#[tokio::test(start_paused = true)]
async fn deadline_answers_503_at_the_cap_and_counts_an_error_with_latency_cap() {
    let (mut svc, handle) = stack(p95_policy().mode(Mode::Deadline).add_budget(
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
        .add_budget("slow", "GET /slow", |b| {
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
            .add_shed_share("live", 0.9)
            .add_budget("live", "GET /live", |b| b.p95(MS).priority("live")),
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
async fn annotate_adds_perf_budget_and_server_timing() {
    let (mut svc, _handle) = stack(p95_policy().mode(Mode::Annotate));
    let res = send(&mut svc, "/users", 1, 3).await.pop().unwrap();
    assert_eq!(res.headers()["perf-budget"], "users; state=ok; dur=3.0ms");
    assert_eq!(
        res.headers()["server-timing"],
        "budget;dur=3.00;desc=\"users ok\""
    );
    let res = send(&mut svc, "/other", 1, 3).await.pop().unwrap();
    assert!(
        res.headers().get("perf-budget").is_none() && res.headers().get("server-timing").is_none(),
        "`__other__` is no budget: no header"
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
