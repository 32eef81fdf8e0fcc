//! The database behaviours, run against SQLite (`db_sqlite`) and PostgreSQL (`db_postgres`)
//! with the same handlers: only the SQL of the slow and concurrent statements differs.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use perf_middleware::db::{
    CaptureHandle, DbCapture, DbHandle, DbLayer, NPlusOneProfile, ViolationKind,
};
use perf_middleware::{PerfLayer, ServerTiming, TraceId};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// What differs between the databases.
#[derive(Clone, Debug)]
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) url: String,
    /// `?` or `$1`.
    pub(crate) placeholder: &'static str,
    /// Runs long enough to be slow (and to overlap its concurrent twins), takes one bind.
    pub(crate) slow_sql: &'static str,
    pub(crate) id_type: &'static str,
}

pub(crate) const AUTHORS: usize = 6;
pub(crate) const TRACE: TraceId = TraceId::from_bytes([0xab; 16]);

/// One log line of target `perf_middleware::db`.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) message: String,
    pub(crate) fields: HashMap<String, String>,
}

#[derive(Default)]
struct Lines(Mutex<Vec<Line>>);

struct LogLayer(Arc<Lines>);

struct LineVisitor<'a>(&'a mut Line);

impl Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = v;
        } else {
            self.0.fields.insert(field.name().to_owned(), v);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .fields
            .insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != perf_middleware::db::TARGET {
            return;
        }
        let mut line = Line {
            message: String::new(),
            fields: HashMap::new(),
        };
        event.record(&mut LineVisitor(&mut line));
        self.0.0.lock().unwrap().push(line);
    }
}

/// The process-wide subscriber of a test binary (sqlx's SQLite worker threads log to the global
/// dispatcher): a log recorder and the capture, each with its own filter. `init()` also installs
/// tracing-log's `LogTracer` (sqlx asks `log::log_enabled!` before every statement: the set-up of
/// tokio-rs/tracing#2519), so the tests cover it.
pub(crate) struct Installed {
    lines: Arc<Lines>,
    pub(crate) capture: CaptureHandle,
}

impl Installed {
    pub(crate) fn lines(&self) -> Vec<Line> {
        self.lines.0.lock().unwrap().clone()
    }
    pub(crate) fn clear(&self) {
        self.lines.0.lock().unwrap().clear();
    }
}

pub(crate) fn install(system: &'static str) -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let lines = Arc::new(Lines::default());
        let (capture, handle) = DbCapture::pair();
        tracing_subscriber::registry()
            .with(
                LogLayer(lines.clone()).with_filter(tracing_subscriber::filter::LevelFilter::INFO),
            )
            .with(capture.system(system).filtered())
            .init();
        Installed {
            lines,
            capture: handle,
        }
    })
}

pub(crate) async fn pool(backend: &Backend) -> AnyPool {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .min_connections(4)
        .max_connections(4)
        .test_before_acquire(false)
        .acquire_time_level(log::LevelFilter::Debug)
        .connect(&backend.url)
        .await
        .expect("connect");
    // Open every connection now, so no request pays for (or logs) a connection set-up.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.acquire().await.unwrap());
    }
    drop(held);
    let id = backend.id_type;
    for sql in [
        "DROP TABLE IF EXISTS posts".to_owned(),
        "DROP TABLE IF EXISTS authors".to_owned(),
        format!("CREATE TABLE authors (id {id} PRIMARY KEY, name TEXT NOT NULL)"),
        format!(
            "CREATE TABLE posts (id {id} PRIMARY KEY, author_id {id} NOT NULL, title TEXT NOT NULL)"
        ),
    ] {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    for a in 1..=AUTHORS as i64 {
        sqlx::query(&format!(
            "INSERT INTO authors (id, name) VALUES ({a}, 'author {a}')"
        ))
        .execute(&pool)
        .await
        .unwrap();
        for p in 0..3 {
            let pid = a * 10 + p;
            sqlx::query(&format!(
                "INSERT INTO posts (id, author_id, title) VALUES ({pid}, {a}, 'post {pid}')"
            ))
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    pool
}

#[derive(Clone)]
struct App {
    pool: AnyPool,
    backend: Backend,
}

/// `/authors/n1`: one query for the authors, one per author for their posts (N+1).
async fn n_plus_one(State(app): State<App>) -> String {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM authors ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let sql = format!(
        "SELECT title FROM posts WHERE author_id = {}",
        app.backend.placeholder
    );
    let mut titles = 0;
    for id in ids {
        let rows: Vec<String> = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        titles += rows.len();
    }
    titles.to_string()
}

/// `/authors/join`: the fixed twin, one JOIN.
async fn joined(State(app): State<App>) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT p.title FROM authors a JOIN posts p ON p.author_id = a.id ORDER BY a.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.len().to_string()
}

/// `/authors/concurrent`: the same statement four times at once (`join_all`).
async fn concurrent(State(app): State<App>) -> &'static str {
    let runs = (0..4).map(|i| {
        sqlx::query(app.backend.slow_sql)
            .bind(i as i64)
            .execute(&app.pool)
    });
    for r in futures_util::future::join_all(runs).await {
        r.unwrap();
    }
    "ok"
}

/// `/slow`: one slow statement.
async fn slow(State(app): State<App>) -> &'static str {
    sqlx::query(app.backend.slow_sql)
        .bind(1i64)
        .execute(&app.pool)
        .await
        .unwrap();
    "ok"
}

/// `/background`: a detached task (no span hand-off) runs three statements.
async fn background(State(app): State<App>) -> &'static str {
    let pool = app.pool.clone();
    tokio::spawn(async move {
        for _ in 0..3 {
            sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        }
    })
    .await
    .unwrap();
    "ok"
}

pub(crate) fn router(
    pool: AnyPool,
    backend: Backend,
    db: DbLayer,
    perf: PerfLayer<impl perf_middleware::OnComplete>,
) -> Router {
    Router::new()
        .route("/authors/n1", get(n_plus_one))
        .route("/authors/join", get(joined))
        .route("/authors/concurrent", get(concurrent))
        .route("/slow", get(slow))
        .route("/background", get(background))
        .with_state(App { pool, backend })
        .layer(db)
        .layer(perf)
        .layer(axum::middleware::map_request(
            |mut req: Request<Body>| async move {
                req.extensions_mut().insert(TRACE);
                req
            },
        ))
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) server_timing: Vec<String>,
}

pub(crate) async fn get_path(app: &Router, path: &str) -> Reply {
    let res = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let server_timing = res
        .headers()
        .get_all("server-timing")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    res.into_body().collect().await.unwrap();
    Reply {
        status,
        server_timing,
    }
}

/// The `db` entry's description, `N queries`.
pub(crate) fn db_desc(reply: &Reply) -> String {
    let entry = reply
        .server_timing
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|e| e.starts_with("db;"))
        .unwrap_or_else(|| panic!("no db entry in {:?}", reply.server_timing));
    assert!(entry.contains(";dur="), "{entry}");
    entry
        .split("desc=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

/// Every behaviour of the acceptance list, in order (one subscriber per process).
pub(crate) async fn run_all(backend: Backend) {
    let installed = install(backend.name);
    let pool = pool(&backend).await;
    let seen: Arc<Mutex<Vec<(String, Option<u32>)>>> = Arc::default();
    let hook = {
        let seen = seen.clone();
        move |c: &perf_middleware::Completion<'_>| {
            seen.lock()
                .unwrap()
                .push((c.route.unwrap_or("").to_owned(), c.db.map(|d| d.queries)));
        }
    };
    let db = DbLayer::builder()
        .n_plus_one(NPlusOneProfile::strict())
        .n_plus_one_cooldown(Duration::ZERO)
        .server_timing(ServerTiming::Always)
        .route_slow_threshold("/slow", Duration::from_millis(1))
        .max_queries(20)
        .build()
        .unwrap();
    let handle: DbHandle = db.handle();
    let perf = PerfLayer::builder().on_complete(hook).build().unwrap();
    let app = router(pool.clone(), backend.clone(), db, perf);
    installed.clear();

    // The N+1 endpoint: detected, with the right count and fingerprint.
    let reply = get_path(&app, "/authors/n1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(db_desc(&reply), format!("{} queries", AUTHORS + 1));
    assert!(
        reply
            .server_timing
            .iter()
            .any(|v| v.contains("db-wait;dur=")),
        "pool waits heard: {:?}",
        reply.server_timing
    );
    let v = handle.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind(), ViolationKind::NPlusOne);
    assert_eq!(v[0].route(), "/authors/n1");
    assert_eq!(v[0].count(), AUTHORS as u32);
    assert_eq!(
        v[0].fingerprint().unwrap().text(),
        "select title from posts where author_id = ?"
    );
    let warn = installed
        .lines()
        .into_iter()
        .find(|l| l.message.contains("N+1"))
        .expect("an N+1 warning");
    assert_eq!(warn.fields["route"], "/authors/n1");
    assert_eq!(warn.fields["count"], AUTHORS.to_string());
    assert_eq!(
        warn.fields["statement"],
        "select title from posts where author_id = ?"
    );
    assert_eq!(warn.fields["trace_id"], TRACE.to_string());
    assert!(warn.fields.contains_key("total_ms") && warn.fields.contains_key("fingerprint"));
    assert!(
        !format!("{warn:?}").contains("author 1"),
        "no bound value in the log"
    );
    // The summary reached the timing layer's completion record.
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &("/authors/n1".to_owned(), Some(AUTHORS as u32 + 1))
    );

    // The fixed twin: not reported.
    handle.clear();
    installed.clear();
    let reply = get_path(&app, "/authors/join").await;
    assert_eq!(db_desc(&reply), "1 query");
    handle.assert_clean();

    // Concurrent fan-out: four statements, not an N+1.
    let reply = get_path(&app, "/authors/concurrent").await;
    assert_eq!(db_desc(&reply), "4 queries");
    handle.assert_clean();
    assert!(installed.lines().iter().all(|l| !l.message.contains("N+1")));

    // A slow statement: logged with its route and trace id.
    installed.clear();
    let reply = get_path(&app, "/slow").await;
    assert_eq!(db_desc(&reply), "1 query");
    let slow = installed
        .lines()
        .into_iter()
        .find(|l| l.message == "slow statement")
        .expect("a slow-statement log");
    assert_eq!(slow.fields["route"], "/slow");
    assert_eq!(slow.fields["trace_id"], TRACE.to_string());
    assert!(slow.fields.contains_key("elapsed_ms") && slow.fields.contains_key("statement"));

    // A background task outside the request: orphans, never the request's.
    let orphans = installed.capture.orphans();
    let reply = get_path(&app, "/background").await;
    assert_eq!(db_desc(&reply), "0 queries");
    assert_eq!(installed.capture.orphans() - orphans, 3);
    handle.assert_clean();

    // The production profile (5 repeats and 50 ms) lets six fast repeats pass; the query cap
    // (the test mode) does not.
    let db = DbLayer::builder().max_queries(3).build().unwrap();
    let capped = db.handle();
    let app2 = router(pool.clone(), backend.clone(), db, PerfLayer::new());
    get_path(&app2, "/authors/n1").await;
    let v = capped.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind(), ViolationKind::TooManyQueries);
    assert_eq!(v[0].count(), AUTHORS as u32 + 1);

    // Deduplicated warnings: the same (route, fingerprint) twice in the cooldown logs once, and
    // is a violation twice.
    installed.clear();
    let db = DbLayer::builder()
        .n_plus_one(NPlusOneProfile::strict())
        .build()
        .unwrap();
    let deduped = db.handle();
    let app3 = router(pool.clone(), backend.clone(), db, PerfLayer::new());
    get_path(&app3, "/authors/n1").await;
    get_path(&app3, "/authors/n1").await;
    assert_eq!(deduped.violations().len(), 2);
    let warned = installed
        .lines()
        .iter()
        .filter(|l| l.message.contains("N+1"))
        .count();
    assert_eq!(warned, 1);

    assert_eq!(installed.capture.unrecognized(), 0);
    assert!(installed.capture.attributed() >= (AUTHORS + 1 + 1 + 4 + 1) as u64);
}
