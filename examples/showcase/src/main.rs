//! `cargo run -p showcase` — serves the showcase API with every tower-perf layer on its
//! embedded defaults. `--listen ADDR` changes the address (default `127.0.0.1:3000`);
//! `--redis URL` (or `REDIS_URL`) shares the product cache with every instance on that Redis.
//! The `/perf` page links the shipped Grafana dashboard when `GRAFANA_URL` names Grafana's root URL,
//! and trace ids to `PERF_TRACE_URL` (default Jaeger's).

use std::net::SocketAddr;

use clap::Parser;

/// The tower-perf showcase service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Redis URL for a product cache shared by every instance (or `REDIS_URL`); without it the
    /// cache is in process memory.
    #[arg(long)]
    redis: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let telemetry = showcase::otel::init()?;
    showcase::otel::init_tracing(&telemetry);
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let config = showcase::Config {
        redis: args.redis.or_else(|| std::env::var("REDIS_URL").ok()),
        ..showcase::Config::default()
    };
    let (app, page) = showcase::app_and_page(config)?;
    let app = app.layer(showcase::otel::layer(&telemetry));
    println!("showcase listening on http://{addr}");
    for (method, path, what) in showcase::ENDPOINTS {
        println!("  {method:<4} http://{addr}{path:<28} {what}");
    }
    // Printed once: the token is not kept anywhere else.
    println!("perf page: http://{addr}{}", page.url_path());
    match page.dashboard_url() {
        Some(dashboard) => println!("grafana dashboard: {dashboard}"),
        None => println!(
            "grafana dashboard: set GRAFANA_URL=http://<grafana> to link it from /perf \
             (perf-middleware/grafana/README.md imports it)"
        ),
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(showcase::shutdown_signal())
    .await?;
    showcase::otel::shutdown(telemetry).await;
    Ok(())
}
