//! `cargo xtask postgres` (also part of `cargo xtask test`): a throwaway PostgreSQL cluster under
//! `target/` made with Debian's `postgresql` binaries (`initdb`, `pg_ctl`), on loopback and a free
//! port, then perf-middleware's database behaviour tests (`tests/db_postgres.rs`) against it.
//! When run as root, the cluster runs as the `postgres` user (PostgreSQL refuses root).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{cargo, free_port, output, project_root, run, target_dir};

const HOW_TO_GET: &str =
    "apt-get install -y postgresql (Debian: binaries in /usr/lib/postgresql/<version>/bin)";

/// Creates and starts the cluster, runs the tests, stops and removes the cluster.
pub(crate) fn test() -> Result<(), String> {
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
