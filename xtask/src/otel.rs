//! Real-receiver checks for perf-otel.
//!
//! A Python OTLP receiver built on the official protobuf definitions (PyPI `opentelemetry-proto` +
//! `grpcio`, `xtask/otlp/receiver.py`) listens on loopback for OTLP/gRPC and OTLP/HTTP; an
//! independent client (the Python OpenTelemetry SDK, `xtask/otlp/client.py`) calls the server with
//! `traceparent`/`tracestate`/`baggage`. Checks:
//! 1. both transports: the e2e server's spans for a matched route, an unmatched route, a 500, a 418
//!    and a cancelled request, plus the handler's `tracing` child span (`xtask/otlp/check.py`);
//! 2. the showcase flushes the span of its last request on SIGTERM (gRPC) and SIGINT (HTTP), and
//!    its N+1 request arrives with the `perf.db.*` summary on the SERVER span and one db CLIENT
//!    span per statement inside it (perf-otel's `db` feature);
//! 3. with the collector down, the showcase serves at unchanged latency and reports lost spans
//!    (live on `/metrics`, and in its shutdown log line).
//!
//! The Python packages live in a venv under `target/otel-venv` (pinned versions, created once).

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{
    Server, bin_path, free_port, http, output, project_root, require_tool, run, target_dir,
};

/// Pinned PyPI packages of the receiver and the client.
const PY_PACKAGES: &[&str] = &[
    "opentelemetry-proto==1.45.2",
    "grpcio==1.85.1",
    "protobuf==7.36.2",
    "opentelemetry-api==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
    "requests==2.34.2",
];

/// `OTEL_*` variables that would change what the servers under test do.
const OTEL_VARS: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
];

/// Runs the checks.
pub(crate) fn test() -> Result<(), String> {
    let python = venv()?;
    crate::util::build_workspace()?; // the e2e_server example and the showcase
    let dir = target_dir().join("xtask").join("otel");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (transport, protocol) in [("grpc", "grpc"), ("http", "http/protobuf")] {
        e2e(&python, &dir, transport, protocol)?;
    }
    signal_flush(&python, &dir, "TERM", "grpc")?;
    signal_flush(&python, &dir, "INT", "http/protobuf")?;
    receiver_down(&dir)?;
    Ok(())
}

fn script(name: &str) -> PathBuf {
    project_root().join("xtask").join("otlp").join(name)
}

/// The venv's python, creating the venv and installing the pinned packages when needed.
fn venv() -> Result<PathBuf, String> {
    let python3 = require_tool(
        "python3",
        "`apt-get install -y python3 python3-venv` (.ci/run does this)",
    )?;
    let dir = target_dir().join("otel-venv");
    let python = dir.join("bin").join("python");
    let marker = dir.join("perf-otel-packages.txt");
    let wanted = PY_PACKAGES.join("\n");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(python);
    }
    run(Command::new(&python3).arg("-m").arg("venv").arg(&dir)).map_err(|e| {
        format!("{e}\ncreating the venv needs the venv module: `apt-get install -y python3-venv` (.ci/run does this)")
    })?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
        ])
        .args(PY_PACKAGES))
    .map_err(|e| format!("{e}\npip could not install the OTLP receiver's packages from PyPI"))?;
    std::fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// A running `receiver.py`.
struct Receiver {
    _server: Server,
    grpc: u16,
    http: u16,
    spans: PathBuf,
}

impl Receiver {
    fn start(python: &Path, dir: &Path, name: &str) -> Result<Self, String> {
        let (grpc, http) = (free_port(), free_port());
        let spans = dir.join(format!("{name}-spans.jsonl"));
        let mut cmd = Command::new(python);
        cmd.arg(script("receiver.py"))
            .args([
                "--grpc-port",
                &grpc.to_string(),
                "--http-port",
                &http.to_string(),
            ])
            .arg("--out")
            .arg(&spans)
            .stdout(Stdio::null());
        // It prints "up" once both listen; the HTTP port is bound last.
        let server = Server::start("OTLP receiver", cmd, ([127, 0, 0, 1], http).into())?;
        Ok(Self {
            _server: server,
            grpc,
            http,
            spans,
        })
    }

    fn endpoint(&self, protocol: &str) -> String {
        let port = if protocol == "grpc" {
            self.grpc
        } else {
            self.http
        };
        format!("http://127.0.0.1:{port}")
    }
}

fn clean_otel_env(cmd: &mut Command) -> &mut Command {
    for v in OTEL_VARS {
        cmd.env_remove(v);
    }
    cmd.env("NO_COLOR", "1")
}

fn log_file(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Acceptance cases over one transport, asserted by `check.py e2e`.
fn e2e(python: &Path, dir: &Path, transport: &str, protocol: &str) -> Result<(), String> {
    let receiver = Receiver::start(python, dir, &format!("e2e-{transport}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let out = dir.join(format!("e2e-{transport}-server.log"));
    let mut cmd = Command::new(
        target_dir()
            .join("debug")
            .join("examples")
            .join("e2e_server"),
    );
    clean_otel_env(&mut cmd)
        .arg(addr.to_string())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(protocol))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(log_file(&out)?)
        .stderr(log_file(&dir.join(format!("e2e-{transport}-server.err")))?);
    let mut server = Server::start("e2e_server", cmd, addr)?;
    let client_out = output(
        Command::new(python)
            .arg(script("client.py"))
            .args([
                "--server",
                &format!("http://{addr}"),
                "--otlp-grpc",
                &receiver.endpoint("grpc"),
            ])
            .args([
                "matched=/users/42",
                "unmatched=/nope",
                "boom=/boom",
                "teapot=/teapot",
                "cancelled=/slow@0.5",
            ]),
    )?;
    let client_file = dir.join(format!("e2e-{transport}-client.jsonl"));
    std::fs::write(&client_file, &client_out).map_err(|e| e.to_string())?;
    server.signal("TERM")?;
    if !server.wait_exit(Duration::from_secs(20))? {
        return Err(format!(
            "e2e_server ({transport}) exited with an error; see {}",
            out.display()
        ));
    }
    let stats = std::fs::read_to_string(&out).unwrap_or_default();
    let stats = stats
        .lines()
        .find(|l| l.starts_with("otel-stats"))
        .unwrap_or("")
        .to_owned();
    if !stats.contains("failed=0 dropped=0") {
        return Err(format!("e2e_server ({transport}) lost spans: `{stats}`"));
    }
    let verdict = output(
        Command::new(python)
            .arg(script("check.py"))
            .arg("e2e")
            .arg(&receiver.spans)
            .arg(&client_file)
            .arg(transport)
            .arg(addr.port().to_string()),
    )
    .map_err(|e| {
        format!(
            "OTLP/{transport} end-to-end check failed (spans in {}):\n{e}",
            receiver.spans.display()
        )
    })?;
    println!("otel e2e over OTLP/{transport}: {} {stats}", verdict.trim());
    Ok(())
}

/// A trace id unique to this run and signal.
fn trace_id(salt: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(1);
    format!(
        "{:032x}",
        nanos ^ (u128::from(std::process::id()) << 64) ^ u128::from(salt) << 100
    )
}

/// One request to the showcase, then the signal at once: its span must reach the receiver
/// (the batch delay is the default 5 s, so only the shutdown flush can deliver it).
fn signal_flush(python: &Path, dir: &Path, signal: &str, protocol: &str) -> Result<(), String> {
    let receiver = Receiver::start(python, dir, &format!("sig{signal}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let log = dir.join(format!("showcase-sig{signal}.log"));
    let mut cmd = Command::new(bin_path("showcase"));
    clean_otel_env(&mut cmd)
        .args(["--listen", &addr.to_string()])
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(protocol))
        .env("RUST_LOG", "info")
        .stdout(log_file(&log)?);
    let mut server = Server::start("showcase", cmd, addr)?;
    let db_trace = trace_id(u32::from(signal.as_bytes()[0]) + 1000);
    let queries = n_plus_one(addr, &db_trace)?;
    let trace = trace_id(u32::from(signal.as_bytes()[0]));
    let res = http(
        addr,
        "GET",
        "/api/users/7",
        &[("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))],
        b"",
    )?;
    if res.status != 200 {
        return Err(format!(
            "showcase answered {} to GET /api/users/7",
            res.status
        ));
    }
    server.signal(signal)?;
    if !server.wait_exit(Duration::from_secs(20))? {
        return Err(format!(
            "showcase exited with an error after SIG{signal}; see {}",
            log.display()
        ));
    }
    let verdict = output(
        Command::new(python)
            .arg(script("check.py"))
            .args(["span"])
            .arg(&receiver.spans)
            .args([trace.as_str(), "showcase", "GET /api/users/{id}"]),
    )
    .map_err(|e| {
        format!("the span of the last request before SIG{signal} did not reach the receiver:\n{e}")
    })?;
    println!(
        "otel: request then SIG{signal} to the showcase (OTLP {protocol}): span delivered, {}",
        verdict.trim()
    );
    let verdict = output(
        Command::new(python)
            .arg(script("check.py"))
            .args(["db"])
            .arg(&receiver.spans)
            .args([db_trace.as_str(), &queries.to_string()]),
    )
    .map_err(|e| format!("the showcase's N+1 request in the trace:\n{e}"))?;
    println!(
        "otel: the showcase's N+1 request: perf.db.* on its span and {queries} db CLIENT spans, {}",
        verdict.trim()
    );
    Ok(())
}

/// `GET /api/authors/n-plus-one` in trace `trace`; the statement count from its
/// `Server-Timing: db;…;desc="N queries"`.
fn n_plus_one(addr: SocketAddr, trace: &str) -> Result<u32, String> {
    let path = "/api/authors/n-plus-one";
    let res = http(
        addr,
        "GET",
        path,
        &[("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))],
        b"",
    )?;
    let timing = res
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("server-timing"))
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let queries = timing
        .split(',')
        .find(|m| m.trim_start().starts_with("db;"))
        .and_then(|m| m.split("desc=\"").nth(1))
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok());
    match queries {
        Some(n) if res.status == 200 && n > 1 => Ok(n),
        _ => Err(format!(
            "GET {path} answered {} with Server-Timing `{timing}`: want 200 and db;desc=\"N queries\", N > 1",
            res.status
        )),
    }
}

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
fn receiver_down(dir: &Path) -> Result<(), String> {
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
