//! What is recorded, and the verdicts and states built on it.

use super::*;

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
    let (mut svc, handle) = stack(p95_policy().add_budget("dl", "GET /dl", |b| {
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
