//! [`sqlx_statement`]: one statement event shaped as sqlx reports it, without sqlx.

/// Emits one `sqlx::query` DEBUG event with the fields sqlx 0.8's `QueryLogger` writes
/// (`summary`, `db.statement`, `rows_affected`, `rows_returned`, `elapsed_secs`), as if `sql`
/// had just run for `elapsed_secs` seconds and returned one row. An `elapsed_secs` of 0 keeps
/// repeats sequential (each starts as the last ends) whatever the wall clock does.
///
/// ```
/// perf_test_support::sqlx_statement("SELECT 1", 0.0); // nothing listens: a no-op
/// ```
pub fn sqlx_statement(sql: &str, elapsed_secs: f64) {
    tracing::debug!(
        target: "sqlx::query",
        summary = "…",
        db.statement = sql,
        rows_affected = 0u64,
        rows_returned = 1u64,
        elapsed_secs,
    );
}
