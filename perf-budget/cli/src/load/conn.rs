//! The run's keep-alive connections, each driven by the request that uses it.
//!
//! A request's future polls its own connection (hyper's `Connection`) next to the response, so
//! the request reaches the socket on the driver's first poll of it: no connection task has to be
//! scheduled behind responses that are being read. An idle connection is polled by nobody; a
//! request checks that the server did not close it before using it.

use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

#[cfg(target_os = "linux")]
use super::stamp::{RxStamp, Stamped};

#[cfg(target_os = "linux")]
type Stream = Stamped;
#[cfg(not(target_os = "linux"))]
type Stream = tokio::net::TcpStream;

/// A request of the mix, its parts built once.
pub(super) struct Prepared {
    pub(super) method: http::Method,
    pub(super) uri: http::Uri,
    pub(super) host: http::HeaderValue,
}

impl Prepared {
    fn request(&self) -> http::Request<Empty<Bytes>> {
        let mut req = http::Request::new(Empty::new());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        req.headers_mut()
            .insert(http::header::HOST, self.host.clone());
        req
    }
}

/// The keep-alive connections of a run.
pub(super) struct Pool {
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<Conn>>,
    addr: String,
    /// Whether connections ask for the kernel's receive timestamps (real time, Linux).
    stamped: bool,
    /// Connections opened so far.
    opened: AtomicU64,
}

/// A keep-alive connection: its request handle, its driver and, when the kernel stamps its
/// reads, when its latest bytes arrived.
struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    driver: Pin<Box<Connection<TokioIo<Stream>, Empty<Bytes>>>>,
    #[cfg(target_os = "linux")]
    rx: Option<RxStamp>,
}

impl Pool {
    /// `n` connections to `addr`, opened now.
    pub(super) async fn open(addr: &str, n: usize, stamped: bool) -> Result<Self, String> {
        let pool = Self {
            idle: Mutex::new(Vec::with_capacity(n)),
            addr: addr.to_owned(),
            stamped,
            opened: AtomicU64::new(0),
        };
        for _ in 0..n {
            let c = pool.connect().await?;
            pool.put(c);
        }
        Ok(pool)
    }

    /// How many connections the pool opened.
    pub(super) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn put(&self, c: Conn) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }

    /// An idle connection the server has not closed, or a new one.
    async fn checkout(&self) -> Result<Conn, String> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(mut c) = idle else {
                return self.connect().await;
            };
            // Nobody polls an idle connection: its driver notices a close here, or it is open.
            if !c.sender.is_closed() && c.driver.as_mut().now_or_never().is_none() {
                return Ok(c);
            }
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        #[cfg(target_os = "linux")]
        let (stream, rx) = Stamped::new(stream, self.stamped, None);
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
            #[cfg(target_os = "linux")]
            rx,
        })
    }

    /// Sends one request started at `start` and reads its response: the status, and when the
    /// response arrived (see [`Conn::received`]).
    pub(super) async fn exchange(
        &self,
        p: &Prepared,
        start: Instant,
    ) -> Result<(u16, Instant), String> {
        let mut conn = self.checkout().await?;
        let (status, open) = {
            let Conn { sender, driver, .. } = &mut conn;
            let mut work = pin!(async {
                sender.ready().await.map_err(|e| e.to_string())?;
                let res = sender
                    .send_request(p.request())
                    .await
                    .map_err(|e| e.to_string())?;
                let status = res.status().as_u16();
                res.into_body().collect().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(status)
            });
            tokio::select! {
                biased;
                r = &mut work => (r?, true),
                // The server closed the connection: what it sent before is still read.
                _ = driver.as_mut() => (work.await?, false),
            }
        };
        let received = conn.received(start);
        if open {
            self.put(conn);
        }
        Ok((status, received))
    }
}

impl Conn {
    /// When the response's last bytes arrived: the kernel's receive timestamp, else now; never
    /// before the request's start.
    fn received(&self, start: Instant) -> Instant {
        let now = Instant::now();
        #[cfg(target_os = "linux")]
        if let Some(arrived) = self
            .rx
            .as_ref()
            .and_then(RxStamp::age)
            .and_then(|age| now.checked_sub(age))
        {
            return arrived.max(start);
        }
        let _ = start;
        now
    }
}
