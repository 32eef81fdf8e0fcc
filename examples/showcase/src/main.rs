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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,perf_middleware=info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let app = showcase::app(showcase::Config::default())?;
    println!("showcase listening on http://{addr}");
    for (method, path, what) in showcase::ENDPOINTS {
        println!("  {method:<4} http://{addr}{path:<28} {what}");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(showcase::shutdown_signal())
        .await?;
    Ok(())
}
