//! The product routes behind [`perf_cache_layer::CacheLayer`].
//!
//! `GET /api/products` and `GET /api/products/{id}` are cached for 60 s (`Cache-Control: public,
//! max-age=60`) and tagged with `Surrogate-Key` (`products` and `product-{id}`); the cache adds a
//! strong `ETag`, answers `If-None-Match` with 304 and reports itself in `Cache-Status` and in a
//! `Server-Timing` entry.
//! `PUT /api/products/{id}` invalidates its own URI (RFC 9111 §4.4) and, once it succeeds, purges the
//! `products` tag so the catalogue is refetched too.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use perf_cache_layer::{CacheHandle, CacheLayer, TieredStore};
use perf_middleware::ServerTiming;

/// Wraps `routes` (the product routes) with the cache; with `redis`, an in-process L1 over that
/// Redis, so that a `PUT` on one instance invalidates every other.
///
/// # Errors
///
/// Invalid cache configuration or Redis URL.
pub(crate) fn products<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    redis: Option<&str>,
) -> Result<Router<S>, Box<dyn std::error::Error + Send + Sync>> {
    // Server-Timing on, like the showcase's perf-middleware: DevTools shows `cache;desc="hit"` next
    // to `total` and `app`.
    let mut builder = CacheLayer::builder().server_timing(ServerTiming::Always);
    if let Some(url) = redis {
        builder = builder.store(TieredStore::builder(url).namespace("showcase").build()?);
    }
    let (cache, handle) = builder.build_pair()?;
    Ok(routes
        .layer(middleware::from_fn(freshness))
        .layer(cache)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            purge_catalogue(handle.clone(), req, next)
        })))
}

/// Adds freshness and surrogate keys to successful product reads (inside the cache, so it sees them).
async fn freshness(req: Request, next: Next) -> Response {
    let id = req
        .uri()
        .path()
        .strip_prefix("/api/products/")
        .map(str::to_owned);
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    let mut res = next.run(req).await;
    if read && res.status().is_success() {
        let headers = res.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        let keys = id.map_or_else(
            || "products".to_owned(),
            |id| format!("products product-{id}"),
        );
        if let Ok(keys) = HeaderValue::from_str(&keys) {
            headers.insert("surrogate-key", keys);
        }
    }
    res
}

/// After a successful update, purges the catalogue (the product's own URI is invalidated by the cache).
async fn purge_catalogue(handle: CacheHandle, req: Request, next: Next) -> Response {
    let update = req.method() == Method::PUT;
    let res = next.run(req).await;
    if update
        && res.status().is_success()
        && let Err(err) = handle.purge_tag("products").await
    {
        tracing::warn!(%err, "cache purge failed");
    }
    res
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::{AppState, product, products as list, update_product};

    fn app() -> axum::Router {
        let routes = axum::Router::new()
            .route("/api/products", get(list))
            .route("/api/products/{id}", get(product).put(update_product));
        super::products(routes, None)
            .unwrap()
            .with_state(AppState::default())
    }

    async fn send(
        app: &axum::Router,
        req: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (parts.status, parts.headers, body)
    }

    fn get_req(path: &str, etag: Option<&str>) -> Request<Body> {
        let mut b = Request::get(path).header("host", "showcase");
        if let Some(etag) = etag {
            b = b.header("if-none-match", etag);
        }
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn products_are_cached_tagged_validated_and_purged_on_update() {
        let app = app();
        let (_, first, _) = send(&app, get_req("/api/products/1", None)).await;
        assert!(first["cache-status"].to_str().unwrap().contains("stored"));
        assert!(
            first.get("surrogate-key").is_none(),
            "surrogate keys stay inside"
        );
        let etag = first["etag"].to_str().unwrap().to_owned();
        let (status, hit, _) = send(&app, get_req("/api/products/1", Some(&etag))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(hit["cache-status"].to_str().unwrap().contains("hit"));
        assert_eq!(hit["server-timing"], r#"cache;desc="hit""#);
        send(&app, get_req("/api/products", None)).await;

        let put = Request::put("/api/products/1")
            .header("host", "showcase")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"price_cents": 5}"#))
            .unwrap();
        assert_eq!(send(&app, put).await.0, StatusCode::OK);
        let (status, after, body) = send(&app, get_req("/api/products/1", Some(&etag))).await;
        assert_eq!(status, StatusCode::OK, "the old ETag no longer matches");
        assert!(
            after["cache-status"]
                .to_str()
                .unwrap()
                .contains("fwd=uri-miss")
        );
        assert!(body.contains("\"price_cents\":5"));
        let (_, list, body) = send(&app, get_req("/api/products", None)).await;
        assert!(
            list["cache-status"]
                .to_str()
                .unwrap()
                .contains("fwd=uri-miss"),
            "catalogue purged by tag"
        );
        assert!(body.contains("\"price_cents\":5"));
    }
}
