//! The showcase application: a small JSON API with every tower-perf layer stacked.
//!
//! [`app`] builds the router; the binary serves it. Integration tests and the xtask use the same
//! router, so what they check is what `cargo run -p showcase` serves.

mod cache;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use perf_middleware::page::PerfPage;
use perf_middleware::{PerfLayer, ServerTiming, prometheus};
use serde::{Deserialize, Serialize};

pub mod budget;
pub mod db;
pub mod otel;
pub mod page;

/// The endpoints the showcase serves, printed at start: (method, path, description).
pub const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/api/users/{id}", "fast JSON"),
    ("GET", "/api/slow?ms=N", "sleeps N ms (at most 30000)"),
    ("GET", "/api/products", "JSON catalogue"),
    ("GET", "/api/products/{id}", "one product"),
    ("PUT", "/api/products/{id}", "update a product (JSON body)"),
    (
        "GET",
        "/api/authors/n-plus-one",
        "SQLite: an N+1 loop (detected)",
    ),
    (
        "GET",
        "/api/authors/joined",
        "SQLite: the fixed twin, one JOIN",
    ),
    (
        "GET",
        "/api/authors/concurrent",
        "SQLite: join_all fan-out (not N+1)",
    ),
    ("GET", "/metrics", "Prometheus metrics"),
    (
        "GET",
        "/perf/budgets",
        "performance budget report (?format=text)",
    ),
    (
        "GET",
        "/perf",
        "live performance page (URL with its token below)",
    ),
];

/// Showcase settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Slow-request log threshold.
    pub slow_threshold: Duration,
    /// A Redis URL: the product cache becomes a `TieredStore` (in-process L1 over Redis, shared
    /// with every instance given the same URL). `None` keeps the in-memory store.
    pub redis: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            slow_threshold: Duration::from_millis(500),
            redis: None,
        }
    }
}

/// A catalogue product.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    /// Identifier.
    pub id: u32,
    /// Display name.
    pub name: String,
    /// Price in cents.
    pub price_cents: u64,
}

/// A product update: every field optional.
#[derive(Debug, Deserialize)]
pub struct ProductUpdate {
    name: Option<String>,
    price_cents: Option<u64>,
}

/// Shared application state.
#[derive(Debug, Clone)]
pub struct AppState {
    products: Arc<RwLock<BTreeMap<u32, Product>>>,
}

impl Default for AppState {
    fn default() -> Self {
        let products = (1..=20)
            .map(|id| {
                (
                    id,
                    Product {
                        id,
                        name: format!("Product {id}"),
                        price_cents: 100 * u64::from(id) + 99,
                    },
                )
            })
            .collect();
        Self {
            products: Arc::new(RwLock::new(products)),
        }
    }
}

/// Builds the showcase router with every layer.
///
/// # Errors
///
/// Invalid layer configuration, or a foreign global metrics recorder.
pub fn app(config: Config) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    Ok(app_and_page(config)?.0)
}

/// [`app`], and the `/perf` page it mounts (print [`PerfPage::url_path`] once at start).
///
/// # Errors
///
/// As [`app`].
pub fn app_and_page(
    config: Config,
) -> Result<(Router, PerfPage), Box<dyn std::error::Error + Send + Sync>> {
    let handle = prometheus::install()?;
    let budgets = page::BudgetSlot::default();
    let page = page::build(handle.clone(), budgets.clone())?;
    let perf = PerfLayer::builder()
        .slow_threshold(config.slow_threshold)
        .server_timing(ServerTiming::Always)
        .page(&page)
        .build()?;
    let catalogue = Router::new()
        .route("/api/products", get(products))
        .route("/api/products/{id}", get(product).put(update_product));
    let api = Router::new()
        .route("/api/users/{id}", get(user))
        .route("/api/slow", get(slow))
        .merge(cache::products(catalogue, config.redis.as_deref())?)
        .with_state(AppState::default())
        .merge(db::routes()?);
    let (api, budget_handle) = budget::wrap(api.layer(perf))?;
    budgets.set(budget_handle);
    // Merged last: the page's own requests are neither measured nor budgeted.
    let router = api
        .route_service("/metrics", prometheus::MetricsService::new(handle))
        .merge(page.router());
    Ok((router, page))
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
    email: String,
}

async fn user(Path(id): Path<u64>) -> Json<User> {
    Json(User {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.com"),
    })
}

#[derive(Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

async fn slow(Query(p): Query<SlowParams>) -> Json<serde_json::Value> {
    let ms = p.ms.unwrap_or(100).min(30_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(serde_json::json!({ "slept_ms": ms }))
}

async fn products(State(s): State<AppState>) -> Json<Vec<Product>> {
    let products = s.products.read().unwrap_or_else(|e| e.into_inner());
    Json(products.values().cloned().collect())
}

async fn product(
    State(s): State<AppState>,
    Path(id): Path<u32>,
) -> Result<Json<Product>, StatusCode> {
    let products = s.products.read().unwrap_or_else(|e| e.into_inner());
    products
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

async fn update_product(
    State(s): State<AppState>,
    Path(id): Path<u32>,
    Json(u): Json<ProductUpdate>,
) -> Result<Json<Product>, StatusCode> {
    let mut products = s.products.write().unwrap_or_else(|e| e.into_inner());
    let p = products.get_mut(&id).ok_or(StatusCode::NOT_FOUND)?;
    if let Some(name) = u.name {
        p.name = name;
    }
    if let Some(price) = u.price_cents {
        p.price_cents = price;
    }
    Ok(Json(p.clone()))
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
