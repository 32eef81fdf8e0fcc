//! `cargo xtask gate-accuracy [--secs N]`: the `perf-budget gate` load driver's p50 and p99
//! against a server of known latency, the server's own view and `wrk`, at 200 and 5,000 req/s
//! (the table quoted in BENCHMARKS.md). It runs the CLI's ignored `gate_accuracy` test in release.

use crate::util::{cargo, require_tool, run};

/// Runs the measurement and prints the Markdown table.
pub(crate) fn run_task(args: &[String]) -> Result<(), String> {
    require_tool("wrk", "apt-get install -y wrk")?;
    let secs = match args {
        [] => "5".to_owned(),
        [flag, n] if flag == "--secs" && n.parse::<u64>().is_ok() => n.clone(),
        _ => return Err("usage: cargo xtask gate-accuracy [--secs N]".into()),
    };
    run(cargo()
        .env("GATE_ACCURACY_SECS", secs)
        .args([
            "test",
            "--release",
            "-p",
            "perf-budget-cli",
            "--bin",
            "perf-budget",
        ])
        .args([
            "gate_accuracy",
            "--",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ]))
}
