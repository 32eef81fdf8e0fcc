//! Project automation, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test`: fmt check, clippy `-D warnings`, every test, doc tests, the docs with
//!   `-D warnings`, each library crate built with each of its features alone (cargo-hack), then the
//!   checks against real servers and tools (promtool on the showcase's `/metrics`, each crate's own).
//! - `cargo xtask bench [--rounds N] [--duration SECS] [--only LABEL] [--write]`: the side-by-side
//!   throughput harness (bench-server pinned to core 0, wrk to core 1; a throwaway redis-server
//!   for the cache-tier rows); `--only` is repeatable; `--write` updates `BENCHMARKS.md`.
//!
//! Keep dependencies minimal: this crate builds before every task (serde_json only, to read the
//! dashboard and Prometheus's answers).

mod bench;
mod browser;
mod budget;
mod cache;
mod dashboard;
mod gate_accuracy;
mod middleware;
mod otel;
mod postgres;
mod readme;
mod redis;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

tasks:
  test                 fmt check, clippy -D warnings, all tests, docs -D warnings,
                       per-feature builds (cargo-hack), real-server checks
                       (--skip-lint to skip fmt/clippy/docs/features while iterating)
  lint                 fmt check, clippy, docs -D warnings, per-feature builds only
  readme [FILE..]      the README snippets built as printed, and their links
  conformance          HTTP caching conformance suite against cache-proxy (root; needs node)
  postgres             perf-middleware's database tests against a throwaway PostgreSQL under target/
  otel-e2e             perf-otel against a Python OTLP receiver (gRPC + HTTP), signals, collector down
  browser              the /perf page in headless Chromium against the loaded showcase
                       (needs the showcase built)
  dashboard            every Grafana panel query against Prometheus scraping the loaded showcase
                       (needs the showcase and perf-budget built)
  gate-accuracy        perf-budget gate's p50/p99 vs the server's view and wrk (--secs N, --pin)
  bench                side-by-side throughput table (bare vs tower-perf vs peers)
                       --rounds N (default 3)  --duration SECS (default 5)
                       --only SUBSTRING (scenario labels; repeatable; adds the bare
                       rows of their paths)  --write (update BENCHMARKS.md)
                       (the cache-tier rows start a redis-server)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("lint") => lint(),
        Some("readme") => readme::test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("conformance") => cache::test(),
        Some("otel-e2e") => otel::test(),
        Some("postgres") => postgres::test(),
        Some("dashboard") => dashboard::test(),
        Some("browser") => browser::test(),
        Some("gate-accuracy") => gate_accuracy::run_task(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The library crates: each is built alone with each of its features.
const LIBRARIES: [&str; 4] = [
    "perf-middleware",
    "perf-cache-layer",
    "perf-budget",
    "perf-otel",
];

fn test(args: &[String]) -> Result<(), String> {
    use util::{cargo, run};
    let skip_lint = args.iter().any(|a| a == "--skip-lint");
    if !skip_lint {
        lint()?;
    }
    // One build with one feature set: the tests, the binaries and the examples the real-server
    // checks start all come from it.
    util::build_workspace()?;
    run(cargo().args(["test", "--workspace", "--all-targets", "--locked"]))?;
    run(cargo().args(["test", "--workspace", "--doc", "--locked"]))?;
    readme::test(&[])?;
    let checks: &[(&str, fn() -> Result<(), String>)] = &[
        ("perf-middleware", middleware::test),
        ("perf-cache-layer", cache::test),
        ("perf-cache-layer redis", redis::test),
        ("perf-budget", budget::test),
        ("perf-otel", otel::test),
        ("perf-middleware db on PostgreSQL", postgres::test),
        ("/perf page (headless Chromium)", browser::test),
        ("grafana dashboard", dashboard::test),
    ];
    let mut failed = Vec::new();
    for &(name, check) in checks {
        eprintln!("\n==> real-server checks: {name}");
        if let Err(e) = check() {
            eprintln!("FAILED {name}: {e}");
            failed.push(name);
        }
    }
    let passed = checks.len() - failed.len();
    println!(
        "\nreal-server checks: {passed} passed, {} failed",
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("real-server checks failed: {}", failed.join(", ")))
    }
}

/// fmt, clippy, the docs with `-D warnings`, and every library with each of its features alone.
fn lint() -> Result<(), String> {
    use util::{cargo, run};
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut doc = cargo();
    doc.args(["doc", "--no-deps", "--all-features", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings");
    for lib in LIBRARIES {
        doc.args(["-p", lib]);
    }
    run(&mut doc)?;
    util::require_cargo_tool(
        "hack",
        "cargo install cargo-hack --locked (`.ci/run` does this)",
    )?;
    // The libraries as users build them (`check` builds no dev-dependencies): one check per
    // feature alone, and none.
    let mut hack = cargo();
    hack.args(["hack", "check", "--each-feature", "--locked"])
        // Its own target directory: other `RUSTFLAGS` would otherwise rebuild the main build.
        .env("RUSTFLAGS", "-D warnings")
        .env("CARGO_TARGET_DIR", util::target_dir().join("hack"));
    for lib in LIBRARIES {
        hack.args(["-p", lib]);
    }
    run(&mut hack)
}
