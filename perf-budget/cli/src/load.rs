//! The open-model load driver: constant arrival rate, latency measured from the *scheduled*
//! send time (so a stalled server cannot hide behind a waiting client), in the layer's histogram.
//!
//! The schedule runs on one current-thread runtime that also drives every connection, so a send
//! needs no wake-up of another thread; its timer is a `timerfd` ([`pace`]), precise to a few
//! microseconds where Tokio's wheel ticks every millisecond. Keep-alive connections are opened
//! before the first scheduled send, and the request parts (URI, host header) are built once.

#[cfg(all(test, target_os = "linux"))]
mod accuracy;
mod collect;
mod pace;
#[cfg(target_os = "linux")]
mod stamp;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use perf_budget::LatencyHistogram;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use collect::{Collector, PROGRESS_EVERY, Progress};
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
    /// The median delay from the scheduled to the actual send.
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
    /// Completions per second of the measured run (empty for an `oha` result).
    #[serde(default)]
    pub(crate) timeline: Vec<Tick>,
    /// The client latency spectrum per budget (filled by the gate after the run).
    #[serde(default)]
    pub(crate) spectra: Vec<Spectrum>,
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
        .filter(|(v, _)| v.n() > 0)
        .map(|(v, name)| Spectrum {
            budget: (*name).to_owned(),
            points: SPECTRUM_QUANTILES
                .iter()
                .map(|&q| (q, ms(v.hist.quantile(q))))
                .collect(),
        })
        .collect()
}

struct Sample {
    target: usize,
    latency: Duration,
    lag: Duration,
    error: bool,
    timeout: bool,
    measured: bool,
}

/// The keep-alive connections of a run.
struct Pool {
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<Conn>>,
    addr: String,
    /// Whether connections ask for the kernel's receive timestamps (real time, Linux).
    stamped: bool,
}

impl Pool {
    fn take(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put(&self, c: Conn) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }

    /// Opens a keep-alive connection.
    async fn connect(&self) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        #[cfg(target_os = "linux")]
        if self.stamped {
            let (stream, rx) = stamp::Stamped::new(stream, None);
            let sender = handshake(stream).await?;
            return Ok(Conn { sender, rx });
        }
        Ok(Conn {
            sender: handshake(stream).await?,
            #[cfg(target_os = "linux")]
            rx: None,
        })
    }
}

/// A keep-alive connection and, when the kernel stamps its reads, when its latest bytes arrived.
struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    #[cfg(target_os = "linux")]
    rx: Option<stamp::RxStamp>,
}

impl Conn {
    /// Now, moved back to when the response's last bytes reached the socket (the kernel's
    /// receive timestamp) when the connection has one, but never before `sent`.
    fn received(&self, sent: Instant) -> Instant {
        let now = Instant::now();
        #[cfg(target_os = "linux")]
        if let Some(arrived) = self
            .rx
            .as_ref()
            .and_then(stamp::RxStamp::age)
            .and_then(|age| now.checked_sub(age))
        {
            return arrived.max(sent);
        }
        let _ = sent;
        now
    }
}

/// A request of the mix, its parts built once.
struct Prepared {
    method: http::Method,
    uri: http::Uri,
    host: http::HeaderValue,
}

async fn handshake<T>(io: T) -> Result<SendRequest<Empty<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Adds every sample to `c` as it arrives (by its second since `measured_start`), updating the
/// progress line every [`PROGRESS_EVERY`], until the schedule has sent its last request.
async fn collect(
    rx: &mut mpsc::Receiver<Sample>,
    c: &mut Collector<'_>,
    progress: &Progress,
    in_flight: impl Fn() -> usize,
    measured_start: Instant,
) {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            s = rx.recv() => match s {
                Some(s) => {
                    let done = Instant::now().saturating_duration_since(measured_start);
                    c.add(&s, done.as_secs() as usize);
                }
                None => break,
            },
            _ = tick.tick() => progress.update(c, in_flight()),
        }
    }
    c.flush();
}

/// The keep-alive connections opened before the first send ([`warm_connections`]).
async fn warm_pool(plan: &Plan, stamped: bool) -> Result<Arc<Pool>, String> {
    let pool = Arc::new(Pool {
        idle: Mutex::new(Vec::new()),
        addr: plan.addr.clone(),
        stamped,
    });
    for _ in 0..warm_connections(plan) {
        pool.put(pool.connect().await?);
    }
    Ok(pool)
}

/// One scheduled request, sent on its own task.
struct Request {
    pool: Arc<Pool>,
    plan: Arc<Plan>,
    prepared: Arc<Vec<Prepared>>,
    target: usize,
    sched: Instant,
    measured: bool,
}

impl Request {
    /// Sends it, then hands its [`Sample`] to the collector and frees its in-flight permit.
    async fn send(self, tx: mpsc::Sender<Sample>, permit: tokio::sync::OwnedSemaphorePermit) {
        let lag = Instant::now().saturating_duration_since(self.sched);
        let prepared = &self.prepared[self.target];
        let (latency, error, timeout) = one(&self.pool, &self.plan, prepared, self.sched).await;
        let sample = Sample {
            target: self.target,
            latency,
            lag,
            error,
            timeout,
            measured: self.measured,
        };
        let _ = tx.send(sample).await;
        drop(permit);
    }
}

/// Connections opened before the first send: enough for 2 ms of arrivals, within the limit.
fn warm_connections(plan: &Plan) -> usize {
    ((plan.rate * 0.002).ceil() as usize)
        .clamp(2, 64)
        .min(plan.max_in_flight)
}

/// Sends one request; its status and when its response was received.
async fn send(pool: &Pool, p: &Prepared) -> Result<(u16, Instant), String> {
    let mut conn = match pool.take() {
        Some(c) if !c.sender.is_closed() => c,
        _ => pool.connect().await?,
    };
    conn.sender.ready().await.map_err(|e| e.to_string())?;
    let mut req = http::Request::new(Empty::<Bytes>::new());
    *req.method_mut() = p.method.clone();
    *req.uri_mut() = p.uri.clone();
    req.headers_mut().insert(http::header::HOST, p.host.clone());
    let sent = Instant::now();
    let res = conn
        .sender
        .send_request(req)
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    res.into_body().collect().await.map_err(|e| e.to_string())?;
    let received = conn.received(sent);
    pool.put(conn);
    Ok((status, received))
}

/// Sends one scheduled request and measures it from its scheduled time.
async fn one(pool: &Pool, plan: &Plan, p: &Prepared, sched: Instant) -> (Duration, bool, bool) {
    let r = tokio::time::timeout(plan.timeout, send(pool, p)).await;
    let (error, timeout) = match &r {
        Ok(Ok((status, _))) => (*status >= 500, false),
        Ok(Err(_)) => (true, false),
        Err(_) => (true, true),
    };
    // Latency from the scheduled send; a timeout counts as latency = timeout.
    let latency = match r {
        Err(_) => plan.timeout,
        Ok(Ok((_, received))) => received.saturating_duration_since(sched),
        Ok(Err(_)) => Instant::now().saturating_duration_since(sched),
    };
    (latency, error, timeout)
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
    rt.block_on(drive(plan, targets, views, thresholds, true))
}

/// The schedule and the collection, on one runtime; `precise`: the `timerfd` pacer (else
/// Tokio's timer, e.g. on paused time).
pub(crate) async fn drive(
    plan: Plan,
    targets: &[Target],
    views: &mut [View],
    thresholds: &[Vec<Option<u64>>],
    precise: bool,
) -> Result<RunStats, String> {
    let mut pacer = Pacer::new(precise);
    let prepared = Arc::new(prepare(&plan, targets)?);
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let warm_n = (plan.warmup.as_secs_f64() * plan.rate).round() as u64;
    let total = warm_n + (plan.duration.as_secs_f64() * plan.rate).round() as u64;
    // The kernel's receive timestamps are wall-clock time: not on paused time.
    let pool = warm_pool(&plan, precise).await?;
    let sem = Arc::new(Semaphore::new(plan.max_in_flight));
    let (tx, mut rx) = mpsc::channel::<Sample>(plan.max_in_flight);
    let plan = Arc::new(plan);
    let start = Instant::now() + Duration::from_millis(20);
    let measured_start = start + interval.mul_f64(warm_n as f64);
    let progress = Progress::new(plan.progress, measured_start);
    let schedule = async {
        let mut dropped = 0;
        let mut last_sent = start;
        for i in 0..total {
            let sched = start + interval.mul_f64(i as f64);
            pacer.wait_until(sched).await;
            let measured = i >= warm_n;
            let Ok(permit) = sem.clone().try_acquire_owned() else {
                dropped += u64::from(measured);
                continue;
            };
            last_sent = Instant::now();
            let target = (i % prepared.len() as u64) as usize;
            let request = Request {
                pool: pool.clone(),
                plan: plan.clone(),
                prepared: prepared.clone(),
                target,
                sched,
                measured,
            };
            tokio::spawn(request.send(tx.clone(), permit));
        }
        drop(tx);
        (dropped, last_sent)
    };
    let mut c = Collector::new(targets, views, thresholds);
    let in_flight = || plan.max_in_flight - sem.available_permits();
    let collect = collect(&mut rx, &mut c, &progress, in_flight, measured_start);
    let ((dropped, last_sent), ()) = tokio::join!(schedule, collect);
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
        timeline: std::mem::take(&mut c.timeline),
        spectra: Vec::new(),
    })
}
