//! The report and the metrics.

use super::*;

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

/// 30 requests of 80 ms against `p95 < 50ms`: too few for the default floor (200), so no
/// verdict, and `assert_pass` says so with the floor instead of passing.
#[tokio::test(start_paused = true)]
async fn assert_pass_fails_without_evidence_and_states_the_floor() {
    let policy = || {
        BudgetPolicy::builder()
            .add_budget("order", "GET /orders", |b| b.p95(Duration::from_millis(50)))
    };
    let (mut svc, handle) = stack(policy());
    send(&mut svc, "/orders", 30, 80).await;
    let report = handle.report();
    assert!(report.check().is_ok(), "no evidence of a failure either");
    let panic = std::panic::catch_unwind(|| report.assert_pass()).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("order p95 < 50ms: 30 samples, the floor is 200 (30 missed)")
            && msg.contains("sample_floor"),
        "{msg}"
    );

    // A test policy lowers the floor explicitly: the same run now fails with evidence.
    let (mut svc, handle) = stack(policy().sample_floor(20));
    send(&mut svc, "/orders", 30, 80).await;
    let report = handle.report();
    assert_eq!(report.budgets[0].objectives[0].status, Status::Fail);
    let panic = std::panic::catch_unwind(|| report.assert_pass()).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("performance budget failed"), "{msg}");

    // Judged and within budget: passes.
    let (mut svc, handle) = stack(policy().sample_floor(20));
    send(&mut svc, "/orders", 30, 5).await;
    handle.report().assert_pass();
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
    // The layer was built before this recorder was used: the exports describe them anyway.
    for name in [
        crate::metrics::REQUESTS,
        crate::metrics::ERRORS,
        crate::metrics::SHED,
        crate::metrics::SLOW_REQUESTS,
        crate::metrics::BURN_RATE,
        crate::metrics::STATE,
    ] {
        let help = snap
            .iter()
            .find(|(k, ..)| k.key().name() == name)
            .and_then(|(_, _, help, _)| help.clone());
        assert!(
            help.is_some_and(|h| h.contains("labels budget")),
            "{name} has its help with its label names"
        );
    }
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

/// A bad stretch, then a good one: the difference of the reports around the good one judges
/// only its requests, while the window still holds both.
#[tokio::test(start_paused = true)]
async fn since_judges_only_the_traffic_between_two_reports() {
    let (mut svc, handle) = stack(
        p95_policy()
            .min_samples(10)
            .window(Duration::from_secs(600)),
    );
    send(&mut svc, "/users", 300, 5).await; // all miss p95 < 1ms
    let before = handle.report();
    assert_eq!(before.budgets[0].objectives[0].status, Status::Fail);
    send(&mut svc, "/users", 300, 0).await; // all within
    let after = handle.report();
    assert_eq!(after.budgets[0].samples, 600, "the window holds both");
    let run = after.since(&before);
    let users = run.budget("users").unwrap();
    assert_eq!((users.samples, users.objectives[0].bad), (300, 0));
    assert_eq!(users.objectives[0].status, Status::Pass);
    assert!(run.pass);
    run.assert_pass();
    #[cfg(feature = "serde")]
    {
        let json = serde_json::to_string(&after).unwrap();
        assert!(json.contains("\"allowance\":0.05,"), "rounded: {json}");
    }
}

/// A slow stretch (80 ms), then the run: 100 requests of 10 ms and 100 of 50 ms. The run's
/// quantiles come from the difference of the histograms since start, at bucket resolution: the
/// midpoint of the bucket holding the nearest-rank request (32 buckets per octave), while the
/// window's still see the slow stretch.
#[tokio::test(start_paused = true)]
async fn since_takes_the_runs_quantiles_from_the_histograms_since_start() {
    let (mut svc, handle) = stack(
        p95_policy()
            .min_samples(10)
            .window(Duration::from_secs(600)),
    );
    send(&mut svc, "/users", 300, 80).await;
    let before = handle.report();
    send(&mut svc, "/users", 100, 10).await;
    send(&mut svc, "/users", 100, 50).await;
    let after = handle.report();
    // 10 ms lies in [9.984, 10.240) ms, 50 ms in [49.152, 50.176), 80 ms in [79.872, 81.920).
    let (b10, b50, b80) = (Some(10.112), Some(49.664), Some(80.896));
    let window = &after.budget("users").unwrap().observed;
    assert_eq!(
        (window.p50_ms, window.p95_ms),
        (b80, b80),
        "the window holds both"
    );
    let run = after.since(&before);
    let users = run.budget("users").unwrap();
    assert_eq!(users.samples, 200);
    let o = &users.observed;
    assert_eq!((o.p50_ms, o.p95_ms, o.p99_ms), (b10, b50, b50));
    assert_eq!(
        users.total_latency.len(),
        500,
        "the histogram stays the one since start"
    );

    // A restarted server (counts that went down) has no quantiles for the run, as no samples.
    let restarted = before.since(&after);
    let users = restarted.budget("users").unwrap();
    assert_eq!((users.samples, users.observed.p95_ms), (0, None));
    // Nor has a budget that saw nothing between the two reports.
    let idle = after
        .since(&after)
        .budget("users")
        .unwrap()
        .observed
        .clone();
    assert_eq!((idle.p50_ms, idle.p99_ms), (None, None));
}

/// The histogram travels in JSON as its non-empty buckets; a report without it (an older
/// server) still parses, and the run it gives has its counts but no quantiles.
#[cfg(feature = "serde")]
#[tokio::test(start_paused = true)]
async fn reports_without_histograms_parse_and_give_runs_without_quantiles() {
    let (mut svc, handle) = stack(p95_policy().min_samples(10));
    let before = handle.report();
    send(&mut svc, "/users", 30, 10).await;
    send(&mut svc, "/users", 10, 50).await;
    let after = handle.report();
    let json = serde_json::to_value(&after).unwrap();
    assert_eq!(
        json["budgets"][0]["total_latency"],
        serde_json::json!([[9984, 30], [49152, 10]]),
        "[from_us, count] per non-empty bucket"
    );
    let back: crate::BudgetReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, after, "the histogram round-trips");

    let old = |r: &crate::BudgetReport| {
        let mut v = serde_json::to_value(r).unwrap();
        for b in v["budgets"].as_array_mut().unwrap() {
            b.as_object_mut().unwrap().remove("total_latency");
        }
        serde_json::from_value::<crate::BudgetReport>(v).unwrap()
    };
    let run = old(&after).since(&old(&before));
    let users = run.budget("users").unwrap();
    assert_eq!(users.samples, 40);
    assert_eq!(
        (
            users.observed.p50_ms,
            users.observed.p95_ms,
            users.observed.p99_ms
        ),
        (None, None, None)
    );
    let run = after.since(&before);
    assert_eq!(run.budget("users").unwrap().observed.p95_ms, Some(49.664));
}
