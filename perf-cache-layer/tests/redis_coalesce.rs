//! Cold misses coalesced across instances (`TieredStoreBuilder::coalesce_misses`), against a real
//! `redis-server`: two instances, an origin held at a gate, and counted origin calls.
#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis_support::{
    Got, Instance, Origin, buses_up, free_port, get, instance, namespace, shared_or_own,
};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A slow origin: every `GET` waits at the gate after it is counted.
fn gated(cache_control: &'static str) -> (Origin, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let origin = Origin {
        gate: Some(gate.clone()),
        cache_control,
        ..Origin::default()
    };
    (origin, gate)
}

fn two(url: &str, ns: &str, origin: &Origin, max_wait: Option<Duration>) -> (Instance, Instance) {
    let build = || {
        let builder = redis_support::tiered(url, ns);
        let builder = match max_wait {
            Some(wait) => builder.coalesce_misses(wait),
            None => builder,
        };
        instance(builder.build().unwrap(), origin)
    };
    (build(), build())
}

fn spawn_get(i: &Instance) -> JoinHandle<Got> {
    let mut svc = i.svc.clone();
    tokio::spawn(async move { get(&mut svc, "/cold").await })
}

/// Waits until the origin has seen `n` calls.
async fn origin_calls(origin: &Origin, n: usize) {
    for _ in 0..1000 {
        if origin.calls.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the origin never saw {n} calls");
}

/// A's cold miss is at the origin (holding the fill lease) when B's arrives.
async fn a_then_b(
    a: &Instance,
    b: &Instance,
    origin: &Origin,
) -> (JoinHandle<Got>, JoinHandle<Got>) {
    let on_a = spawn_get(a);
    origin_calls(origin, 1).await;
    let on_b = spawn_get(b);
    // Long enough for B to reach the origin, were it not waiting for A.
    tokio::time::sleep(Duration::from_millis(100)).await;
    (on_a, on_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_miss_on_two_instances_calls_the_origin_once() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("fill");
    let (origin, gate) = gated("");
    let (a, b) = two(&url, &ns, &origin, Some(Duration::from_secs(5)));
    buses_up(&[&a.store, &b.store]).await;
    let mut bus = redis::Client::open(url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    bus.subscribe(format!("pc:{ns}:bus")).await.unwrap();

    let (on_a, on_b) = a_then_b(&a, &b, &origin).await;
    assert_eq!(
        origin.calls.load(Ordering::SeqCst),
        1,
        "B waits for A's fill"
    );
    let released = Instant::now();
    gate.add_permits(100);
    let (on_a, on_b) = (on_a.await.unwrap(), on_b.await.unwrap());
    println!(
        "B served A's fill {:?} after the origin answered",
        released.elapsed()
    );
    // The release told the waiting instances (an unnumbered `Filled` message naming the key).
    let mut messages = bus.on_message();
    let told = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let msg = messages.next().await.expect("subscribed");
            let payload = msg.get_payload_bytes();
            if payload.windows(5).any(|w| w == b"/cold") {
                return payload.to_vec();
            }
        }
    })
    .await
    .expect("a fill-ended message on the bus");
    assert!(!told.contains(&b'#'), "unnumbered: {told:?}");
    assert_eq!((on_a.status, on_b.status), (200, 200));
    assert_eq!((&on_a.body[..], &on_b.body[..]), (&b"v0"[..], &b"v0"[..]));
    assert!(
        on_a.cache_status.contains("stored"),
        "{}",
        on_a.cache_status
    );
    assert!(
        on_b.cache_status.starts_with("perf-cache; hit; detail=l2"),
        "B serves A's fill from Redis: {}",
        on_b.cache_status
    );
    assert_eq!(
        origin.calls.load(Ordering::SeqCst),
        1,
        "one origin call for the fleet"
    );
    let lease = format!("pc:{ns}:fill:*");
    let left: Vec<String> = redis_support::redis_cmd(&url, &["KEYS", &lease])
        .await
        .unwrap();
    assert!(left.is_empty(), "the lease is released: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_each_instance_calls_the_origin() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("nofill");
    let (origin, gate) = gated("");
    let (a, b) = two(&url, &ns, &origin, None);

    let (on_a, on_b) = a_then_b(&a, &b, &origin).await;
    gate.add_permits(100);
    let (on_a, on_b) = (on_a.await.unwrap(), on_b.await.unwrap());
    assert_eq!((&on_a.body[..], &on_b.body[..]), (&b"v0"[..], &b"v0"[..]));
    assert_eq!(origin.calls.load(Ordering::SeqCst), 2, "off by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_that_stores_nothing_sends_the_others_to_the_origin_when_it_ends() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("nostore");
    let (origin, gate) = gated("no-store");
    // The wait is long: B must go to the origin when A's fill ends, not when the wait does.
    let (a, b) = two(&url, &ns, &origin, Some(Duration::from_secs(60)));

    let (on_a, on_b) = a_then_b(&a, &b, &origin).await;
    assert_eq!(
        origin.calls.load(Ordering::SeqCst),
        1,
        "B waits for A's fill"
    );
    gate.add_permits(100);
    let on_a = on_a.await.unwrap();
    assert!(
        on_a.cache_status.contains("detail=no-store"),
        "{}",
        on_a.cache_status
    );
    let on_b = tokio::time::timeout(Duration::from_secs(10), on_b)
        .await
        .expect("B stops waiting when A's fill ends without an entry")
        .unwrap();
    assert_eq!((on_b.status, &on_b.body[..]), (200, &b"v0"[..]));
    assert!(
        on_b.cache_status.contains("fwd=uri-miss"),
        "{}",
        on_b.cache_status
    );
    assert_eq!(origin.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_both_instances_go_to_the_origin() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let ns = namespace("down");
    let (origin, gate) = gated("");
    let (a, b) = two(&url, &ns, &origin, Some(Duration::from_secs(60)));

    let (on_a, on_b) = (spawn_get(&a), spawn_get(&b));
    origin_calls(&origin, 2).await;
    gate.add_permits(100);
    for got in [on_a.await.unwrap(), on_b.await.unwrap()] {
        assert_eq!((got.status, &got.body[..]), (200, &b"v0"[..]));
    }
    assert_eq!(origin.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_slower_than_max_wait_sends_the_others_to_the_origin() {
    let (url, _own) = shared_or_own().await;
    let ns = namespace("slowfill");
    let (origin, gate) = gated("");
    let (a, b) = two(&url, &ns, &origin, Some(Duration::from_millis(200)));

    let on_a = spawn_get(&a);
    origin_calls(&origin, 1).await;
    let on_b = spawn_get(&b);
    // A's origin call is still held: B gives up waiting and calls the origin itself.
    origin_calls(&origin, 2).await;
    gate.add_permits(100);
    for got in [on_a.await.unwrap(), on_b.await.unwrap()] {
        assert_eq!((got.status, &got.body[..]), (200, &b"v0"[..]));
        assert!(
            got.cache_status.contains("fwd=uri-miss"),
            "{}",
            got.cache_status
        );
    }
    assert_eq!(origin.calls.load(Ordering::SeqCst), 2);
}
