//! Two instances (two layers with separate L1s) sharing one real `redis-server`.
#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use redis_support::{
    Instance, Origin, buses_up, call, get, instance, l2_entries, namespace, shared_or_own, tiered,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_by_a_is_an_l2_hit_on_b() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("l2hit");
    let origin = Origin::default();
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);

    let first = get(&mut a.svc, "/item").await;
    assert_eq!(first.body, "v0");
    // The L2 write is in the background; once it has landed, B's L1 miss is an L2 hit.
    l2_entries(&url, &ns, 1).await;
    let hit = get(&mut b.svc, "/item").await;
    assert_eq!(hit.status, 200);
    assert_eq!(hit.body, "v0");
    assert!(
        hit.cache_status
            .starts_with("perf-cache; hit; detail=l2; ttl="),
        "an L2 hit says so: {}",
        hit.cache_status
    );
    assert_eq!(
        origin.calls.load(Ordering::SeqCst),
        1,
        "B answered from Redis, not the origin"
    );
    // Promoted into B's L1: the next hit is local.
    let local = get(&mut b.svc, "/item").await;
    assert!(
        local.cache_status.starts_with("perf-cache; hit; ttl="),
        "{}",
        local.cache_status
    );
}

/// Both instances hold `/item` (A from the origin, B from L2).
async fn warm(a: &mut Instance, b: &mut Instance, url: &str, ns: &str) {
    assert_eq!(get(&mut a.svc, "/item").await.body, "v0");
    l2_entries(url, ns, 1).await;
    assert_eq!(get(&mut b.svc, "/item").await.body, "v0");
    buses_up(&[&a.store, &b.store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_on_a_stops_b_serving_the_old_body() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("put");
    let origin = Origin::default();
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    warm(&mut a, &mut b, &url, &ns).await;

    let put = call(&mut a.svc, Method::PUT, "/item").await;
    assert_eq!(put.status, 204);
    let start = Instant::now();
    let lag = loop {
        let got = get(&mut b.svc, "/item").await;
        if got.body == "v1" {
            break start.elapsed();
        }
        assert_eq!(got.body, "v0");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B still serves v0 after 1 s"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    println!("PUT on A -> B serves the new body after {lag:?}");
    assert_eq!(get(&mut a.svc, "/item").await.body, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_tag_on_b_empties_the_tag_on_a() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("tag");
    let origin = Origin::default();
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    warm(&mut a, &mut b, &url, &ns).await;
    origin.version.store(7, Ordering::SeqCst);

    b.handle
        .purge_tag("items")
        .await
        .expect("the fleet was reached");
    let start = Instant::now();
    loop {
        let got = get(&mut a.svc, "/item").await;
        if got.body == "v7" {
            println!("purge_tag on B -> A misses after {:?}", start.elapsed());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "A still serves the purged body"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    // The purged entry is gone from L2 too: B refetches (or takes A's fresh v7 from L2).
    assert_eq!(get(&mut b.svc, "/item").await.body, "v7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_racing_an_in_flight_miss_is_not_undone() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("race");
    let gate = Arc::new(Semaphore::new(0));
    let slow = Origin {
        gate: Some(gate.clone()),
        ..Origin::default()
    };
    let fast = Origin {
        version: slow.version.clone(),
        ..Origin::default()
    };
    let a = instance(tiered(&url, &ns).build().unwrap(), &slow);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &fast);
    buses_up(&[&a.store, &b.store]).await;

    // 1. A's GET reads v0 from the origin and stalls.
    let mut a_svc = a.svc.clone();
    let in_flight = tokio::spawn(async move { get(&mut a_svc, "/item").await });
    while slow.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // 2. A PUT through B changes the resource and purges it fleet-wide.
    assert_eq!(call(&mut b.svc, Method::PUT, "/item").await.status, 204);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 3. A's old response arrives.
    gate.add_permits(1);
    assert_eq!(in_flight.await.unwrap().body, "v0");
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Neither instance serves v0 afterwards, from L1 or from L2.
    gate.add_permits(100);
    let mut a_svc = a.svc.clone();
    assert_eq!(get(&mut a_svc, "/item").await.body, "v1");
    assert_eq!(get(&mut b.svc, "/item").await.body, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_is_refreshed_by_one_instance_only() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("swr");
    let origin = Origin {
        cache_control: "max-age=1, stale-while-revalidate=30",
        ..Origin::default()
    };
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    warm(&mut a, &mut b, &url, &ns).await;
    assert_eq!(origin.calls.load(Ordering::SeqCst), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale_a = get(&mut a.svc, "/item").await;
    let stale_b = get(&mut b.svc, "/item").await;
    for s in [&stale_a, &stale_b] {
        assert_eq!(s.body, "v0");
        assert!(
            s.cache_status.contains("stale-while-revalidate"),
            "{}",
            s.cache_status
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        origin.calls.load(Ordering::SeqCst),
        2,
        "one background refresh for the two instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_purge_tag_on_a_marks_it_stale_on_b_and_in_redis() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("soft");
    let origin = Origin {
        cache_control: "max-age=60, stale-while-revalidate=30",
        ..Origin::default()
    };
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    warm(&mut a, &mut b, &url, &ns).await;
    origin.version.store(7, Ordering::SeqCst);

    a.handle
        .soft_purge_tag("items")
        .await
        .expect("the fleet was reached");
    let swr = |got: &redis_support::Got| {
        got.body == "v0" && got.cache_status.contains("detail=stale-while-revalidate")
    };
    // A new instance (empty L1) reads the entry from Redis as stale: served, refreshed once.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut c = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let from_l2 = get(&mut c.svc, "/item").await;
    assert!(swr(&from_l2), "{} {:?}", from_l2.cache_status, from_l2.body);
    let start = Instant::now();
    while get(&mut c.svc, "/item").await.body != "v7" {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "C never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // B's L1 copy was marked stale through the bus: stale-while-revalidate, not a fresh hit.
    let on_b = get(&mut b.svc, "/item").await;
    assert!(swr(&on_b), "{} {:?}", on_b.cache_status, on_b.body);
    // C holds the refresh lease, so B drops its stale copy and takes C's refresh from Redis.
    let start = Instant::now();
    loop {
        let got = get(&mut b.svc, "/item").await;
        if got.body == "v7" {
            assert!(
                got.cache_status.contains("detail=l2"),
                "{}",
                got.cache_status
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "B serves stale");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        origin.calls.load(Ordering::SeqCst),
        2,
        "the soft purge cost one origin call for the fleet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_bus_sequence_flushes_l1() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("gap");
    let origin = Origin::default();
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    warm(&mut a, &mut b, &url, &ns).await;
    let local = |got: &redis_support::Got| got.cache_status.starts_with("perf-cache; hit; ttl=");

    // Heartbeats come and go (interval 200 ms): consecutive numbers, no flush.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = get(&mut b.svc, "/item").await;
    assert!(local(&got), "B's L1 still holds it: {}", got.cache_status);

    // A thousand messages B never saw.
    let seq = format!("pc:{ns}:seq");
    redis_support::redis_cmd::<i64>(&url, &["INCRBY", &seq, "1000"])
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let got = get(&mut b.svc, "/item").await;
        if !local(&got) {
            assert!(
                got.cache_status.contains("detail=l2"),
                "{}",
                got.cache_status
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "B never noticed the gap"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "a gap in the bus sequence: B flushed its L1 after {:?}",
        start.elapsed()
    );
    assert!(b.store.bus_up(), "a gap is not an outage");
}
