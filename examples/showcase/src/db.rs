//! The database part: SQLite through sqlx (a file in the temp directory, seeded at start, so
//! nothing needs installing), an N+1 endpoint, its fixed twin, and a concurrent fan-out, all
//! watched by perf-middleware's `db` capture.
//!
//! Finding an N+1 with the family:
//!
//! 1. `curl -i localhost:3000/api/authors/n-plus-one` answers with
//!    `Server-Timing: db;dur=…;desc="11 queries"` — eleven statements for one page;
//! 2. the log has `WARN perf_middleware::db: N+1 query: the same statement ran 10 times in a row`
//!    with `route=/api/authors/n-plus-one`, the normalized `statement` and the `trace_id`;
//! 3. the fix loads the rows in one query: `/api/authors/joined` runs one JOIN
//!    (`desc="1 query"`), and `/api/authors/concurrent` shows that statements run at the same
//!    time (`join_all`) are fan-out, not N+1.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use perf_middleware::ServerTiming;
use perf_middleware::db::metrics::{PoolStatus, sample_pool};
use perf_middleware::db::{DbCapture, DbLayer, NPlusOneProfile};
use serde::Serialize;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::sync::OnceCell;

/// Authors seeded; the N+1 endpoint runs one statement per author plus one.
pub const AUTHORS: i64 = 10;
/// Posts per author.
pub const POSTS_PER_AUTHOR: i64 = 5;
const MAX_CONNECTIONS: u32 = 4;

/// The capture layer for the showcase's subscriber (its own per-layer filter).
pub fn capture<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    DbCapture::new().system("sqlite").filtered()
}

/// The database and its seeding, started once.
#[derive(Debug, Clone)]
struct Database {
    pool: SqlitePool,
    seeded: Arc<OnceCell<()>>,
}

impl Database {
    async fn ready(&self) -> &SqlitePool {
        self.seeded.get_or_init(|| seed(self.pool.clone())).await;
        &self.pool
    }
}

async fn seed(pool: SqlitePool) {
    // Open every connection now (each runs its `PRAGMA`s), so requests do not pay for one.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        held.push(pool.acquire().await.expect("connect"));
    }
    drop(held);
    let statements = [
        "DROP TABLE IF EXISTS posts",
        "DROP TABLE IF EXISTS authors",
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors(id), title TEXT NOT NULL)",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&pool).await.expect("schema");
    }
    for a in 1..=AUTHORS {
        sqlx::query("INSERT INTO authors (id, name) VALUES (?, ?)")
            .bind(a)
            .bind(format!("Author {a}"))
            .execute(&pool)
            .await
            .expect("seed");
        for p in 1..=POSTS_PER_AUTHOR {
            sqlx::query("INSERT INTO posts (author_id, title) VALUES (?, ?)")
                .bind(a)
                .bind(format!("Post {p} by author {a}"))
                .execute(&pool)
                .await
                .expect("seed");
        }
    }
}

/// The database routes, with their `DbLayer` (strict N+1 profile: this is a demo), seeding started
/// in the background when a runtime is running.
///
/// # Errors
///
/// Invalid layer configuration or database URL.
pub fn routes() -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let path =
        std::env::temp_dir().join(format!("tower-perf-showcase-{}.sqlite", std::process::id()));
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(MAX_CONNECTIONS)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options);
    let db = Database {
        pool,
        seeded: Arc::default(),
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        let (seeding, sampled) = (db.clone(), db.pool.clone());
        tokio::spawn(async move {
            seeding.ready().await;
        });
        tokio::spawn(sample_pool("showcase", Duration::from_secs(5), move || {
            let idle = u32::try_from(sampled.num_idle()).unwrap_or(u32::MAX);
            PoolStatus::new(sampled.size(), idle, MAX_CONNECTIONS)
        }));
    }
    let layer = DbLayer::builder()
        .n_plus_one(NPlusOneProfile::strict())
        .server_timing(ServerTiming::Always)
        .build()?;
    Ok(Router::new()
        .route("/api/authors/n-plus-one", get(n_plus_one))
        .route("/api/authors/joined", get(joined))
        .route("/api/authors/concurrent", get(concurrent))
        .with_state(db)
        .layer(layer))
}

/// An author with their post titles.
#[derive(Debug, Serialize)]
pub struct AuthorPosts {
    name: String,
    posts: Vec<String>,
}

/// One query for the authors, then one per author: the N+1.
async fn n_plus_one(State(db): State<Database>) -> Json<Vec<AuthorPosts>> {
    let pool = db.ready().await;
    let authors: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM authors ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    let mut out = Vec::with_capacity(authors.len());
    for (id, name) in authors {
        let posts = sqlx::query_scalar("SELECT title FROM posts WHERE author_id = ? ORDER BY id")
            .bind(id)
            .fetch_all(pool)
            .await
            .unwrap_or_default();
        out.push(AuthorPosts { name, posts });
    }
    Json(out)
}

/// The fixed twin: one JOIN.
async fn joined(State(db): State<Database>) -> Json<Vec<AuthorPosts>> {
    let pool = db.ready().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.name, p.title FROM authors a JOIN posts p ON p.author_id = a.id ORDER BY a.id, p.id",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let mut out: Vec<AuthorPosts> = Vec::new();
    for (name, title) in rows {
        match out.last_mut() {
            Some(last) if last.name == name => last.posts.push(title),
            _ => out.push(AuthorPosts {
                name,
                posts: vec![title],
            }),
        }
    }
    Json(out)
}

/// Three independent statistics computed at the same time (`join_all`): fan-out, not N+1.
async fn concurrent(State(db): State<Database>) -> Json<Vec<i64>> {
    let pool = db.ready().await;
    // Each walks a generated series: long enough (milliseconds) to overlap the others.
    let sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) \
               SELECT count(*) FROM n WHERE x % ? = 0";
    let runs = [2i64, 3, 5].map(|d| sqlx::query_scalar::<_, i64>(sql).bind(d).fetch_one(pool));
    let counts = futures_util::future::join_all(runs).await;
    Json(counts.into_iter().map(Result::unwrap_or_default).collect())
}
