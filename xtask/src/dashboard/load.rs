//! The bounded background load of the dashboard check: fast, cached, revalidated, written, 4xx,
//! unknown, slow and cancelled requests, each kind on its own thread until the [`Load`] is dropped.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::http;

/// Background traffic: each thread repeats its requests until the value is dropped.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts the threads; `slow_ms` is the sleep of the slow route.
    pub(super) fn start(addr: SocketAddr, slow_ms: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let slow = format!("/api/slow?ms={slow_ms}");
        let plans: Vec<(Vec<Req>, Duration)> = vec![
            (
                vec![
                    Req::get("/api/users/7"),
                    Req::get("/api/products/1"),
                    Req::get("/api/products"),
                    Req::get("/api/products/999"),
                    Req::get("/no/such/route"),
                    Req::get("/api/users/not-a-number"),
                ],
                Duration::from_millis(50),
            ),
            (
                // Stored, then revalidated, then purged with the whole catalogue by the write.
                vec![
                    Req::get("/api/products/3"),
                    Req::revalidate("/api/products/3"),
                    Req::put("/api/products/2"),
                ],
                Duration::from_secs(1),
            ),
            // The database routes (an N+1 loop and its fixed twin): 404 until the showcase has
            // them, then the source of the dashboard's database row.
            (
                vec![
                    Req::get("/api/authors/n-plus-one"),
                    Req::get("/api/authors/joined"),
                ],
                Duration::from_millis(250),
            ),
            (vec![Req::get(&slow)], Duration::ZERO),
            (vec![Req::get(&slow)], Duration::ZERO),
            (vec![Req::get(&slow)], Duration::ZERO),
            (vec![Req::Cancel], Duration::from_secs(2)),
        ];
        let threads = plans
            .into_iter()
            .map(|(reqs, pause)| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        for r in &reqs {
                            r.send(addr);
                        }
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

/// Stops the threads and waits for them (each finishes its current round), also when the check
/// returns early.
impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One request of the load.
enum Req {
    Get(String, &'static [(&'static str, &'static str)]),
    Put(String),
    /// A slow request whose client goes away after 200 ms (`error_type="cancelled"`).
    Cancel,
}

impl Req {
    fn get(path: &str) -> Req {
        Req::Get(path.to_owned(), &[])
    }

    fn put(path: &str) -> Req {
        Req::Put(path.to_owned())
    }

    /// A read the cache must revalidate with the application (`Cache-Control: no-cache`).
    fn revalidate(path: &str) -> Req {
        Req::Get(path.to_owned(), &[("cache-control", "no-cache")])
    }

    /// Sends it; failures are ignored (the panel checks say what went missing).
    fn send(&self, addr: SocketAddr) {
        match self {
            Req::Get(path, headers) => drop(http(addr, "GET", path, headers, b"")),
            Req::Put(path) => {
                let json = [("content-type", "application/json")];
                drop(http(addr, "PUT", path, &json, br#"{"price_cents": 1234}"#));
            }
            Req::Cancel => {
                if let Ok(mut s) = TcpStream::connect(addr) {
                    let req = "GET /api/slow?ms=5000 HTTP/1.1\r\nHost: showcase\r\n\r\n";
                    let _ = s.write_all(req.as_bytes());
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
}
