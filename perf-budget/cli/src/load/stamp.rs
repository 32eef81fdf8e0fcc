//! When a response really arrived: the kernel's receive timestamp of its last bytes.
//!
//! A client that reads the clock after its own wake-up, parse and bookkeeping charges that time to
//! the server. On one thread at 5,000 req/s, a burst of responses is read one after the other, so
//! the last of a burst is charged the processing of all the others. Linux stamps every received
//! segment when the socket asks for it (`SO_TIMESTAMPNS`, the software receive timestamp taken as
//! the segment enters the stack); [`Stamped`] reads with `recvmsg` and keeps the stamp of the
//! latest read, and the load driver ends a request's latency there.
//!
//! The stamp is wall-clock (`CLOCK_REALTIME`); [`RxStamp::age`] turns it into "how long ago", which
//! is subtracted from a monotonic reading taken at the same moment.

use std::io;
use std::os::fd::AsRawFd as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Called on the first write after a stamped read, with that read's stamp.
pub(crate) type OnWrite = Box<dyn FnMut(SystemTime) + Send>;

/// A TCP stream whose reads record the kernel's receive timestamp.
pub(crate) struct Stamped {
    stream: TcpStream,
    last: RxStamp,
    unanswered: Option<SystemTime>,
    on_write: Option<OnWrite>,
}

/// The receive timestamp of a [`Stamped`] stream's latest read, shared with its reader.
#[derive(Debug, Clone, Default)]
pub(crate) struct RxStamp(Arc<AtomicU64>);

impl RxStamp {
    /// How long ago the latest read's bytes arrived; `None` before any stamped read.
    pub(crate) fn age(&self) -> Option<Duration> {
        let ns = self.0.load(Ordering::Relaxed);
        if ns == 0 {
            return None;
        }
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns))
            .ok()
    }

    fn set(&self, at: SystemTime) {
        let ns = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.0.store(ns, Ordering::Relaxed);
    }
}

impl Stamped {
    /// The stream, with its receive timestamps on when `stamp`; `on_write` sees, at the first
    /// write after a read, when that read's bytes arrived (a server's view from the wire). The
    /// stamp handle is `None` when off or when the socket refuses the option; the stream then
    /// reads as any other.
    pub(crate) fn new(
        stream: TcpStream,
        stamp: bool,
        on_write: Option<OnWrite>,
    ) -> (Self, Option<RxStamp>) {
        let on = stamp && setsockopt(&stream, sockopt::ReceiveTimestampns, &true).is_ok();
        let last = RxStamp::default();
        let s = Self {
            stream,
            last: last.clone(),
            unanswered: None,
            on_write,
        };
        (s, on.then_some(last))
    }

    /// One `recvmsg` into `dst`: the bytes read and their receive timestamp.
    fn recv(&self, dst: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut iov = [io::IoSliceMut::new(dst)];
        let msg = recvmsg::<()>(
            self.stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )?;
        let stamp = msg
            .cmsgs()
            .ok()
            .into_iter()
            .flatten()
            .find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(ts) => Some(
                    SystemTime::UNIX_EPOCH
                        + Duration::new(
                            u64::try_from(ts.tv_sec()).ok()?,
                            u32::try_from(ts.tv_nsec()).ok()?,
                        ),
                ),
                _ => None,
            });
        Ok((msg.bytes, stamp))
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            match this.stream.try_io(Interest::READABLE, || this.recv(dst)) {
                Ok((n, stamp)) => {
                    if n > 0 {
                        if let Some(at) = stamp {
                            this.last.set(at);
                        }
                        // Bytes that came before the stamps were asked for (a request sent
                        // before the accept) arrived at the latest now.
                        this.unanswered
                            .get_or_insert_with(|| stamp.unwrap_or_else(SystemTime::now));
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, data));
        if written.is_ok()
            && let Some(at) = this.unanswered.take()
            && let Some(f) = &mut this.on_write
        {
            f(at);
        }
        Poll::Ready(written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_read_is_stamped_with_its_arrival_and_the_next_write_sees_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let (mut server, rx) = Stamped::new(
            server,
            true,
            Some(Box::new(move |at| s.lock().unwrap().push(at))),
        );
        let rx = rx.expect("Linux stamps TCP reads");
        assert_eq!(rx.age(), None, "nothing read yet");

        let before = SystemTime::now();
        client.write_all(b"ping").await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        let age = rx.age().expect("the read was stamped");
        assert!(
            age >= Duration::from_millis(30),
            "the stamp is the arrival, not the read: {age:?}"
        );
        assert!(age <= before.elapsed().unwrap());

        server.write_all(b"pong").await.unwrap();
        server.write_all(b"more").await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one answer per stamped read");
        assert!(seen[0] >= before);
    }
}
