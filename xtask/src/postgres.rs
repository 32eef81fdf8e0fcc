//! `cargo xtask postgres` (also part of `cargo xtask test`): a throwaway PostgreSQL cluster under
//! `target/` made with Debian's `postgresql` binaries (`initdb`, `pg_ctl`), on loopback and a free
//! port, then perf-middleware's database behaviour tests (`tests/db_postgres.rs`) against it.
//! When run as root, the cluster runs as the `postgres` user (PostgreSQL refuses root).
//!
//! Then the showcase's SQLite endpoints over HTTP: `Server-Timing: db;…;desc="N queries"` with N
//! the statements each handler runs, and a `/metrics` scrape after that traffic passes
//! `promtool check metrics` with no SQL in any label value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{
    Server, bin_path, cargo, free_port, http, output, project_root, require_tool, run, target_dir,
};

const HOW_TO_GET: &str =
    "apt-get install -y postgresql (Debian: binaries in /usr/lib/postgresql/<version>/bin)";

/// The PostgreSQL behaviour tests, then the showcase's database endpoints and metrics.
pub(crate) fn test() -> Result<(), String> {
    postgres_tests()?;
    showcase()
}

/// Creates and starts the cluster, runs the tests, stops and removes the cluster.
fn postgres_tests() -> Result<(), String> {
    let bin = bin_dir()?;
    let data = target_dir().join("perf-db-postgres");
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(|e| format!("removing {}: {e}", data.display()))?;
    }
    std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let as_user = if is_root() {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&data))?;
        Some("postgres")
    } else {
        None
    };
    let cluster = data.join("cluster");
    run(pg(as_user, &bin, "initdb")
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&cluster))?;
    let port = free_port();
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
        data.display()
    );
    run(pg(as_user, &bin, "pg_ctl")
        .args(["-w", "-t", "60", "-D"])
        .arg(&cluster)
        .args(["-l"])
        .arg(data.join("log"))
        .args(["-o", &options, "start"]))?;
    let cluster_guard = Cluster {
        as_user,
        bin: bin.clone(),
        dir: cluster,
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let result = run(cargo()
        .current_dir(project_root())
        .args([
            "test",
            "-p",
            "perf-middleware",
            "--features",
            "db",
            "--locked",
            "--test",
            "db_postgres",
            "--",
            "--ignored",
        ])
        .env("PERF_TEST_POSTGRES_URL", &url));
    drop(cluster_guard);
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// Stops the cluster when dropped (also on a failed test).
struct Cluster {
    as_user: Option<&'static str>,
    bin: PathBuf,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(pg(self.as_user, &self.bin, "pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(&self.dir)
            .arg("stop"));
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn bin_dir() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|_| {
            format!(
                "PostgreSQL is required but {} is missing; get it with: {HOW_TO_GET}",
                root.display()
            )
        })?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no initdb under {}; get it with: {HOW_TO_GET}",
            root.display()
        )
    })
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// `tool` from `bin`, run as `user` through `runuser` when given.
fn pg(user: Option<&str>, bin: &Path, tool: &str) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join(tool));
            c
        }
        None => Command::new(bin.join(tool)),
    }
}

/// The showcase's database endpoints: the `db` `Server-Timing` entry counts the statements, and
/// the scrape after them passes promtool with no SQL in a label.
fn showcase() -> Result<(), String> {
    let promtool = require_tool(
        "promtool",
        "`apt-get install -y prometheus` (Debian's package ships promtool); .ci/run does this",
    )?;
    run(cargo().args(["build", "-p", "showcase", "--locked"]))?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(bin_path("showcase"));
    cmd.args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    let _server = Server::start("showcase", cmd, addr)?;
    for (path, desc) in [
        ("/api/authors/n-plus-one", "11 queries"),
        ("/api/authors/joined", "1 query"),
        ("/api/authors/concurrent", "3 queries"),
    ] {
        db_timing(addr, path, desc)?;
    }
    let scrape = http(addr, "GET", "/metrics", &[], b"")?.text();
    crate::middleware::promtool_check(&promtool, &scrape)?;
    db_metrics(&scrape)?;
    println!("showcase db metrics: promtool ok, no SQL in labels");
    Ok(())
}

/// `GET path` answers 200 with a `db` `Server-Timing` entry with a duration and `desc`.
fn db_timing(addr: SocketAddr, path: &str, desc: &str) -> Result<(), String> {
    let r = http(addr, "GET", path, &[], b"")?;
    let db = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("server-timing"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .find(|e| e.starts_with("db;"))
        .map(str::to_owned);
    match db {
        Some(e)
            if r.status == 200
                && e.contains(";dur=")
                && e.ends_with(&format!("desc=\"{desc}\"")) =>
        {
            println!("GET {path}: Server-Timing {e}");
            Ok(())
        }
        other => Err(format!(
            "GET {path}: status {}, db entry {other:?} (expected desc=\"{desc}\")",
            r.status
        )),
    }
}

/// The scrape has the database histograms and the N+1 endpoint's counter, does not report the
/// fixed twins as N+1, and holds no SQL in a label value.
fn db_metrics(scrape: &str) -> Result<(), String> {
    for needle in [
        "db_client_operation_duration_seconds_bucket{",
        "perf_db_request_queries_bucket{",
        "perf_db_n_plus_one_total{http_route=\"/api/authors/n-plus-one\"}",
    ] {
        if !scrape.contains(needle) {
            return Err(format!("the scrape has no `{needle}`"));
        }
    }
    for twin in ["/api/authors/joined", "/api/authors/concurrent"] {
        let flagged = scrape.lines().find(|l| {
            l.starts_with(&format!(
                "perf_db_n_plus_one_total{{http_route=\"{twin}\"}}"
            )) && !l.ends_with(" 0")
        });
        if let Some(line) = flagged {
            return Err(format!("{twin} was reported as N+1: {line}"));
        }
    }
    let sql_in_label = scrape.lines().filter(|l| !l.starts_with('#')).find(|l| {
        let labels = l
            .split_once('{')
            .and_then(|(_, r)| r.rsplit_once('}'))
            .map_or("", |(l, _)| l);
        let lower = labels.to_ascii_lowercase();
        ["select ", "insert ", "from ", "where "]
            .iter()
            .any(|k| lower.contains(k))
    });
    if let Some(line) = sql_in_label {
        return Err(format!("a label value holds SQL: {line}"));
    }
    Ok(())
}
