//! Durations in budgets: `200ms`, `1.5s`, `800us`, `2m`.

use std::time::Duration;

use crate::policy::trim_float;

/// Formats a duration as the shortest of `1.5s`, `200ms` or `800us`.
pub(crate) fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us >= 1_000_000 && us.is_multiple_of(100_000) {
        format!("{}s", trim_float(us as f64 / 1e6))
    } else if us.is_multiple_of(1000) || us >= 100_000 {
        format!("{}ms", trim_float(us as f64 / 1e3))
    } else {
        format!("{us}us")
    }
}

/// Parses `200ms`, `1.5s`, `800us`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write one like 200ms, 1.5s or 800us"))?;
    let secs = match unit.trim() {
        "us" | "µs" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86400.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; write a duration like 200ms, 1.5s or 800us"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}
