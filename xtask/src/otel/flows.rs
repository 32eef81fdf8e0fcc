//! The checks against the real receiver: both transports end to end, and the showcase's last
//! span and N+1 trace delivered on a shutdown signal.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{Server, bin_path, free_port, http, output, target_dir};

use super::{Receiver, clean_otel_env, log_file, script};

/// Acceptance cases over one transport, asserted by `check.py e2e`.
pub(super) fn e2e(
    python: &Path,
    dir: &Path,
    transport: &str,
    protocol: &str,
) -> Result<(), String> {
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
    let port = addr.port().to_string();
    let verdict = check(
        python,
        "e2e",
        &receiver.spans,
        &[client_file.as_os_str(), transport.as_ref(), port.as_ref()],
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
pub(super) fn signal_flush(
    python: &Path,
    dir: &Path,
    signal: &str,
    protocol: &str,
) -> Result<(), String> {
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
    let route = ["showcase", "GET /api/users/{id}"].map(std::ffi::OsStr::new);
    let verdict = check(
        python,
        "span",
        &receiver.spans,
        &[trace.as_ref(), route[0], route[1]],
    )
    .map_err(|e| {
        format!("the span of the last request before SIG{signal} did not reach the receiver:\n{e}")
    })?;
    println!(
        "otel: request then SIG{signal} to the showcase (OTLP {protocol}): span delivered, {}",
        verdict.trim()
    );
    let count = queries.to_string();
    let verdict = check(
        python,
        "db",
        &receiver.spans,
        &[db_trace.as_ref(), count.as_ref()],
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

/// `check.py <what> <spans> <args…>`: its verdict line, or what it found wrong.
fn check(
    python: &Path,
    what: &str,
    spans: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<String, String> {
    output(
        Command::new(python)
            .arg(script("check.py"))
            .arg(what)
            .arg(spans)
            .args(args),
    )
}
