//! Real-tool checks for perf-middleware: the running showcase's `/metrics` after traffic passes
//! `promtool check metrics`, carries route templates, and keeps `http_route` bounded.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::util::{Server, bin_path, free_port, http, require_tool, target_dir};

/// Runs the checks.
pub(crate) fn test() -> Result<(), String> {
    let promtool = require_tool(
        "promtool",
        "`apt-get install -y prometheus` (Debian's package ships promtool); .ci/run does this",
    )?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(bin_path("showcase"));
    cmd.args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    let _server = Server::start("showcase", cmd, addr)?;

    for id in 1..=30 {
        expect(addr, "GET", &format!("/api/users/{id}"), b"", 200)?;
    }
    expect(addr, "GET", "/api/products", b"", 200)?;
    expect(addr, "GET", "/api/products/3", b"", 200)?;
    expect(addr, "GET", "/api/products/999", b"", 404)?;
    expect(
        addr,
        "PUT",
        "/api/products/2",
        br#"{"price_cents": 1234}"#,
        200,
    )?;
    expect(addr, "GET", "/api/slow?ms=20", b"", 200)?;
    expect(addr, "GET", "/no/such/route", b"", 404)?;

    let text = scrape(addr)?;
    let file = target_dir().join("xtask").join("showcase-metrics.txt");
    std::fs::create_dir_all(file.parent().unwrap_or(&target_dir())).map_err(|e| e.to_string())?;
    std::fs::write(&file, &text).map_err(|e| e.to_string())?;
    promtool_check(&promtool, &text)?;
    println!(
        "promtool check metrics: ok ({} lines, saved to {})",
        text.lines().count(),
        file.display()
    );

    let needle = r#"http_server_request_duration_seconds_bucket{"#;
    let templated = text
        .lines()
        .any(|l| l.starts_with(needle) && l.contains(r#"http_route="/api/users/{id}""#));
    if !templated {
        return Err("no duration histogram bucket carries http_route=\"/api/users/{id}\"".into());
    }

    let before = routes(&text);
    for i in 0..1000u32 {
        let path = format!("/scan/{:08x}/{}", i.wrapping_mul(2_654_435_761), i);
        expect(addr, "GET", &path, b"", 404)?;
    }
    let after = routes(&scrape(addr)?);
    let grown = after.difference(&before).count();
    println!(
        "http_route values: {} before, {} after 1,000 random unknown paths (+{grown})",
        before.len(),
        after.len()
    );
    if grown > 1 {
        return Err(format!(
            "http_route grew by {grown} (> 1): {:?}",
            after.difference(&before)
        ));
    }
    Ok(())
}

fn expect(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    status: u16,
) -> Result<(), String> {
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let r = http(addr, method, path, headers, body)?;
    if r.status == status {
        Ok(())
    } else {
        Err(format!(
            "{method} {path}: status {} (expected {status}): {}",
            r.status,
            r.text()
        ))
    }
}

fn scrape(addr: SocketAddr) -> Result<String, String> {
    let r = http(addr, "GET", "/metrics", &[], b"")?;
    if r.status != 200 {
        return Err(format!("GET /metrics: status {}", r.status));
    }
    Ok(r.text())
}

/// `promtool check metrics` over a scrape; fails with promtool's complaint.
pub(crate) fn promtool_check(promtool: &std::path::Path, text: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run promtool: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Distinct `http_route` label values in a scrape.
fn routes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(r#"http_route=""#))
        .filter_map(|(_, rest)| rest.split_once('"').map(|(v, _)| v.to_owned()))
        .collect()
}
