//! Bench variants for perf-cache-layer.
//!
//! - `cache`: every route behind [`perf_cache_layer::CacheLayer`] with a 1 h default TTL (the
//!   handlers send no freshness headers), so `/static` measures the hit path against a bare static
//!   handler and `/work` a cached 1 ms handler against the uncached one.
//! - `cache-outer`: the same layer around the whole Router (the placement the crate's README
//!   recommends for a whole-app cache: a hit skips routing).
//! - `peer-http-cache-tower-server`: the same routes behind `http-cache-tower-server` 0.2 with its
//!   moka manager (100 000 entries) and a 1 h default TTL with `cache_by_default`.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use perf_cache_layer::CacheLayer;
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

fn moka_cache() -> moka::future::Cache<String, std::sync::Arc<Vec<u8>>> {
    moka::future::Cache::new(100_000)
}
