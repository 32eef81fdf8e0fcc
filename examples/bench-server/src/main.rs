//! One server binary serving the same routes in several variants, for `cargo xtask bench`:
//! bare axum, behind tower-perf layers, and behind the peer crates.
//!
//! `bench-server --variant NAME --listen ADDR`. Every variant serves `GET /json` (small JSON),
//! `GET /static` (a fixed 1 KiB text body) and `GET /work` (sleeps 1 ms, then JSON) and `GET /cpu` (1 ms of CPU work, then JSON).

mod budget;
mod cache;
mod otel;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Variant to serve (see `--help` of `cargo xtask bench` for the list).
    #[arg(long)]
    variant: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3900")]
    listen: SocketAddr,
}

/// A fixed 1 KiB body for `/static`.
pub(crate) static STATIC_BODY: &str = include_str!("static.txt");

/// The routes every variant serves, without any layer.
pub(crate) fn routes() -> Router {
    routes_recorded(&mut perf_middleware::RouteTable::builder())
}

/// [`routes`], recording their templates for a layer placed around the whole router.
fn routes_recorded(t: &mut perf_middleware::RouteTableBuilder) -> Router {
    Router::new()
        .route(t.add("/json"), get(json))
        .route(t.add("/static"), get(|| async { STATIC_BODY }))
        .route(t.add("/work"), get(work))
        .route(t.add("/cpu"), get(cpu))
}

/// `perf` placed around the whole router (no per-route layer), route templates from a
/// `RouteTable` recorded while building it.
fn perf_outer() -> Option<perf_middleware::PerfRouter> {
    perf_middleware::prometheus::install().ok()?;
    let mut table = perf_middleware::RouteTable::builder();
    let router = routes_recorded(&mut table);
    let layer = perf_middleware::PerfLayer::builder()
        .slow_threshold(Duration::from_millis(500))
        .route_table(table.build().ok()?)
        .build()
        .ok()?;
    Some(layer.around(router))
}

/// A reference, not a product: the `metrics-exporter-prometheus` work that perf-middleware's
/// metrics need per request and nothing else — two clock readings, the active-requests gauge up
/// and down, the duration and response-size histogram samples on pre-resolved handles — in a
/// `Router::layer`, with no body tracking, no route lookup and no slow log.
fn metrics_alone() -> Option<Router> {
    use perf_middleware::metrics as m;
    perf_middleware::prometheus::install().ok()?;
    let labels = [
        (m::LABEL_METHOD, "GET"),
        (m::LABEL_ROUTE, "/json"),
        (m::LABEL_STATUS, "200"),
        (m::LABEL_SCHEME, "http"),
    ];
    let active = metrics::gauge!(m::ACTIVE_REQUESTS, &labels[..1]);
    let duration = metrics::histogram!(m::REQUEST_DURATION, &labels);
    let size = metrics::histogram!(m::RESPONSE_BODY_SIZE, &labels);
    let layer = tower::layer::layer_fn(move |inner| {
        let (active, duration, size) = (active.clone(), duration.clone(), size.clone());
        tower::ServiceBuilder::new()
            .map_future(move |fut| {
                let (active, duration, size) = (active.clone(), duration.clone(), size.clone());
                let start = tokio::time::Instant::now();
                active.increment(1);
                async move {
                    let res: Result<axum::response::Response, std::convert::Infallible> = fut.await;
                    if let Ok(r) = &res {
                        let bytes = http_body::Body::size_hint(r.body()).exact().unwrap_or(0);
                        size.record(bytes as f64);
                    }
                    duration.record(start.elapsed().as_secs_f64());
                    active.decrement(1);
                    res
                }
            })
            .service(inner)
    });
    Some(routes().layer(layer))
}

async fn json() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "id": 1, "name": "Ada Lovelace", "email": "ada@example.com" }))
}

/// 1 ms of CPU work on the request's thread: an expensive handler (rendering, a query plan...).
async fn cpu() -> axum::Json<serde_json::Value> {
    #[expect(
        clippy::disallowed_types,
        reason = "a busy loop needs the wall clock, not tokio's"
    )]
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(1) {
        for i in 0..1000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    axum::Json(serde_json::json!({ "id": 1, "digest": x }))
}

async fn work() -> axum::Json<serde_json::Value> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    axum::Json(serde_json::json!({ "id": 1, "computed": true }))
}

fn variant(name: &str) -> Option<Router> {
    let router = match name {
        "bare" => routes(),
        // A reference: an identity layer through `Router::layer` (what axum's per-route layering
        // costs by itself, whatever the layer does).
        "noop-layer" => routes().layer(tower::layer::layer_fn(|inner| inner)),
        "metrics-alone" => metrics_alone()?,
        "perf" => {
            perf_middleware::prometheus::install().ok()?;
            let layer = perf_middleware::PerfLayer::builder()
                .slow_threshold(Duration::from_millis(500))
                .build()
                .ok()?;
            routes().layer(layer)
        }
        "perf-server-timing" => {
            perf_middleware::prometheus::install().ok()?;
            let layer = perf_middleware::PerfLayer::builder()
                .slow_threshold(Duration::from_millis(500))
                .server_timing(perf_middleware::ServerTiming::Always)
                .build()
                .ok()?;
            routes().layer(layer)
        }
        "perf-page" => {
            perf_middleware::prometheus::install().ok()?;
            let page = perf_middleware::page::PerfPage::builder(
                perf_middleware::page::Protection::loopback_only(),
            )
            .build()
            .ok()?;
            let layer = perf_middleware::PerfLayer::builder()
                .slow_threshold(Duration::from_millis(500))
                .server_timing(perf_middleware::ServerTiming::Always)
                .page(&page)
                .build()
                .ok()?;
            routes().layer(layer).merge(page.router())
        }
        "peer-tower-http-trace" => {
            // A typical production setup: INFO-level fmt subscriber, TraceLayer's DEBUG events filtered out.
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_writer(std::io::sink)
                .init();
            routes().layer(tower_http::trace::TraceLayer::new_for_http())
        }
        "peer-axum-prometheus" => {
            let (layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            routes()
                .layer(layer)
                .route("/metrics", get(move || async move { handle.render() }))
        }
        "peer-axum-tracing-otel" => {
            use opentelemetry::trace::TracerProvider as _;
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            // Every request sampled; spans end in the SDK with no exporter (no I/O in the bench).
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            let tracer = provider.tracer("bench");
            opentelemetry::global::set_tracer_provider(provider);
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("info"))
                .with(tracing_opentelemetry::layer().with_tracer(tracer))
                .init();
            routes()
                .layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
                .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default())
        }
        other => {
            return cache::variant(other)
                .or_else(|| budget::variant(other))
                .or_else(|| otel::variant(other));
        }
    };
    Some(router)
}

/// Serves a service that wraps the whole router (no per-route layering).
async fn serve_service<S>(listen: SocketAddr, app: S) -> Result<(), Box<dyn std::error::Error>>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let make = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    axum::serve(listener, make).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // Layers around the whole router: served as plain services.
    if let Some(app) = budget::outer(&args.variant) {
        return serve_service(args.listen, app).await;
    }
    if let Some(app) = cache::outer(&args.variant) {
        return serve_service(args.listen, app).await;
    }
    if args.variant == "perf-outer" {
        use axum::ServiceExt as _;
        let app = perf_outer().ok_or("failed variant `perf-outer`")?;
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        axum::serve(listener, app.into_make_service()).await?;
        return Ok(());
    }
    let app = variant(&args.variant)
        .ok_or_else(|| format!("unknown or failed variant `{}`", args.variant))?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
