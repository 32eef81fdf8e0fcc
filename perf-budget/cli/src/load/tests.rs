//! The load driver on paused Tokio time against an in-process server whose latency is a Tokio
//! sleep: the counts, the drops and the latencies are exact.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::{Plan, RunStats, Target, View, drive, ms};

/// When the server answers a request that arrives now.
#[derive(Clone, Copy)]
enum Answer {
    /// This long after it arrives.
    After(Duration),
    /// At this instant (or at once after it).
    At(tokio::time::Instant),
}

/// Serves every request as `answer` says, on the current runtime.
async fn server(answer: Answer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| async move {
                    match answer {
                        Answer::After(delay) => tokio::time::sleep(delay).await,
                        Answer::At(at) => tokio::time::sleep_until(at).await,
                    }
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Two seconds at `rate` after a 500 ms warm-up, judged against one threshold of 15 ms; the run,
/// the view and every sample's lag.
async fn load(answer: Answer, rate: f64, max_in_flight: usize) -> (RunStats, View, Vec<Duration>) {
    let addr = server(answer).await;
    let plan = Plan {
        addr: addr.clone(),
        host: addr,
        rate,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        max_in_flight,
        timeout: Duration::from_secs(5),
        progress: false,
    };
    let targets = [Target {
        method: http::Method::GET,
        path: "/x".into(),
        budget: 0,
    }];
    let mut views = [View::new(1)];
    let thresholds = [vec![Some(15_000_000)]];
    let mut lags = Vec::new();
    let stats = drive(plan, &targets, &mut views, &thresholds, false, &mut |s| {
        lags.push(s.lag);
    })
    .await
    .unwrap();
    let [view] = views;
    (stats, view, lags)
}

#[tokio::test(start_paused = true)]
async fn every_scheduled_request_is_sent_and_measured_after_the_warm_up() {
    let (stats, view, _) = load(Answer::After(Duration::from_millis(20)), 100.0, 64).await;
    assert_eq!((stats.scheduled, stats.sent, stats.dropped), (200, 200, 0));
    assert_eq!(view.n(), 200);
    assert_eq!(view.errors, 0);
    // The server's 20 ms: no client time on paused time.
    let p50 = ms(view.hist.quantile(0.5));
    assert!((20.0..20.5).contains(&p50), "p50 {p50}");
    // Every request is at or over the 15 ms threshold.
    assert_eq!(view.over, [200]);
    // Two seconds of completions, 100 each (the first second starts at the measured start).
    let rates: Vec<f64> = stats.timeline.iter().map(|t| t.rps).collect();
    assert_eq!(rates.iter().sum::<f64>(), 200.0, "{rates:?}");
    assert!(stats.timeline.len() >= 2);
}

#[tokio::test(start_paused = true)]
async fn a_send_without_a_free_slot_is_dropped_not_delayed() {
    // 50 ms responses, one every 10 ms, at most 2 in flight: 2 of every 5 are sent.
    let (stats, view, _) = load(Answer::After(Duration::from_millis(50)), 100.0, 2).await;
    assert_eq!(stats.scheduled, 200);
    assert!(stats.dropped > 100, "{stats:?}");
    assert_eq!(stats.sent + stats.dropped, 200);
    assert_eq!(view.n(), stats.sent);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_server_cannot_hide_behind_the_gate() {
    // Every response waits until 1.525 s after the pool opens (the run starts 20 ms after it, the
    // measured run 500 ms later), then comes at once: the server stalls for the first second of
    // the measured run.
    let resume = tokio::time::Instant::now() + Duration::from_millis(1525);
    let (stats, view, lags) = load(Answer::At(resume), 100.0, 256).await;
    // Every request went out on time, on a new connection while the others waited (the 151
    // scheduled in the stall, warm-up included, each on its own)...
    assert_eq!((stats.sent, stats.dropped), (200, 0));
    assert!(lags.iter().all(|l| l.is_zero()), "no send waited");
    assert_eq!(
        stats.connections, 151,
        "no request waited for a busy connection"
    );
    // ...so the stall is in the latencies: the 101 measured requests scheduled during the stall
    // waited 1,005 ms down to 5 ms, in steps of 10 ms, 100 of them 15 ms or more.
    let max = ms(view.hist.max());
    assert!((995.0..1010.0).contains(&max), "max {max}");
    assert_eq!(view.over, [100]);
}

#[test]
fn run_stats_print_their_floats_to_three_decimals() {
    let stats = super::RunStats {
        achieved_rate: 199.99999999999997,
        lag_p50_ms: 7.278714000000001,
        timeline: vec![super::Tick {
            t_s: 1.0000000000000002,
            rps: 200.0,
            errors: 0,
            p50_ms: 0.1234567,
            p99_ms: 0.2,
        }],
        ..super::RunStats::default()
    };
    let json = serde_json::to_string(&stats).unwrap();
    assert!(json.contains("\"achieved_rate\":200.0"), "{json}");
    assert!(json.contains("\"lag_p50_ms\":7.279"), "{json}");
    assert!(json.contains("\"p50_ms\":0.123"), "{json}");
    assert!(!json.contains("0000000"), "{json}");
}

#[tokio::test(start_paused = true)]
async fn a_stall_shorter_than_the_warm_window_opens_no_connection_mid_run() {
    // 400 req/s: 20 connections warmed for 50 ms of arrivals. Each answer takes 45 ms, so 18
    // requests are in flight at once, and the warm ones are enough: a connect mid-run would put
    // the gate's own connect between a request's start and its write.
    let (stats, view, _) = load(Answer::After(Duration::from_millis(45)), 400.0, 256).await;
    assert_eq!(
        stats.sent, 800,
        "two seconds at 400 req/s after the warm-up"
    );
    assert_eq!(
        stats.connections, 20,
        "no connection opened after the warm ones"
    );
    assert_eq!(ms(view.hist.quantile(0.99)), ms(view.hist.quantile(0.5)));
}
