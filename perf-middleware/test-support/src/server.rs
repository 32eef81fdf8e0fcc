//! [`serve`]: a real server on a loopback socket.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::ServiceExt as _;
use axum::extract::Request;
use axum::response::Response;
use tower_service::Service;

/// Serves `app` with `axum::serve` on `127.0.0.1:0`, on a task of the current runtime, and
/// returns its address. The server runs until the runtime shuts down.
///
/// Takes an axum `Router` or any `Clone` service of axum's request and response types (a
/// router wrapped in layers, say).
///
/// # Panics
///
/// When no loopback port can be bound, or when the server fails.
pub async fn serve<S>(app: S) -> SocketAddr
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .expect("server");
    });
    addr
}
