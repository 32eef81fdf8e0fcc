//! `perf-budget`: Prometheus SLO rules and a CI gate from one `budgets.toml`.
//!
//! The binary of the `perf-budget-cli` crate (`cargo run -p perf-budget-cli -- --help`).
//!
//! - `perf-budget rules --config budgets.toml --period 30d [--with-tests rules.test.yml]`
//! - `perf-budget gate --config budgets.toml --target http://127.0.0.1:3000 --request "GET /api/users/1" --rate 200 --duration 10s`
//!
//! Gate exit codes: 0 pass, 1 an error-severity budget failed, 2 regression against the
//! baseline, 3 invalid run (rate not reached, too few samples, closed-loop client), 4 config or
//! usage error. When several apply: 4 > 3 > 1 > 2.

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

use crate::gate::{CONFIG, Check, Output, Validity};
use crate::load::{Plan, Target, View};

/// Performance budgets: Prometheus rules and a load-test gate from one budgets.toml.
#[derive(Debug, Parser)]
#[command(name = "perf-budget", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
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
enum Format {
    Text,
    Json,
    Junit,
    Markdown,
}

#[derive(Debug, clap::Args)]
struct GateArgs {
    /// The budgets file.
    #[arg(long)]
    config: PathBuf,
    /// Run an open-model load against this server (http://HOST:PORT).
    #[arg(long)]
    target: Option<String>,
    /// A request of the mix, `"GET /api/users/1"` or `/path` (repeatable; sent round-robin).
    #[arg(long = "request")]
    requests: Vec<String>,
    /// Target arrival rate, requests per second (constant, open model).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Measured duration.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Warm-up before measuring (excluded from every statistic).
    #[arg(long, default_value = "1s")]
    warmup: String,
    /// Most requests in flight; a send that finds none free is dropped (and invalidates the run).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Per-request timeout; a timeout counts as an error with latency = timeout.
    #[arg(long, default_value = "10s")]
    timeout: String,
    /// Path of the server's report on the target.
    #[arg(long, default_value = "/perf/budgets")]
    report_path: String,
    /// Read the server's report from this file instead of fetching it.
    #[arg(long)]
    server: Option<PathBuf>,
    /// Do not judge the server's view.
    #[arg(long)]
    no_server: bool,
    /// Read an `oha --json` result instead of running load (the first --request names its route).
    #[arg(long)]
    oha: Option<PathBuf>,
    /// The rate oha ran at with `-q R --latency-correction`; without it the run is closed-loop.
    #[arg(long)]
    oha_rate: Option<f64>,
    /// Judge latency of closed-loop runs anyway.
    #[arg(long)]
    allow_closed_loop: bool,
    /// Compare with this earlier gate JSON output.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write this run's JSON output here, to serve as a baseline.
    #[arg(long)]
    save_baseline: Option<PathBuf>,
    /// Format of stdout.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Also write JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also write Markdown here (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Least achieved / target rate for a valid run.
    #[arg(long, default_value_t = 0.95)]
    min_rate_ratio: f64,
    /// Largest share of dropped sends for a valid run.
    #[arg(long, default_value_t = 0.001)]
    max_dropped: f64,
    /// Largest schedule lag p99 for a valid run.
    #[arg(long, default_value = "10ms")]
    max_lag_p99: String,
    /// Warn when the client p99 exceeds the server's by this factor.
    #[arg(long, default_value_t = 2.0)]
    client_server_gap: f64,
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
        Cmd::Gate(a) => gate_cmd(&a),
    };
    ExitCode::from(code)
}

fn load_policy(path: &Path) -> Result<BudgetPolicy, String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    BudgetPolicy::from_toml(&src).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, s: &str) -> Result<(), String> {
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

fn parse_request(s: &str) -> Result<(http::Method, String), String> {
    let s = s.trim();
    let (m, p) = match s.split_once(' ') {
        Some((m, p)) => (
            http::Method::from_bytes(m.as_bytes())
                .map_err(|_| format!("--request {s:?}: bad method"))?,
            p.trim(),
        ),
        None => (http::Method::GET, s),
    };
    if !p.starts_with('/') {
        return Err(format!("--request {s:?}: write \"GET /path\""));
    }
    Ok((m, p.to_owned()))
}

fn gate_cmd(a: &GateArgs) -> u8 {
    match gate_run(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("perf-budget gate: config error: {e}");
            CONFIG
        }
    }
}

fn gate_run(a: &GateArgs) -> Result<u8, String> {
    let policy = load_policy(&a.config)?;
    let dur = |s: &str, what: &str| parse_duration(s).map_err(|e| format!("--{what}: {e}"));
    let mut targets = Vec::new();
    for r in &a.requests {
        let (method, path) = parse_request(r)?;
        let budget = gate::budget_for(&policy, &method, &path);
        targets.push(Target {
            method,
            path,
            budget,
        });
    }
    let nb = policy.budgets().len() + 1;
    let mut views: Vec<View> = policy
        .budgets()
        .iter()
        .map(|b| View::new(b.objectives().len()))
        .chain([View::new(0)])
        .collect();
    let thresholds: Vec<Vec<Option<u64>>> = policy
        .budgets()
        .iter()
        .map(|b| {
            b.objectives()
                .iter()
                .map(|o| match o {
                    perf_budget::Objective::Latency { threshold, .. } => {
                        Some(threshold.as_nanos() as u64)
                    }
                    _ => None,
                })
                .collect()
        })
        .chain([Vec::new()])
        .collect();
    debug_assert_eq!(views.len(), nb);
    let validity = Validity {
        min_rate_ratio: a.min_rate_ratio,
        max_dropped: a.max_dropped,
        max_lag_p99: dur(&a.max_lag_p99, "max-lag-p99")?,
        allow_closed_loop: a.allow_closed_loop,
        gap: a.client_server_gap,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut checks: Vec<Check> = Vec::new();
    let mut run_stats = None;
    let mut plan_for_profile = None;
    let mut client = Vec::new();
    let addr_host = match &a.target {
        Some(t) => {
            let hp = t
                .strip_prefix("http://")
                .ok_or_else(|| format!("--target {t:?}: write http://HOST:PORT"))?;
            let hp = hp.trim_end_matches('/').to_owned();
            Some((hp.clone(), hp))
        }
        None => None,
    };
    if let Some(oha) = &a.oha {
        let t = targets
            .first()
            .ok_or("--oha needs one --request naming the route oha hit")?;
        let src = std::fs::read_to_string(oha).map_err(|e| format!("{}: {e}", oha.display()))?;
        let objectives = policy
            .budgets()
            .get(t.budget)
            .map(|b| b.objectives().to_vec())
            .unwrap_or_default();
        let (view, mut stats, run) = gate::read_oha(&src, &objectives, a.oha_rate)?;
        stats.budget = policy
            .budgets()
            .get(t.budget)
            .map_or(perf_budget::OTHER, |b| b.name())
            .to_owned();
        views[t.budget] = view;
        client.push(stats);
        gate::validity(&run, &validity, &mut checks);
        if run.open_model || a.allow_closed_loop {
            gate::judge_client(&policy, &views, &client, &mut checks);
        }
        run_stats = Some(run);
    } else if let Some((addr, host)) = &addr_host {
        if targets.is_empty() {
            return Err(
                "--target needs at least one --request, e.g. --request \"GET /api/users/1\"".into(),
            );
        }
        if a.rate.is_nan() || a.rate <= 0.0 {
            return Err("--rate must be positive".into());
        }
        let plan = Plan {
            addr: addr.clone(),
            host: host.clone(),
            rate: a.rate,
            duration: dur(&a.duration, "duration")?,
            warmup: if a.warmup.trim() == "0" || a.warmup.trim() == "0s" {
                Duration::ZERO
            } else {
                dur(&a.warmup, "warmup")?
            },
            max_in_flight: a.max_in_flight.max(1),
            timeout: dur(&a.timeout, "timeout")?,
        };
        plan_for_profile = Some(plan.clone());
        let run = rt.block_on(gate::run_load(
            plan,
            targets.clone(),
            &mut views,
            &thresholds,
        ));
        client = gate::client_stats(&policy, &views);
        gate::validity(&run, &validity, &mut checks);
        gate::judge_client(&policy, &views, &client, &mut checks);
        run_stats = Some(run);
    }
    let server = if a.no_server {
        None
    } else if let Some(p) = &a.server {
        let src = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Some(
            serde_json::from_str::<perf_budget::BudgetReport>(&src)
                .map_err(|e| format!("{}: not a perf-budget report: {e}", p.display()))?,
        )
    } else if let Some((addr, host)) = &addr_host {
        match rt.block_on(gate::fetch(addr, host, &a.report_path)) {
            Ok(r) => Some(r),
            Err(e) => {
                checks.push(Check { class: "validity".into(), view: "server".into(), budget: None, objective: None, outcome: "fail".into(), message: format!("server report unavailable: {e} (use --no-server to judge the client view only)") });
                None
            }
        }
    } else {
        None
    };
    if let Some(s) = &server {
        gate::judge_server(s, &mut checks);
        gate::gap(&client, s, validity.gap, &mut checks);
    }
    if run_stats.is_none() && server.is_none() {
        return Err("nothing to judge: give --target, --oha or --server".into());
    }
    let profile = gate::profile(plan_for_profile.as_ref(), &targets);
    if let Some(b) = &a.baseline {
        let src = std::fs::read_to_string(b).map_err(|e| format!("{}: {e}", b.display()))?;
        let base: Output = serde_json::from_str(&src)
            .map_err(|e| format!("{}: not a gate JSON output: {e}", b.display()))?;
        if base.profile != profile {
            checks.push(Check {
                class: "config".into(),
                view: "run".into(),
                budget: None,
                objective: None,
                outcome: "fail".into(),
                message: format!(
                    "baseline profile differs: {:?} vs this run {:?}; compare like with like",
                    base.profile, profile
                ),
            });
        } else {
            gate::regression(&policy, &client, &base.client, &mut checks);
        }
    }
    let code = gate::exit_code(&checks);
    let out = Output {
        verdict: gate::verdict(code).into(),
        exit_code: code,
        profile,
        run: run_stats,
        client,
        server,
        checks,
    };
    let json = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    if let Some(p) = &a.json {
        write(p, &json)?;
    }
    if let Some(p) = &a.save_baseline {
        write(p, &json)?;
    }
    if let Some(p) = &a.junit {
        write(p, &out.junit())?;
    }
    if let Some(p) = &a.markdown {
        write(p, &out.markdown())?;
    }
    match a.format {
        Format::Text => print!("{}", out.text()),
        Format::Json => println!("{json}"),
        Format::Junit => print!("{}", out.junit()),
        Format::Markdown => print!("{}", out.markdown()),
    }
    Ok(code)
}
