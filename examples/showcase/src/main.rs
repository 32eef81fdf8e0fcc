//! `cargo run -p showcase` — serves the showcase API with every tower-perf layer on its
//! embedded defaults. `--listen ADDR` changes the address (default `127.0.0.1:3000`).

use std::net::SocketAddr;

use clap::Parser;

/// The tower-perf showcase service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let telemetry = showcase::otel::init()?;
    showcase::otel::init_tracing(&telemetry);
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let (app, page) = showcase::app_and_page(showcase::Config::default())?;
    let app = app.layer(showcase::otel::layer(&telemetry));
    println!("showcase listening on http://{addr}");
    for (method, path, what) in showcase::ENDPOINTS {
        println!("  {method:<4} http://{addr}{path:<28} {what}");
    }
    // Printed once: the token is not kept anywhere else.
    println!("perf page: http://{addr}{}", page.url_path());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(showcase::shutdown_signal())
    .await?;
    showcase::otel::shutdown(telemetry).await;
    Ok(())
}
