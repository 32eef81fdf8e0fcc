//! Composed stacks over a real socket: an axum `Router` with `PerfLayer`, a hyper client, a
//! local metrics recorder and a local tracing subscriber. Every test runs on a current-thread
//! runtime so the thread-local recorder and subscriber see the server's work.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use perf_middleware::{Completion, Outcome, PerfLayer, ServerTiming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};

/// What the hook saw, one entry per finished request.
#[derive(Debug, Clone)]
struct Seen {
    route: Option<String>,
    status: Option<u16>,
    outcome: Outcome,
    duration: Duration,
    time_to_headers: Option<Duration>,
    response_body_size: u64,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn hook(log: &Log) -> impl Fn(&Completion<'_>) + Send + Sync + 'static {
    let log = log.clone();
    move |c: &Completion<'_>| {
        log.lock().unwrap().push(Seen {
            route: c.route.map(str::to_owned),
            status: c.status.map(|s| s.as_u16()),
            outcome: c.outcome,
            duration: c.duration,
            time_to_headers: c.time_to_headers,
            response_body_size: c.response_body_size,
        });
    }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get_text(addr: SocketAddr, path: &str) -> (http::response::Parts, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let res = client
        .get(format!("http://{addr}{path}").parse().unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

async fn wait_for(log: &Log, n: usize) -> Vec<Seen> {
    for _ in 0..500 {
        if log.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.lock().unwrap().clone()
}

/// `DebuggingRecorder` snapshots drain: gauges come back as the change since the last snapshot
/// and histograms as the samples since then. This keeps running totals across snapshots.
#[derive(Default)]
struct Totals {
    active: f64,
    samples: Vec<(Vec<(String, String)>, usize)>,
}

impl Totals {
    fn update(&mut self, snap: &Snapshotter) -> &mut Self {
        for (k, _, _, v) in snap.snapshot().into_vec() {
            let key = k.key();
            match v {
                DebugValue::Gauge(g) if key.name() == perf_middleware::metrics::ACTIVE_REQUESTS => {
                    self.active += g.into_inner();
                }
                DebugValue::Histogram(h)
                    if key.name() == perf_middleware::metrics::REQUEST_DURATION =>
                {
                    let labels = key
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect();
                    self.samples.push((labels, h.len()));
                }
                _ => {}
            }
        }
        self
    }

    fn durations_with_label(&self, key: &str, value: &str) -> usize {
        self.samples
            .iter()
            .filter(|(labels, _)| labels.iter().any(|(k, v)| k == key && v == value))
            .map(|(_, n)| n)
            .sum()
    }

    fn routes(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .iter()
            .flat_map(|(labels, _)| {
                labels
                    .iter()
                    .filter(|(k, _)| k == "http.route")
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_request_returns_the_gauge_to_zero_and_records_cancelled() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let mut totals = Totals::default();
    let log = Log::default();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "never"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = futures_util::stream::unfold(0u32, |i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Some((Ok::<_, Infallible>(Bytes::from_static(b"chunk")), i + 1))
                });
                Body::from_stream(chunks)
            }),
        )
        .layer(layer);
    let addr = serve(app).await;

    // 1. The client goes away while the handler is still running (no response yet).
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(totals.update(&snap).active, 1.0);
    drop(conn);
    let seen = wait_for(&log, 1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].outcome, Outcome::Cancelled);
    assert_eq!(seen[0].status, None);
    assert_eq!(totals.update(&snap).active, 0.0);

    // 2. The client goes away in the middle of a streaming body (after the headers).
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        std::str::from_utf8(&buf[..n])
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    drop(conn);
    let seen = wait_for(&log, 2).await;
    assert_eq!(seen[1].outcome, Outcome::Cancelled);
    assert_eq!(seen[1].status, Some(200));
    assert_eq!(seen[1].route.as_deref(), Some("/stream"));
    assert_eq!(seen[1].response_body_size, 5);
    assert_eq!(totals.update(&snap).active, 0.0);
    assert_eq!(totals.durations_with_label("error.type", "cancelled"), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn streaming_body_duration_covers_the_body_while_time_to_headers_is_small() {
    let log = Log::default();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/stream",
            get(|| async {
                let chunks = futures_util::stream::unfold(0u32, |i| async move {
                    if i == 3 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Ok::<_, Infallible>(Bytes::from(vec![b'x'; 1000])), i + 1))
                });
                Body::from_stream(chunks)
            }),
        )
        .layer(layer);
    let addr = serve(app).await;
    let (parts, body) = get_text(addr, "/stream").await;
    assert_eq!(parts.status, 200);
    assert_eq!(body.len(), 3000);
    let seen = wait_for(&log, 1).await;
    let s = &seen[0];
    assert_eq!(s.outcome, Outcome::Completed);
    assert!(
        s.duration >= Duration::from_millis(300),
        "duration {:?}",
        s.duration
    );
    let tth = s.time_to_headers.unwrap();
    assert!(tth < Duration::from_millis(100), "time to headers {tth:?}");
    assert_eq!(s.response_body_size, 3000);
}

/// Collects `perf_middleware::slow` events as (field, value) lists.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Vec<(String, String)>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "perf_middleware::slow" {
            return;
        }
        assert_eq!(*event.metadata().level(), tracing::Level::WARN);
        struct V(Vec<(String, String)>);
        impl Visit for V {
            fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
                self.0.push((f.name().to_owned(), format!("{v:?}")));
            }
            fn record_f64(&mut self, f: &Field, v: f64) {
                self.0.push((f.name().to_owned(), format!("f64:{v}")));
            }
            fn record_u64(&mut self, f: &Field, v: u64) {
                self.0.push((f.name().to_owned(), format!("u64:{v}")));
            }
            fn record_str(&mut self, f: &Field, v: &str) {
                self.0.push((f.name().to_owned(), v.to_owned()));
            }
        }
        let mut v = V(Vec::new());
        event.record(&mut v);
        self.0.lock().unwrap().push(v.0);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn slow_log_fires_above_the_threshold_and_not_below() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = Events::default();
    let _sub =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let log = Log::default();
    let layer = PerfLayer::builder()
        .slow_threshold(Duration::from_millis(150))
        .route_slow_threshold("/override", Duration::from_secs(10))
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let sleepy = |ms: u64| {
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "ok"
        })
    };
    let app = Router::new()
        .route("/fast", sleepy(10))
        .route("/slow/{id}", sleepy(250))
        .route("/override", sleepy(250))
        .layer(layer);
    let addr = serve(app).await;
    get_text(addr, "/fast").await;
    get_text(addr, "/override").await;
    get_text(addr, "/slow/7?secret=1").await;
    wait_for(&log, 3).await;

    let ev = events.0.lock().unwrap().clone();
    assert_eq!(ev.len(), 1, "exactly one slow event: {ev:?}");
    let field = |name: &str| {
        ev[0]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("route").as_deref(), Some("/slow/{id}"));
    assert_eq!(field("method").as_deref(), Some("GET"));
    assert_eq!(field("status").as_deref(), Some("u64:200"));
    assert_eq!(field("threshold_ms").as_deref(), Some("f64:150"));
    let latency: f64 = field("latency_ms")
        .unwrap()
        .trim_start_matches("f64:")
        .parse()
        .unwrap();
    assert!(latency >= 250.0, "{latency}");
    assert!(field("time_to_headers_ms").unwrap().starts_with("f64:"));
    assert_eq!(
        field("query"),
        None,
        "the raw query is not logged by default"
    );
    assert_eq!(field("path"), None);
}

#[tokio::test(flavor = "current_thread")]
async fn server_timing_only_when_enabled() {
    let app = |st: ServerTiming| {
        Router::new()
            .route("/x", get(|| async { "x" }))
            .layer(PerfLayer::builder().server_timing(st).build().unwrap())
    };
    let off = serve(app(ServerTiming::Off)).await;
    let on = serve(app(ServerTiming::Always)).await;
    let gated = serve(app(ServerTiming::when_header(
        http::HeaderName::from_static("x-timing"),
    )))
    .await;

    let (parts, _) = get_text(off, "/x").await;
    assert!(parts.headers.get("server-timing").is_none());
    let (parts, _) = get_text(gated, "/x").await;
    assert!(parts.headers.get("server-timing").is_none());

    let (parts, _) = get_text(on, "/x").await;
    let v = parts
        .headers
        .get("server-timing")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(v.starts_with("total;dur="), "{v}");

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = http::Request::get(format!("http://{gated}/x"))
        .header("x-timing", "1")
        .body(Empty::new())
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert!(res.headers().get("server-timing").is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn unknown_paths_share_one_route_label_and_5xx_carries_error_type() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let app = Router::new()
        .route("/users/{id}", get(|| async { "u" }))
        .route(
            "/boom",
            get(|| async { http::StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(PerfLayer::new());
    let addr = serve(app).await;
    for i in 0..50 {
        get_text(addr, &format!("/users/{i}")).await;
        get_text(addr, &format!("/random/{i}/{}", i * 7919)).await;
    }
    get_text(addr, "/boom").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut totals = Totals::default();
    let routes = totals.update(&snap).routes();
    assert_eq!(
        routes,
        ["/boom", "/users/{id}", "unmatched"]
            .map(String::from)
            .into()
    );
    assert_eq!(totals.durations_with_label("http.route", "unmatched"), 50);
    assert_eq!(totals.durations_with_label("error.type", "500"), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn plain_hyper_and_route_layer_stacks_work() {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use perf_middleware::RouteTemplate;

    // Plain hyper: a tower service_fn behind ServiceBuilder, route template set by hand.
    let log = Log::default();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (io, _) = listener.accept().await.unwrap();
        let svc = tower::ServiceBuilder::new()
            .map_request(|mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(RouteTemplate::new("/items/{id}"));
                req
            })
            .layer(layer)
            .service_fn(|_req| async {
                Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::from_static(b"item"),
                )))
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc))
            .await;
    });
    let (parts, body) = get_text(addr, "/items/42").await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"item"[..]));
    let seen = wait_for(&log, 1).await;
    assert_eq!(seen[0].route.as_deref(), Some("/items/{id}"));
    assert_eq!(seen[0].outcome, Outcome::Completed);

    // axum `route_layer`: only matched routes are measured.
    let log = Log::default();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/r/{x}", get(|| async { "r" }))
        .route_layer(layer);
    let addr = serve(app).await;
    get_text(addr, "/r/1").await;
    get_text(addr, "/nope").await;
    let seen = wait_for(&log, 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.lock().unwrap().len(), 1, "{seen:?}");
    assert_eq!(seen[0].route.as_deref(), Some("/r/{x}"));
}

#[tokio::test(flavor = "current_thread")]
async fn around_the_whole_router_templates_come_from_the_route_table() {
    use axum::ServiceExt as _;
    use perf_middleware::RouteTable;

    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let log = Log::default();
    let events = Events::default();
    let _sub = {
        use tracing_subscriber::layer::SubscriberExt as _;
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()))
    };

    let mut routes = RouteTable::builder();
    let router = Router::new()
        .route(routes.add("/users/{id}"), get(|| async { "u" }))
        .route(
            routes.add("/slow"),
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "s"
            }),
        )
        .route(routes.add("/health"), get(|| async { "ok" }));
    let layer = PerfLayer::builder()
        .route_table(routes.build().unwrap())
        .slow_threshold(Duration::from_secs(10))
        .route_slow_threshold("/slow", Duration::from_millis(20))
        .ignore_route("/health")
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = layer.around(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .unwrap()
    });

    for i in 0..3 {
        let (parts, body) = get_text(addr, &format!("/users/{i}")).await;
        assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"u"[..]));
    }
    let (parts, _) = get_text(addr, "/nope/1").await;
    assert_eq!(parts.status.as_u16(), 404);
    get_text(addr, "/slow").await;
    get_text(addr, "/health").await;
    let seen = wait_for(&log, 5).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(log.lock().unwrap().len(), 5, "/health is ignored: {seen:?}");
    let routes: Vec<_> = seen.iter().map(|s| s.route.as_deref()).collect();
    assert_eq!(
        routes,
        [
            Some("/users/{id}"),
            Some("/users/{id}"),
            Some("/users/{id}"),
            None,
            Some("/slow")
        ]
    );
    assert_eq!(
        seen[3].status,
        Some(404),
        "the router's 404 is measured too"
    );

    let mut totals = Totals::default();
    totals.update(&snap);
    assert_eq!(
        totals.routes(),
        ["/slow", "/users/{id}", "unmatched"]
            .map(String::from)
            .into()
    );
    assert_eq!(totals.durations_with_label("http.route", "/users/{id}"), 3);
    assert_eq!(totals.active, 0.0);

    let ev = events.0.lock().unwrap().clone();
    assert_eq!(ev.len(), 1, "only /slow crosses its own threshold: {ev:?}");
    assert!(ev[0].contains(&("route".into(), "/slow".into())), "{ev:?}");
    assert!(
        ev[0].contains(&("threshold_ms".into(), "f64:20".into())),
        "{ev:?}"
    );
}
