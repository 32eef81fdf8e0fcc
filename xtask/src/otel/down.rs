//! The collector down: unchanged latency, and the lost spans reported.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{Server, bin_path, free_port, http};

use super::{clean_otel_env, log_file};

#[expect(
    clippy::disallowed_types,
    reason = "wall-clock latency of a real server, measured from outside"
)]
fn timed_get(addr: SocketAddr, path: &str) -> Result<Duration, String> {
    let start = std::time::Instant::now();
    let res = http(addr, "GET", path, &[], b"")?;
    if res.status != 200 {
        return Err(format!("GET {path} on {addr}: status {}", res.status));
    }
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Collector down: the showcase keeps serving at the latency of a showcase without export, and
/// reports the spans it could not deliver.
pub(super) fn receiver_down(dir: &Path) -> Result<(), String> {
    let dead = free_port(); // nothing listens there
    let (base, _) = start_showcase(dir, "no-export", &[])?;
    let (mut down, down_log) = start_showcase(
        dir,
        "collector-down",
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{dead}"),
            ),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "32".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
        ],
    )?;
    let rounds = 300;
    let (m_base, m_down) = alternating_medians(base.addr, down.addr, rounds)?;
    // Live: the drops are on /metrics while the service runs.
    let live_dropped = queue_full(down.addr)?;
    if live_dropped < 1.0 {
        return Err("/metrics of the showcase shows no otel_sdk_processor_span_processed_total{error_type=\"queue_full\"} while the collector is down".into());
    }
    down.signal("TERM")?;
    down.wait_exit(Duration::from_secs(20))?;
    let line = shutdown_counters(&down_log)?;
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    let (dropped, failed, exported) = (field("dropped="), field("failed="), field("exported="));
    println!(
        "otel: collector down: median GET latency {:.2} ms vs {:.2} ms without export ({rounds} requests each); \
         spans dropped={dropped} failed={failed} exported={exported} (/metrics showed {live_dropped} queue_full while running)",
        m_down.as_secs_f64() * 1e3,
        m_base.as_secs_f64() * 1e3,
    );
    if exported != 0 || dropped + failed == 0 {
        return Err(format!("lost spans are not reported: `{line}`"));
    }
    if m_down > m_base + m_base / 2 + Duration::from_millis(2) {
        return Err(format!(
            "collector down added latency: median {m_down:?} vs {m_base:?} without export (allowed: +50 % + 2 ms)"
        ));
    }
    Ok(())
}

/// Starts a showcase with `env` and no other OpenTelemetry settings, logging to
/// `showcase-{name}.log`; returns it with its log's path.
fn start_showcase(
    dir: &Path,
    name: &str,
    env: &[(&str, String)],
) -> Result<(Server, PathBuf), String> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let log = dir.join(format!("showcase-{name}.log"));
    let mut cmd = Command::new(bin_path("showcase"));
    clean_otel_env(&mut cmd)
        .args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "info")
        .stdout(log_file(&log)?);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok((Server::start("showcase", cmd, addr)?, log))
}

/// The median latency of `rounds` GETs on each server, alternating so both see the same
/// machine load.
fn alternating_medians(
    base: SocketAddr,
    down: SocketAddr,
    rounds: usize,
) -> Result<(Duration, Duration), String> {
    let (mut t_base, mut t_down) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
        let path = format!("/api/users/{}", i % 50);
        t_base.push(timed_get(base, &path)?);
        t_down.push(timed_get(down, &path)?);
    }
    Ok((median(t_base), median(t_down)))
}

/// The spans the server's `/metrics` counts as dropped on a full queue (0 when absent).
fn queue_full(addr: SocketAddr) -> Result<f64, String> {
    let metrics = http(addr, "GET", "/metrics", &[], b"")?.text();
    Ok(metrics
        .lines()
        .find(|l| {
            l.starts_with("otel_sdk_processor_span_processed_total{")
                && l.contains(r#"error_type="queue_full""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0))
}

/// The export counters line (`otel: … dropped=…`) the showcase logged at shutdown.
fn shutdown_counters(log_path: &Path) -> Result<String, String> {
    let log = std::fs::read_to_string(log_path).map_err(|e| e.to_string())?;
    log.lines()
        .find(|l| l.contains("otel:") && l.contains("dropped="))
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "the showcase did not report its export counters at shutdown; see {}",
                log_path.display()
            )
        })
}
