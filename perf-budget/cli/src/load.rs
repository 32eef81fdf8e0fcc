//! The open-model load driver: constant arrival rate, no send ever waiting for a response (so a
//! stalled server cannot hide behind a waiting client), latency in the layer's histogram from a
//! request's start to the kernel's receive timestamp of its response. The gate's own lateness,
//! from the scheduled time to the start, is the schedule's lag: reported and judged apart, not
//! charged to the server ([`request`]).
//!
//! One task on one current-thread runtime sends, reads and collects, so a send needs no wake-up
//! of another thread and is never queued behind responses being read: a send that is due goes
//! first, and a request drives its own connection, so it reaches the socket on its first poll
//! ([`conn`]). The schedule's timer is a `timerfd` ([`pace`]), precise to a few microseconds where
//! Tokio's wheel ticks every millisecond. A response ends at the kernel's receive timestamp of its
//! last bytes ([`stamp`], Linux), not after the gate's own wake-up and parse. Keep-alive
//! connections are opened before the first scheduled send, and the request parts (URI, host
//! header) are built once.

#[cfg(all(test, target_os = "linux"))]
mod accuracy;
mod collect;
mod conn;
mod pace;
#[cfg(target_os = "linux")]
mod stamp;
#[cfg(test)]
mod tests;

use std::task::Poll;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use perf_budget::LatencyHistogram;
use tokio::time::Instant;

use collect::{Collector, PROGRESS_EVERY, Progress};
use conn::{Pool, Prepared};
use pace::Pacer;

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
    /// Draw the live progress line (on a terminal only).
    pub(crate) progress: bool,
}

/// Per-budget client-side results.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Latencies from each request's start, in the layer's histogram type.
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

/// Writes a float to three decimals (a rate, a duration in ms or s), as the gate prints it:
/// `7.279`, not `7.278714000000001`.
fn rounded<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}

/// What the schedule achieved.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunStats {
    #[serde(serialize_with = "rounded")]
    pub(crate) target_rate: f64,
    #[serde(serialize_with = "rounded")]
    pub(crate) achieved_rate: f64,
    pub(crate) scheduled: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    /// The median delay from the scheduled send to the request's start (the gate's lateness).
    #[serde(default)]
    #[serde(serialize_with = "rounded")]
    pub(crate) lag_p50_ms: f64,
    #[serde(serialize_with = "rounded")]
    pub(crate) lag_p99_ms: f64,
    #[serde(serialize_with = "rounded")]
    pub(crate) lag_max_ms: f64,
    #[serde(serialize_with = "rounded")]
    pub(crate) duration_s: f64,
    #[serde(serialize_with = "rounded")]
    pub(crate) warmup_s: f64,
    pub(crate) open_model: bool,
    /// Connections opened, before the run and during it (when every open one was busy).
    #[serde(default)]
    pub(crate) connections: u64,
    /// Completions per second of the measured run (empty for an `oha` result).
    #[serde(default)]
    pub(crate) timeline: Vec<Tick>,
    /// The client latency spectrum per budget (filled by the gate after the run).
    #[serde(default)]
    pub(crate) spectra: Vec<Spectrum>,
    /// The server's latency spectrum of this run per budget: the difference of its latency
    /// histograms after and before the load ([`server_spectra`]; empty without them).
    #[serde(default)]
    pub(crate) server_spectra: Vec<Spectrum>,
}

/// One second of a run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Tick {
    /// Seconds since the measured start.
    #[serde(serialize_with = "rounded")]
    pub(crate) t_s: f64,
    /// Completions in this second.
    #[serde(serialize_with = "rounded")]
    pub(crate) rps: f64,
    pub(crate) errors: u64,
    #[serde(serialize_with = "rounded")]
    pub(crate) p50_ms: f64,
    #[serde(serialize_with = "rounded")]
    pub(crate) p99_ms: f64,
}

/// A budget's latency percentile spectrum: `(quantile, ms)` from p0 to the maximum.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Spectrum {
    pub(crate) budget: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// The quantiles a spectrum is drawn through.
const SPECTRUM_QUANTILES: [f64; 16] = [
    0.0, 0.1, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 1.0,
];

/// Each budget's spectrum; `names[i]` names view `i`.
pub(crate) fn spectra(views: &[View], names: &[&str]) -> Vec<Spectrum> {
    views
        .iter()
        .zip(names)
        .filter_map(|(v, name)| spectrum(name, &v.hist))
        .collect()
}

/// Each budget's spectrum in the server's view of a run: the latencies in `after` that were not
/// in `before` (a budget whose histogram went down, a restarted server, has none).
pub(crate) fn server_spectra(
    after: &perf_budget::BudgetReport,
    before: &perf_budget::BudgetReport,
) -> Vec<Spectrum> {
    after
        .budgets
        .iter()
        .filter_map(|b| {
            let run = match before.budget(&b.name) {
                Some(old) => b.total_latency.since(&old.total_latency)?,
                None => b.total_latency.clone(),
            };
            spectrum(&b.name, &run)
        })
        .collect()
}

/// A histogram's spectrum; `None` when it is empty.
fn spectrum(budget: &str, h: &LatencyHistogram) -> Option<Spectrum> {
    (!h.is_empty()).then(|| Spectrum {
        budget: budget.to_owned(),
        points: SPECTRUM_QUANTILES
            .iter()
            .map(|&q| (q, ms(h.quantile(q))))
            .collect(),
    })
}

/// One request's outcome, as the driver collects it.
pub(crate) struct Sample {
    target: usize,
    /// When it was scheduled to be sent.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the accuracy test pairs requests by it")
    )]
    pub(crate) sched: Instant,
    /// From the request's start to the response's last bytes (or the timeout).
    pub(crate) latency: Duration,
    /// From the scheduled send to the request's start: the gate's own lateness.
    pub(crate) lag: Duration,
    error: bool,
    timeout: bool,
    /// After the warm-up.
    pub(crate) measured: bool,
}

/// The whole seconds from `start` to now (a completion's second in the timeline).
fn second_of(start: Instant) -> usize {
    Instant::now().saturating_duration_since(start).as_secs() as usize
}

/// Connections opened before the first send: enough for 50 ms of arrivals (a server that stalls
/// that long needs no new connection; opening one mid-run puts a connect and a wake-up between a
/// request's start and its write, BENCHMARKS.md runs 30–40), at least 2, at most 256 and
/// `--max-in-flight`.
fn warm_connections(plan: &Plan) -> usize {
    ((plan.rate * 0.05).ceil() as usize)
        .clamp(2, 256)
        .min(plan.max_in_flight)
}

/// Sends one scheduled request and measures it from when the gate started it.
///
/// The gate's own lateness (a descheduled thread, a preempted vCPU) is the schedule's lag, kept
/// apart and judged on its own (`--max-lag-p99`), not charged to the server. That does not let a
/// stalled server hide: no send ever waits for a response (a busy connection is never reused, a
/// new one is opened, and a send over `--max-in-flight` is dropped and counted), so a request
/// starts on time whatever the server does, and its checkout, connect and write are in its
/// latency.
async fn request(
    pool: &Pool,
    plan: &Plan,
    p: &Prepared,
    target: usize,
    sched: Instant,
    measured: bool,
) -> Sample {
    let start = Instant::now();
    let lag = start.saturating_duration_since(sched);
    let r = tokio::time::timeout(plan.timeout, pool.exchange(p, start)).await;
    // A timeout counts as latency = timeout.
    let (latency, error, timeout) = match r {
        Ok(Ok((status, received))) => (
            received.saturating_duration_since(start),
            status >= 500,
            false,
        ),
        Ok(Err(_)) => (Instant::now().saturating_duration_since(start), true, false),
        Err(_) => (plan.timeout, true, true),
    };
    Sample {
        target,
        sched,
        latency,
        lag,
        error,
        timeout,
        measured,
    }
}

fn prepare(plan: &Plan, targets: &[Target]) -> Result<Vec<Prepared>, String> {
    let host = http::HeaderValue::from_str(&plan.host).map_err(|e| format!("host: {e}"))?;
    targets
        .iter()
        .map(|t| {
            Ok(Prepared {
                method: t.method.clone(),
                uri: t
                    .path
                    .parse()
                    .map_err(|e| format!("--request {:?}: {e}", t.path))?,
                host: host.clone(),
            })
        })
        .collect()
}

/// Runs the plan on its own current-thread runtime (this thread); returns the schedule
/// statistics and fills `views`.
pub(crate) fn run(
    plan: Plan,
    targets: &[Target],
    views: &mut [View],
    thresholds: &[Vec<Option<u64>>],
) -> Result<RunStats, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(drive(plan, targets, views, thresholds, true, &mut |_| {}))
}

/// The schedule and the collection, on one runtime; `precise`: the `timerfd` pacer (else
/// Tokio's timer, e.g. on paused time). `observe` sees every sample, warm-up included, as it
/// completes (the accuracy test pairs them with the server's records).
pub(crate) async fn drive(
    plan: Plan,
    targets: &[Target],
    views: &mut [View],
    thresholds: &[Vec<Option<u64>>],
    precise: bool,
    observe: &mut dyn FnMut(&Sample),
) -> Result<RunStats, String> {
    let mut pacer = Pacer::new(precise);
    let prepared = prepare(&plan, targets)?;
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let warm_n = (plan.warmup.as_secs_f64() * plan.rate).round() as u64;
    let total = warm_n + (plan.duration.as_secs_f64() * plan.rate).round() as u64;
    // The kernel's receive timestamps are wall-clock time: not on paused time.
    let pool = Pool::open(&plan.addr, warm_connections(&plan), precise).await?;
    let start = Instant::now() + Duration::from_millis(20);
    let measured_start = start + interval.mul_f64(warm_n as f64);
    let progress = Progress::new(plan.progress, measured_start);
    let mut c = Collector::new(targets, views, thresholds);
    let mut in_flight = FuturesUnordered::new();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let (mut next, mut dropped, mut last_sent) = (0, 0, start);
    loop {
        let due = (next < total).then(|| start + interval.mul_f64(next as f64));
        if due.is_none() && in_flight.is_empty() {
            break;
        }
        // One task sends, reads and collects; a send that is due goes before any response.
        tokio::select! {
            biased;
            () = pacer.wait_until(due.unwrap_or(start)), if due.is_some() => {
                let (sched, measured) = (due.unwrap_or(start), next >= warm_n);
                if in_flight.len() < plan.max_in_flight {
                    last_sent = Instant::now();
                    let target = (next % prepared.len() as u64) as usize;
                    let p = &prepared[target];
                    let mut r = Box::pin(request(&pool, &plan, p, target, sched, measured));
                    // Its first poll writes the request now, ahead of the responses already
                    // woken in the set; the set polls it again, with its own waker.
                    match std::future::poll_fn(|cx| Poll::Ready(r.as_mut().poll(cx))).await {
                        Poll::Ready(s) => {
                            observe(&s);
                            c.add(&s, second_of(measured_start));
                        }
                        Poll::Pending => in_flight.push(r),
                    }
                } else {
                    dropped += u64::from(measured);
                }
                next += 1;
            }
            Some(s) = in_flight.next() => {
                observe(&s);
                c.add(&s, second_of(measured_start));
            }
            _ = tick.tick() => progress.update(&c, in_flight.len()),
        }
    }
    c.flush();
    progress.finish();
    let measured_span = last_sent.saturating_duration_since(measured_start) + interval;
    Ok(RunStats {
        target_rate: plan.rate,
        achieved_rate: c.sent as f64 / measured_span.as_secs_f64().max(1e-9),
        scheduled: total - warm_n,
        sent: c.sent,
        dropped,
        lag_p50_ms: ms(c.lag.quantile(0.5)),
        lag_p99_ms: ms(c.lag.quantile(0.99)),
        lag_max_ms: ms(c.lag.max()),
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        open_model: true,
        connections: pool.opened(),
        timeline: std::mem::take(&mut c.timeline),
        spectra: Vec::new(),
        server_spectra: Vec::new(),
    })
}
