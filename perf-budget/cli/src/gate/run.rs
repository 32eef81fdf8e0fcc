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
    if a.oha.is_none() && addr_host.is_none() && a.server.is_none() {
        return Err("nothing to judge: give --target, --oha or --server".into());
    }
    let plan = plan(a, addr_host.as_ref(), &targets)?;
    let baseline = read_baseline(a)?;
    let profile = gate::profile(plan.as_ref(), &targets);
    // Before any request: what is knowable now, and the server's report to diff against.
    let mut checks = gate::preflight(
        &policy,
        &targets,
        plan.as_ref(),
        baseline.as_ref(),
        &profile,
    );
    let before = server_report(a, &rt, addr_host.as_ref(), &mut checks)?;
    if let Some(m) = before.as_ref().and_then(|b| gate::mismatch(&policy, b)) {
        checks.push(m);
    }
    if checks.iter().any(|c| c.outcome == "fail") {
        return finish(a, &policy, profile, ClientSide::default(), None, checks);
    }
    let mut side = client_side(a, &policy, &targets, plan, &validity, &mut checks)?;
    let server = match before {
        // The run's own traffic: the report after the load minus the one before (an `oha`
        // run happened before the gate started: its report is judged as it is).
        Some(before) if a.server.is_none() && a.oha.is_none() => {
            let after = server_report(a, &rt, addr_host.as_ref(), &mut checks)?;
            if let (Some(run), Some(after)) = (side.run.as_mut(), after.as_ref()) {
                run.server_spectra = load::server_spectra(after, &before);
            }
            after.map(|after| after.since(&before))
        }
        other => other,
    };
    let server = server.map(|mut s| {
        gate::local_floor(&policy, &mut s);
        s
    });
    if let Some(s) = &server {
        gate::judge_server(s, &mut checks);
        gate::gap(&side.client, s, validity.gap, &mut checks);
    }
    if let Some(base) = baseline.filter(|b| b.profile == profile) {
        gate::regression(&policy, &side.client, &base.client, &mut checks);
    }
    finish(a, &policy, profile, side, server, checks)
}

/// The verdict, the outputs and the exit code. Judging no objective at all is no pass.
fn finish(
    a: &GateArgs,
    policy: &BudgetPolicy,
    profile: String,
    side: ClientSide,
    server: Option<BudgetReport>,
    mut checks: Vec<Check>,
) -> Result<u8, String> {
    let (judged, objectives) = gate::judged(policy, &checks);
    if judged == 0 && objectives > 0 && !checks.iter().any(|c| c.outcome == "fail") {
        let message = format!("no objective was judged (0 of {objectives}): no evidence, no pass");
        checks.push(check("validity", "run", None, None, "fail", message).key("judged"));
    }
    let code = gate::exit_code(&checks);
    let out = Output {
        verdict: gate::verdict(code).into(),
        exit_code: code,
        profile,
        run: side.run,
        client: side.client,
        server,
        judged,
        objectives,
        checks,
    };
    emit(a, &out)?;
    Ok(code)
}

/// The open-model load plan, for a run against `--target` (none with `--oha`).
fn plan(
    a: &GateArgs,
    addr_host: Option<&(String, String)>,
    targets: &[Target],
) -> Result<Option<Plan>, String> {
    let Some((addr, host)) = addr_host.filter(|_| a.oha.is_none()) else {
        return Ok(None);
    };
    if targets.is_empty() {
        return Err(
            "--target needs at least one --request, e.g. --request \"GET /api/users/1\"".into(),
        );
    }
    if a.rate.is_nan() || a.rate <= 0.0 {
        return Err("--rate must be positive".into());
    }
    Ok(Some(Plan {
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
    }))
}

/// The `--baseline` output, when given.
fn read_baseline(a: &GateArgs) -> Result<Option<Output>, String> {
    let Some(b) = &a.baseline else {
        return Ok(None);
    };
    let src = std::fs::read_to_string(b).map_err(|e| format!("{}: {e}", b.display()))?;
    serde_json::from_str(&src)
        .map(Some)
        .map_err(|e| format!("{}: not a gate JSON output: {e}", b.display()))
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

/// The client view: an `oha` result, or an open-model run by `plan` against `--target`.
fn client_side(
    a: &GateArgs,
    policy: &BudgetPolicy,
    targets: &[Target],
    plan: Option<Plan>,
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
            client,
        });
    }
    let Some(plan) = plan else {
        return Ok(ClientSide::default());
    };
    let mut run = load::run(plan, targets, &mut views, &thresholds)?;
    let names: Vec<&str> = (policy.budgets().iter().map(|b| b.name()))
        .chain([perf_budget::OTHER])
        .collect();
    run.spectra = load::spectra(&views, &names);
    let client = gate::client_stats(policy, &views);
    gate::validity(&run, validity, checks);
    gate::judge_client(policy, &views, &client, checks);
    Ok(ClientSide {
        run: Some(run),
        client,
    })
}

/// The server's report: from `--server`, fetched from `--target`, or none.
fn server_report(
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
            checks.push(check("validity", "server", None, None, "fail", message).key("server"));
            Ok(None)
        }
    }
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
