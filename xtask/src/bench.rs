//! `cargo xtask bench`: the same routes bare, behind tower-perf layers and behind the peer
//! crates, in one run. The bench server is pinned to core 0 and `wrk` to core 1; variants are
//! alternated over rounds and the median requests/s of each scenario is compared with `bare`
//! on the same path. The cache-tier rows (L1 hit, L2 hit, Redis down) are described in [`tiers`].

mod tiers;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::util::{self, Server, cargo, free_port, output, project_root, require_tool, target_dir};

/// One row of the table: `variant` served by bench-server, loaded on `path`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) label: &'static str,
    pub(crate) variant: &'static str,
    pub(crate) path: &'static str,
}

const fn s(label: &'static str, variant: &'static str, path: &'static str) -> Scenario {
    Scenario {
        label,
        variant,
        path,
    }
}

/// Every scenario. Each path's ratio is taken against the `bare` variant on the same path, so
/// a path used here needs a `bare` row too.
pub(crate) const SCENARIOS: &[Scenario] = &[
    s("bare axum, JSON", "bare", "/json"),
    s(
        "reference: identity layer via Router::layer, JSON",
        "noop-layer",
        "/json",
    ),
    s(
        "reference: metrics-exporter-prometheus work alone (2 samples, gauge, 2 clock reads), JSON",
        "metrics-alone",
        "/json",
    ),
    s(
        "perf-middleware (metrics + slow log), JSON",
        "perf",
        "/json",
    ),
    s(
        "perf-middleware + Server-Timing, JSON",
        "perf-server-timing",
        "/json",
    ),
    s(
        "perf-middleware + Server-Timing recording into the /perf page, JSON",
        "perf-page",
        "/json",
    ),
    s(
        "perf-middleware around the whole Router (PerfLayer::around), JSON",
        "perf-outer",
        "/json",
    ),
    s(
        "peer tower-http TraceLayer, JSON",
        "peer-tower-http-trace",
        "/json",
    ),
    s(
        "peer axum-prometheus, JSON",
        "peer-axum-prometheus",
        "/json",
    ),
    s(
        "peer axum-tracing-opentelemetry, JSON",
        "peer-axum-tracing-otel",
        "/json",
    ),
    s(
        "perf-budget (observe, 3 objectives), JSON",
        "budget",
        "/json",
    ),
    s(
        "perf-budget around the whole Router (observe, 3 objectives), JSON",
        "budget-outer",
        "/json",
    ),
    s("perf-otel, 100 % sampled, JSON", "otel", "/json"),
    s("perf-otel, 1 % sampled, JSON", "otel-1pct", "/json"),
    s(
        "reference: OpenTelemetry SDK alone, 100 % sampled, JSON",
        "sdk-alone",
        "/json",
    ),
    s(
        "reference: OpenTelemetry SDK alone, 1 % sampled, JSON",
        "sdk-alone-1pct",
        "/json",
    ),
    s(
        "peer axum-tracing-opentelemetry, 100 % sampled (otel::tracing=trace), JSON",
        "peer-axum-tracing-otel-sampled",
        "/json",
    ),
    s("bare axum, static 1 KiB", "bare", "/static"),
    s("bare axum, 1 ms handler", "bare", "/work"),
    s("bare axum, 1 ms CPU handler", "bare", "/cpu"),
    s("perf-cache-layer, 1 ms CPU handler cached", "cache", "/cpu"),
    s("perf-cache-layer hit, static 1 KiB", "cache", "/static"),
    // The cache tiers (bench/tiers.rs): divided by the row above after the table.
    s(
        "perf-cache-layer tiered, L1 hit (Redis up), static 1 KiB",
        "cache-tiered",
        "/static",
    ),
    s(
        "perf-cache-layer tiered, L2 hit (16 KiB L1, 1,000 URLs), static 1 KiB",
        "cache-tiered-l2",
        "/static",
    ),
    s(
        "perf-cache-layer tiered, Redis down (breaker open), L1 hit, static 1 KiB",
        "cache-redis-down",
        "/static",
    ),
    s(
        "perf-cache-layer hit, around the whole Router, static 1 KiB",
        "cache-outer",
        "/static",
    ),
    s("perf-cache-layer, 1 ms handler cached", "cache", "/work"),
    s(
        "peer http-cache-tower-server hit, static 1 KiB",
        "peer-http-cache-tower-server",
        "/static",
    ),
    s(
        "peer http-cache-tower-server, 1 ms handler cached",
        "peer-http-cache-tower-server",
        "/work",
    ),
];

struct Options {
    rounds: usize,
    duration: u32,
    connections: u32,
    /// Label substrings (`--only`, repeatable); empty: every scenario.
    only: Vec<String>,
    write: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        rounds: 3,
        duration: 5,
        connections: 32,
        only: Vec::new(),
        write: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rounds" => {
                o.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?
            }
            "--duration" => {
                o.duration = value("--duration")?
                    .parse()
                    .map_err(|e| format!("--duration: {e}"))?
            }
            "--connections" => {
                o.connections = value("--connections")?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?;
            }
            "--only" => o.only.push(value("--only")?),
            "--write" => o.write = true,
            other => return Err(format!("unknown bench option `{other}`")),
        }
    }
    if o.rounds == 0 || o.duration == 0 {
        return Err("--rounds and --duration must be at least 1".into());
    }
    Ok(o)
}

/// Runs the harness.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let wrk = require_tool("wrk", "`apt-get install -y wrk`")?;
    let taskset = require_tool("taskset", "`apt-get install -y util-linux`")?;
    util::run(cargo().args(["build", "--release", "--locked", "-p", "bench-server"]))?;
    // A copy is run: a build from another checkout sharing the target directory cannot swap
    // the binary between variants.
    let server_bin = target_dir().join("bench").join("bench-server");
    std::fs::create_dir_all(target_dir().join("bench")).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&server_bin); // still running from another run: unlink, not overwrite
    std::fs::copy(target_dir().join("release/bench-server"), &server_bin)
        .map_err(|e| format!("copy bench-server: {e}"))?;
    // Raise the priority of the server and wrk over background work (builds) when allowed.
    let high = std::process::Command::new("nice")
        .args(["-n", "-10", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let pinned = |core: &str| {
        let mut c = Command::new(if high { "nice" } else { "env" });
        if high {
            c.args(["-n", "-10"]);
        }
        c.arg(&taskset).args(["-c", core]);
        c
    };

    let selected = select(&o.only);
    let mut variants: Vec<&str> = Vec::new();
    for sc in &selected {
        if !variants.contains(&sc.variant) {
            variants.push(sc.variant);
        }
    }
    let mut tiers = tiers::Tiers::start(&variants)?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); selected.len()];
    for round in 0..o.rounds {
        // Alternate the order every round so drift (thermal, noisy neighbours) spreads evenly.
        let order: Vec<&str> = if round % 2 == 0 {
            variants.clone()
        } else {
            variants.iter().rev().copied().collect()
        };
        for v in order {
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let mut cmd = pinned("0");
            cmd.arg(&server_bin)
                .args(["--variant", v, "--listen", &addr.to_string()])
                .stdout(Stdio::null());
            tiers.env(v, &mut cmd);
            let server = Server::start(v, cmd, addr)?;
            tiers.prepare(v, server.addr)?;
            for (i, sc) in selected
                .iter()
                .enumerate()
                .filter(|(_, sc)| sc.variant == v)
            {
                let url = format!("http://{}{}", server.addr, sc.path);
                let script = tiers.script(v);
                wrk_rps(pinned("1"), &wrk, &url, 1, o.connections, script)?; // warm-up
                let cpu = tiers::cpu_time(server.pid());
                let rps = wrk_rps(pinned("1"), &wrk, &url, o.duration, o.connections, script)?;
                tiers.check(v, server.addr)?;
                tiers.record_cpu(i, server.pid(), cpu, rps * f64::from(o.duration));
                eprintln!("round {}: {:<48} {rps:>10.0} req/s", round + 1, sc.label);
                samples[i].push(rps);
            }
        }
    }
    let mut table = render(&selected, &samples, &o);
    table.push_str(&tiers.summary(&selected, &samples));
    println!("\n{table}");
    let out = target_dir().join("bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    std::fs::write(out.join("results.md"), &table).map_err(|e| e.to_string())?;
    if o.write {
        write_benchmarks_md(&table)?;
    }
    Ok(())
}

/// The scenarios whose label contains one of `only` (all when empty), with the `bare` rows of
/// their paths.
fn select(only: &[String]) -> Vec<Scenario> {
    let matches =
        |sc: &Scenario| only.is_empty() || only.iter().any(|f| sc.label.contains(f.as_str()));
    let paths: Vec<&str> = SCENARIOS
        .iter()
        .filter(|sc| matches(sc))
        .map(|sc| sc.path)
        .collect();
    SCENARIOS
        .iter()
        .copied()
        .filter(|sc| matches(sc) || (sc.variant == "bare" && paths.contains(&sc.path)))
        .collect()
}

fn wrk_rps(
    mut cmd: Command,
    wrk: &std::path::Path,
    url: &str,
    secs: u32,
    conns: u32,
    script: Option<&std::path::Path>,
) -> Result<f64, String> {
    cmd.arg(wrk).args([
        "-t1",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let text = output(cmd.arg(url))?;
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
    {
        return Err(format!("{url}: {line}"));
    }
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("could not read Requests/sec from wrk output:\n{text}"))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Per-round ratios of `v` to `bare`: each round's sample over the bare sample of the same round.
/// Robust to drift between rounds (a shared host slowing down for minutes), which shifts both
/// samples of a round alike; the order alternates every round, so drift within a round evens out.
fn paired_ratios(v: &[f64], bare: &[f64]) -> Vec<f64> {
    v.iter().zip(bare).map(|(x, b)| x / b).collect()
}

fn render(selected: &[Scenario], samples: &[Vec<f64>], o: &Options) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "`cargo xtask bench --rounds {} --duration {}` — server on core 0, wrk -t1 -c{} on core 1, {} rounds\n",
        o.rounds, o.duration, o.connections, o.rounds
    );
    let _ = writeln!(
        t,
        "*ratio to bare* is the median over rounds of (variant ÷ bare on the same path, same round), \
         with the range over rounds; *ratio of medians* divides the two columns' medians and moves \
         with drift between rounds.\n"
    );
    let _ = writeln!(
        t,
        "| scenario | variant | path | median req/s | ratio to bare | range over rounds | ratio of medians |"
    );
    let _ = writeln!(t, "|---|---|---|---:|---:|---:|---:|");
    for (sc, v) in selected.iter().zip(samples) {
        let m = median(v);
        let bare = selected
            .iter()
            .zip(samples)
            .find(|(b, _)| b.variant == "bare" && b.path == sc.path)
            .map(|(_, bv)| bv);
        let (ratio, range, of_medians) = match bare {
            Some(b) => {
                let r = paired_ratios(v, b);
                let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (
                    format!("{:.3}×", median(&r)),
                    format!("{lo:.3}–{hi:.3}"),
                    format!("{:.3}×", m / median(b)),
                )
            }
            None => ("—".to_owned(), "—".to_owned(), "—".to_owned()),
        };
        let _ = writeln!(
            t,
            "| {} | `{}` | `{}` | {:.0} | {} | {} | {} |",
            sc.label, sc.variant, sc.path, m, ratio, range, of_medians
        );
    }
    t
}

fn write_benchmarks_md(table: &str) -> Result<(), String> {
    let path = project_root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    let machine = output(Command::new("uname").arg("-srm")).unwrap_or_default();
    let block = format!(
        "{BEGIN}\n{table}\nMachine: {} ({} cores)\n{END}",
        machine.trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{}{}", &old[..b], block, &old[e + END.len()..]),
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(&path, new).map_err(|e| e.to_string())?;
    println!("updated {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{SCENARIOS, median, paired_ratios, select};

    #[test]
    fn only_keeps_matching_rows_and_the_bare_rows_of_their_paths() {
        assert_eq!(select(&[]).len(), SCENARIOS.len());
        let rows: Vec<(&str, &str)> = select(&["tiered".into(), "hit, static".into()])
            .iter()
            .map(|s| (s.variant, s.path))
            .collect();
        assert_eq!(
            rows,
            [
                ("bare", "/static"),
                ("cache", "/static"),
                ("cache-tiered", "/static"),
                ("cache-tiered-l2", "/static"),
                ("cache-redis-down", "/static"),
                ("peer-http-cache-tower-server", "/static"),
            ]
        );
    }

    #[test]
    fn paired_ratio_cancels_drift_between_rounds() {
        // The host slows down by half from round 3 on (for bare from round 4: it ran later in
        // round 3); the variant is 0.9× bare whenever both ran at the same speed.
        let bare = [100.0, 100.0, 100.0, 50.0, 50.0];
        let variant = [90.0, 90.0, 45.0, 45.0, 45.0];
        assert!((median(&variant) / median(&bare) - 0.45).abs() < 1e-12);
        assert!((median(&paired_ratios(&variant, &bare)) - 0.9).abs() < 1e-12);
        assert_eq!(median(&[3.0, 1.0, 2.0, 4.0]), 2.5);
    }
}
