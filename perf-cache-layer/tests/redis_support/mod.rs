//! Shared by the `redis_*` tests: a throwaway `redis-server` on loopback, two cache instances
//! (two layers with separate L1s) over one Redis, and an origin whose body changes on `PUT`.
#![allow(dead_code, reason = "each test file uses part of this")]

use std::convert::Infallible;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use perf_cache_layer::{CacheHandle, CacheLayer, TieredStore};
use tokio::sync::Semaphore;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};

/// A `redis-server` owned by one test: killed on drop.
pub(crate) struct Redis {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().unwrap().port()
}

impl Redis {
    /// Starts a server with `extra` arguments (`--maxmemory 1mb`, …).
    pub(crate) async fn start(extra: &[&str]) -> Self {
        Self::start_on(free_port(), extra).await
    }

    /// Starts a server on `port`.
    pub(crate) async fn start_on(port: u16, extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("perf-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Self {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        r.spawn().await;
        r
    }

    async fn spawn(&mut self) {
        let bin = std::env::var("PERF_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{bin}` ({e}): install it with `apt-get install -y redis-server`"
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            if self.connection().await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not come up on port {}", self.port);
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let conn = client.get_multiplexed_async_connection();
        tokio::time::timeout(Duration::from_millis(200), conn)
            .await
            .ok()?
            .ok()
    }

    /// Runs one command on a fresh connection.
    pub(crate) async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut conn = self.connection().await.expect("redis is up");
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await.expect("redis command")
    }

    /// SIGKILL.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty).
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The URL of the server the xtask started (`PERF_TEST_REDIS_URL`), or a server of our own.
pub(crate) async fn shared_or_own() -> (String, Option<Redis>) {
    match std::env::var("PERF_TEST_REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let r = Redis::start(&[]).await;
            (r.url(), Some(r))
        }
    }
}

/// A namespace no other test uses.
pub(crate) fn namespace(test: &str) -> String {
    format!("{test}-{}-{}", std::process::id(), fastrand_u32())
}

fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(13)
}

/// The origin: `GET` answers `v{version}` (fresh 60 s, tag `items`); `PUT` bumps the version.
/// While `gate` has no permits, `GET`s wait for one after reading the version.
#[derive(Clone, Default)]
pub(crate) struct Origin {
    pub(crate) version: Arc<AtomicUsize>,
    pub(crate) calls: Arc<AtomicUsize>,
    pub(crate) gate: Option<Arc<Semaphore>>,
    /// Bytes of padding after `v{version}` in each body.
    pub(crate) pad: usize,
    /// `Cache-Control` of `GET` answers; empty means `max-age=60`.
    pub(crate) cache_control: &'static str,
}

pub(crate) type Svc =
    BoxCloneService<Request<()>, Response<perf_cache_layer::ResponseBody<Full<Bytes>>>, Infallible>;

impl Origin {
    pub(crate) fn service(
        &self,
    ) -> BoxCloneService<Request<()>, Response<Full<Bytes>>, Infallible> {
        let this = self.clone();
        BoxCloneService::new(tower::service_fn(move |req: Request<()>| {
            let this = this.clone();
            async move {
                if req.method() == Method::PUT {
                    this.version.fetch_add(1, Ordering::SeqCst);
                    return Ok(Response::builder()
                        .status(204)
                        .body(Full::default())
                        .unwrap());
                }
                this.calls.fetch_add(1, Ordering::SeqCst);
                let v = this.version.load(Ordering::SeqCst);
                if let Some(gate) = &this.gate {
                    gate.acquire().await.unwrap().forget();
                }
                Ok(Response::builder()
                    .header(
                        "cache-control",
                        if this.cache_control.is_empty() {
                            "max-age=60"
                        } else {
                            this.cache_control
                        },
                    )
                    .header("surrogate-key", "items")
                    .body(Full::new(Bytes::from(format!(
                        "v{v}{}",
                        " ".repeat(this.pad)
                    ))))
                    .unwrap())
            }
        }))
    }
}

/// One instance: a layer over its own L1 and the shared Redis.
pub(crate) struct Instance {
    pub(crate) svc: Svc,
    pub(crate) handle: CacheHandle,
    pub(crate) store: TieredStore,
}

pub(crate) fn tiered(url: &str, ns: &str) -> perf_cache_layer::TieredStoreBuilder {
    TieredStore::builder(url)
        .namespace(ns)
        .clock_skew(Duration::from_millis(5))
        .coherence_interval(Duration::from_millis(200))
        .breaker(3, Duration::from_millis(500))
}

pub(crate) fn instance(store: TieredStore, origin: &Origin) -> Instance {
    let (layer, handle) = CacheLayer::builder()
        .store(store.clone())
        .build_pair()
        .unwrap();
    let svc = BoxCloneService::new(tower::Layer::layer(&layer, origin.service()));
    Instance { svc, handle, store }
}

pub(crate) struct Got {
    pub(crate) status: u16,
    pub(crate) cache_status: String,
    pub(crate) body: Bytes,
}

pub(crate) async fn call(svc: &mut Svc, method: Method, path: &str) -> Got {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "example.com")
        .body(())
        .unwrap();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Got {
        status: parts.status.as_u16(),
        cache_status: parts
            .headers
            .get("cache-status")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub(crate) async fn get(svc: &mut Svc, path: &str) -> Got {
    call(svc, Method::GET, path).await
}

/// Waits (up to 3 s) for both buses to be live.
pub(crate) async fn buses_up(stores: &[&TieredStore]) {
    for _ in 0..600 {
        if stores.iter().all(|s| s.bus_up()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the invalidation bus did not come up");
}

/// Runs one command against `url`.
pub(crate) async fn redis_cmd<T: redis::FromRedisValue>(
    url: &str,
    args: &[&str],
) -> redis::RedisResult<T> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await
}

/// Waits (up to 5 s) until namespace `ns` holds `n` entries in Redis.
pub(crate) async fn l2_entries(url: &str, ns: &str, n: usize) -> Vec<String> {
    let pattern = format!("pc:{ns}:e:*");
    for _ in 0..1000 {
        let keys: Vec<String> = redis_cmd(url, &["KEYS", &pattern])
            .await
            .unwrap_or_default();
        if keys.len() >= n {
            return keys;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("Redis never held {n} entries under {pattern}");
}
