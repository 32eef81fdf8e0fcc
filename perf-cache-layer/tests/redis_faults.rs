//! Redis failing under two instances: killed and restarted, stalled, flushed, evicting, and
//! holding corrupt or foreign bytes. Each test owns its `redis-server`.
#![cfg(feature = "redis")]

mod redis_support;

use std::time::Duration;

use perf_cache_layer::{CacheLayer, MemoryStore};
use redis_support::{
    Origin, Redis, Svc, buses_up, free_port, get, instance, l2_entries, namespace, redis_cmd,
    tiered,
};
use tokio::time::Instant;
use tower::util::BoxCloneService;

/// The read deadline every test configures, and the slack allowed on top for scheduling on a
/// shared machine (the origin answers at once).
const DEADLINE: Duration = Duration::from_millis(50);
const SLACK: Duration = Duration::from_millis(40);

/// Serves `n` requests round-robin over `paths`; returns requests per second.
async fn throughput(svc: &mut Svc, paths: &[String], n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let got = get(svc, &paths[i % paths.len()]).await;
        assert_eq!(got.status, 200);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_restarted_costs_nothing() {
    let mut redis = Redis::start(&[]).await;
    let url = redis.url();
    let ns = namespace("kill");
    let origin = Origin::default();
    let mut a = instance(
        tiered(&url, &ns).read_timeout(DEADLINE).build().unwrap(),
        &origin,
    );
    let mut b = instance(
        tiered(&url, &ns).read_timeout(DEADLINE).build().unwrap(),
        &origin,
    );
    let l1_only = CacheLayer::builder()
        .store(MemoryStore::default())
        .build()
        .unwrap();
    let mut c: Svc = BoxCloneService::new(tower::Layer::layer(&l1_only, origin.service()));
    buses_up(&[&a.store, &b.store]).await;
    let warm: Vec<String> = (0..32).map(|i| format!("/warm{i}")).collect();
    for p in &warm {
        get(&mut a.svc, p).await;
        get(&mut c, p).await;
    }

    redis.kill();
    let mut worst = Duration::ZERO;
    let mut errors = 0;
    for i in 0..400 {
        let path = if i % 2 == 0 {
            format!("/cold{i}")
        } else {
            warm[i % 32].clone()
        };
        let start = Instant::now();
        let got = get(&mut a.svc, &path).await;
        worst = worst.max(start.elapsed());
        errors += usize::from(got.status != 200);
    }
    println!("Redis killed: 400 requests, {errors} errors, slowest {worst:?}");
    assert_eq!(errors, 0);
    assert!(worst <= DEADLINE + SLACK, "a request waited {worst:?}");
    assert!(!a.store.redis_up(), "the breaker opened");

    // With the breaker open, L1 hits cost what they cost without Redis. Batches alternate, so
    // that load from other processes on the machine falls on both sides alike.
    let (mut tiered_time, mut l1_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..40 {
        let start = Instant::now();
        throughput(&mut c, &warm, 1_000).await;
        l1_time += start.elapsed();
        let start = Instant::now();
        throughput(&mut a.svc, &warm, 1_000).await;
        tiered_time += start.elapsed();
    }
    let ratio = l1_time.as_secs_f64() / tiered_time.as_secs_f64();
    println!(
        "Redis down: 40,000 L1 hits each, tiered {tiered_time:?}, L1-only {l1_time:?}, throughput ratio {ratio:.3}"
    );
    // The acceptance figure (>= 0.95) is measured in release by `cargo xtask bench`; this debug
    // build on a shared machine only guards against a gross regression.
    assert!(ratio >= 0.85, "ratio {ratio:.3}");

    // Restarted (empty) on the same port: purges and L2 hits resume without new instances.
    redis.restart().await;
    let start = Instant::now();
    while a.handle.purge_tag("items").await.is_err() || !b.store.bus_up() || !a.store.bus_up() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "Redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "Redis restarted: purges reach the fleet after {:?}",
        start.elapsed()
    );
    // L2 writes resume. (A response is not written to Redis when its request began within
    // `clock_skew` of a purge, nor kept when it began before its instance resubscribed: try new
    // paths until one lands.)
    let pattern = format!("pc:{ns}:e:*");
    let mut path = String::new();
    for n in 0.. {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no L2 write after the restart"
        );
        path = format!("/after{n}");
        get(&mut a.svc, &path).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let keys: Vec<String> = redis.cmd(&["KEYS", &pattern]).await;
        if !keys.is_empty() {
            break;
        }
    }
    println!(
        "Redis restarted: L2 written again after {:?}",
        start.elapsed()
    );
    let calls = origin.calls.load(std::sync::atomic::Ordering::SeqCst);
    let hit = get(&mut b.svc, &path).await;
    assert!(hit.cache_status.contains("hit"), "{}", hit.cache_status);
    assert_eq!(
        origin.calls.load(std::sync::atomic::Ordering::SeqCst),
        calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_made_while_redis_was_stalled_reaches_the_fleet_when_it_is_back() {
    let redis = Redis::start(&[]).await;
    let url = redis.url();
    let ns = namespace("replay");
    let origin = Origin::default();
    let mut a = instance(
        tiered(&url, &ns).read_timeout(DEADLINE).build().unwrap(),
        &origin,
    );
    let mut b = instance(
        tiered(&url, &ns).read_timeout(DEADLINE).build().unwrap(),
        &origin,
    );
    buses_up(&[&a.store, &b.store]).await;
    get(&mut a.svc, "/item").await;
    l2_entries(&url, &ns, 1).await;
    assert_eq!(get(&mut b.svc, "/item").await.body, "v0");

    // Redis stops answering (its data kept) while A purges: only A's L1 is purged, and A says so.
    let sleeper = tokio::spawn({
        let url = url.clone();
        async move { redis_cmd::<()>(&url, &["DEBUG", "SLEEP", "1.5"]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A few cold misses time out and open A's breaker, so the purge is not even sent (a purge
    // that merely times out may still be executed by Redis when it wakes).
    for i in 0.. {
        get(&mut a.svc, &format!("/cold{i}")).await;
        if !a.store.redis_up() {
            break;
        }
    }
    origin.version.store(7, std::sync::atomic::Ordering::SeqCst);
    let err = a
        .handle
        .purge_tag("items")
        .await
        .expect_err("Redis is stalled");
    assert!(err.to_string().contains("queued for replay"), "{err}");
    assert_eq!(a.store.pending_purges(), 1);
    let _ = sleeper.await.unwrap();
    while redis_cmd::<String>(&url, &["PING"]).await.is_err() {}

    // Redis answers again. B flushes its L1 when its bus resubscribes, and would then read the
    // old entry from Redis; A's replayed purge has invalidated it there.
    let start = Instant::now();
    loop {
        let got = get(&mut b.svc, "/item").await;
        if got.body == "v7" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B still serves the purged body: {}",
            got.cache_status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "Redis stalled during a purge: B stops serving the purged body {:?} after Redis is back",
        start.elapsed()
    );
    assert_eq!(a.store.pending_purges(), 0, "the replay was taken");
    // Stays purged, in Redis too: a new instance does not read the old entry.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&mut b.svc, "/item").await.body, "v7");
    }
    let mut c = instance(tiered(&url, &ns).build().unwrap(), &origin);
    assert_eq!(get(&mut c.svc, "/item").await.body, "v7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_opens_the_breaker_within_the_deadline() {
    let redis = Redis::start(&[]).await;
    let url = redis.url();
    let ns = namespace("stall");
    let origin = Origin::default();
    let mut a = instance(
        tiered(&url, &ns).read_timeout(DEADLINE).build().unwrap(),
        &origin,
    );
    get(&mut a.svc, "/first").await;
    l2_entries(&url, &ns, 1).await;

    let sleeper = tokio::spawn({
        let url = url.clone();
        async move { redis_cmd::<()>(&url, &["DEBUG", "SLEEP", "2"]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut worst = Duration::ZERO;
    for i in 0..50 {
        let start = Instant::now();
        let got = get(&mut a.svc, &format!("/stalled{i}")).await;
        worst = worst.max(start.elapsed());
        assert_eq!(got.status, 200);
    }
    println!("Redis stalled: 50 cold requests, slowest {worst:?}");
    assert!(!a.store.redis_up(), "the breaker opened");
    assert!(worst <= DEADLINE + SLACK, "a request waited {worst:?}");
    // The sleeping connection's own client gives up before Redis wakes; only the join matters.
    let _ = sleeper.await.unwrap();
}

/// Waits (up to 5 s) until a stored variant of `key` holds `body` (the encoding ends with the raw
/// body): the background write of the last refetch has landed, and nothing later overwrites what
/// the test writes next.
async fn landed(redis: &Redis, key: &str, body: &str) {
    for _ in 0..500 {
        let fields: Vec<String> = redis.cmd(&["HKEYS", key]).await;
        for f in fields.iter().filter(|f| f.starts_with("v:")) {
            let value: Vec<u8> = redis.cmd(&["HGET", key, f]).await;
            if value.ends_with(body.as_bytes()) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the refetched `{body}` never reached Redis under {key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_and_corrupt_bytes_are_misses_never_a_purged_entry() {
    let redis = Redis::start(&[]).await;
    let url = redis.url();
    let ns = namespace("bad");
    let origin = Origin::default();
    let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let fresh_b = || instance(tiered(&url, &ns).build().unwrap(), &origin);
    get(&mut a.svc, "/item").await;
    l2_entries(&url, &ns, 1).await;

    // FLUSHALL: a miss.
    redis.cmd::<()>(&["FLUSHALL"]).await;
    let mut b = fresh_b();
    let got = get(&mut b.svc, "/item").await;
    assert_eq!((got.status, &got.body[..]), (200, &b"v0"[..]));
    assert!(
        got.cache_status.contains("miss") || got.cache_status.contains("fwd"),
        "{}",
        got.cache_status
    );

    // A purged tag whose state is then evicted: the orphaned entry never comes back.
    let keys = l2_entries(&url, &ns, 1).await;
    a.handle.purge_tag("items").await.unwrap();
    for tag_state in redis
        .cmd::<Vec<String>>(&["KEYS", &format!("pc:{ns}:t:*")])
        .await
    {
        redis.cmd::<()>(&["DEL", &tag_state]).await;
    }
    assert_eq!(
        redis.cmd::<i64>(&["EXISTS", &keys[0]]).await,
        1,
        "the orphan is still there"
    );
    origin.version.store(1, std::sync::atomic::Ordering::SeqCst);
    let mut b = fresh_b();
    assert_eq!(get(&mut b.svc, "/item").await.body, "v1");

    // Corrupt, foreign-version and wrong-type values: misses, never a 5xx.
    let keys = l2_entries(&url, &ns, 1).await;
    landed(&redis, &keys[0], "v1").await;
    for (i, bad) in ["garbage", "PL2\u{2}future", "PL2\u{1}\u{ff}\u{ff}"]
        .iter()
        .enumerate()
    {
        let fields: Vec<String> = redis.cmd(&["HKEYS", &keys[0]]).await;
        for f in fields.iter().filter(|f| f.starts_with("v:")) {
            redis.cmd::<()>(&["HSET", &keys[0], f, bad]).await;
        }
        origin
            .version
            .store(10 + i, std::sync::atomic::Ordering::SeqCst);
        let mut b = fresh_b();
        let got = get(&mut b.svc, "/item").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, format!("v{}", 10 + i));
        // The refetched entry goes to Redis through the background queue: let it land before the
        // next round corrupts the entry again (else that valid write lands after the corruption).
        landed(&redis, &keys[0], &format!("v{}", 10 + i)).await;
    }
    redis.cmd::<()>(&["DEL", &keys[0]]).await;
    redis
        .cmd::<()>(&["SET", &keys[0], "a string, not a hash"])
        .await;
    origin
        .version
        .store(20, std::sync::atomic::Ordering::SeqCst);
    let mut b = fresh_b();
    assert_eq!(get(&mut b.svc, "/item").await.body, "v20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_under_a_small_maxmemory_is_a_miss() {
    for policy in ["allkeys-lru", "noeviction"] {
        let redis = Redis::start(&["--maxmemory", "2mb", "--maxmemory-policy", policy]).await;
        let url = redis.url();
        let ns = namespace("evict");
        let origin = Origin {
            pad: 64 << 10,
            ..Origin::default()
        };
        let mut a = instance(tiered(&url, &ns).build().unwrap(), &origin);
        let paths: Vec<String> = (0..96).map(|i| format!("/big{i}")).collect();
        for p in &paths {
            assert_eq!(get(&mut a.svc, p).await.status, 200);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.handle.purge_tag("items").await.ok();
        origin.version.store(1, std::sync::atomic::Ordering::SeqCst);
        let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
        for p in &paths {
            let got = get(&mut b.svc, p).await;
            assert_eq!(got.status, 200, "{policy}");
            assert!(
                got.body.starts_with(b"v1"),
                "{policy}: a purged entry came back"
            );
        }
        assert!(
            b.store.redis_up(),
            "{policy}: out-of-memory replies do not open the breaker"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_and_serves_with_redis_down_then_uses_it_when_it_comes() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let ns = namespace("late");
    let origin = Origin::default();
    let store = tiered(&url, &ns)
        .read_timeout(DEADLINE)
        .build()
        .expect("builds without Redis");
    let mut a = instance(store, &origin);
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let start = Instant::now();
        assert_eq!(get(&mut a.svc, &format!("/early{i}")).await.status, 200);
        worst = worst.max(start.elapsed());
    }
    println!("Redis absent at start: slowest of 20 requests {worst:?}");
    assert!(worst <= DEADLINE + SLACK, "a request waited {worst:?}");

    let _redis = Redis::start_on(port, &[]).await;
    let mut b = instance(tiered(&url, &ns).build().unwrap(), &origin);
    let start = Instant::now();
    let mut n = 0;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "L2 never came online"
        );
        n += 1;
        let path = format!("/late{n}");
        get(&mut a.svc, &path).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if get(&mut b.svc, &path).await.cache_status.contains("hit") {
            break;
        }
    }
    println!(
        "Redis started later: A's entries reach B through L2 after {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_shed_misses_redis_down_answers_misses_503_and_serves_l1_hits() {
    let mut redis = Redis::start(&[]).await;
    let url = redis.url();
    let ns = namespace("shed");
    let origin = Origin::default();
    let store = tiered(&url, &ns)
        .read_timeout(DEADLINE)
        .shed_misses(true)
        .build()
        .unwrap();
    let mut a = instance(store, &origin);
    buses_up(&[&a.store]).await;
    assert_eq!(get(&mut a.svc, "/kept").await.status, 200);

    redis.kill();
    // Until the breaker opens, misses go to the origin (fail-open); then they are shed (the miss
    // whose L2 read opens it included).
    let mut i = 0;
    while a.store.redis_up() {
        i += 1;
        let status = get(&mut a.svc, &format!("/early{i}")).await.status;
        assert!(status == 200 || !a.store.redis_up(), "{status}");
    }
    let calls = origin.calls.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..20 {
        let start = Instant::now();
        let got = get(&mut a.svc, &format!("/cold{i}")).await;
        assert!(start.elapsed() <= DEADLINE + SLACK);
        assert_eq!(got.status, 503);
        assert_eq!(got.cache_status, "perf-cache; fwd=uri-miss; detail=shed");
        let hit = get(&mut a.svc, "/kept").await;
        assert_eq!((hit.status, &hit.body[..]), (200, &b"v0"[..]));
    }
    assert_eq!(
        origin.calls.load(std::sync::atomic::Ordering::SeqCst),
        calls,
        "no miss reached the origin while the breaker was open"
    );

    // Redis back: after the breaker's probe, misses go to the origin again.
    redis.restart().await;
    let start = Instant::now();
    while get(&mut a.svc, "/after").await.status != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "still shedding");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "shed_misses: misses reach the origin again {:?} after the restart",
        start.elapsed()
    );
}
