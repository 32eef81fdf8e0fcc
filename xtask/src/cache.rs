//! Real-server checks for perf-cache-layer: the HTTP caching conformance suite, twice.
//!
//! Installs `http-cache-tests@0.4.5` from npm into `target/cache-tests/`, then, inside a network
//! namespace with only loopback (`unshare --net`), starts the suite's origin server on :8000 and
//! the `cache-proxy` example on :8010, runs the suite's client through the proxy, and classifies the
//! results with the suite's own `determineTestResult` (so dependency-fails are not passes). The
//! suite runs once with the proxy's memory store and once with its tiered store (`--redis`) on a
//! throwaway `redis-server`, empty when the run starts, reached through its Unix socket (the
//! namespace has no route to the host's loopback). Each run fails on a required test that does not
//! pass and is not in `perf-cache-layer/conformance-allowlist.txt`, and when its totals drop below
//! the acceptance bar.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::redis::RedisServer;
use crate::util::{bin_path, output, project_root, require_tool, run, target_dir};

const SUITE: &str = "http-cache-tests@0.4.5";
const MIN_REQUIRED_PASS: usize = 161;
const MIN_OPTIMAL_PASS: usize = 70;
const MAX_ALLOWLIST: usize = 3;

/// Classifies results.json with the suite's own logic; one TSV line per test:
/// kind, id, outcome, detail.
const SUMMARIZE: &str = r#"// Written by `cargo xtask test` (xtask/src/cache.rs).
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

const [suiteDir, resultsFile] = process.argv.slice(2)
const load = p => import(pathToFileURL(join(suiteDir, p)).href)
const display = await load('lib/display.mjs')
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default) // as cli.mjs does
const results = JSON.parse(readFileSync(resultsFile, 'utf8'))
const names = { '✅': 'pass', '⛔️': 'fail', '⚠️': 'optional_fail', Y: 'yes', N: 'no', '🔹': 'setup_fail',
  '⁉️': 'harness_fail', '⚪️': 'dependency_fail', '↻': 'retry', '-': 'untested' }
for (const suite of tests) {
  for (const test of suite.tests) {
    if (test.browser_only) continue
    const symbol = display.determineTestResult(tests, test.id, results)[2]
    const detail = Array.isArray(results[test.id]) ? results[test.id].join(': ').replace(/\s+/g, ' ') : ''
    const deps = (test.depends_on || []).join(',')
    console.log([test.kind || 'required', test.id, names[symbol] || symbol, deps, suite.id, detail].join('\t'))
  }
}
"#;

/// Runs the conformance suite against the cache-proxy example, with each store.
pub(crate) fn test() -> Result<(), String> {
    let tools = [
        ("node", "apt-get install -y nodejs npm"),
        ("npm", "apt-get install -y nodejs npm"),
        ("unshare", "apt-get install -y util-linux"),
        ("ip", "apt-get install -y iproute2"),
        ("bash", "apt-get install -y bash"),
        ("redis-server", "apt-get install -y redis-server"),
    ];
    for (tool, how) in tools {
        require_tool(tool, how)?;
    }
    crate::util::build_workspace()?;
    let work = target_dir().join("cache-tests");
    let suite = work.join("node_modules/http-cache-tests");
    install(&work, &suite)?;
    fs::write(work.join("summarize.mjs"), SUMMARIZE)
        .map_err(|e| format!("write summarize.mjs: {e}"))?;
    let memory = once_more_on_setup_fail(|| conformance(&work, &suite, "memory", None));
    let tiered = RedisServer::start("redis-conformance").and_then(|redis| {
        let outcome = once_more_on_setup_fail(|| {
            conformance(&work, &suite, "tiered", Some(&redis.unix_url()))
        })?;
        used(&redis)?;
        Ok(outcome)
    });
    println!("\nconformance, required passes (need {MIN_REQUIRED_PASS} each):");
    let mut errors = Vec::new();
    for (store, run) in [("memory store", &memory), ("tiered store", &tiered)] {
        match run {
            Ok(r) => println!("  {store:<13} {} in {:.0} s", r.required_pass, r.secs),
            Err(e) => {
                println!("  {store:<13} FAILED");
                errors.push(format!("{store}: {e}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Runs `run` again, once, when its only failures were `setup_fail`s: the suite's own
/// configuration requests to its origin (through the proxy) failing, not a cache behaviour. The
/// first run's failures are printed; any failure of the second run stands.
fn once_more_on_setup_fail(run: impl Fn() -> Result<Outcome, String>) -> Result<Outcome, String> {
    match run() {
        Err(e) if only_setup_fails(&e) => {
            println!(
                "  only setup_fail, the suite's own set-up requests; running it once more:\n{e}"
            );
            run()
        }
        other => other,
    }
}

/// Whether every failing test listed in a `required conformance tests fail` error is a
/// `setup_fail`.
fn only_setup_fails(error: &str) -> bool {
    let mut lines = error.lines();
    lines
        .next()
        .is_some_and(|l| l.starts_with("required conformance tests fail"))
        && lines.clone().count() > 0
        && lines.all(|l| l.contains(": setup_fail "))
}

/// Fails unless the tiered run wrote to Redis and read from it: the store is fail-open, so a
/// proxy that never reached Redis would pass the suite on its L1 alone.
fn used(redis: &RedisServer) -> Result<(), String> {
    let keys = redis.cli(&["DBSIZE"])?.trim().parse::<u64>().unwrap_or(0);
    let hits = redis.info("keyspace_hits")?;
    let commands = redis.info("total_commands_processed")?;
    println!("  Redis after the run: {keys} keys, {hits} key reads found, {commands} commands");
    if keys == 0 || hits == 0 {
        return Err("the tiered run left no keys in Redis or read none: cache-proxy never used it (see proxy-tiered.log)".into());
    }
    Ok(())
}

/// What one run of the suite measured.
struct Outcome {
    required_pass: usize,
    secs: f64,
}

/// One run of the suite through `cache-proxy`, with the tiered store when `redis` is given.
#[expect(
    clippy::disallowed_types,
    reason = "the wall-clock length of a run, for the CI budget"
)]
fn conformance(
    work: &Path,
    suite: &Path,
    name: &str,
    redis: Option<&str>,
) -> Result<Outcome, String> {
    let results = work.join(format!("results-{name}.json"));
    let _ = fs::remove_file(&results);
    let start = std::time::Instant::now();
    run_suite(work, suite, name, redis, &results)?;
    let secs = start.elapsed().as_secs_f64();
    let tsv = output(
        Command::new("node")
            .arg(work.join("summarize.mjs"))
            .arg(suite)
            .arg(&results),
    )?;
    let store = match redis {
        Some(url) => format!("tiered store, Redis at {url}"),
        None => "memory store".to_owned(),
    };
    println!("\ncache-tests ({SUITE}) through cache-proxy, {store}, {secs:.0} s:");
    let required_pass = evaluate(&tsv)?;
    Ok(Outcome {
        required_pass,
        secs,
    })
}

fn install(work: &Path, suite: &Path) -> Result<(), String> {
    let installed = fs::read_to_string(suite.join("package.json")).unwrap_or_default();
    if installed.contains("\"version\": \"0.4.5\"") {
        return Ok(());
    }
    fs::create_dir_all(work).map_err(|e| format!("create {}: {e}", work.display()))?;
    fs::write(work.join("package.json"), "{\"private\":true}\n")
        .map_err(|e| format!("write package.json: {e}"))?;
    run(Command::new("npm").current_dir(work).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        SUITE,
    ]))
}

fn run_suite(
    work: &Path,
    suite: &Path,
    name: &str,
    redis: Option<&str>,
    results: &Path,
) -> Result<(), String> {
    let proxy = bin_path("cache-proxy");
    // Inside the namespace: loopback up, origin on :8000, proxy on :8010, wait for both, run the client.
    let script = r#"
set -u
ip link set lo up
cd "$SUITE"
npm_config_port=8000 npm_config_protocol=http npm_config_pidfile="$WORK/server.pid" \
  node server/server.mjs > "$WORK/server-$RUN.log" 2>&1 & SRV=$!
RUST_LOG=${RUST_LOG:-warn} "$PROXY" --listen 127.0.0.1:8010 --origin http://127.0.0.1:8000 --set-cookie store \
  ${PROXY_REDIS:+--redis "$PROXY_REDIS"} > "$WORK/proxy-$RUN.log" 2>&1 & PX=$!
trap 'kill $SRV $PX 2>/dev/null; wait' EXIT
for port in 8000 8010; do
  for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
  done
done
npm run --silent cli --base=http://127.0.0.1:8010 > "$RESULTS" 2> "$WORK/client-$RUN.log"
"#;
    let redis_arg = redis
        .map(|url| format!(" --redis {url}"))
        .unwrap_or_default();
    eprintln!(
        "$ unshare --net bash -c '<origin :8000, {}{redis_arg} :8010, client>'",
        proxy.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "bash", "-c", script])
        .env("SUITE", suite)
        .env("WORK", work)
        .env("PROXY", &proxy)
        .env("RUN", name)
        .env("RESULTS", results);
    match redis {
        Some(url) => cmd.env("PROXY_REDIS", url),
        None => cmd.env_remove("PROXY_REDIS"),
    };
    let status = cmd
        .status()
        .map_err(|e| format!("could not start unshare: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the conformance run failed ({status}); `unshare --net` needs root; logs in {}",
            work.display()
        ));
    }
    let size = fs::metadata(results).map(|m| m.len()).unwrap_or(0);
    if size < 100 {
        return Err(format!(
            "the suite produced no results; see {}/client-{name}.log",
            work.display()
        ));
    }
    Ok(())
}

fn allowlist() -> Result<BTreeMap<String, String>, String> {
    let path = project_root().join("perf-cache-layer/conformance-allowlist.txt");
    let text = fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut list = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (id, reason) = line
            .split_once('#')
            .map_or((line, ""), |(i, r)| (i.trim(), r.trim()));
        if reason.is_empty() {
            return Err(format!(
                "{}: `{id}` needs a reason after `#`",
                path.display()
            ));
        }
        list.insert(id.to_owned(), reason.to_owned());
    }
    if list.len() > MAX_ALLOWLIST {
        return Err(format!(
            "{}: at most {MAX_ALLOWLIST} entries",
            path.display()
        ));
    }
    Ok(list)
}

/// Prints the summary of one run; returns its required passes.
fn evaluate(tsv: &str) -> Result<usize, String> {
    let allow = allowlist()?;
    let tally = Tally::read(tsv, &allow);
    tally.print();
    for note in &tally.notes {
        println!("{note}");
    }
    for id in allow.keys() {
        if tally.outcome.get(id.as_str()) == Some(&"pass") {
            println!("  note: allowlisted `{id}` now passes; remove it from the allowlist");
        }
    }
    if !tally.problems.is_empty() {
        return Err(format!(
            "required conformance tests fail (not allowlisted):\n{}",
            tally.problems.join("\n")
        ));
    }
    let required_pass = tally.n("required", "pass");
    let optimal_pass = tally.n("optimal", "pass");
    if required_pass < MIN_REQUIRED_PASS || optimal_pass < MIN_OPTIMAL_PASS {
        return Err(format!(
            "conformance below the bar: {required_pass} required (need {MIN_REQUIRED_PASS}), {optimal_pass} optimal (need {MIN_OPTIMAL_PASS})"
        ));
    }
    Ok(required_pass)
}

/// One run's results, counted by kind and result.
struct Tally<'a> {
    /// Tests per `(kind, result)`; kind `surrogate` counts the Surrogate-Control suite's
    /// required tests again.
    counts: BTreeMap<(String, String), usize>,
    /// Each test's result by id.
    outcome: BTreeMap<&'a str, &'a str>,
    /// Required tests that fail and are not allowlisted.
    problems: Vec<String>,
    /// Required tests that fail but are allowlisted or only fail a dependency.
    notes: Vec<String>,
}

impl<'a> Tally<'a> {
    /// Counts the run's TSV lines (`kind id result deps suite detail`).
    fn read(tsv: &'a str, allow: &BTreeMap<String, String>) -> Self {
        let mut tally = Self {
            counts: BTreeMap::new(),
            outcome: BTreeMap::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        for line in tsv.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let [kind, id, result, deps, suite, detail] = f[..] else {
                continue;
            };
            tally.outcome.insert(id, result);
            *tally
                .counts
                .entry((kind.to_owned(), result.to_owned()))
                .or_default() += 1;
            if suite == "surrogate-control" && kind == "required" {
                *tally
                    .counts
                    .entry(("surrogate".to_owned(), result.to_owned()))
                    .or_default() += 1;
            }
            if kind != "required" || result == "pass" {
                continue;
            }
            let entry = format!("  {id}: {result} {detail} (depends on: {deps})");
            match (result, allow.get(id)) {
                (_, Some(reason)) => tally.notes.push(format!("{entry} [allowlisted: {reason}]")),
                ("dependency_fail", None) => tally.notes.push(entry),
                _ => tally.problems.push(entry),
            }
        }
        tally
    }

    /// Tests of `kind` with `result`.
    fn n(&self, kind: &str, result: &str) -> usize {
        self.counts
            .get(&(kind.to_owned(), result.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Tests of `kind`.
    fn total(&self, kind: &str) -> usize {
        self.counts
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, c)| c)
            .sum::<usize>()
    }

    /// The counts per kind: required (standard suites and Surrogate-Control), optimal, check.
    fn print(&self) {
        let n = |kind: &str, result: &str| self.n(kind, result);
        println!(
            "  required: {} pass / {} fail / {} dependency-fail / {} setup-fail / {} retry (of {})",
            n("required", "pass"),
            n("required", "fail"),
            n("required", "dependency_fail"),
            n("required", "setup_fail"),
            n("required", "retry"),
            self.total("required")
        );
        let standard = |result: &str| n("required", result) - n("surrogate", result);
        println!(
            "    of which the 23 standard suites: {} pass / {} fail / {} dependency-fail (of {}; 3 more are browser-only)",
            standard("pass"),
            standard("fail"),
            standard("dependency_fail"),
            self.total("required") - self.total("surrogate")
        );
        println!(
            "    and the Surrogate-Control suite cli.mjs appends: {} pass (of {})",
            n("surrogate", "pass"),
            self.total("surrogate")
        );
        println!(
            "  optimal:  {} pass / {} not optimal / {} dependency-fail (of {})",
            n("optimal", "pass"),
            n("optimal", "optional_fail"),
            n("optimal", "dependency_fail"),
            self.total("optimal")
        );
        println!(
            "  check:    {} yes / {} no (of {})",
            n("check", "yes"),
            n("check", "no"),
            self.total("check")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::only_setup_fails;

    #[test]
    fn only_set_up_failures_earn_a_second_run() {
        let setup = "required conformance tests fail (not allowlisted):\n  invalidate-M-SEARCH-cl: setup_fail Setup: PUT config resulted in 502 Bad Gateway -  (depends on: )\n  surrogate-max-age-other-target: setup_fail Setup: PUT config resulted in 502 Bad Gateway -  (depends on: surrogate-max-age)";
        assert!(only_setup_fails(setup));
        let mixed = format!(
            "{setup}\n  freshness-max-age: fail Assertion: Response 2 does not come from cache"
        );
        assert!(!only_setup_fails(&mixed));
        assert!(!only_setup_fails(
            "required conformance tests fail (not allowlisted):"
        ));
        assert!(!only_setup_fails(
            "conformance below the bar: 150 required (need 161), 85 optimal (need 85)"
        ));
    }
}
