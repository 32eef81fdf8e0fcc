//! The database behaviours against a real PostgreSQL (the same handlers and assertions as
//! `db_sqlite`). `cargo xtask test` creates a throwaway cluster under `target/` and runs this with
//! `PERF_TEST_POSTGRES_URL` set.

mod db_common;

use db_common::{Backend, run_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run `cargo xtask postgres` (creates one under target/), or set PERF_TEST_POSTGRES_URL and pass --ignored"]
async fn postgres_behaviours() {
    let url = std::env::var("PERF_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "PERF_TEST_POSTGRES_URL is not set: run `cargo xtask postgres`, which starts a throwaway \
             cluster with Debian's `postgresql` binaries (`apt-get install postgresql`) and runs this \
             test, or point the variable at a database you may drop tables in"
        )
    });
    run_all(Backend {
        name: "postgresql",
        url,
        placeholder: "$1",
        slow_sql: "SELECT pg_sleep(0.05), $1::bigint",
        id_type: "BIGINT",
    })
    .await;
}
