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
