//! `perf-budget`: Prometheus SLO rules and a CI gate from one `budgets.toml`.
//!
//! The binary of the `perf-budget-cli` crate (`cargo run -p perf-budget-cli -- --help`).
//!
//! - `perf-budget rules --config budgets.toml --period 30d [--with-tests rules.test.yml]`
//! - `perf-budget gate --config budgets.toml --target http://127.0.0.1:3000 --request "GET /api/users/1" --rate 200 --duration 10s`
//!
//! Gate exit codes: 0 pass, 1 an error-severity budget failed, 2 regression against the
//! baseline, 3 invalid run (rate not reached, too few samples, closed-loop client), 4 config or
//! usage error (including a `--request` that matches no budget, an error-severity budget no
//! `--request` reaches, budgets that differ from the server's, a baseline of another profile).
//! When several apply: 4 > 3 > 1 > 2. What is knowable before the load stops the run before
//! its first request. The server's view is its report after the load minus the one before;
//! both views use the sample floors of `--config` (`[defaults] sample_floor` lowers them).

#[cfg(test)]
mod attribution_tests;
mod gate;
mod load;
mod rules;

/// Parses a command-line duration: `10s`, `50ms`, `2m`, `30d` (`humantime`).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); write one like 200ms, 10s or 30d"))
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use perf_budget::BudgetPolicy;

use crate::gate::CONFIG;

/// Performance budgets: Prometheus rules and a load-test gate from one budgets.toml.
#[derive(Debug, Parser)]
#[command(name = "perf-budget", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Write Sloth-compatible recording rules and multi-window multi-burn-rate alerts.
    Rules(RulesArgs),
    /// Run (or read) a load test and judge it against the budgets.
    Gate(Box<GateArgs>),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RulesFormat {
    /// A Prometheus `groups:` rule file with Sloth's metric names.
    Prometheus,
    /// A Sloth `prometheus/v1` spec.
    Sloth,
}

#[derive(Debug, clap::Args)]
struct RulesArgs {
    /// The budgets file.
    #[arg(long)]
    config: PathBuf,
    /// The SLO period; alert windows are scaled from the 30-day workbook windows.
    #[arg(long, default_value = "30d")]
    period: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "prometheus")]
    format: RulesFormat,
    /// Write the rules here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write a `promtool test rules` file here (needs --out).
    #[arg(long)]
    with_tests: Option<PathBuf>,
    /// The `sloth_service` label.
    #[arg(long, default_value = "app")]
    service: String,
    /// Only alert when the route serves more than this many requests per second.
    #[arg(long)]
    min_rps: Option<f64>,
    /// Keep unreachable burn-rate alerts, clamped to 0.9 x the largest possible burn.
    #[arg(long)]
    clamp_burn: bool,
    /// `severity` label of page alerts.
    #[arg(long, default_value = "critical")]
    page_severity: String,
    /// `severity` label of ticket alerts.
    #[arg(long, default_value = "warning")]
    ticket_severity: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Junit,
    Markdown,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GateArgs {
    /// The budgets file.
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// Run an open-model load against this server (http://HOST:PORT).
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// A request of the mix, `"GET /api/users/1"` or `/path` (repeatable; sent round-robin).
    #[arg(long = "request")]
    pub(crate) requests: Vec<String>,
    /// Target arrival rate, requests per second (constant, open model).
    #[arg(long, default_value_t = 50.0)]
    pub(crate) rate: f64,
    /// Measured duration.
    #[arg(long, default_value = "10s")]
    pub(crate) duration: String,
    /// Warm-up before measuring (excluded from every statistic).
    #[arg(long, default_value = "1s")]
    pub(crate) warmup: String,
    /// Most requests in flight; a send that finds none free is dropped (and invalidates the run).
    #[arg(long, default_value_t = 256)]
    pub(crate) max_in_flight: usize,
    /// Per-request timeout; a timeout counts as an error with latency = timeout.
    #[arg(long, default_value = "10s")]
    pub(crate) timeout: String,
    /// Path of the server's report on the target (fetched before and after the load).
    #[arg(long, default_value = "/perf/budgets")]
    pub(crate) report_path: String,
    /// Read the server's report from this file instead of fetching it.
    #[arg(long)]
    pub(crate) server: Option<PathBuf>,
    /// Do not judge the server's view.
    #[arg(long)]
    pub(crate) no_server: bool,
    /// Read an `oha --json` result instead of running load (the first --request names its route).
    #[arg(long)]
    pub(crate) oha: Option<PathBuf>,
    /// The rate oha ran at with `-q R --latency-correction`; without it the run is closed-loop.
    #[arg(long)]
    pub(crate) oha_rate: Option<f64>,
    /// Judge latency of closed-loop runs anyway.
    #[arg(long)]
    pub(crate) allow_closed_loop: bool,
    /// Compare with this earlier gate JSON output.
    #[arg(long)]
    pub(crate) baseline: Option<PathBuf>,
    /// Write this run's JSON output here, to serve as a baseline.
    #[arg(long)]
    pub(crate) save_baseline: Option<PathBuf>,
    /// Format of stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
    /// Also write JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Also write JUnit XML here.
    #[arg(long)]
    pub(crate) junit: Option<PathBuf>,
    /// Also write Markdown here (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    pub(crate) markdown: Option<PathBuf>,
    /// Also write a self-contained HTML report here: latency spectra, rate over time, baseline.
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
    /// No live progress line (it is drawn only when stdout is a terminal anyway).
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Least achieved / target rate for a valid run.
    #[arg(long, default_value_t = 0.95)]
    pub(crate) min_rate_ratio: f64,
    /// Largest share of dropped sends for a valid run.
    #[arg(long, default_value_t = 0.001)]
    pub(crate) max_dropped: f64,
    /// Largest schedule lag p99 for a valid run: the gate's own lateness, from a request's
    /// scheduled time to its start, which is not in its latency. On a machine the gate shares
    /// with the server, a lag is also time the server held the CPU: keep this small there, or run
    /// the gate on other cores.
    #[arg(long, default_value = "10ms")]
    pub(crate) max_lag_p99: String,
    /// Warn when a client quantile (p50, p95 or p99) exceeds the server's view of the run by
    /// this factor and by 5 ms: time spent outside the layer.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) client_server_gap: f64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.cmd {
        Cmd::Rules(a) => rules_cmd(&a),
        Cmd::Gate(a) => gate::run(&a),
    };
    ExitCode::from(code)
}

pub(crate) fn load_policy(path: &Path) -> Result<BudgetPolicy, String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    BudgetPolicy::from_toml(&src).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn write(path: &Path, s: &str) -> Result<(), String> {
    std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}

fn rules_cmd(a: &RulesArgs) -> u8 {
    let run = || -> Result<(), String> {
        let policy = load_policy(&a.config)?;
        let period_min = rules::parse_period(&a.period)?;
        let opts = rules::Options {
            service: a.service.clone(),
            period_min,
            clamp_burn: a.clamp_burn,
            min_rps: a.min_rps,
            page_severity: a.page_severity.clone(),
            ticket_severity: a.ticket_severity.clone(),
        };
        let text = match a.format {
            RulesFormat::Prometheus => {
                let (y, notes) = rules::prometheus(&policy, &opts);
                for n in notes {
                    eprintln!("note: {n}");
                }
                y
            }
            RulesFormat::Sloth => rules::sloth(&policy, &opts),
        };
        match &a.out {
            Some(p) => write(p, &text)?,
            None => print!("{text}"),
        }
        if let Some(t) = &a.with_tests {
            let out = a
                .out
                .as_ref()
                .ok_or("--with-tests needs --out (the test file names the rule file)")?;
            let rel = out
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = if out.parent() == t.parent() {
                rel
            } else {
                std::path::absolute(out)
                    .map_err(|e| e.to_string())?
                    .display()
                    .to_string()
            };
            write(t, &rules::tests(&policy, &opts, &rel))?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("perf-budget rules: {e}");
            CONFIG
        }
    }
}
