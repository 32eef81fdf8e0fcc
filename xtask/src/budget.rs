//! Real-tool checks for perf-budget:
//!
//! - `perf-budget rules` on the showcase's `budgets.toml` (30d, and 7d with clamping and a
//!   traffic guard) passes `promtool check rules` and its own `promtool test rules` file;
//! - the running showcase serves `GET /perf/budgets` (JSON and text) and annotates responses;
//! - `perf-budget gate` against it exits 0 on fast routes (JUnit parses), 1 when the
//!   `/api/slow` budget is below its latency (the server view of that run has its quantiles), 2
//!   against a baseline from a faster run, 3 when the target rate cannot be reached, 4 on a
//!   broken budgets file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{Server, bin_path, free_port, http, project_root, require_tool, run, target_dir};

/// Runs the checks.
pub(crate) fn test() -> Result<(), String> {
    let promtool = require_tool(
        "promtool",
        "`apt-get install -y prometheus` (Debian's package ships promtool); .ci/run does this",
    )?;
    let python = require_tool(
        "python3",
        "`apt-get install -y python3` (parses the JUnit XML)",
    )?;
    crate::util::build_workspace()?;
    let dir = target_dir().join("xtask").join("budget");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = project_root().join("examples/showcase/budgets.toml");

    rules(&promtool, &dir, &config)?;

    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(bin_path("showcase"));
    cmd.args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    let _server = Server::start("showcase", cmd, addr)?;
    showcase_endpoints(addr)?;

    let src = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
    let gate = Gate::new(addr, &dir, &src)?;
    gate.within_budget(&python)?;
    gate.over_budget()?;
    gate.regression()?;
    gate.rate_not_reached()?;
    broken_budgets(&gate, &src)
}

/// The showcase annotates responses with `Perf-Budget` and serves `GET /perf/budgets` as JSON
/// and as a text table.
fn showcase_endpoints(addr: SocketAddr) -> Result<(), String> {
    let res = http(addr, "GET", "/api/users/1", &[], b"")?;
    let annotated = res
        .header("perf-budget")
        .is_some_and(|v| v.starts_with("users; state="));
    if !annotated {
        return Err(format!(
            "GET /api/users/1 has no `Perf-Budget: users; state=…` header: {:?}",
            res.headers
        ));
    }
    let report = http(addr, "GET", "/perf/budgets", &[], b"")?.text();
    if !report.contains("\"name\": \"users\"") || !report.contains("\"quantile_rel_error\"") {
        return Err(format!(
            "GET /perf/budgets is not the JSON report:\n{report}"
        ));
    }
    let table = http(addr, "GET", "/perf/budgets?format=text", &[], b"")?.text();
    if !table.starts_with("budget") || !table.contains("GET /api/users/{id}") {
        return Err(format!(
            "GET /perf/budgets?format=text is not the table:\n{table}"
        ));
    }
    println!("showcase: Perf-Budget header, /perf/budgets JSON and text: ok");
    Ok(())
}

/// `perf-budget gate` runs against the running showcase.
struct Gate {
    /// The showcase's base URL.
    target: String,
    /// Where the runs' files go.
    dir: PathBuf,
    /// The CI budgets file.
    cfg: String,
}

impl Gate {
    /// Writes the showcase's budgets with a lower sample floor (an explicit choice for a short CI
    /// run; the objectives are the server's, so the gate's config check passes).
    fn new(addr: SocketAddr, dir: &Path, src: &str) -> Result<Self, String> {
        let ci = dir.join("budgets-ci.toml");
        let lowered = src.replacen("[defaults]\n", "[defaults]\nsample_floor = 20\n", 1);
        if lowered == src {
            return Err("could not find [defaults] in budgets.toml".into());
        }
        std::fs::write(&ci, lowered).map_err(|e| e.to_string())?;
        Ok(Self {
            target: format!("http://{addr}"),
            dir: dir.to_owned(),
            cfg: ci.display().to_string(),
        })
    }

    /// A file of this check's directory.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Runs the gate with the CI budgets file and `extra`, sending every error-severity budget
    /// requests (the gate refuses a run that would leave one unjudged); `/api/slow` sleeps
    /// `slow` ms, the one each scenario varies. Returns the gate's stdout.
    fn run(&self, slow: &str, extra: &[&str], want: i32, what: &str) -> Result<String, String> {
        let slow = format!("GET /api/slow?ms={slow}");
        let mut c = Command::new(bin_path("perf-budget"));
        c.arg("gate")
            .args(["--target", &self.target, "--max-lag-p99", "50ms"])
            .args(["--config", &self.cfg])
            .args([
                "--request",
                "GET /api/users/1",
                "--request",
                "GET /api/products",
            ])
            .args(["--request", "GET /api/products/1", "--request", &slow])
            .args(extra);
        let out = c
            .output()
            .map_err(|e| format!("could not start perf-budget: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code().unwrap_or(-1);
        if code != want {
            return Err(format!(
                "gate ({what}): exit {code}, expected {want}\n{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        println!("gate exits {want} ({what}): ok");
        Ok(stdout)
    }

    /// 0: every route within budget, on both views; the JUnit file parses.
    fn within_budget(&self, python: &Path) -> Result<(), String> {
        let junit = self.path("gate.junit.xml");
        let md = self.path("gate.md");
        let extra = ["--rate", "300", "--duration", "6s"];
        self.run(
            "1",
            &[&extra[..], &["--junit", &junit, "--markdown", &md]].concat(),
            0,
            "healthy showcase, every budget",
        )?;
        junit_parses(python, Path::new(&junit))
    }

    /// 1: `/api/slow` over its `p95 < 1s`; the server view of the run has its quantiles.
    fn over_budget(&self) -> Result<(), String> {
        let json = self.path("gate-slow.json");
        let extra = ["--rate", "100", "--duration", "3s", "--warmup", "0s"];
        let out = self.run(
            "1200",
            &[&extra[..], &["--json", &json]].concat(),
            1,
            "/api/slow at 1.2 s against p95 < 1s",
        )?;
        if !out
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("p95 < 1s"))
        {
            return Err(format!("the failing objective is not listed:\n{out}"));
        }
        slow_server_quantiles(Path::new(&json))
    }

    /// 2: a regression against a baseline taken from a faster run (same profile).
    fn regression(&self) -> Result<(), String> {
        let base = self.path("baseline.json");
        let common = ["--rate", "400", "--duration", "3s", "--warmup", "0s"];
        let save = [&common[..], &["--save-baseline", &base]].concat();
        self.run("5", &save, 0, "baseline at 5 ms")?;
        let against = [&common[..], &["--baseline", &base]].concat();
        self.run("40", &against, 2, "8x slower than the baseline")?;
        Ok(())
    }

    /// 3: the target rate cannot be reached (one request in flight, 50 ms each, 100/s asked).
    fn rate_not_reached(&self) -> Result<(), String> {
        let extra = ["--rate", "100", "--duration", "2s", "--warmup", "0s"];
        let one = [&extra[..], &["--max-in-flight", "1"]].concat();
        self.run("50", &one, 3, "rate not reached")?;
        Ok(())
    }
}

/// 4: a broken budgets file names the line.
fn broken_budgets(gate: &Gate, src: &str) -> Result<(), String> {
    let broken = gate.dir.join("budgets-broken.toml");
    std::fs::write(&broken, src.replacen("p95 < 100ms", "p95 < 100 parsecs", 1))
        .map_err(|e| e.to_string())?;
    let out = Command::new(bin_path("perf-budget"))
        .args([
            "gate",
            "--config",
            &broken.display().to_string(),
            "--target",
            &gate.target,
            "--request",
            "/api/users/1",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(4)
        || !stderr.contains("line 19")
        || !stderr.contains("unknown unit")
    {
        return Err(format!(
            "broken budgets file: exit {:?}, stderr: {stderr}",
            out.status.code()
        ));
    }
    println!(
        "gate exits 4 (broken budgets file, `{}`): ok",
        stderr.trim()
    );
    Ok(())
}

/// The server view of the `/api/slow` run has its own p50 and p95, from the difference of the
/// layer's histograms since start: every request slept 1.2 s (a Tokio sleep never ends early),
/// whose bucket's midpoint is 1196.032 ms. The healthy run before (about 450 `/api/slow`
/// requests at 1 ms, still in the 60 s window) would pull the window's p50 down to 1 ms.
fn slow_server_quantiles(json: &Path) -> Result<(), String> {
    let src = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    let out: serde_json::Value = serde_json::from_str(&src).map_err(|e| e.to_string())?;
    let budgets = out["server"]["budgets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let slow = budgets.iter().find(|b| b["name"] == "slow");
    let q = |q: &str| slow.and_then(|b| b["observed"][q].as_f64());
    match (q("p50_ms"), q("p95_ms")) {
        (Some(p50), Some(p95)) if p50 >= 1196.0 && p95 >= 1196.0 => {
            println!("gate: the server view of the /api/slow run: p50 {p50} ms, p95 {p95} ms: ok");
            Ok(())
        }
        _ => Err(format!(
            "the server view of the /api/slow run has no p50 and p95 at or above 1196 ms: {slow:?}"
        )),
    }
}

fn rules(promtool: &Path, dir: &Path, config: &Path) -> Result<(), String> {
    for (name, extra) in [
        ("30d", &[][..]),
        ("7d", &["--clamp-burn", "--min-rps", "0.1"][..]),
    ] {
        let out: PathBuf = dir.join(format!("rules-{name}.yml"));
        let tests = dir.join(format!("rules-{name}.test.yml"));
        run(Command::new(bin_path("perf-budget"))
            .args([
                "rules",
                "--config",
                &config.display().to_string(),
                "--period",
                name,
                "--service",
                "showcase",
            ])
            .args([
                "--out",
                &out.display().to_string(),
                "--with-tests",
                &tests.display().to_string(),
            ])
            .args(extra))?;
        run(Command::new(promtool).args(["check", "rules"]).arg(&out))?;
        run(Command::new(promtool).args(["test", "rules"]).arg(&tests))?;
    }
    println!("perf-budget rules: promtool check rules + promtool test rules: ok");
    Ok(())
}

fn junit_parses(python: &Path, file: &Path) -> Result<(), String> {
    let script = "import sys, xml.etree.ElementTree as E\n\
                  r = E.parse(sys.argv[1]).getroot()\n\
                  cases = r.findall('.//testcase')\n\
                  assert r.tag == 'testsuites' and cases, 'no test cases'\n\
                  assert not r.findall('.//failure'), 'unexpected failures'\n\
                  print(len(cases), 'test cases')";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "JUnit {} does not parse: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!(
        "JUnit XML parses: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    Ok(())
}
