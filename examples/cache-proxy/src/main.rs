//! A caching reverse proxy: every request goes through [`perf_cache_layer::CacheLayer`] to an origin.
//!
//! ```text
//! cargo run -p cache-proxy -- --listen 127.0.0.1:8010 --origin http://127.0.0.1:8000
//! ```
//!
//! Every method is forwarded (including `PUT` and unknown ones), bodies stream in both directions, and
//! the cache is configured as a shared proxy cache: heuristic freshness at 10% of the `Last-Modified`
//! age, a 256 MiB byte-bounded store, and the library's safe `Set-Cookie` policy (responses that set
//! cookies are not stored). The conformance run passes `--set-cookie store`, which RFC 9111 allows
//! but which serves one client's cookies to the next: use it only in front of origins that never
//! set per-user cookies on cacheable responses.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use clap::{Parser, ValueEnum};
use http::header::{self, HeaderName};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use perf_cache_layer::{CacheLayer, MemoryStore, SetCookiePolicy, TieredStore};
use tower_service::Service;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SetCookie {
    Store,
    Strip,
    Bypass,
}

/// A caching reverse proxy built on perf-cache-layer.
/// How long an idle keep-alive connection to the origin is kept: under the 5 s after which Node's
/// HTTP server closes one.
const ORIGIN_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8010")]
    listen: SocketAddr,
    /// Origin to forward to: `http://host:port` or `host:port`.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    origin: String,
    /// Store budget in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    max_bytes: u64,
    /// Largest stored body in bytes; larger bodies stream through.
    #[arg(long, default_value_t = 8 << 20)]
    max_object_size: usize,
    /// What to do with `Set-Cookie` responses. Defaults to `bypass`, the library's default: a
    /// response that sets a cookie is never stored, so no client gets another's session.
    #[arg(long, value_enum, default_value = "bypass")]
    set_cookie: SetCookie,
    /// Serve entries up to this many seconds stale when the origin is unreachable (0: never).
    /// Off by default: cache-tests 0.4.5 can only recognise an origin response, so its
    /// `stale-close-*` tests cannot pass once the `stale-close` check says yes.
    #[arg(long, default_value_t = 0)]
    stale_on_disconnect: u64,
    /// Heuristic freshness fraction of the `Last-Modified` age (0 disables).
    #[arg(long, default_value_t = 0.1)]
    heuristic: f64,
    /// Redis URL (or `REDIS_URL`): the store becomes an in-process L1 over a Redis shared by every
    /// proxy given the same URL, with purges reaching all of them.
    #[arg(long)]
    redis: Option<String>,
    /// With `--redis`: while Redis is unreachable, answer misses `503` with `Retry-After` instead
    /// of sending them to the origin (protects an origin that cannot take the fleet's misses).
    #[arg(long)]
    shed_misses: bool,
    /// With `--redis`: a cold miss waits up to this many milliseconds for another proxy of the
    /// fleet that is already fetching it (0: off, every proxy fetches its own misses).
    #[arg(long, default_value_t = 0)]
    coalesce_misses_ms: u64,
}

/// Forwards requests to the origin. Transport errors are errors, so the cache can serve stale
/// ("disconnected", RFC 9111 §4.2.4); [`Recover`] turns those that remain into 502 responses.
#[derive(Clone)]
struct Forward {
    client: Client<HttpConnector, Body>,
    authority: Authority,
}

const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
];

impl Service<Request<Body>> for Forward {
    type Response = Response<Body>;
    type Error = hyper_util::client::legacy::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = req.uri().path_and_query().cloned();
        *req.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
        let listed: Vec<HeaderName> = req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            req.headers_mut().remove(name);
        }
        for name in HOP_BY_HOP {
            req.headers_mut().remove(name);
        }
        let client = self.client.clone();
        Box::pin(async move { Ok(client.request(req).await?.map(Body::new)) })
    }
}

/// Answers inner errors with 502 Bad Gateway.
#[derive(Clone)]
struct Recover<S>(S);

impl<S, B> Service<Request<Body>> for Recover<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Display,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Forward (and so Cache over it) never fails readiness.
        match self.0.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(res) => Ok(res.map(Body::new)),
                Err(err) => {
                    tracing::warn!(%err, "origin request failed");
                    let mut res = Response::new(Body::from("bad gateway"));
                    *res.status_mut() = StatusCode::BAD_GATEWAY;
                    Ok(res)
                }
            }
        })
    }
}

fn layer(args: &Args) -> Result<CacheLayer, Box<dyn std::error::Error>> {
    let store = MemoryStore::builder()
        .max_bytes(args.max_bytes)
        .max_object_size(args.max_object_size)
        .build();
    let set_cookie = match args.set_cookie {
        SetCookie::Store => SetCookiePolicy::Store,
        SetCookie::Strip => SetCookiePolicy::Strip,
        SetCookie::Bypass => SetCookiePolicy::Bypass,
    };
    let mut builder = CacheLayer::builder().set_cookie(set_cookie);
    builder = match args
        .redis
        .clone()
        .or_else(|| std::env::var("REDIS_URL").ok())
    {
        Some(url) => builder.store(
            TieredStore::builder(url)
                .namespace("cache-proxy")
                .l1(store)
                .shed_misses(args.shed_misses)
                .coalesce_misses(Duration::from_millis(args.coalesce_misses_ms))
                .build()?,
        ),
        None => builder.store(store),
    };
    if args.stale_on_disconnect > 0 {
        builder = builder.stale_on_disconnect(Duration::from_secs(args.stale_on_disconnect));
    }
    if args.heuristic > 0.0 {
        builder = builder.heuristic(args.heuristic);
    }
    Ok(builder.build()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let origin = args
        .origin
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let authority: Authority = origin.parse().map_err(|e| {
        format!(
            "--origin {:?}: expected http://host:port ({e})",
            args.origin
        )
    })?;
    // Idle origin connections are dropped before a typical origin closes them (Node's
    // `keepAliveTimeout` is 5 s, nginx's 75 s): reusing one just as the origin closes it fails the
    // request with nothing to retry (a PUT answered 502).
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(ORIGIN_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build_http();
    let service = Recover(tower_layer::Layer::layer(
        &layer(&args)?,
        Forward { client, authority },
    ));
    let app = axum::Router::new().fallback_service(service);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, origin = %args.origin, "cache-proxy ready");
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_defaults_to_the_safe_policy() {
        let args = Args::parse_from(["cache-proxy"]);
        assert!(matches!(args.set_cookie, SetCookie::Bypass));
        let args = Args::parse_from(["cache-proxy", "--set-cookie", "store"]);
        assert!(matches!(args.set_cookie, SetCookie::Store));
    }
}
