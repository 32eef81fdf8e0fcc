//! The database behaviours against a real SQLite file through sqlx (no server needed).

mod db_common;

use db_common::{Backend, run_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_behaviours() {
    let dir = std::env::temp_dir().join(format!("perf-db-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
    run_all(Backend {
        name: "sqlite",
        url,
        placeholder: "?",
        // A recursive count: tens of milliseconds, no sleep function needed.
        slow_sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) \
                   SELECT count(*) FROM c WHERE x > ?",
        id_type: "INTEGER",
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
