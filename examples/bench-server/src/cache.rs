//! Bench variants for perf-cache-layer.
//!
//! - `cache`: every route behind [`perf_cache_layer::CacheLayer`] with a 1 h default TTL (the
//!   handlers send no freshness headers), so `/static` measures the hit path against a bare static
//!   handler and `/work` a cached 1 ms handler against the uncached one.
//! - `cache-outer`: the same layer around the whole Router (the placement the crate's README
//!   recommends for a whole-app cache: a hit skips routing).
//! - `peer-http-cache-tower-server`: the same routes behind `http-cache-tower-server` 0.2 with its
//!   moka manager (100 000 entries) and a 1 h default TTL with `cache_by_default`.
//!
//! The tiered variants put a [`TieredStore`] on the Redis at `REDIS_URL` (which
//! `cargo xtask bench` sets) under the same layer:
//! - `cache-tiered`: the default L1 (64 MiB), Redis up: a hit is an L1 hit.
//! - `cache-tiered-l2`: a 16 KiB L1 (about ten 1 KiB entries), loaded on 1,000 URLs in turn, so
//!   nearly every hit misses L1 and is read from Redis (then promoted into L1, as a cold L1 does).
//!   It also serves `/metrics`, for the xtask to check that the hits came from Redis.
//! - `cache-redis-down`: the default L1, `REDIS_URL` a closed port: the breaker opens on the first
//!   misses, and every hit is an L1 hit with the invalidation bus down.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::get;
use perf_cache_layer::{CacheLayer, MemoryStore, TieredStore};
use tower::ServiceBuilder;

/// The service of a variant that wraps the whole Router, if this module defines it.
pub(crate) fn outer(
    name: &str,
) -> Option<
    impl tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static,
> {
    match name {
        "cache-outer" => {
            let layer = CacheLayer::builder()
                .default_ttl(Duration::from_secs(3600))
                .build()
                .ok()?;
            // `with_state` turns the handlers into routes once, as `axum::serve` does.
            Some(
                ServiceBuilder::new()
                    .map_response(axum::response::IntoResponse::into_response)
                    .layer(layer)
                    .service(crate::routes().with_state::<()>(())),
            )
        }
        _ => None,
    }
}

/// The router of variant `name`, if this module defines it.
pub(crate) fn variant(name: &str) -> Option<axum::Router> {
    match name {
        "cache" => {
            let layer = CacheLayer::builder()
                .default_ttl(Duration::from_secs(3600))
                .build()
                .ok()?;
            Some(crate::routes().layer(layer))
        }
        "cache-tiered" | "cache-redis-down" => {
            Some(crate::routes().layer(tiered(MemoryStore::default())?))
        }
        "cache-tiered-l2" => {
            let metrics = perf_middleware::prometheus::install().ok()?;
            let l1 = MemoryStore::builder().max_bytes(16 << 10).build();
            Some(
                crate::routes()
                    .layer(tiered(l1)?)
                    .route("/metrics", get(move || async move { metrics.render() })),
            )
        }
        "peer-http-cache-tower-server" => {
            let manager = http_cache::MokaManager::new(moka_cache());
            let options = http_cache_tower_server::ServerCacheOptions {
                default_ttl: Some(Duration::from_secs(3600)),
                cache_by_default: true,
                ..Default::default()
            };
            let layer =
                http_cache_tower_server::ServerCacheLayer::new(manager).with_options(options);
            Some(
                crate::routes().layer(
                    ServiceBuilder::new()
                        .layer(HandleErrorLayer::new(|_: axum::BoxError| async {
                            StatusCode::INTERNAL_SERVER_ERROR
                        }))
                        .layer(layer),
                ),
            )
        }
        _ => None,
    }
}

/// The `cache` layer over a [`TieredStore`] with L1 `l1` on the Redis at `REDIS_URL`.
fn tiered(l1: MemoryStore) -> Option<CacheLayer> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("the tiered variants need REDIS_URL (`cargo xtask bench` sets it)");
        return None;
    };
    let store = TieredStore::builder(url)
        .namespace("bench")
        .l1(l1)
        .build()
        .map_err(|e| eprintln!("TieredStore: {e}"))
        .ok()?;
    CacheLayer::builder()
        .default_ttl(Duration::from_secs(3600))
        .store(store)
        .build()
        .ok()
}

fn moka_cache() -> moka::future::Cache<String, std::sync::Arc<Vec<u8>>> {
    moka::future::Cache::new(100_000)
}
