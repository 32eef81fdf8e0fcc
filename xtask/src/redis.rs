//! `perf-cache-layer`'s Redis tier against a real `redis-server`: a throwaway server on loopback
//! (no persistence, its files under `target/redis-test`), then the `redis_*` tests with
//! `PERF_TEST_REDIS_URL` pointing at it. The fault tests (SIGKILL, `DEBUG SLEEP`, `maxmemory`)
//! start servers of their own. A missing `redis-server` fails the run; nothing is skipped.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::util::{Server, cargo, free_port, require_tool, run, target_dir};

/// Starts the server and runs the tests.
pub(crate) fn test() -> Result<(), String> {
    let bin = require_tool("redis-server", "apt-get install -y redis-server")?;
    let dir = target_dir().join("redis-test");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_port();
    let mut cmd = Command::new(&bin);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _server = Server::start("redis-server", cmd, addr)?;
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
        ])
        .args(["--", "--nocapture"])
        .env("PERF_TEST_REDIS_URL", format!("redis://{addr}/"))
        .env("PERF_TEST_REDIS_SERVER", &bin))
}
