//! The open-model load driver: constant arrival rate, latency measured from the *scheduled*
//! send time (so a stalled server cannot hide behind a waiting client), HDR histograms.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use perf_budget::LatencyHistogram;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// One kind of request in the mix.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) method: http::Method,
    pub(crate) path: String,
    /// Index of the budget this request is judged against (client view).
    pub(crate) budget: usize,
}

/// Load parameters.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) addr: String,
    pub(crate) host: String,
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) timeout: Duration,
}

/// Per-budget client-side results.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Latencies from the scheduled send, in the layer's histogram type.
    pub(crate) hist: LatencyHistogram,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    /// Exact counts of requests at or over each objective threshold (same order as objectives).
    pub(crate) over: Vec<u64>,
}

impl View {
    pub(crate) fn new(objectives: usize) -> Self {
        Self {
            hist: LatencyHistogram::new(),
            errors: 0,
            timeouts: 0,
            over: vec![0; objectives],
        }
    }
    pub(crate) fn n(&self) -> u64 {
        self.hist.len()
    }
}

/// Milliseconds of a histogram reading (0 when empty).
pub(crate) fn ms(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// What the schedule achieved.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunStats {
    pub(crate) target_rate: f64,
    pub(crate) achieved_rate: f64,
    pub(crate) scheduled: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    pub(crate) lag_p99_ms: f64,
    pub(crate) lag_max_ms: f64,
    pub(crate) duration_s: f64,
    pub(crate) warmup_s: f64,
    pub(crate) open_model: bool,
}

struct Sample {
    target: usize,
    latency: Duration,
    lag: Duration,
    error: bool,
    timeout: bool,
    measured: bool,
}

type Pool = Arc<Mutex<Vec<SendRequest<Empty<Bytes>>>>>;

async fn send(pool: &Pool, plan: &Plan, t: &Target) -> Result<u16, String> {
    let sender = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut sender = match sender {
        Some(s) if !s.is_closed() => s,
        _ => {
            let stream = tokio::net::TcpStream::connect(&plan.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", plan.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender
        }
    };
    sender.ready().await.map_err(|e| e.to_string())?;
    let req = http::Request::builder()
        .method(t.method.clone())
        .uri(&t.path)
        .header(http::header::HOST, &plan.host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    res.into_body().collect().await.map_err(|e| e.to_string())?;
    pool.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
    Ok(status)
}

/// Sends one scheduled request and measures it from its scheduled time.
async fn one(
    pool: &Pool,
    plan: &Plan,
    targets: &[Target],
    ti: usize,
    sched: Instant,
    measured: bool,
) -> Sample {
    let lag = Instant::now().saturating_duration_since(sched);
    let r = tokio::time::timeout(plan.timeout, send(pool, plan, &targets[ti])).await;
    let (error, timeout) = match &r {
        Ok(Ok(status)) => (*status >= 500, false),
        Ok(Err(_)) => (true, false),
        Err(_) => (true, true),
    };
    // Latency from the scheduled send; a timeout counts as latency = timeout.
    let latency = if timeout {
        plan.timeout
    } else {
        Instant::now().saturating_duration_since(sched)
    };
    Sample {
        target: ti,
        latency,
        lag,
        error,
        timeout,
        measured,
    }
}

/// Adds the measured samples to their budgets' views; the count sent and the lag histogram.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Sample>,
    targets: &[Target],
    views: &mut [View],
    thresholds: &[Vec<Option<u64>>],
) -> (u64, LatencyHistogram) {
    let mut lag = LatencyHistogram::new();
    let mut sent = 0;
    while let Some(s) = rx.recv().await {
        if !s.measured {
            continue;
        }
        sent += 1;
        lag.record(s.lag);
        let b = targets[s.target].budget;
        let v = &mut views[b];
        v.hist.record(s.latency);
        v.errors += u64::from(s.error);
        v.timeouts += u64::from(s.timeout);
        let ns = u64::try_from(s.latency.as_nanos()).unwrap_or(u64::MAX);
        for (o, t) in v.over.iter_mut().zip(&thresholds[b]) {
            if let Some(t) = t {
                *o += u64::from(ns >= *t);
            }
        }
    }
    (sent, lag)
}

/// Runs the plan; returns per-budget views and the schedule statistics.
pub(crate) async fn run(
    plan: Plan,
    targets: Vec<Target>,
    views: &mut [View],
    thresholds: &[Vec<Option<u64>>],
) -> RunStats {
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let warm_n = (plan.warmup.as_secs_f64() * plan.rate).round() as u64;
    let total = warm_n + (plan.duration.as_secs_f64() * plan.rate).round() as u64;
    let pool: Pool = Arc::new(Mutex::new(Vec::new()));
    let sem = Arc::new(Semaphore::new(plan.max_in_flight));
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let plan = Arc::new(plan);
    let targets = Arc::new(targets);
    let start = Instant::now() + Duration::from_millis(20);
    let mut dropped = 0;
    let mut first_measured: Option<Instant> = None;
    let mut last_sent = start;
    for i in 0..total {
        let sched = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(sched).await;
        let measured = i >= warm_n;
        if measured && first_measured.is_none() {
            first_measured = Some(sched);
        }
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            if measured {
                dropped += 1;
            }
            continue;
        };
        last_sent = Instant::now();
        let (pool, plan, targets, tx) = (pool.clone(), plan.clone(), targets.clone(), tx.clone());
        let ti = (i % targets.len() as u64) as usize;
        tokio::spawn(async move {
            let sample = one(&pool, &plan, &targets, ti, sched, measured).await;
            let _ = tx.send(sample);
            drop(permit);
        });
    }
    drop(tx);
    let (sent, lag) = collect(&mut rx, &targets, views, thresholds).await;
    let measured_span = first_measured
        .map_or(Duration::ZERO, |f| last_sent.saturating_duration_since(f))
        + interval;
    RunStats {
        target_rate: plan.rate,
        achieved_rate: sent as f64 / measured_span.as_secs_f64().max(1e-9),
        scheduled: total - warm_n,
        sent,
        dropped,
        lag_p99_ms: ms(lag.quantile(0.99)),
        lag_max_ms: ms(lag.max()),
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        open_model: true,
    }
}
