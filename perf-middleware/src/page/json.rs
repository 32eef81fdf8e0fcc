//! The page's JSON (`data?since=N&window=S`): route rows over the window, slow requests newer
//! than `since`, the slowest per route, and the cards.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::builder::Inner;
use super::ring::{SLOT, SLOTS, quantile};
use super::store::{PHASES, RequestRecord, RouteStats, lock};

/// The windows the page offers, in seconds; others are clamped to the nearest.
const WINDOWS: [u64; 2] = [60, 300];

#[derive(Serialize)]
struct Data<'a> {
    /// The highest slow-request sequence number: the next poll's `since`.
    seq: u64,
    window_s: u64,
    slot_s: u64,
    trace_url: Option<&'a str>,
    dashboard_url: Option<&'a str>,
    phases: [&'static str; 4],
    routes: Vec<Row>,
    slow: Vec<Request>,
    cards: serde_json::Map<String, serde_json::Value>,
    /// The queries card (with the `db` feature).
    #[cfg(feature = "db")]
    queries: super::queries_json::Queries,
}

#[derive(Serialize)]
struct Row {
    route: String,
    requests: u32,
    rate: f64,
    error_ratio: Option<f64>,
    cancelled: u32,
    /// Responses in the window that carried `Cache-Status`, and the share of them that were
    /// hits (`null` when no cache saw the route in the window).
    cache_seen: u32,
    cache_hit_ratio: Option<f64>,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    /// Requests per second in each slot, oldest first, over the whole ring.
    rate_series: Vec<f64>,
    /// p50, p95 and p99 in each slot (ms), `null` for empty slots.
    p50_series: Vec<Option<f64>>,
    p95_series: Vec<Option<f64>>,
    p99_series: Vec<Option<f64>>,
    worst: Vec<Request>,
}

#[derive(Serialize)]
struct Request {
    seq: u64,
    route: String,
    method: &'static str,
    /// Seconds before the snapshot.
    age_s: f64,
    duration_ms: f64,
    time_to_headers_ms: Option<f64>,
    status: Option<u16>,
    outcome: &'static str,
    trace_id: Option<String>,
    /// Milliseconds per phase of [`PHASES`].
    phases: [Option<f64>; 4],
}

/// The JSON body for `since` and `window` (seconds).
pub(crate) fn data(inner: &Inner, since: u64, window: u64, now: Instant) -> String {
    let stores = &inner.stores;
    let window = WINDOWS
        .into_iter()
        .min_by_key(|w| w.abs_diff(window))
        .unwrap_or(60);
    let now_tick = stores.tick(now);
    let now_since_epoch = now.saturating_duration_since(stores.epoch);
    let req = |r: &RequestRecord| request(r, now_since_epoch);
    let routes = stores
        .rows()
        .iter()
        .map(|s| row(s, now_tick, window, &req))
        .collect();
    let cards = inner
        .cards
        .iter()
        .map(|(name, card)| (name.to_string(), card.snapshot()))
        .collect();
    let data = Data {
        seq: stores.last_seq(),
        window_s: window,
        slot_s: SLOT.as_secs(),
        trace_url: inner.trace_url.as_deref(),
        dashboard_url: inner.dashboard_url.as_deref(),
        phases: PHASES,
        routes,
        slow: stores.slow_since(since).iter().map(req).collect(),
        cards,
        #[cfg(feature = "db")]
        queries: super::queries_json::queries(&stores.queries, now_since_epoch),
    };
    serde_json::to_string(&data).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
}

fn row(s: &RouteStats, now: u64, window: u64, req: &dyn Fn(&RequestRecord) -> Request) -> Row {
    let ring = lock(&s.ring);
    let slots = window / SLOT.as_secs();
    let w = ring.window(now.saturating_sub(slots - 1), now);
    let ms = |q: f64| quantile(&w, q).map(|us| round(us / 1e3));
    let mut rate_series = Vec::with_capacity(SLOTS);
    let [mut p50_series, mut p95_series, mut p99_series] =
        [(); 3].map(|()| Vec::with_capacity(SLOTS));
    // Always SLOTS points, oldest first; ticks before the epoch are empty.
    for back in (0..SLOTS as u64).rev() {
        let slot = now.checked_sub(back).and_then(|tick| ring.slot(tick));
        rate_series.push(round(
            f64::from(slot.map_or(0, |s| s.count)) / SLOT.as_secs_f64(),
        ));
        let q = |q| slot.and_then(|s| quantile(s, q)).map(|us| round(us / 1e3));
        p50_series.push(q(0.5));
        p95_series.push(q(0.95));
        p99_series.push(q(0.99));
    }
    drop(ring);
    Row {
        route: s.label.to_string(),
        requests: w.count,
        rate: round(f64::from(w.count) / window as f64),
        error_ratio: (w.count > 0).then(|| round(f64::from(w.errors) / f64::from(w.count))),
        cancelled: w.cancelled,
        cache_seen: w.cache_seen,
        cache_hit_ratio: (w.cache_seen > 0)
            .then(|| round(f64::from(w.cache_hits) / f64::from(w.cache_seen))),
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        max_ms: (w.count > 0).then(|| round(w.max_us as f64 / 1e3)),
        rate_series,
        p50_series,
        p95_series,
        p99_series,
        worst: lock(&s.worst).iter().map(req).collect(),
    }
}

fn request(r: &RequestRecord, now: Duration) -> Request {
    Request {
        seq: r.seq,
        route: r.route.to_string(),
        method: r.method.as_str(),
        age_s: round(now.saturating_sub(r.ended).as_secs_f64()),
        duration_ms: round(r.duration.as_secs_f64() * 1e3),
        time_to_headers_ms: r.time_to_headers.map(|d| round(d.as_secs_f64() * 1e3)),
        status: r.status.map(|s| s.as_u16()),
        outcome: r.outcome.as_str(),
        trace_id: r.trace_id.map(|t| t.to_string()),
        phases: r.phases.map(|p| p.map(|us| round(f64::from(us) / 1e3))),
    }
}

/// Three decimals: what the page shows.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
