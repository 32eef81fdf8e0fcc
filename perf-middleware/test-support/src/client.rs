//! An HTTP/1.1 client for tests: [`get_text`], [`exchange`] and [`send_raw`].

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A response with its whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, collected (chunked encoding already decoded).
    pub body: Bytes,
}

impl Reply {
    /// The body as UTF-8.
    ///
    /// # Panics
    ///
    /// When the body is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    /// A header's value as a string, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `GET path` against `addr`.
///
/// # Panics
///
/// When the request fails or the body cannot be read.
pub async fn get_text(addr: SocketAddr, path: &str) -> Reply {
    let req = Request::get(path)
        .body(Bytes::new())
        .expect("a valid request");
    exchange(addr, req).await
}

/// Sends `req` to `addr` and collects the response. The URI of `req` needs only its path and
/// query (`/items/1?x=y`); scheme and authority are filled in.
///
/// # Panics
///
/// When the request fails or the body cannot be read.
pub async fn exchange(addr: SocketAddr, req: Request<Bytes>) -> Reply {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = format!("http://{addr}{path}").parse().expect("a valid URI");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .expect("the request is answered");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("the whole body").to_bytes(),
    }
}

/// Connects to `addr`, writes `raw` (a whole request: `GET /x HTTP/1.1\r\nhost: x\r\n\r\n`)
/// and returns the open connection: read from it, or drop it to play a client that goes away.
///
/// # Panics
///
/// When the connection or the write fails.
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(raw).await.expect("write the request");
    conn
}
