//! The per-request cost of perf-budget, measured through the layer:
//!
//! - `layer round trip/*`: the whole layer around a no-op service (route lookup, both clock
//!   readings, recording, the response future), against the bare service, for a request routed
//!   by its path (the configured templates) and one carrying a `RouteTemplate`. Both build and
//!   drop their request in the timed loop (as a server would, with warm caches): the layer's
//!   cost is the difference to the bare service. The request path takes latencies of zero here;
//!   the record cost does not depend on the value.
//!
//! `cargo bench -p perf-budget --bench record`

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::Empty;
use perf_budget::{BudgetLayer, BudgetPolicy};
use perf_middleware::RouteTemplate;
use tower::{Layer, Service, service_fn};

fn policy() -> BudgetPolicy {
    BudgetPolicy::builder()
        .add_budget("users", "GET /api/users/{id}", |b| {
            b.objective("p95 < 200ms")
                .objective("p99 < 500ms")
                .objective("error_rate < 1%")
        })
        .build()
        .expect("valid policy")
}

fn bench(c: &mut Criterion) {
    let inner = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    });
    let template = RouteTemplate::new("/api/users/{id}");
    let with_template = || {
        Request::get("/api/users/7")
            .extension(template.clone())
            .body(())
            .expect("request")
    };
    let path_only = || Request::get("/api/users/7").body(()).expect("request");
    let mut group = c.benchmark_group("layer round trip");
    let mut bare = inner;
    let mut layered = BudgetLayer::new(policy()).layer(inner);
    for (name, request) in [
        ("path", &path_only as &dyn Fn() -> Request<()>),
        ("RouteTemplate", &with_template),
    ] {
        group.bench_function(format!("bare service, {name}"), |b| {
            b.iter(|| drop(black_box(bare.call(request()).now_or_never())))
        });
        group.bench_function(
            format!("budget layer, observe, 3 objectives, {name}"),
            |b| b.iter(|| drop(black_box(layered.call(request()).now_or_never()))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
