//! The gate's HTML report (`--html FILE`): one self-contained page, inline SVG drawn here, no
//! script and no external asset, so it can be uploaded as a CI artifact and opened anywhere.
//!
//! - per budget, the latency percentile spectrum (client view, the server's view of the run from
//!   the difference of its latency histograms, or its p50/p95/p99 as dots when the report has no
//!   histograms, and the baseline's client view when `--baseline` is given), on a log-latency
//!   axis against "nines" (p90, p99, p99.9 ...);
//! - the rate achieved and the p99 per second of the run, with the baseline's overlaid;
//! - the checks.

use std::fmt::Write as _;
use std::path::Path;

use crate::gate::Output;
use crate::load::{Spectrum, Tick};

use super::svg::{chart, esc, legend, line, nines};

const CLIENT: &str = "#1f6feb";
const SERVER: &str = "#d4380d";
const BASE: &str = "#7d8590";
const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#1f2328}\
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 8px;text-align:left}\
.fail{color:#cf222e;font-weight:600}.warn{color:#9a6700}.pass{color:#1a7f37}\
svg{background:#fff;border:1px solid #d0d7de;margin:4px 0}text{font:11px sans-serif;fill:#57606a}\
.legend span{margin-right:1.5em}";

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
                 (max {:.3} ms), {} connections, {} s after {} s warm-up</p>",
                r.achieved_rate,
                r.target_rate,
                r.sent,
                r.dropped,
                r.lag_p99_ms,
                r.lag_max_ms,
                r.connections,
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
            ("client (from each request's start)", CLIENT, false),
            ("server (its histogram of the run)", SERVER, false),
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
            if let Some(s) = server_spectrum(self, &c.budget) {
                series.push(line("server", SERVER, false, nines(&s.points)));
            } else if let Some(e) =
                (self.server.as_ref()).and_then(|s| s.budgets.iter().find(|b| b.name == c.budget))
            {
                // A report without histograms (an old server, a `--server` file): its quantiles.
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

fn server_spectrum<'a>(o: &'a Output, budget: &str) -> Option<&'a Spectrum> {
    (o.run.as_ref()?.server_spectra.iter()).find(|s| s.budget == budget)
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

    /// The handle of a budget layer with one budget, `users`.
    fn users_budget() -> perf_budget::BudgetHandle {
        let policy = perf_budget::BudgetPolicy::from_toml(
            "[[budget]]\nname = \"users\"\nroute = \"GET /users\"\nobjectives = [\"p99 < 5ms\"]\n",
        )
        .unwrap();
        perf_budget::BudgetLayer::pair(policy).1
    }

    #[test]
    fn the_servers_run_quantiles_are_dots_on_the_spectrum() {
        let handle = users_budget();
        let mut server = handle.report();
        let o = &mut server.budgets[0].observed;
        (o.p50_ms, o.p95_ms, o.p99_ms) = (Some(0.1), Some(0.3), Some(0.4));
        let mut out = output("users", 1.0);
        let html = out.html(None).unwrap();
        assert_eq!(
            html.matches("<circle").count(),
            0,
            "no server view, no dots"
        );
        out.server = Some(server);
        let html = out.html(None).unwrap();
        assert_eq!(html.matches("<circle").count(), 3, "p50, p95, p99: {html}");
        assert_eq!(
            html.matches("<polyline").count(),
            3,
            "client, rate and p99 per second"
        );
    }

    #[test]
    fn the_servers_run_histogram_is_a_curve_on_the_spectrum() {
        let handle = users_budget();
        let before = handle.report();
        let mut after = handle.report();
        for ms in [1, 2, 3, 40] {
            (after.budgets[0].total_latency).record(std::time::Duration::from_millis(ms));
        }
        let mut out = output("users", 1.0);
        let run = out.run.as_mut().unwrap();
        run.server_spectra = crate::load::server_spectra(&after, &before);
        let points = &run.server_spectra[0].points;
        assert_eq!(points.len(), 16, "the client's quantiles");
        let max = points.last().unwrap().1;
        assert!((39.0..41.0).contains(&max), "the run's slowest: {max}");
        out.server = Some(after.since(&before));
        let html = out.html(None).unwrap();
        assert_eq!(html.matches("<circle").count(), 0, "a curve, not dots");
        assert_eq!(
            html.matches("<polyline").count(),
            4,
            "client, server, rate, p99: {html}"
        );
        assert!(html.contains("<title>server</title>"));
    }

    #[test]
    fn nines_put_p99_at_two() {
        let n = nines(&[(0.0, 1.0), (0.9, 1.0), (0.99, 1.0), (1.0, 1.0)]);
        let x: Vec<f64> = n.iter().map(|p| (p.0 * 1000.0).round() / 1000.0).collect();
        assert_eq!(x, [0.0, 1.0, 2.0, 4.5]);
    }
}
