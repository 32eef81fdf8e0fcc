//! The request span with the database summary of a `DbLayer` inside it (feature `db`), against
//! a real SQLite database through sqlx: the `perf.db.*` attributes, the N+1 event, and the
//! optional `CLIENT` span per statement.

use std::sync::OnceLock;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use perf_middleware::db::{DbCapture, DbLayer, NPlusOneProfile};
use perf_otel::OtelLayer;
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;
use tower::ServiceExt as _;
use tracing_subscriber::prelude::*;

const AUTHORS: i64 = 4;

/// The capture on the process-wide dispatcher: sqlx's SQLite worker thread logs to it.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber =
            tracing_subscriber::registry().with(DbCapture::new().system("sqlite").filtered());
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    });
}

async fn pool() -> SqlitePool {
    // One connection: an in-memory database per connection.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    for id in 1..=AUTHORS {
        sqlx::query("INSERT INTO authors (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(format!("author {id}"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO posts (author_id, title) VALUES (?, 'a'), (?, 'b')")
            .bind(id)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool
}

/// The N+1 loop: the authors, then their posts one author at a time.
async fn n_plus_one(State(pool): State<SqlitePool>) -> String {
    let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM authors ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut posts = 0;
    for (id,) in ids {
        posts += sqlx::query("SELECT id, title FROM posts WHERE author_id = ?")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap()
            .len();
    }
    posts.to_string()
}

/// Its fixed twin: one JOIN.
async fn fixed(State(pool): State<SqlitePool>) -> String {
    sqlx::query("SELECT p.id, p.title FROM authors a JOIN posts p ON p.author_id = a.id")
        .fetch_all(&pool)
        .await
        .unwrap()
        .len()
        .to_string()
}

async fn get_spans(client_spans: bool, path: &str) -> Vec<SpanData> {
    install();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let otel = OtelLayer::builder(provider.tracer("test"))
        .db_client_spans(client_spans)
        .build()
        .unwrap();
    let db = DbLayer::builder()
        .n_plus_one(NPlusOneProfile::strict())
        .metrics(false)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/authors/posts", get(n_plus_one))
        .route("/authors/posts-fixed", get(fixed))
        .route("/none", get(|| async { "no query" }))
        .with_state(pool().await)
        // The OTel layer outside the database layer: it reads the summary from the response.
        .layer(db)
        .layer(otel);
    let res = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.into_body().collect().await.unwrap();
    exporter.get_finished_spans().unwrap()
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn server(spans: &[SpanData]) -> &SpanData {
    spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("the request span")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_span_carries_the_query_summary_and_one_event_per_n_plus_one() {
    let spans = get_spans(false, "/authors/posts").await;
    assert_eq!(spans.len(), 1, "no client spans unless asked: {spans:#?}");
    let s = server(&spans);
    let queries = 1 + AUTHORS;
    assert_eq!(
        attr(&s.attributes, "perf.db.query_count"),
        Some(&Value::I64(queries))
    );
    let Some(Value::F64(duration)) = attr(&s.attributes, "perf.db.duration") else {
        panic!("perf.db.duration is a double: {:?}", s.attributes);
    };
    assert!(*duration > 0.0);
    assert_eq!(
        attr(&s.attributes, "perf.db.n_plus_one"),
        Some(&Value::I64(1))
    );
    let events: Vec<_> = s.events.iter().collect();
    assert_eq!(events.len(), 1);
    let event = events[0];
    assert_eq!(event.name, "perf.db.n_plus_one");
    assert_eq!(
        attr(&event.attributes, "perf.db.fingerprint").map(Value::as_str),
        Some("select id, title from posts where author_id = ?".into())
    );
    assert_eq!(
        attr(&event.attributes, "perf.db.count"),
        Some(&Value::I64(AUTHORS))
    );
    assert!(matches!(
        attr(&event.attributes, "perf.db.duration"),
        Some(Value::F64(d)) if *d > 0.0 && d <= duration
    ));

    // The fixed twin: one statement, no N+1.
    let spans = get_spans(false, "/authors/posts-fixed").await;
    let s = server(&spans);
    assert_eq!(
        attr(&s.attributes, "perf.db.query_count"),
        Some(&Value::I64(1))
    );
    assert_eq!(
        attr(&s.attributes, "perf.db.n_plus_one"),
        Some(&Value::I64(0))
    );
    assert!(s.events.is_empty());

    // No statement: no summary, no attribute.
    let spans = get_spans(true, "/none").await;
    assert_eq!(spans.len(), 1);
    assert_eq!(
        attr(&server(&spans).attributes, "perf.db.query_count"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_spans_are_children_of_the_request_span_inside_its_time() {
    let before = SystemTime::now();
    let spans = get_spans(true, "/authors/posts").await;
    let s = server(&spans);
    let clients: Vec<&SpanData> = spans
        .iter()
        .filter(|c| c.span_kind == SpanKind::Client)
        .collect();
    assert_eq!(clients.len(), 1 + AUTHORS as usize, "{spans:#?}");
    assert!(s.start_time >= before);
    for c in &clients {
        assert_eq!(c.parent_span_id, s.span_context.span_id());
        assert_eq!(c.span_context.trace_id(), s.span_context.trace_id());
        assert!(
            s.start_time <= c.start_time && c.start_time <= c.end_time && c.end_time <= s.end_time,
            "{c:#?} inside {s:#?}"
        );
        assert_eq!(
            attr(&c.attributes, "db.system.name").map(Value::as_str),
            Some("sqlite".into())
        );
        assert_eq!(
            attr(&c.attributes, "db.operation.name").map(Value::as_str),
            Some("SELECT".into())
        );
    }
    // In the order they ran: the authors, then each author's posts.
    assert_eq!(clients[0].name, "SELECT authors");
    assert_eq!(
        attr(&clients[0].attributes, "db.query.text").map(Value::as_str),
        Some("select id from authors order by id".into())
    );
    assert_eq!(
        attr(&clients[0].attributes, "db.response.returned_rows"),
        Some(&Value::I64(AUTHORS))
    );
    for post in &clients[1..] {
        assert_eq!(post.name, "SELECT posts");
        assert_eq!(
            attr(&post.attributes, "db.query.summary").map(Value::as_str),
            Some("SELECT posts".into())
        );
        assert_eq!(
            attr(&post.attributes, "db.response.returned_rows"),
            Some(&Value::I64(2))
        );
    }
    for pair in clients.windows(2) {
        assert!(pair[0].end_time <= pair[1].start_time, "sequential");
    }
}
