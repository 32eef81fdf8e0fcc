//! Per-request cost of the database capture (feature `db`) in a form `valgrind --tool=callgrind`
//! can count exactly (instructions are repeatable where wall-clock time on a shared machine is
//! not):
//!
//! ```sh
//! cargo build --release -p perf-middleware --features db --example cost_db
//! for n in 10000 20000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         --collect-atstart=no --toggle-collect='cost_db::measured*' \
//!         target/release/examples/cost_db 0 $n 2>&1 | grep Collected
//! done
//! ```
//!
//! and divide the difference of the two instruction counts by 10,000 (the fixed cost of the
//! first requests cancels). The first argument is the variant: `bare` (the handler alone),
//! `no-subscriber` (`DbLayer` with nothing listening to its span), or a number of statements per
//! request (`0`, `1`, `100`): `DbLayer` (metrics off) over a handler that emits that many events
//! shaped like sqlx 0.8's, to a registry with `DbCapture::filtered()`, as `benches/db.rs` does.

use std::convert::Infallible;

use futures_util::FutureExt as _;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty};
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

async fn handler(statements: usize) -> Result<Response<Empty<bytes::Bytes>>, Infallible> {
    for _ in 0..statements {
        sqlx_event();
    }
    Ok(Response::new(Empty::new()))
}

fn requests<S, B>(svc: &S, n: u32)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let Ok(res) = svc
            .clone()
            .oneshot(Request::new(()))
            .now_or_never()
            .expect("ready");
        std::hint::black_box(res.into_body().collect().now_or_never());
    }
}

/// The counted part (see `--toggle-collect` above).
#[inline(never)]
fn measured<S, B>(svc: &S, n: u32)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    requests(svc, n);
}

fn measure<S, B>(svc: S, n: u32)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    requests(&svc, 1_000);
    measured(&svc, n);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "0".into());
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let db = || DbLayer::builder().metrics(false).build().expect("valid");
    match variant.as_str() {
        "bare" => measure(tower::service_fn(|_: Request<()>| handler(0)), n),
        "no-subscriber" => measure(
            ServiceBuilder::new()
                .layer(db())
                .service_fn(|_: Request<()>| handler(0)),
            n,
        ),
        statements => {
            let statements: usize = statements.parse().expect("a variant or a number");
            let subscriber = tracing_subscriber::registry().with(DbCapture::new().filtered());
            tracing::subscriber::with_default(subscriber, || {
                measure(
                    ServiceBuilder::new()
                        .layer(db())
                        .service_fn(move |_: Request<()>| handler(statements)),
                    n,
                );
            });
        }
    }
}
