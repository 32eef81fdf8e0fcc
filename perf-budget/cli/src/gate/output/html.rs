//! The gate's HTML report (`--html FILE`): one self-contained page, inline SVG drawn here, no
//! script and no external asset, so it can be uploaded as a CI artifact and opened anywhere.
//!
//! - per budget, the latency percentile spectrum (client view, the server's p50/p95/p99, and the
//!   baseline's client view when `--baseline` is given), on a log-latency axis against
//!   "nines" (p90, p99, p99.9 ...);
//! - the rate achieved and the p99 per second of the run, with the baseline's overlaid;
//! - the checks.

use std::fmt::Write as _;
use std::path::Path;

use crate::gate::Output;
use crate::load::{Spectrum, Tick};

const CLIENT: &str = "#1f6feb";
const SERVER: &str = "#d4380d";
const BASE: &str = "#7d8590";
const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#1f2328}\
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 8px;text-align:left}\
.fail{color:#cf222e;font-weight:600}.warn{color:#9a6700}.pass{color:#1a7f37}\
svg{background:#fff;border:1px solid #d0d7de;margin:4px 0}text{font:11px sans-serif;fill:#57606a}\
.legend span{margin-right:1.5em}";

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    dashed: bool,
    /// Points only (the server's few quantiles), no line.
    dots: bool,
    points: Vec<(f64, f64)>,
}

impl Output {
    /// The report; the baseline (a gate JSON output) is read from `baseline` when given.
    pub(crate) fn html(&self, baseline: Option<&Path>) -> Result<String, String> {
        let base: Option<Output> = match baseline {
            Some(p) => {
                let src =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_str(&src).ok()
            }
            None => None,
        };
        let mut h = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>perf-budget gate: {v}</title><style>{STYLE}</style></head><body>\
             <h1>perf-budget gate: <span class=\"{c}\">{v}</span> (exit {e})</h1>",
            v = esc(&self.verdict),
            c = if self.exit_code == 0 { "pass" } else { "fail" },
            e = self.exit_code
        );
        let _ = write!(h, "<p>profile: <code>{}</code></p>", esc(&self.profile));
        if let Some(r) = &self.run {
            let _ = write!(
                h,
                "<p>{:.1} of {:.1} req/s achieved, {} sent, {} dropped, schedule lag p99 {:.3} ms \
                 (max {:.3} ms), {} s after {} s warm-up</p>",
                r.achieved_rate,
                r.target_rate,
                r.sent,
                r.dropped,
                r.lag_p99_ms,
                r.lag_max_ms,
                r.duration_s,
                r.warmup_s
            );
        }
        h += &self.spectra_html(base.as_ref());
        h += &self.timeline_html(base.as_ref());
        h += &self.checks_html();
        h += "</body></html>\n";
        Ok(h)
    }

    fn spectra_html(&self, base: Option<&Output>) -> String {
        let mut h = String::from("<h2>Latency percentile spectrum per budget</h2>");
        let legend = legend(&[
            ("client (from the scheduled send)", CLIENT, false),
            ("server p50 / p95 / p99", SERVER, false),
            ("baseline client", BASE, true),
        ]);
        h += &legend;
        for c in &self.client {
            let mut series = Vec::new();
            if let Some(s) = spectrum(self, &c.budget) {
                series.push(line("client", CLIENT, false, nines(&s.points)));
            } else {
                // An oha result: the quantiles the gate judged.
                let pts = c.quantiles.iter().map(|q| (q.0, q.1)).collect::<Vec<_>>();
                series.push(line("client", CLIENT, false, nines(&pts)));
            }
            if let Some(e) =
                (self.server.as_ref()).and_then(|s| s.budgets.iter().find(|b| b.name == c.budget))
            {
                let o = &e.observed;
                let pts = [(0.5, o.p50_ms), (0.95, o.p95_ms), (0.99, o.p99_ms)]
                    .into_iter()
                    .filter_map(|(q, v)| Some((q, v?)))
                    .collect::<Vec<_>>();
                let mut s = line("server", SERVER, false, nines(&pts));
                s.dots = true;
                series.push(s);
            }
            if let Some(s) = base.and_then(|b| spectrum(b, &c.budget)) {
                series.push(line("baseline", BASE, true, nines(&s.points)));
            }
            let ticks = [
                (0.0, "p0"),
                (1.0, "p90"),
                (2.0, "p99"),
                (3.0, "p99.9"),
                (4.0, "p99.99"),
            ];
            let _ = write!(h, "<h3>{}</h3>", esc(&c.budget));
            h += &chart(&series, &ticks, "latency (ms, log)", true);
        }
        h
    }

    fn timeline_html(&self, base: Option<&Output>) -> String {
        let Some(r) = self.run.as_ref().filter(|r| !r.timeline.is_empty()) else {
            return String::new();
        };
        let empty = Vec::new();
        let bt = base
            .and_then(|b| b.run.as_ref())
            .map_or(&empty, |r| &r.timeline);
        let pick = |t: &[Tick], f: fn(&Tick) -> f64| t.iter().map(|k| (k.t_s, f(k))).collect();
        let end = r
            .timeline
            .iter()
            .chain(bt)
            .map(|k| k.t_s)
            .fold(1.0, f64::max);
        let prec = usize::from(end < 10.0);
        let ticks: Vec<(f64, String)> = (0..=4)
            .map(|i| end * f64::from(i) / 4.0)
            .map(|x| (x, format!("{x:.prec$}s")))
            .collect();
        let ticks: Vec<(f64, &str)> = ticks.iter().map(|(x, s)| (*x, s.as_str())).collect();
        let mut h = String::from("<h2>Rate achieved over time</h2>");
        h += &legend(&[("this run", CLIENT, false), ("baseline", BASE, true)]);
        let mut rate = vec![line("rate", CLIENT, false, pick(&r.timeline, |k| k.rps))];
        let mut p99 = vec![line("p99", CLIENT, false, pick(&r.timeline, |k| k.p99_ms))];
        if !bt.is_empty() {
            rate.push(line("baseline", BASE, true, pick(bt, |k| k.rps)));
            p99.push(line("baseline", BASE, true, pick(bt, |k| k.p99_ms)));
        }
        h += &chart(&rate, &ticks, "requests per second", false);
        h += "<h2>Client p99 per second</h2>";
        h += &chart(&p99, &ticks, "p99 (ms, log)", true);
        h
    }

    fn checks_html(&self) -> String {
        let mut h = String::from(
            "<h2>Checks</h2><table><tr><th>outcome</th><th>class</th><th>view</th>\
             <th>budget</th><th>objective</th><th>detail</th></tr>",
        );
        for c in &self.checks {
            let _ = write!(
                h,
                "<tr><td class=\"{o}\">{o}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.class),
                esc(&c.view),
                esc(c.budget.as_deref().unwrap_or("")),
                esc(c.objective.as_deref().unwrap_or("")),
                esc(&c.message),
                o = esc(&c.outcome),
            );
        }
        h + "</table>"
    }
}

fn spectrum<'a>(o: &'a Output, budget: &str) -> Option<&'a Spectrum> {
    o.run.as_ref()?.spectra.iter().find(|s| s.budget == budget)
}

fn line<'a>(name: &'a str, color: &'a str, dashed: bool, points: Vec<(f64, f64)>) -> Series<'a> {
    Series {
        name,
        color,
        dashed,
        dots: false,
        points,
    }
}

/// `(quantile, ms)` to `(nines, ms)`: p90 is 1, p99 is 2, the maximum is drawn at 4.5.
fn nines(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|&(q, v)| {
            let x = if q >= 1.0 { 4.5 } else { -(1.0 - q).log10() };
            (x.min(4.5), v)
        })
        .collect()
}

fn legend(items: &[(&str, &str, bool)]) -> String {
    let mut h = String::from("<p class=\"legend\">");
    for (name, color, dashed) in items {
        let dash = if *dashed { "dashed" } else { "solid" };
        let _ = write!(
            h,
            "<span><b style=\"border-top:3px {dash} {color};display:inline-block;width:2em\"></b> {}</span>",
            esc(name)
        );
    }
    h + "</p>"
}

/// An SVG line chart: x ticks as given, y linear from 0 or logarithmic over the data.
fn chart(series: &[Series<'_>], xticks: &[(f64, &str)], ylabel: &str, log: bool) -> String {
    const W: f64 = 720.0;
    const H: f64 = 260.0;
    const L: f64 = 60.0;
    const B: f64 = 30.0;
    const T: f64 = 24.0;
    let all = || series.iter().flat_map(|s| s.points.iter());
    let ys = all()
        .map(|p| p.1)
        .filter(|y| y.is_finite() && (!log || *y > 0.0));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if lo > hi {
        return String::from("<p>no samples</p>");
    }
    let xmax = xticks
        .iter()
        .map(|t| t.0)
        .chain(all().map(|p| p.0))
        .fold(1e-9, f64::max);
    let (y0, y1) = if log {
        (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        )
    } else {
        (0.0, nice_top(hi))
    };
    let fy = |y: f64| if log { y.max(1e-9).log10() } else { y };
    let px = |x: f64| L + x / xmax * (W - L - 10.0);
    let py = |y: f64| T + (1.0 - (fy(y) - y0) / (y1 - y0)) * (H - B - T);
    let mut s = format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\
         <text x=\"4\" y=\"12\">{}</text>",
        esc(ylabel)
    );
    for (x, label) in xticks {
        let _ = write!(
            s,
            "<line x1=\"{X:.1}\" x2=\"{X:.1}\" y1=\"{T}\" y2=\"{b}\" stroke=\"#eaeef2\"/>\
             <text x=\"{X:.1}\" y=\"{t}\" text-anchor=\"middle\">{}</text>",
            esc(label),
            X = px(*x),
            b = H - B,
            t = H - 12.0
        );
    }
    let steps = if log { (y1 - y0) as usize } else { 4 };
    for i in 0..=steps {
        let v = if log {
            10f64.powf(y0 + i as f64)
        } else {
            y1 * i as f64 / 4.0
        };
        let _ = write!(
            s,
            "<line x1=\"{L}\" x2=\"{r}\" y1=\"{Y:.1}\" y2=\"{Y:.1}\" stroke=\"#eaeef2\"/>\
             <text x=\"{t}\" y=\"{Y:.1}\" text-anchor=\"end\">{v}</text>",
            r = W - 10.0,
            t = L - 4.0,
            Y = py(v),
            v = fmt_num(v)
        );
    }
    for se in series {
        let pts: Vec<String> = (se.points.iter())
            .filter(|p| p.1.is_finite() && (!log || p.1 > 0.0))
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if se.dots {
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    s,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"4\" fill=\"{}\"/>",
                    se.color
                );
            }
        } else {
            let dash = if se.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"><title>{}</title></polyline>",
                se.color,
                pts.join(" "),
                esc(se.name)
            );
        }
    }
    s + "</svg>"
}

/// The smallest 4 × (a round multiple of 10^k) above `hi`: four round steps on a linear axis.
fn nice_top(hi: f64) -> f64 {
    let raw = (hi * 1.05 / 4.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 8.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    4.0 * step
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{ClientBudget, check};
    use crate::load::RunStats;

    fn output(budget: &str, scale: f64) -> Output {
        let points = [
            (0.0, 0.05),
            (0.5, 0.1),
            (0.9, 0.2),
            (0.99, 0.5),
            (0.999, 2.0),
            (1.0, 3.0),
        ];
        let run = RunStats {
            target_rate: 200.0,
            achieved_rate: 199.0,
            timeline: (0..5)
                .map(|t| Tick {
                    t_s: f64::from(t),
                    rps: 200.0,
                    errors: 0,
                    p50_ms: 0.1 * scale,
                    p99_ms: 0.5 * scale,
                })
                .collect(),
            spectra: vec![Spectrum {
                budget: budget.into(),
                points: points.iter().map(|&(q, v)| (q, v * scale)).collect(),
            }],
            ..RunStats::default()
        };
        Output {
            verdict: "pass".into(),
            exit_code: 0,
            judged: 1,
            objectives: 1,
            profile: "open rate=200".into(),
            run: Some(run),
            client: vec![ClientBudget {
                budget: budget.into(),
                n: 1000,
                errors: 0,
                timeouts: 0,
                error_rate: 0.0,
                max_ms: 3.0,
                quantiles: vec![(0.5, 0.1, 0.09, 0.11)],
            }],
            server: None,
            checks: vec![check(
                "budget",
                "client",
                Some(budget),
                Some("p99 < 5ms"),
                "pass",
                "ok <3".into(),
            )],
        }
    }

    #[test]
    fn the_report_is_self_contained_and_names_the_budgets() {
        let dir = std::env::temp_dir().join(format!("perf-budget-html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("base.json");
        std::fs::write(
            &base,
            serde_json::to_string(&output("users<get>", 1.2)).unwrap(),
        )
        .unwrap();
        let file = dir.join("report.html");
        let html = output("users<get>", 1.0).html(Some(&base)).unwrap();
        crate::write(&file, &html).unwrap();
        let html = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        assert!(!html.contains("<script") && !html.contains("<link"));
        assert!(
            html.contains("<h3>users&lt;get&gt;</h3>"),
            "the budget, escaped"
        );
        assert!(html.contains("ok &lt;3"), "the checks, escaped");
        // Client spectrum, its baseline, and rate and p99 over time with their baselines.
        assert_eq!(html.matches("<svg").count(), 3);
        assert_eq!(html.matches("stroke-dasharray").count(), 3);
        assert!(html.contains(">0.0s<") && html.contains(">1.0s<") && html.contains(">4.0s<"));
    }

    #[test]
    fn linear_axes_end_on_round_numbers() {
        assert_eq!(nice_top(200.0), 240.0);
        assert_eq!(nice_top(5000.0), 6000.0);
        assert!((nice_top(3.0) - 3.2).abs() < 1e-9);
    }

    #[test]
    fn nines_put_p99_at_two() {
        let n = nines(&[(0.0, 1.0), (0.9, 1.0), (0.99, 1.0), (1.0, 1.0)]);
        let x: Vec<f64> = n.iter().map(|p| (p.0 * 1000.0).round() / 1000.0).collect();
        assert_eq!(x, [0.0, 1.0, 2.0, 4.5]);
    }
}
