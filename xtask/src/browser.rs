//! The showcase's live `/perf` page in a real browser (headless Chromium): after a bounded load
//! with slow, cached, erroring, not-found, N+1 and cancelled requests, the rendered DOM has the
//! routes table (with a cache hit ratio on the cached route's row), a slow request with its trace
//! id, the cache and budgets cards, the queries card with the N+1 endpoint's fingerprint, the
//! dashboard link the showcase printed, and the slow route's view (percentile chart, slowest
//! requests); a screenshot is not
//! blank; no request left for anything but the loopback address (every other host goes to a
//! counting proxy); the CSP header is present; requests without the token are refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::{Server, bin_path, free_port, http, output, target_dir};

const INSTALL: &str = "install headless Chromium: `apt-get install -y chromium-headless-shell` \
     (or `chromium`); .ci/run does this";

/// Runs the checks.
pub(crate) fn test() -> Result<(), String> {
    let chromium = find_chromium()?;
    let dir = target_dir().join("xtask").join("browser");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let stdout = dir.join("showcase-stdout.txt");
    let mut cmd = Command::new(bin_path("showcase"));
    cmd.args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "warn")
        // Only linked, never fetched: the check counts any request that leaves the page.
        .env("GRAFANA_URL", "http://127.0.0.1:3001/grafana/")
        .stdout(std::fs::File::create(&stdout).map_err(|e| e.to_string())?);
    let _server = Server::start("showcase", cmd, addr)?;
    let url = page_url(&stdout)?;
    let path = url
        .strip_prefix(&format!("http://{addr}"))
        .ok_or_else(|| format!("unexpected page URL {url}"))?;

    let dashboard = printed(&stdout, "grafana dashboard: ")?;
    let dashboard = dashboard.split_whitespace().next().unwrap_or_default();

    load(addr)?;
    check_protection(addr, path)?;
    let n_plus_one = n_plus_one_fingerprint(addr, path)?;

    let proxy = CountingProxy::start()?;
    let dom = run_chromium(&chromium, &proxy, &["--dump-dom", &url])?;
    std::fs::write(dir.join("perf.html"), &dom).map_err(|e| e.to_string())?;
    check_dom(&dom)?;
    check_additions(&dom, &n_plus_one, dashboard)?;
    // The route view of the slow route: its percentile chart and its slowest requests.
    let view = format!("{url}#route=%2Fapi%2Fslow");
    let dom = run_chromium(&chromium, &proxy, &["--dump-dom", &view])?;
    std::fs::write(dir.join("perf-route.html"), &dom).map_err(|e| e.to_string())?;
    check_route_view(&dom)?;
    let shot = dir.join("perf.png");
    let blank = dir.join("blank.png");
    run_chromium(&chromium, &proxy, &[&screenshot_arg(&shot), &url])?;
    run_chromium(&chromium, &proxy, &[&screenshot_arg(&blank), "about:blank"])?;
    let (size, blank_size) = (file_size(&shot)?, file_size(&blank)?);
    if size < 4 * blank_size {
        return Err(format!(
            "the screenshot looks blank: {size} B against {blank_size} B for about:blank ({})",
            shot.display()
        ));
    }
    let outside = proxy.connections();
    if outside > 0 {
        return Err(format!(
            "{outside} connection(s) went to a non-loopback address"
        ));
    }
    println!(
        "/perf in headless Chromium: routes with the cached route's hit ratio, slow request \
         with trace id, cache, budgets and queries cards (N+1 {n_plus_one}), dashboard link; \
         screenshot {size} B (blank {blank_size} B, {}); no non-loopback request",
        shot.display()
    );
    Ok(())
}

fn find_chromium() -> Result<PathBuf, String> {
    ["chromium-headless-shell", "chromium"]
        .iter()
        .find_map(|name| {
            output(Command::new("sh").args(["-c", &format!("command -v {name}")]))
                .ok()
                .map(|p| PathBuf::from(p.trim()))
                .filter(|p| !p.as_os_str().is_empty())
        })
        .ok_or_else(|| format!("no headless Chromium on PATH: {INSTALL}"))
}

/// The `perf page: URL` line the showcase prints at start.
fn page_url(stdout: &Path) -> Result<String, String> {
    printed(stdout, "perf page: ")
}

/// The rest of the line starting with `prefix` the showcase printed at start.
fn printed(stdout: &Path, prefix: &str) -> Result<String, String> {
    for _ in 0..50 {
        let text = std::fs::read_to_string(stdout).unwrap_or_default();
        if let Some(rest) = text.lines().find_map(|l| l.strip_prefix(prefix)) {
            return Ok(rest.trim().to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the showcase printed no `{}` line ({})",
        prefix.trim(),
        stdout.display()
    ))
}

/// Fast, cached (repeated product reads), not-found, client-error, slow and cancelled requests.
fn load(addr: SocketAddr) -> Result<(), String> {
    for round in 0..5 {
        for id in 1..=10 {
            http(addr, "GET", &format!("/api/users/{id}"), &[], b"")?;
        }
        http(addr, "GET", "/api/products", &[], b"")?;
        http(
            addr,
            "GET",
            &format!("/api/products/{}", round + 1),
            &[],
            b"",
        )?;
        http(addr, "GET", "/api/products/999", &[], b"")?;
        let bad = http(
            addr,
            "PUT",
            "/api/products/1",
            &[("content-type", "application/json")],
            b"{",
        )?;
        if bad.status < 400 {
            return Err(format!("a malformed update got {}", bad.status));
        }
    }
    // The N+1 endpoint (its fixed twin for contrast); the first waits for the seeding.
    for p in [
        "/api/authors/n-plus-one",
        "/api/authors/joined",
        "/api/authors/n-plus-one",
    ] {
        let r = http(addr, "GET", p, &[], b"")?;
        if r.status != 200 {
            return Err(format!("GET {p}: status {}", r.status));
        }
    }
    // Past the showcase's 500 ms slow threshold.
    for ms in [600, 700] {
        http(addr, "GET", &format!("/api/slow?ms={ms}"), &[], b"")?;
    }
    // A client that gives up: the page records it as cancelled.
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    write!(s, "GET /api/slow?ms=800 HTTP/1.1\r\nHost: {addr}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(100));
    drop(s);
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

fn check_protection(addr: SocketAddr, path: &str) -> Result<(), String> {
    for p in ["/perf", "/perf/data", "/perf?token=0000"] {
        let r = http(addr, "GET", p, &[], b"")?;
        if r.status != 401 && r.status != 403 {
            return Err(format!(
                "GET {p} without the token: status {}, want 401",
                r.status
            ));
        }
    }
    let r = http(addr, "GET", path, &[], b"")?;
    let csp = r.header("content-security-policy").unwrap_or_default();
    let want = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'";
    if r.status != 200 || !csp.starts_with(want) {
        return Err(format!(
            "GET /perf with the token: status {}, CSP `{csp}`",
            r.status
        ));
    }
    let html = r.text();
    if html.contains("http://") || html.contains("https://") || html.contains("//cdn") {
        return Err("the page's HTML names an external URL".into());
    }
    Ok(())
}

fn check_dom(dom: &str) -> Result<(), String> {
    let checks = [
        (
            r#"data-route="/api/users/{id}""#,
            "the routes table with /api/users/{id}",
        ),
        (
            r#"data-route="/api/slow""#,
            "the routes table with /api/slow",
        ),
        (r#"<td>GET /api/slow</td>"#, "a recent slow request"),
        (r#"id="card-cache""#, "the cache card"),
        (r#"id="card-budgets""#, "the budgets card"),
        ("hit_ratio", "the cache hit ratio"),
    ];
    for (needle, what) in checks {
        if !dom.contains(needle) {
            return Err(format!("{what} is not in the rendered page (`{needle}`)"));
        }
    }
    let trace = dom.split(r#"<td class="trace">"#).skip(1).any(|cell| {
        let id = text_of(cell.split("</td>").next().unwrap_or_default());
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if !trace {
        return Err("no slow request shows a 32-hex-digit trace id".into());
    }
    Ok(())
}

/// The fingerprint of the N+1 the page's data reports for the showcase's N+1 endpoint.
fn n_plus_one_fingerprint(addr: SocketAddr, page_path: &str) -> Result<String, String> {
    let data_path = page_path.replacen('?', "/data?", 1);
    let r = http(addr, "GET", &data_path, &[], b"")?;
    let v: serde_json::Value = serde_json::from_str(&r.text())
        .map_err(|e| format!("GET {data_path}: status {}, not JSON: {e}", r.status))?;
    v["queries"]["n_plus_one"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["route"] == "/api/authors/n-plus-one")
        .and_then(|d| d["fingerprint"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("the page's data has no N+1 of /api/authors/n-plus-one: {v}"))
}

/// The cache hit ratio on the cached route's row, the queries card with the N+1 endpoint's
/// fingerprint, and the header's link to the dashboard the showcase printed.
fn check_additions(dom: &str, n_plus_one: &str, dashboard: &str) -> Result<(), String> {
    let row = dom
        .split(r#"<tr class="route" data-route="/api/products">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .ok_or("no /api/products row in the routes table")?;
    let ratio = row
        .split(r#"<td class="cache-hit""#)
        .nth(1)
        .and_then(|c| c.split('>').nth(1))
        .and_then(|c| c.split('<').next())
        .unwrap_or_default();
    if !ratio.ends_with('%') || ratio.starts_with("0.0") {
        return Err(format!(
            "the cached route /api/products shows no hit ratio (`{ratio}`)"
        ));
    }
    let card = dom
        .split(r#"id="card-queries""#)
        .nth(1)
        .ok_or("no queries card in the page")?;
    let detected = card.split(r#"<tr class="n-plus-one">"#).skip(1).any(|r| {
        let r = r.split("</tr>").next().unwrap_or_default();
        r.contains("<td>/api/authors/n-plus-one</td>") && r.contains(n_plus_one)
    });
    if !detected {
        return Err(format!(
            "the queries card lists no N+1 of /api/authors/n-plus-one with fingerprint {n_plus_one}"
        ));
    }
    let link = dom
        .split(r#"<a id="dashboard""#)
        .nth(1)
        .and_then(|a| a.split('>').next())
        .unwrap_or_default();
    if dashboard.is_empty()
        || !link.contains(&format!(r#"href="{dashboard}""#))
        || link.contains("hidden")
    {
        return Err(format!(
            "the header's dashboard link is `<a id=\"dashboard\"{link}>`, want {dashboard}"
        ));
    }
    Ok(())
}

/// The text of an HTML fragment (tags dropped).
fn text_of(html: &str) -> String {
    let mut in_tag = false;
    html.chars()
        .filter(|&c| {
            let keep = !in_tag && c != '<';
            in_tag = (in_tag || c == '<') && c != '>';
            keep
        })
        .collect()
}

fn check_route_view(dom: &str) -> Result<(), String> {
    let view = dom
        .split(r#"<section id="route-view""#)
        .nth(1)
        .and_then(|v| v.split("</section>").next())
        .ok_or("no route view in the page")?;
    if view.starts_with(" hidden") || !view.contains(r#"class="p99""#) {
        return Err("the route view of /api/slow shows no percentile chart".into());
    }
    if view.matches(r#"<tr class="request">"#).count() < 2 {
        return Err("the route view of /api/slow lists fewer than 2 slowest requests".into());
    }
    Ok(())
}

fn screenshot_arg(path: &Path) -> String {
    format!("--screenshot={}", path.display())
}

fn file_size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs Chromium headless with every non-loopback request sent to `proxy` (the proxy sees the
/// host name, so no name is resolved by the browser; `--host-resolver-rules` would also hide
/// requests from the proxy), and virtual time to run the page's first polls.
fn run_chromium(chromium: &Path, proxy: &CountingProxy, args: &[&str]) -> Result<String, String> {
    let profile = target_dir().join("xtask").join("browser").join("profile");
    // `timeout`: a wedged browser fails the check instead of hanging it.
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            "--virtual-time-budget=6000",
            &format!("--proxy-server=http://127.0.0.1:{}", proxy.port),
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .stderr(Stdio::null());
    output(&mut cmd).map_err(|e| format!("{e}\n{INSTALL}"))
}

/// A listener standing in as the browser's proxy: loopback requests bypass it (Chromium's
/// default), so every connection it accepts is a request for another address.
struct CountingProxy {
    port: u16,
    count: Arc<AtomicUsize>,
}

impl CountingProxy {
    fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n]);
                eprintln!(
                    "browser check: request outside loopback: {}",
                    line.lines().next().unwrap_or("")
                );
                let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
            }
        });
        Ok(Self { port, count })
    }

    fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}
