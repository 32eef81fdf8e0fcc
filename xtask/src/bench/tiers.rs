//! The cache-tier rows of `cargo xtask bench`: perf-cache-layer's `TieredStore` with an L1 hit,
//! an L2 hit and Redis down, next to the L1-only layer (`cache`) and the bare route.
//!
//! A throwaway `redis-server` (under `target/redis-bench`) is started when a selected variant
//! needs one; bench-server reads its URL from `REDIS_URL`. The Redis-down variant gets a closed
//! port and is sent ten misses before its load, which open the breaker. The L2 row loads 1,000 URLs in turn (a wrk script) against a 16 KiB L1, and its
//! `/metrics` must show that the hits were read from Redis. After the table, each tier row is
//! divided by the L1-only row, per round: the Redis-down row's ratio is the issue's "≥ 0.95 of
//! the L1-only layer's throughput after the breaker opens". The server's CPU time per request
//! (user + system, from `/proc`, over the measured load) is shown too: on a shared machine it moves
//! far less than requests/s, which follow whatever else runs on the server's core.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Scenario, median, paired_ratios};
use crate::redis::RedisServer;
use crate::util::{free_port, http, target_dir};

/// The L1-only row the tier rows are divided by.
const L1_ONLY: &str = "cache";
/// The variant loaded through [`SCRIPT`].
const L2: &str = "cache-tiered-l2";
/// The variant given a closed port.
const DOWN: &str = "cache-redis-down";

/// wrk script: 1,000 URLs in turn, so a 16 KiB L1 never holds the next one.
const SCRIPT: &str = r#"-- Written by `cargo xtask bench` (xtask/src/bench/tiers.rs).
local n = 0
request = function()
  n = (n + 1) % 1000
  return wrk.format(nil, wrk.path .. "?k=" .. n)
end
"#;

/// What the tier rows need: Redis for the tiered variants, the wrk script for the L2 row.
pub(super) struct Tiers {
    redis: Option<RedisServer>,
    script: PathBuf,
    /// Server CPU microseconds per request, per scenario index, one sample per round.
    cpu: BTreeMap<usize, Vec<f64>>,
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub(super) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// `getconf CLK_TCK` (100 on Linux).
fn clock_ticks() -> f64 {
    crate::util::output(Command::new("getconf").arg("CLK_TCK"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

fn needs_redis(variant: &str) -> bool {
    variant.starts_with("cache-tiered")
}

impl Tiers {
    /// Starts Redis when one of `variants` needs it and writes the wrk script.
    pub(super) fn start(variants: &[&str]) -> Result<Self, String> {
        let redis = if variants.iter().any(|v| needs_redis(v)) {
            Some(RedisServer::start("redis-bench")?)
        } else {
            None
        };
        let dir = target_dir().join("bench");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let script = dir.join("l2-keys.lua");
        std::fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
        Ok(Self {
            redis,
            script,
            cpu: BTreeMap::new(),
        })
    }

    /// Points the bench-server of `variant` at Redis (or at a closed port).
    pub(super) fn env(&self, variant: &str, cmd: &mut Command) {
        if variant == DOWN {
            cmd.env("REDIS_URL", format!("redis://127.0.0.1:{}/", free_port()));
        } else if let Some(redis) = self.redis.as_ref().filter(|_| needs_redis(variant)) {
            cmd.env("REDIS_URL", redis.url());
        }
    }

    /// Before the Redis-down variant's load: ten misses (distinct URLs), each a failed Redis
    /// read, open the breaker (it opens after 5 in a row by default), and must be served.
    pub(super) fn prepare(&self, variant: &str, addr: SocketAddr) -> Result<(), String> {
        if variant != DOWN {
            return Ok(());
        }
        for i in 0..10 {
            let res = http(addr, "GET", &format!("/static?miss={i}"), &[], b"")?;
            if res.status != 200 {
                return Err(format!("{DOWN}: a miss with Redis down got {}", res.status));
            }
        }
        Ok(())
    }

    /// The wrk script of `variant`'s rows, if any.
    pub(super) fn script(&self, variant: &str) -> Option<&Path> {
        (variant == L2).then_some(self.script.as_path())
    }

    /// Records row `row`'s server CPU per request over a load of `requests` that started when
    /// the server had used `before`.
    pub(super) fn record_cpu(
        &mut self,
        row: usize,
        pid: u32,
        before: Option<Duration>,
        requests: f64,
    ) {
        if let (Some(before), Some(after)) = (before, cpu_time(pid)) {
            let per_request = after.saturating_sub(before).as_secs_f64() * 1e6 / requests.max(1.0);
            self.cpu.entry(row).or_default().push(per_request);
        }
    }

    /// After the L2 row's load: its Redis reads by result, from the server's `/metrics`. Fails
    /// when fewer than 80 % of them were hits (the row would not measure what it says). The rest
    /// are the warm-up's first reads and entries whose background write was dropped while the
    /// queue was full (counted by the store); on a quiet machine that is 10 to 15 %.
    pub(super) fn check(&self, variant: &str, addr: SocketAddr) -> Result<(), String> {
        if variant != L2 {
            return Ok(());
        }
        let text = http(addr, "GET", "/metrics", &[], b"")?.text();
        let reads = l2_reads(&text);
        let total: f64 = reads.iter().map(|(_, n)| n).sum();
        let hits = reads
            .iter()
            .find(|(r, _)| r == "hit")
            .map_or(0.0, |(_, n)| *n);
        let list: Vec<String> = reads.iter().map(|(r, n)| format!("{r} {n:.0}")).collect();
        eprintln!(
            "  {L2}: Redis reads (warm-up included): {}",
            list.join(", ")
        );
        if total == 0.0 || hits / total < 0.8 {
            return Err(format!(
                "{L2}: only {hits:.0} of {total:.0} Redis reads were hits; the L2 row is not measuring L2 hits"
            ));
        }
        Ok(())
    }
}

/// `perf_cache_l2_ops{op="get",result=…}` samples: (result, count).
fn l2_reads(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("perf_cache_l2_ops") && l.contains(r#"op="get""#))
        .filter_map(|l| {
            let result = l.split(r#"result=""#).nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((result.to_owned(), count))
        })
        .collect()
}

/// The min and max of `v`.
fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

impl Tiers {
    /// Each tier row over the L1-only row on `/static`, paired per round: requests/s, and the
    /// server's CPU per request (L1-only's ÷ the row's, so that above 1 is cheaper). Empty unless
    /// the L1-only row ran.
    pub(super) fn summary(&self, selected: &[Scenario], samples: &[Vec<f64>]) -> String {
        let is_base = |s: &Scenario| s.variant == L1_ONLY && s.path == "/static";
        let Some(base) = selected.iter().position(is_base) else {
            return String::new();
        };
        let cpu = |i: usize| self.cpu.get(&i).map_or(&[][..], Vec::as_slice);
        let mut t = format!(
            "\nCache tiers over the L1-only layer (`{L1_ONLY}` on `/static`): medians of per-round \
             ratios (range), and the server's CPU per request (medians).\n\n\
             | scenario | req/s ratio to L1-only | range | CPU µs / request | L1-only CPU ÷ row's | range |\n\
             |---|---:|---:|---:|---:|---:|\n"
        );
        for (i, sc) in selected.iter().enumerate() {
            if !(is_base(sc)
                || (sc.path == "/static" && (needs_redis(sc.variant) || sc.variant == DOWN)))
            {
                continue;
            }
            let r = paired_ratios(&samples[i], &samples[base]);
            let (lo, hi) = range(&r);
            let c = paired_ratios(cpu(base), cpu(i));
            let (clo, chi) = range(&c);
            let _ = writeln!(
                t,
                "| {} | {:.3}× | {lo:.3}–{hi:.3} | {:.1} | {:.3}× | {clo:.3}–{chi:.3} |",
                sc.label,
                median(&r),
                median(cpu(i)),
                median(&c),
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::{cpu_time, l2_reads};

    #[test]
    fn reads_a_process_cpu_time() {
        assert!(cpu_time(std::process::id()).is_some());
    }

    #[test]
    fn reads_the_l2_get_counters() {
        let text = "# TYPE perf_cache_l2_ops counter\n\
            perf_cache_l2_ops{op=\"get\",result=\"hit\"} 950\n\
            perf_cache_l2_ops{op=\"put\",result=\"ok\"} 12\n\
            perf_cache_l2_ops{op=\"get\",result=\"miss\"} 50\n";
        assert_eq!(
            l2_reads(text),
            [("hit".to_owned(), 950.0), ("miss".to_owned(), 50.0)]
        );
    }
}
