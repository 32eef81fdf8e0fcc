//! The cost of the database capture per statement and per request (feature `db`).
//!
//! `cargo bench -p perf-middleware --features db --bench db`
//!
//! - `fingerprint/cached`: the per-statement lookup of a text seen before (hash + cache);
//! - `fingerprint/normalize`: a cache miss (the lexer);
//! - `request/N statements`: one request through `DbLayer` whose handler emits `N` sqlx-shaped
//!   events (the fields sqlx 0.8 writes) to a registry with the capture; the per-statement cost
//!   is the difference between `100 statements` and `0 statements`, divided by 100;
//! - `reference: request span alone`: creating and closing the request span in the registry;
//! - `request/no subscriber`: the layer when nothing listens to its span (the capture not
//!   installed): what a request pays then.

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use http::{Request, Response};
use http_body_util::Empty;
use perf_middleware::db::fingerprint::{Fingerprint, Fingerprints};
use perf_middleware::db::{DbCapture, DbLayer};
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tracing_subscriber::prelude::*;

const SQL: &str = "SELECT p.id, p.title, p.body FROM posts p WHERE p.author_id = $1 AND p.published ORDER BY p.id LIMIT $2";

/// One event shaped like sqlx 0.8's `QueryLogger` output (summary, statement, rows, elapsed).
///
/// Not `perf_test_support::sqlx_statement`: with the event's callsite in that crate, callgrind
/// counted 5,203 instead of 4,891 instructions for a request without a statement and 9,191
/// instead of 8,678 for one statement (measured on `baf9f94`), so BENCHMARKS.md's figures would
/// no longer measure the layer alone. The callsite stays here, in the measured binary.
fn sqlx_event() {
    tracing::debug!(
        target: "sqlx::query",
        summary = "SELECT p.id, p.title, p.body …",
        db.statement = SQL,
        rows_affected = 0u64,
        rows_returned = 1u64,
        elapsed_secs = 0.000_25f64,
    );
}

fn service(
    statements: usize,
) -> impl Service<Request<()>, Response = Response<impl http_body::Body>, Error = Infallible> + Clone
{
    ServiceBuilder::new()
        .layer(DbLayer::builder().metrics(false).build().expect("valid"))
        .service_fn(move |_req: Request<()>| async move {
            for _ in 0..statements {
                sqlx_event();
            }
            Ok::<_, Infallible>(Response::new(Empty::<bytes::Bytes>::new()))
        })
}

fn request<S>(svc: &S)
where
    S: Service<Request<()>, Error = Infallible> + Clone,
{
    let res = svc
        .clone()
        .oneshot(Request::new(()))
        .now_or_never()
        .expect("ready");
    black_box(res.ok());
}

fn benches(c: &mut Criterion) {
    let cache = Fingerprints::default();
    cache.get(SQL);
    c.bench_function("fingerprint/cached", |b| {
        b.iter(|| black_box(cache.get(black_box(SQL))))
    });
    c.bench_function("fingerprint/normalize", |b| {
        b.iter(|| black_box(Fingerprint::of(black_box(SQL))))
    });

    let none = service(0);
    c.bench_function("request/no subscriber", |b| b.iter(|| request(&none)));

    let subscriber = tracing_subscriber::registry().with(DbCapture::new().filtered());
    tracing::subscriber::with_default(subscriber, || {
        c.bench_function("reference: request span alone", |b| {
            b.iter(|| {
                let span = tracing::trace_span!(target: "perf_middleware::db", "perf.db.request");
                black_box(span.is_disabled())
            })
        });
        for n in [0usize, 1, 100] {
            let svc = service(n);
            c.bench_function(&format!("request/{n} statements"), |b| {
                b.iter(|| request(&svc))
            });
        }
    });
}

criterion_group!(db, benches);
criterion_main!(db);
