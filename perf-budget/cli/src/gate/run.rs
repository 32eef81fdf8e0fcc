//! `perf-budget gate`: from the arguments to the exit code.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use perf_budget::{BudgetPolicy, BudgetReport, Objective};
use tokio::runtime::Runtime;

use crate::gate::{self, CONFIG, Check, ClientBudget, Output, Validity, check};
use crate::load::{self, Plan, RunStats, Target, View};
use crate::{Format, GateArgs, load_policy, parse_duration, write};

/// Runs the gate; the exit code (a configuration or usage error is [`CONFIG`]).
pub(crate) fn run(a: &GateArgs) -> u8 {
    match gate(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("perf-budget gate: config error: {e}");
            CONFIG
        }
    }
}

fn dur(s: &str, what: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| format!("--{what}: {e}"))
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

/// What the client side of a run produced.
#[derive(Default)]
struct ClientSide {
    run: Option<RunStats>,
    plan: Option<Plan>,
    client: Vec<ClientBudget>,
}

fn gate(a: &GateArgs) -> Result<u8, String> {
    let policy = load_policy(&a.config)?;
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
    let mut checks: Vec<Check> = Vec::new();
    let side = client_side(
        a,
        &policy,
        &targets,
        addr_host.as_ref(),
        &validity,
        &mut checks,
    )?;
    let server = server_side(a, &rt, addr_host.as_ref(), &mut checks)?;
    if let Some(s) = &server {
        gate::judge_server(s, &mut checks);
        gate::gap(&side.client, s, validity.gap, &mut checks);
    }
    if side.run.is_none() && server.is_none() {
        return Err("nothing to judge: give --target, --oha or --server".into());
    }
    let profile = gate::profile(side.plan.as_ref(), &targets);
    compare_baseline(a, &policy, &profile, &side.client, &mut checks)?;
    let code = gate::exit_code(&checks);
    let out = Output {
        verdict: gate::verdict(code).into(),
        exit_code: code,
        profile,
        run: side.run,
        client: side.client,
        server,
        checks,
    };
    emit(a, &out)?;
    Ok(code)
}

/// One client view per budget (and `__other__`), and each budget's latency thresholds in ns.
fn views(policy: &BudgetPolicy) -> (Vec<View>, Vec<Vec<Option<u64>>>) {
    let views = policy
        .budgets()
        .iter()
        .map(|b| View::new(b.objectives().len()))
        .chain([View::new(0)])
        .collect();
    let thresholds = policy
        .budgets()
        .iter()
        .map(|b| {
            b.objectives()
                .iter()
                .map(|o| match o {
                    Objective::Latency { threshold, .. } => Some(threshold.as_nanos() as u64),
                    _ => None,
                })
                .collect()
        })
        .chain([Vec::new()])
        .collect();
    (views, thresholds)
}

/// The client view: an `oha` result, or an open-model run against `--target`.
fn client_side(
    a: &GateArgs,
    policy: &BudgetPolicy,
    targets: &[Target],
    addr_host: Option<&(String, String)>,
    validity: &Validity,
    checks: &mut Vec<Check>,
) -> Result<ClientSide, String> {
    let (mut views, thresholds) = views(policy);
    if let Some(oha) = &a.oha {
        let t = targets
            .first()
            .ok_or("--oha needs one --request naming the route oha hit")?;
        let src = std::fs::read_to_string(oha).map_err(|e| format!("{}: {e}", oha.display()))?;
        let budget = policy.budgets().get(t.budget);
        let objectives = budget.map(|b| b.objectives().to_vec()).unwrap_or_default();
        let (view, mut stats, run) = gate::read_oha(&src, &objectives, a.oha_rate)?;
        stats.budget = budget.map_or(perf_budget::OTHER, |b| b.name()).to_owned();
        views[t.budget] = view;
        let client = vec![stats];
        gate::validity(&run, validity, checks);
        if run.open_model || a.allow_closed_loop {
            gate::judge_client(policy, &views, &client, checks);
        }
        return Ok(ClientSide {
            run: Some(run),
            plan: None,
            client,
        });
    }
    let Some((addr, host)) = addr_host else {
        return Ok(ClientSide::default());
    };
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
        progress: !a.quiet,
    };
    let mut run = load::run(plan.clone(), targets, &mut views, &thresholds)?;
    let names: Vec<&str> = (policy.budgets().iter().map(|b| b.name()))
        .chain([perf_budget::OTHER])
        .collect();
    run.spectra = load::spectra(&views, &names);
    let client = gate::client_stats(policy, &views);
    gate::validity(&run, validity, checks);
    gate::judge_client(policy, &views, &client, checks);
    Ok(ClientSide {
        run: Some(run),
        plan: Some(plan),
        client,
    })
}

/// The server's report: from `--server`, fetched from `--target`, or none.
fn server_side(
    a: &GateArgs,
    rt: &Runtime,
    addr_host: Option<&(String, String)>,
    checks: &mut Vec<Check>,
) -> Result<Option<BudgetReport>, String> {
    if a.no_server {
        return Ok(None);
    }
    if let Some(p) = &a.server {
        let src = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let report = serde_json::from_str::<BudgetReport>(&src)
            .map_err(|e| format!("{}: not a perf-budget report: {e}", p.display()))?;
        return Ok(Some(report));
    }
    let Some((addr, host)) = addr_host else {
        return Ok(None);
    };
    match rt.block_on(fetch(addr, host, &a.report_path)) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            let message = format!(
                "server report unavailable: {e} (use --no-server to judge the client view only)"
            );
            checks.push(check("validity", "server", None, None, "fail", message));
            Ok(None)
        }
    }
}

/// Compares with `--baseline` when given: only a run of the same profile.
fn compare_baseline(
    a: &GateArgs,
    policy: &BudgetPolicy,
    profile: &str,
    client: &[ClientBudget],
    checks: &mut Vec<Check>,
) -> Result<(), String> {
    let Some(b) = &a.baseline else {
        return Ok(());
    };
    let src = std::fs::read_to_string(b).map_err(|e| format!("{}: {e}", b.display()))?;
    let base: Output = serde_json::from_str(&src)
        .map_err(|e| format!("{}: not a gate JSON output: {e}", b.display()))?;
    if base.profile != profile {
        let message = format!(
            "baseline profile differs: {:?} vs this run {profile:?}; compare like with like",
            base.profile
        );
        checks.push(check("config", "run", None, None, "fail", message));
    } else {
        gate::regression(policy, client, &base.client, checks);
    }
    Ok(())
}

/// Writes the output files and stdout.
fn emit(a: &GateArgs, out: &Output) -> Result<(), String> {
    let json = serde_json::to_string_pretty(out).map_err(|e| e.to_string())?;
    for p in [&a.json, &a.save_baseline].into_iter().flatten() {
        write(p, &json)?;
    }
    if let Some(p) = &a.junit {
        write(p, &out.junit())?;
    }
    if let Some(p) = &a.markdown {
        write(p, &out.markdown())?;
    }
    if let Some(p) = &a.html {
        write(p, &out.html(a.baseline.as_deref())?)?;
    }
    match a.format {
        Format::Text => print!("{}", out.text()),
        Format::Json => println!("{json}"),
        Format::Junit => print!("{}", out.junit()),
        Format::Markdown => print!("{}", out.markdown()),
    }
    Ok(())
}

/// Fetches the server's report with one GET.
async fn fetch(addr: &str, host: &str, path: &str) -> Result<BudgetReport, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("GET {path}: status {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not a perf-budget report: {e}"))
}
