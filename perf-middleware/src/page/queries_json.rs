//! The queries card's JSON: the top fingerprints and the recent N+1 detections.

use std::time::Duration;

use serde::Serialize;

use super::json::round;
use super::queries::{Detection, Queries as Stores, TopEntry};

#[derive(Serialize)]
pub(crate) struct Queries {
    top: Vec<Top>,
    n_plus_one: Vec<NPlusOne>,
}

#[derive(Serialize)]
struct Top {
    /// The fingerprint's hash, 16 hex digits (as the logs print it).
    fingerprint: String,
    statement: String,
    operation: &'static str,
    count: u64,
    total_ms: f64,
    max_ms: f64,
    /// The most `total_ms` overstates (space-saving; 0 = exact).
    error_ms: f64,
}

#[derive(Serialize)]
struct NPlusOne {
    route: String,
    fingerprint: String,
    statement: String,
    count: u32,
    total_ms: f64,
    /// Seconds before the snapshot.
    age_s: f64,
    trace_id: Option<String>,
}

fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1e3)
}

pub(crate) fn queries(stores: &Stores, now: Duration) -> Queries {
    Queries {
        top: stores.top().iter().map(top).collect(),
        n_plus_one: stores
            .detections()
            .iter()
            .map(|d| detection(d, now))
            .collect(),
    }
}

fn top(e: &TopEntry) -> Top {
    Top {
        fingerprint: e.fingerprint.to_string(),
        statement: e.fingerprint.text().to_owned(),
        operation: e.fingerprint.operation().as_str(),
        count: e.count,
        total_ms: ms(e.total),
        max_ms: ms(e.max),
        error_ms: ms(e.error),
    }
}

fn detection(d: &Detection, now: Duration) -> NPlusOne {
    NPlusOne {
        route: d.route.to_string(),
        fingerprint: d.fingerprint.to_string(),
        statement: d.fingerprint.text().to_owned(),
        count: d.count,
        total_ms: ms(d.total),
        age_s: round(now.saturating_sub(d.ended).as_secs_f64()),
        trace_id: d.trace_id.map(|t| t.to_string()),
    }
}
