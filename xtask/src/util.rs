//! Small std-only helpers shared by the tasks: processes, tools, ports, a tiny HTTP/1.1 client.

#![allow(
    dead_code,
    reason = "a toolbox shared by the per-crate checks; not every task uses every helper"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The workspace root.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

/// Path of a workspace binary built by `cargo build --workspace --bins` (dev profile).
pub(crate) fn bin_path(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// A `cargo` command (the one running xtask), run from the workspace root.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(project_root());
    c
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Builds every target of the workspace once (`cargo build --workspace --all-targets --locked`).
///
/// Every task builds with exactly these arguments, so cargo resolves one feature set and the
/// tests, binaries and examples share one build: a second call is a no-op.
pub(crate) fn build_workspace() -> Result<(), String> {
    run(cargo().args(["build", "--workspace", "--all-targets", "--locked"]))
}

/// Runs a command with inherited output; fails when it exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    let what = describe(cmd);
    eprintln!("$ {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start `{what}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{what}` failed: {status}"))
    }
}

/// Runs a command and returns its stdout; fails (with stderr) when it exits non-zero.
pub(crate) fn output(cmd: &mut Command) -> Result<String, String> {
    let what = describe(cmd);
    let out = cmd
        .output()
        .map_err(|e| format!("could not start `{what}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{what}` failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Finds `name` on the `PATH`, or fails with `how_to_get`. Never skips.
pub(crate) fn require_tool(name: &str, how_to_get: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "`{name}` is required but was not found on PATH; get it with: {how_to_get}"
    ))
}

/// Fails with `how_to_get` unless the cargo subcommand `cargo-<name>` is installed. Never skips.
pub(crate) fn require_cargo_tool(name: &str, how_to_get: &str) -> Result<(), String> {
    let installed = cargo()
        .args([name, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        Ok(())
    } else {
        Err(format!(
            "`cargo {name}` is required but is not installed; get it with: {how_to_get}"
        ))
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A child process that is killed when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    name: String,
    child: Child,
    /// The address the server listens on.
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `cmd` and waits (up to 60 s) until `addr` accepts connections.
    pub(crate) fn start(name: &str, mut cmd: Command, addr: SocketAddr) -> Result<Server, String> {
        eprintln!("$ {} &", describe(&cmd));
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {name} (`{}`): {e}", describe(&cmd)))?;
        let mut server = Server {
            name: name.to_owned(),
            child,
            addr,
        };
        for _ in 0..600 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{name} exited before listening on {addr}: {status}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{name} did not listen on {addr} within 60 s"))
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`, …) with `kill`.
    pub(crate) fn signal(&self, sig: &str) -> Result<(), String> {
        output(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.pid().to_string()),
        )
        .map(drop)
    }

    /// Waits up to `timeout` for the process to exit; returns whether it did and succeeded.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Result<bool, String> {
        let steps = (timeout.as_millis() / 50).max(1);
        for _ in 0..steps {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{} did not exit within {timeout:?}", self.name))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read by [`http`].
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), 30 s timeout.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let err = |e: std::io::Error| format!("{method} http://{addr}{path}: {e}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(err)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(err)?;
    s.write_all(body).map_err(err)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(err)?;
    parse_response(&raw, method == "HEAD")
        .ok_or_else(|| format!("{method} http://{addr}{path}: malformed response"))
}

fn parse_response(raw: &[u8], head: bool) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head_text = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head_text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if head {
        Vec::new()
    } else if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_plain_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(raw, false).unwrap();
        assert_eq!(
            (r.status, r.text().as_str(), r.header("x-a")),
            (200, "abcde", Some("b"))
        );
        let r = parse_response(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, b"no".as_slice()));
    }
}
