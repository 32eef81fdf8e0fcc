//! `cargo xtask gate-accuracy [--secs N]`: the `perf-budget gate` load driver's p50 and p99
//! against a server of known latency, the server's own view and `wrk`, at 200 and 5,000 req/s
//! (the table quoted in BENCHMARKS.md). It runs the CLI's ignored `gate_accuracy` test in release.
//! `--pin` keeps the server on CPU 0 and the gate and `wrk` on CPU 1.

use crate::util::{cargo, require_tool, run};

/// Runs the measurement and prints the Markdown table.
pub(crate) fn run_task(args: &[String]) -> Result<(), String> {
    require_tool("wrk", "apt-get install -y wrk")?;
    let usage = || "usage: cargo xtask gate-accuracy [--secs N] [--pin]".to_owned();
    let (mut secs, mut pin) = ("5".to_owned(), false);
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--pin" => pin = true,
            "--secs" => match rest.next() {
                Some(n) if n.parse::<u64>().is_ok() => secs = n.clone(),
                _ => return Err(usage()),
            },
            _ => return Err(usage()),
        }
    }
    let mut c = cargo();
    if pin {
        require_tool("taskset", "apt-get install -y util-linux")?;
        c.env("GATE_ACCURACY_PIN", "1");
    }
    run(c
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
