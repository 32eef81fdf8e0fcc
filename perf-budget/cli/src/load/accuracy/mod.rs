//! The gate's accuracy, measured (`cargo xtask gate-accuracy` runs this ignored test in release
//! and prints the table quoted in BENCHMARKS.md).
//!
//! A hyper server on its own thread serves a route of known latency (`/spin?us=N` busy-waits,
//! `/sleep?ms=N` sleeps) and records two views of each request: in the handler (service call to
//! response), and on the wire, from the kernel's receive timestamp of the request
//! (`SO_TIMESTAMPNS`) to the response's write. The wire view includes the server's own wake-up and
//! queueing, which the handler cannot see and a client cannot avoid; what the gate measures beyond
//! it is the gate's own error plus the loopback hop. The gate's load driver runs against it at 200
//! and 5,000 req/s, then `wrk --latency` (closed loop, one connection) on the same route. The
//! gate's p50 and p99 should agree with the server's view and with `wrk`'s within 100 µs. A second
//! table pairs each of the gate's requests with the server's record of it ([`paired`]) and splits
//! the difference into the gate's lag, the hop in, the wire and the hop out. The first table also
//! gives the latency from the scheduled send (the gate's lag included), which is what the gate
//! reported before it judged its lag apart. Nothing here asserts timing: it reports.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use perf_budget::LatencyHistogram;
use tokio::time::Instant;

mod paired;

use paired::{Traced, paired};

use super::stamp::Stamped;
use super::{Plan, Target, View, drive, ms};

type Seen = Arc<Mutex<LatencyHistogram>>;
/// The server's record of each request: its arrival (kernel receive timestamp) and its
/// response's write.
type Records = Arc<Mutex<Vec<(SystemTime, SystemTime)>>>;

fn query_n(q: Option<&str>) -> u64 {
    q.and_then(|q| q.split('=').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    seen: Seen,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let t0 = Instant::now();
    let n = query_n(req.uri().query());
    if req.uri().path() == "/sleep" {
        tokio::time::sleep(Duration::from_millis(n)).await;
    } else {
        let until = t0 + Duration::from_micros(n);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    seen.lock().unwrap().record(t0.elapsed());
    Ok(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// Keeps the calling thread on `cpu` (for `--pin`: the server and the gate on cores of their own).
fn pin(cpu: usize) {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    let pinned =
        set.set(cpu).is_ok() && sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok();
    assert!(pinned, "cannot pin a thread to CPU {cpu}");
}

/// Serves on a thread of its own (on CPU 0 when `pinned`); the address, the handler's view,
/// the wire view and the wire records.
fn server(pinned: bool) -> (String, Seen, Seen, Records) {
    let seen: Seen = Arc::new(Mutex::new(LatencyHistogram::new()));
    let wire: Seen = Arc::new(Mutex::new(LatencyHistogram::new()));
    let records: Records = Arc::default();
    let (w, r) = (wire.clone(), records.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let s = seen.clone();
    std::thread::spawn(move || {
        if pinned {
            pin(0);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                let (w, r) = (w.clone(), r.clone());
                let on_write = Box::new(move |arrived: SystemTime| {
                    let now = SystemTime::now();
                    if let Ok(d) = now.duration_since(arrived) {
                        w.lock().unwrap().record(d);
                    }
                    r.lock().unwrap().push((arrived, now));
                });
                let (stream, _) = Stamped::new(stream, true, Some(on_write));
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, s.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    (addr, seen, wire, records)
}

/// `wrk --latency`'s p50 and p99 in ms; one connection, paced to about `rate` when it is low
/// enough for wrk's millisecond `delay()` (so the server idles between requests as it does
/// under the gate), else as fast as it goes.
fn wrk(addr: &str, path: &str, secs: u64, rate: f64, pinned: bool) -> Option<(f64, f64)> {
    let script = std::env::temp_dir().join(format!("gate-accuracy-{}.lua", std::process::id()));
    let delay = (1000.0 / rate).floor();
    let lua = format!("function delay() return {delay} end\n");
    std::fs::write(&script, if delay >= 1.0 { lua } else { String::new() }).ok()?;
    let mut cmd = std::process::Command::new(if pinned { "taskset" } else { "wrk" });
    if pinned {
        cmd.args(["-c", "1", "wrk"]);
    }
    let out = cmd
        .args(["-t1", "-c1", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://{addr}{path}"))
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    let pick = |label: &str| {
        let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
        let v = line.split_whitespace().nth(1)?;
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let num: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => num / 1000.0,
            "ms" => num,
            "s" => num * 1000.0,
            _ => return None,
        })
    };
    Some((pick("50%")?, pick("99%")?))
}

fn gate(
    addr: &str,
    path: &str,
    rate: f64,
    secs: u64,
    precise: bool,
    traced: &mut Vec<Traced>,
) -> (f64, f64, f64, f64, f64, u64, (f64, f64)) {
    let plan = Plan {
        addr: addr.into(),
        host: addr.into(),
        rate,
        duration: Duration::from_secs(secs),
        warmup: Duration::from_secs(1),
        max_in_flight: 256,
        timeout: Duration::from_secs(2),
        progress: false,
    };
    let targets = [Target {
        method: http::Method::GET,
        path: path.into(),
        budget: 0,
    }];
    let mut views = [View::new(0)];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Tokio's clock to the wall clock (the server's records), read once.
    let (wall, mono) = (SystemTime::now(), Instant::now());
    // The issue's own measure: from the scheduled send, the gate's lateness included.
    let mut from_sched = LatencyHistogram::new();
    let mut observe = |s: &super::Sample| {
        if s.measured {
            from_sched.record(s.lag + s.latency);
        }
        let at = if s.sched >= mono {
            wall + (s.sched - mono)
        } else {
            wall - (mono - s.sched)
        };
        traced.push((at, s.lag, s.latency, s.measured));
    };
    let stats = rt
        .block_on(drive(
            plan,
            &targets,
            &mut views,
            &[vec![]],
            precise,
            &mut observe,
        ))
        .unwrap();
    let h = &views[0].hist;
    (
        ms(h.quantile(0.5)),
        ms(h.quantile(0.99)),
        stats.achieved_rate,
        stats.lag_p50_ms,
        stats.lag_p99_ms,
        stats.connections,
        (ms(from_sched.quantile(0.5)), ms(from_sched.quantile(0.99))),
    )
}

fn us(ms: f64) -> String {
    format!("{:.0}", ms * 1000.0)
}

#[test]
#[ignore = "measures on real time for a minute; run by `cargo xtask gate-accuracy`"]
fn gate_accuracy() {
    let secs = std::env::var("GATE_ACCURACY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // `--pin`: the server on CPU 0, the gate and wrk on CPU 1.
    let pinned = std::env::var_os("GATE_ACCURACY_PIN").is_some();
    let (addr, seen, wire, records) = server(pinned);
    let mut pairings = Vec::new();
    if pinned {
        pin(1);
        println!("pinned: the server on CPU 0, the gate and wrk on CPU 1\n");
    }
    println!(
        "| timer | route | rate (req/s) | achieved | gate lag p50 / p99 (µs) | gate p50 / p99 (µs) | server wire p50 / p99 (µs) | server handler p50 / p99 (µs) | wrk -c1 p50 / p99 (µs) | gate − wire p50 / p99 (µs) | from schedule p50 / p99 (µs) | from schedule − wire p50 / p99 (µs) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let runs = [
        ("tokio", "/spin?us=50", 200.0),
        ("timerfd", "/spin?us=50", 200.0),
        ("timerfd", "/spin?us=50", 5000.0),
        ("timerfd", "/sleep?ms=1", 200.0),
        ("timerfd", "/sleep?ms=1", 5000.0),
    ];
    for (timer, path, rate) in runs {
        {
            // The server's views start with the gate's measured requests, after its 1 s warm-up.
            let reset = {
                let (seen, wire) = (seen.clone(), wire.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1020));
                    *seen.lock().unwrap() = LatencyHistogram::new();
                    *wire.lock().unwrap() = LatencyHistogram::new();
                })
            };
            records.lock().unwrap().clear();
            let mut traced = Vec::new();
            let (g50, g99, achieved, lag50, lag99, conns, (f50, f99)) =
                gate(&addr, path, rate, secs, timer == "timerfd", &mut traced);
            reset.join().unwrap();
            // The server records a request after its write returns, which can be after the
            // gate has read the response.
            std::thread::sleep(Duration::from_millis(20));
            let taken = std::mem::take(&mut *records.lock().unwrap());
            pairings.push(format!(
                "| {timer} | `{path}` | {rate:.0} | {conns} | {} |",
                paired(traced, taken)
            ));
            let quantiles = |h: &Seen| {
                let h = h.lock().unwrap();
                (ms(h.quantile(0.5)), ms(h.quantile(0.99)))
            };
            let (h50, h99) = quantiles(&seen);
            let (s50, s99) = quantiles(&wire);
            let w = wrk(&addr, path, secs, rate, pinned).map_or("wrk missing".into(), |(a, b)| {
                format!("{} / {}", us(a), us(b))
            });
            println!(
                "| {timer} | `{path}` | {rate:.0} | {achieved:.0} | {} / {} | {} / {} | {} / {} | {} / {} | {w} | {} / {} | {} / {} | {} / {} |",
                us(lag50),
                us(lag99),
                us(g50),
                us(g99),
                us(s50),
                us(s99),
                us(h50),
                us(h99),
                us(g50 - s50),
                us(g99 - s99),
                us(f50),
                us(f99),
                us(f50 - s50),
                us(f99 - s99),
            );
        }
    }
    paired::print_table(&pairings);
}
