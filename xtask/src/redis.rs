//! A throwaway `redis-server` for the checks and the bench, and `perf-cache-layer`'s Redis tier
//! against it: a server on loopback (no persistence, its files under `target/<dir>`), then the
//! `redis_*` tests with `PERF_TEST_REDIS_URL` pointing at it. The fault tests (SIGKILL,
//! `DEBUG SLEEP`, `maxmemory`) start servers of their own. A missing `redis-server` fails the
//! run; nothing is skipped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{Server, cargo, free_port, output, require_tool, run, target_dir};

/// A `redis-server` on 127.0.0.1 and on a Unix socket (reachable from inside the conformance
/// run's network namespace), stopped when dropped.
pub(crate) struct RedisServer {
    _server: Server,
    /// The `redis-server` binary.
    pub(crate) bin: PathBuf,
    /// Its TCP address on loopback.
    pub(crate) addr: SocketAddr,
    /// Its Unix socket.
    pub(crate) socket: PathBuf,
}

impl RedisServer {
    /// Starts an empty server with its files (and socket) in `target/<dir>`.
    pub(crate) fn start(dir: &str) -> Result<Self, String> {
        let bin = require_tool(
            "redis-server",
            "apt-get install -y redis-server (`.ci/run` does this)",
        )?;
        let dir = target_dir().join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = dir.join("redis.sock");
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = Server::start("redis-server", cmd, addr)?;
        Ok(Self {
            _server: server,
            bin,
            addr,
            socket,
        })
    }

    /// `redis://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// `redis+unix:///…/redis.sock`.
    pub(crate) fn unix_url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// A `redis-cli` command's output (`redis-cli` comes with `redis-server`).
    pub(crate) fn cli(&self, args: &[&str]) -> Result<String, String> {
        let cli = require_tool("redis-cli", "apt-get install -y redis-tools")?;
        output(Command::new(cli).arg("-s").arg(&self.socket).args(args))
    }

    /// A field of `INFO` (`keyspace_hits`, …) as a number; 0 when absent.
    pub(crate) fn info(&self, field: &str) -> Result<u64, String> {
        let text = self.cli(&["INFO"])?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }
}

/// Starts the server and runs the tests.
pub(crate) fn test() -> Result<(), String> {
    let redis = RedisServer::start("redis-test")?;
    run(cargo()
        .args([
            "test",
            "-p",
            "perf-cache-layer",
            "--features",
            "redis",
            "--locked",
        ])
        .args([
            "--test",
            "redis_fleet",
            "--test",
            "redis_faults",
            "--test",
            "redis_metrics",
            "--test",
            "redis_coalesce",
        ])
        .args(["--", "--nocapture"])
        .env("PERF_TEST_REDIS_URL", redis.url())
        .env("PERF_TEST_REDIS_SERVER", &redis.bin))
}
