//! The phases of a response, read from the `Server-Timing` values the family's layers appended
//! (`cache;dur=1.50;desc="hit"`, `db;dur=…`, `app;dur=…`, `budget;dur=…`). Parsing borrows the
//! header values; nothing is allocated.

use http::HeaderMap;

use super::store::PHASES;
use crate::server_timing::SERVER_TIMING;

/// What the page reads from a response head when it leaves the timing layer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Marks {
    /// The durations of [`PHASES`] in microseconds.
    pub(crate) phases: [Option<u32>; 4],
    /// `None` without `Cache-Status`; else whether the client-nearest cache had `hit`.
    pub(crate) cache_hit: Option<bool>,
}

/// The phases and the cache's verdict of a response head.
pub(crate) fn marks(headers: &HeaderMap) -> Marks {
    Marks {
        phases: read(headers),
        cache_hit: super::cache_status::read(headers),
    }
}

/// The durations of [`PHASES`] in microseconds, from every `Server-Timing` field line.
fn read(headers: &HeaderMap) -> [Option<u32>; 4] {
    let mut out = [None; 4];
    for value in headers.get_all(SERVER_TIMING) {
        let Ok(value) = value.to_str() else { continue };
        for metric in value.split(',') {
            let mut params = metric.split(';').map(str::trim);
            let name = params.next().unwrap_or_default();
            let Some(i) = PHASES.iter().position(|p| p.eq_ignore_ascii_case(name)) else {
                continue;
            };
            let dur = params
                .filter_map(|p| p.strip_prefix("dur="))
                .find_map(|d| d.parse::<f64>().ok());
            if let Some(ms) = dur.filter(|ms| ms.is_finite() && *ms >= 0.0) {
                out[i] = Some((ms * 1000.0).min(f64::from(u32::MAX)) as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_family_phases_from_every_line() {
        let mut h = HeaderMap::new();
        h.append(
            SERVER_TIMING,
            r#"cache;dur=1.50;desc="hit""#.parse().unwrap(),
        );
        h.append(SERVER_TIMING, "db;dur=2, total;dur=9".parse().unwrap());
        h.append(
            SERVER_TIMING,
            "app;desc=x;dur=bogus, budget;dur=-1".parse().unwrap(),
        );
        assert_eq!(read(&h), [Some(1500), Some(2000), None, None]);
    }
}
