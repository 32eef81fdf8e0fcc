//! Each of the gate's requests paired with the server's record of it, and the difference split
//! into the gate's lag, the hop in, the wire and the hop out (`GATE_ACCURACY_DUMP=1` lists every
//! request more than 100 µs off its own wire time, either way).
//!
//! The pairing also checks the reference. The gate's kernel cannot stamp a response before the
//! server wrote it, so a hop out below −100 µs means the server read its clock late after the
//! write: the wire view over-reads that request, not the gate under-reads it.

use std::time::{Duration, SystemTime};

/// The gate's side of one request: scheduled send (wall clock), lag, latency, and whether it
/// is measured (after the warm-up).
pub(super) type Traced = (SystemTime, Duration, Duration, bool);

/// Prints the pairing table: one line of [`paired`] per run, after its timer, route and rate.
pub(super) fn print_table(lines: &[String]) {
    println!(
        "\nEach measured request of the gate paired with the server's record of it (in the order \
         of their responses), exact quantiles in µs; δ = the gate's latency − the wire's:\n"
    );
    println!(
        "| timer | route | rate | connections | paired | gate p50 / p99 | wire p50 / p99 | gate − wire p99 | δ p50 / p99 / p99.9 / max | δ > 100 µs | wire late (out < −100 µs) | in the gate's top 1 %: lag / in / wire / out |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for line in lines {
        println!("{line}");
    }
}

/// The exact `q` quantile of sorted microseconds.
fn exact(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Pairs the gate's requests with the server's records in the order of their responses: the
/// server's thread writes them one after the other, and the gate's kernel stamps each as that
/// write delivers it. (The order of the sends is not enough: a request that has to open a
/// connection writes after the ones started behind it.) Then says, for the measured ones, where
/// the gate's extra time went: its lag (schedule to start), the hop in (start to the server's
/// receive timestamp), the wire (receive to the response's write) and the hop out (to the gate's
/// receive timestamp).
pub(super) fn paired(mut gate: Vec<Traced>, server: Vec<(SystemTime, SystemTime)>) -> String {
    gate.sort_by_key(|g| g.0 + g.1 + g.2);
    if server.len() != gate.len() {
        return format!("{} of {} | | | | | | |", server.len(), gate.len());
    }
    let micros = |a: SystemTime, b: SystemTime| match a.duration_since(b) {
        Ok(d) => d.as_secs_f64() * 1e6,
        Err(e) => -e.duration().as_secs_f64() * 1e6,
    };
    // (latency, wire, lag, in, out) per request.
    let (gate, server): (Vec<Traced>, Vec<(SystemTime, SystemTime)>) =
        gate.into_iter().zip(server).filter(|(g, _)| g.3).unzip();
    let rows: Vec<[f64; 5]> = gate
        .iter()
        .zip(&server)
        .map(|(&(sched, lag, latency, _), &(arrived, written))| {
            let (start, end) = (sched + lag, sched + lag + latency);
            [
                latency.as_secs_f64() * 1e6,
                micros(written, arrived),
                lag.as_secs_f64() * 1e6,
                micros(arrived, start),
                micros(end, written),
            ]
        })
        .collect();
    if std::env::var_os("GATE_ACCURACY_DUMP").is_some() {
        let t0 = gate[0].0;
        for ((g, r), s) in gate.iter().zip(&rows).zip(&server) {
            if (r[0] - r[1]).abs() > 100.0 {
                eprintln!(
                    "t {:>9.3} ms  lag {:>6.0}  in {:>6.0}  wire {:>6.0}  out {:>5.0}  gate {:>6.0}  arrived {:.3}",
                    micros(g.0, t0) / 1000.0,
                    r[2],
                    r[3],
                    r[1],
                    r[4],
                    r[0],
                    micros(s.0, t0) / 1000.0
                );
            }
        }
    }
    let sorted = |k: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[k]).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (g, w) = (sorted(0), sorted(1));
    let mut delta: Vec<f64> = rows.iter().map(|r| r[0] - r[1]).collect();
    delta.sort_by(f64::total_cmp);
    let cut = exact(&g, 0.99);
    let top: Vec<&[f64; 5]> = rows.iter().filter(|r| r[0] >= cut).collect();
    let mean = |k: usize| top.iter().map(|r| r[k]).sum::<f64>() / top.len().max(1) as f64;
    format!(
        "{} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} | {:.0} / {:.0} / {:.0} / {:.0} | {} | {} | {:.0} / {:.0} / {:.0} / {:.0}",
        rows.len(),
        exact(&g, 0.5),
        exact(&g, 0.99),
        exact(&w, 0.5),
        exact(&w, 0.99),
        exact(&g, 0.99) - exact(&w, 0.99),
        exact(&delta, 0.5),
        exact(&delta, 0.99),
        exact(&delta, 0.999),
        delta.last().copied().unwrap_or(0.0),
        delta.iter().filter(|d| **d > 100.0).count(),
        rows.iter().filter(|r| r[4] < -100.0).count(),
        mean(2),
        mean(3),
        mean(1),
        mean(4),
    )
}
