//! The per-request cost of perf-budget: the record path alone (clock, slot, 3 objectives,
//! histogram) and the whole layer around a no-op service, against the bare service.
//!
//! `cargo bench -p perf-budget --bench record`

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

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
        .budget("users", "GET /api/users/{id}", |b| {
            b.objective("p95 < 200ms")
                .objective("p99 < 500ms")
                .objective("error_rate < 1%")
        })
        .build()
        .expect("valid policy")
}

fn bench(c: &mut Criterion) {
    let (_layer, handle) = BudgetLayer::pair(policy());
    c.bench_function("record (3 objectives)", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(7919);
            handle.__record(0, Duration::from_micros(black_box(i % 400_000)), false);
        })
    });

    let inner = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    });
    let template = RouteTemplate::new("/api/users/{id}");
    let request = || {
        Request::get("/api/users/7")
            .extension(template.clone())
            .body(())
            .expect("request")
    };
    let mut group = c.benchmark_group("layer round trip");
    let mut bare = inner;
    group.bench_function("bare service", |b| {
        b.iter(|| black_box(bare.call(request()).now_or_never()))
    });
    let mut layered = BudgetLayer::new(policy()).layer(inner);
    group.bench_function("budget layer, observe, 3 objectives", |b| {
        b.iter(|| black_box(layered.call(request()).now_or_never()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
