//! Real-receiver checks for perf-otel.
//!
//! A Python OTLP receiver built on the official protobuf definitions (PyPI `opentelemetry-proto` +
//! `grpcio`, `xtask/otlp/receiver.py`) listens on loopback for OTLP/gRPC and OTLP/HTTP; an
//! independent client (the Python OpenTelemetry SDK, `xtask/otlp/client.py`) calls the server with
//! `traceparent`/`tracestate`/`baggage`. Checks:
//! 1. both transports: the e2e server's spans for a matched route, an unmatched route, a 500, a 418
//!    and a cancelled request, plus the handler's `tracing` child span (`xtask/otlp/check.py`);
//! 2. the showcase flushes the span of its last request on SIGTERM (gRPC) and SIGINT (HTTP), and
//!    its N+1 request arrives with the `perf.db.*` summary on the SERVER span and one db CLIENT
//!    span per statement inside it (perf-otel's `db` feature);
//! 3. with the collector down, the showcase serves at unchanged latency and reports lost spans
//!    (live on `/metrics`, and in its shutdown log line).
//!
//! The Python packages live in a venv under `target/otel-venv` (pinned versions, created once).

mod down;
mod flows;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{Server, free_port, project_root, require_tool, run, target_dir};

use down::receiver_down;
use flows::{e2e, signal_flush};

/// Pinned PyPI packages of the receiver and the client.
const PY_PACKAGES: &[&str] = &[
    "opentelemetry-proto==1.45.2",
    "grpcio==1.85.1",
    "protobuf==7.36.2",
    "opentelemetry-api==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
    "requests==2.34.2",
];

/// `OTEL_*` variables that would change what the servers under test do.
const OTEL_VARS: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
];

/// Runs the checks.
pub(crate) fn test() -> Result<(), String> {
    let python = venv()?;
    crate::util::build_workspace()?; // the e2e_server example and the showcase
    let dir = target_dir().join("xtask").join("otel");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (transport, protocol) in [("grpc", "grpc"), ("http", "http/protobuf")] {
        e2e(&python, &dir, transport, protocol)?;
    }
    signal_flush(&python, &dir, "TERM", "grpc")?;
    signal_flush(&python, &dir, "INT", "http/protobuf")?;
    receiver_down(&dir)?;
    Ok(())
}

/// A file of `xtask/otlp/`.
fn script(name: &str) -> PathBuf {
    project_root().join("xtask").join("otlp").join(name)
}

/// The venv's python, creating the venv and installing the pinned packages when needed.
fn venv() -> Result<PathBuf, String> {
    let python3 = require_tool(
        "python3",
        "`apt-get install -y python3 python3-venv` (.ci/run does this)",
    )?;
    let dir = target_dir().join("otel-venv");
    let python = dir.join("bin").join("python");
    let marker = dir.join("perf-otel-packages.txt");
    let wanted = PY_PACKAGES.join("\n");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(python);
    }
    run(Command::new(&python3).arg("-m").arg("venv").arg(&dir)).map_err(|e| {
        format!("{e}\ncreating the venv needs the venv module: `apt-get install -y python3-venv` (.ci/run does this)")
    })?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
        ])
        .args(PY_PACKAGES))
    .map_err(|e| format!("{e}\npip could not install the OTLP receiver's packages from PyPI"))?;
    std::fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// A running `receiver.py`.
struct Receiver {
    _server: Server,
    grpc: u16,
    http: u16,
    spans: PathBuf,
}

impl Receiver {
    fn start(python: &Path, dir: &Path, name: &str) -> Result<Self, String> {
        let (grpc, http) = (free_port(), free_port());
        let spans = dir.join(format!("{name}-spans.jsonl"));
        let mut cmd = Command::new(python);
        cmd.arg(script("receiver.py"))
            .args([
                "--grpc-port",
                &grpc.to_string(),
                "--http-port",
                &http.to_string(),
            ])
            .arg("--out")
            .arg(&spans)
            .stdout(Stdio::null());
        // It prints "up" once both listen; the HTTP port is bound last.
        let server = Server::start("OTLP receiver", cmd, ([127, 0, 0, 1], http).into())?;
        Ok(Self {
            _server: server,
            grpc,
            http,
            spans,
        })
    }

    fn endpoint(&self, protocol: &str) -> String {
        let port = if protocol == "grpc" {
            self.grpc
        } else {
            self.http
        };
        format!("http://127.0.0.1:{port}")
    }
}

fn clean_otel_env(cmd: &mut Command) -> &mut Command {
    for v in OTEL_VARS {
        cmd.env_remove(v);
    }
    cmd.env("NO_COLOR", "1")
}

fn log_file(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}
