//! Waiting for a scheduled send time, precisely.
//!
//! Tokio's timer wheel has a 1 ms tick and the runtime parks in `epoll_wait`, whose timeout is in
//! whole milliseconds: `sleep_until(t)` wakes between 0 and ~1.1 ms after `t` (up to the next
//! tick, plus the park's own rounding up). At 200 req/s that was the gate's 1.6 ms "latency" on a
//! 100 µs route. On Linux the pacer waits on a `timerfd` instead, registered with the runtime's
//! reactor: the kernel's high-resolution timer makes the fd readable at `t`, which wakes
//! `epoll_wait` at once, so the wait ends a few microseconds after `t` while the runtime keeps
//! driving the connections. Elsewhere, and on paused Tokio time (tests), it uses Tokio's timer.

use tokio::time::Instant;

/// Waits until scheduled instants.
#[derive(Debug)]
pub(crate) struct Pacer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Pacer {
    /// A pacer on the finest timer available: a `timerfd` on Linux when `precise`, else Tokio's.
    pub(crate) fn new(precise: bool) -> Self {
        #[cfg(target_os = "linux")]
        {
            let fd = precise.then(timerfd).and_then(Result::ok);
            Self { fd }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = precise;
            Self {}
        }
    }

    /// Whether waits end within microseconds (a `timerfd`) or on Tokio's 1 ms tick.
    #[cfg(test)]
    pub(crate) fn precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Waits until `at`; returns at once (after letting other tasks run) when `at` has passed.
    ///
    /// With the `timerfd`, a thread that slept waits a while for a CPU when it wakes (a
    /// sleeping vCPU, an idle state: 100 to 400 µs measured here at 200 req/s, none at 5,000).
    /// So the timer fires [`SPIN`] early and the rest is spent yielding, which polls the
    /// connections each turn. Between sends the pacer sleeps: responses are read when the
    /// reactor wakes for them, as `wrk` reads them. (Polling for up to 5 ms after each send, as it
    /// once did, kept a vCPU spinning; on this VM that cost a 3.5–4 ms tail in 1 % of the
    /// responses at 200 req/s, from the host preempting the spinning vCPU. See BENCHMARKS.md.)
    pub(crate) async fn wait_until(&mut self, at: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            loop {
                let now = Instant::now();
                if now >= at {
                    break;
                }
                if at - now > SPIN && wait_fd(fd, at - now - SPIN).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            return;
        }
        if at <= Instant::now() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// How long before a send the pacer stops sleeping and yields until the send time.
///
/// Longer than this VM's slow wake-ups: with 200 µs, 1 % of the sends at 200 req/s were 90 to
/// 230 µs late; with 500 µs, 11 to 54 µs (BENCHMARKS.md, "Gate accuracy"). The price is a CPU
/// yielding for up to 500 µs before each send: 10 % of one core at 200 req/s, all of it from
/// 2,000 req/s, where the pacer never sleeps.
pub(crate) const SPIN: std::time::Duration = std::time::Duration::from_micros(500);

#[cfg(target_os = "linux")]
fn timerfd() -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    // `with_interest` is deprecated because an arbitrary `AsRawFd` may close or swap its fd
    // while registered; an `OwnedFd` owned by the `AsyncFd` does neither, which is exactly the
    // contract of the `unsafe` replacement (`register_with_interest`) this crate cannot call.
    #[expect(
        deprecated,
        reason = "sound for an owned OwnedFd; the replacement is unsafe"
    )]
    tokio::io::unix::AsyncFd::with_interest(fd, tokio::io::Interest::READABLE)
}

/// Arms the one-shot timer `after` from now and waits until it fires.
#[cfg(target_os = "linux")]
async fn wait_fd(
    fd: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    after: std::time::Duration,
) -> std::io::Result<()> {
    use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let value = Timespec {
        tv_sec: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        // A zero it_value disarms the timer: wait at least 1 ns.
        tv_nsec: i64::from(after.subsec_nanos()).max(i64::from(after.as_secs() == 0)),
    };
    let spec = Itimerspec {
        it_interval: zero,
        it_value: value,
    };
    timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; 8];
        match guard.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut buf)?)) {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_until_the_instant_on_paused_time() {
        let mut p = Pacer::new(false);
        let at = Instant::now() + Duration::from_millis(7);
        p.wait_until(at).await;
        assert!(Instant::now() >= at);
        // A passed instant returns without advancing time.
        let before = Instant::now();
        p.wait_until(before - Duration::from_millis(1)).await;
        assert_eq!(Instant::now(), before);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn the_timerfd_wait_ends_after_the_instant() {
        let mut p = Pacer::new(true);
        assert!(p.precise());
        let at = Instant::now() + Duration::from_micros(300);
        p.wait_until(at).await;
        // Never early (how late is measured by `cargo xtask gate-accuracy`, not asserted here).
        assert!(Instant::now() >= at);
    }
}
