//! The `perf.cache.l2.*` metrics of two instances over one Redis: recorded, and labelled only
//! from small fixed sets (never a key, path or tag).
#![cfg(all(feature = "redis", feature = "metrics"))]

mod redis_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use metrics_util::debugging::DebuggingRecorder;
use redis_support::{
    Origin, buses_up, call, get, instance, l2_entries, namespace, shared_or_own, tiered,
};
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_metrics_are_recorded_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this test binary");

    let (url, _own) = shared_or_own().await;
    let ns = namespace("metrics");
    let origin = Origin::default();
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    buses_up(&[&a.store, &b.store]).await;
    get(&mut a.svc, "/item").await;
    l2_entries(&url, &ns, 1).await;
    get(&mut b.svc, "/item").await; // an L2 hit
    call(&mut a.svc, Method::PUT, "/item").await; // key invalidation, sent by A, received by B
    b.handle.purge_tag("items").await.unwrap();
    b.handle.soft_purge_tag("items").await.unwrap();
    // Messages B never saw: the next heartbeat reveals the gap.
    let seq = format!("pc:{ns}:seq");
    redis_support::redis_cmd::<i64>(&url, &["INCRBY", &seq, "10"])
        .await
        .unwrap();
    // A cold miss on two instances that coalesce them: C fills, D waits for C's entry.
    let gate = Arc::new(Semaphore::new(0));
    let slow = Origin {
        gate: Some(gate.clone()),
        ..Origin::default()
    };
    // (A namespace of their own: the tag `items` was purged just now, within the clock skew.)
    let ns2 = namespace("metrics-fill");
    let coalescing = || tiered(&url, &ns2).coalesce_misses(Duration::from_secs(5));
    let c = instance(coalescing().build().unwrap(), &slow);
    let mut d = instance(coalescing().build().unwrap(), &slow);
    let mut c_svc = c.svc.clone();
    let on_c = tokio::spawn(async move { get(&mut c_svc, "/cold").await });
    while slow.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let on_d = tokio::spawn(async move { get(&mut d.svc, "/cold").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(10);
    let (_, on_d) = (on_c.await.unwrap(), on_d.await.unwrap());
    assert!(
        on_d.cache_status.contains("detail=l2"),
        "{}",
        on_d.cache_status
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut seen = BTreeSet::new();
    for (key, _, _, _) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if !key.name().starts_with("perf.cache.l2.") {
            continue;
        }
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        for l in &labels {
            assert!(
                !l.contains('/') && !l.contains("items"),
                "unbounded label {l}"
            );
        }
        seen.insert(format!("{}{{{}}}", key.name(), labels.join(",")));
    }
    println!("{seen:#?}");
    for expected in [
        "perf.cache.l2.ops{op=get,result=hit}",
        "perf.cache.l2.served_hits{}",
        "perf.cache.l2.ops{op=put,result=ok}",
        "perf.cache.l2.ops{op=del,result=ok}",
        "perf.cache.l2.duration{op=get}",
        "perf.cache.l2.invalidations{dir=sent,kind=key}",
        "perf.cache.l2.invalidations{dir=received,kind=key}",
        "perf.cache.l2.invalidations{dir=received,kind=tag}",
        "perf.cache.l2.invalidations{dir=received,kind=soft_tag}",
        "perf.cache.l2.resyncs{reason=gap}",
        "perf.cache.l2.invalidation_lag{}",
        "perf.cache.l2.breaker_state{}",
        "perf.cache.l2.write_queue{}",
        "perf.cache.l2.bus_up{}",
        "perf.cache.l2.fills{result=leader}",
        "perf.cache.l2.fills{result=follower_hit}",
    ] {
        assert!(seen.contains(expected), "missing {expected}");
    }
}
