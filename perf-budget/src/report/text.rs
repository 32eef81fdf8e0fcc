//! The report as an aligned text table and as Markdown.

use std::fmt::Write as _;

use crate::eval::Status;
use crate::policy::Severity;
use crate::report::BudgetReport;

impl BudgetReport {
    fn rows(&self) -> Vec<[String; 10]> {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let mut rows = Vec::new();
        for b in &self.budgets {
            if b.objectives.is_empty() && b.samples == 0 {
                continue;
            }
            let observed = format!(
                "p50 {} p95 {} p99 {} ms",
                f(b.observed.p50_ms),
                f(b.observed.p95_ms),
                f(b.observed.p99_ms)
            );
            if b.objectives.is_empty() {
                rows.push([
                    b.name.clone(),
                    b.route.clone(),
                    b.state.as_str().to_owned(),
                    "-".into(),
                    "-".into(),
                    b.samples.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    observed.clone(),
                ]);
            }
            for o in &b.objectives {
                let status = match (o.status, b.severity) {
                    (Status::Pass, _) => "pass",
                    (Status::Fail, Severity::Error) => "FAIL",
                    (Status::Fail, Severity::Warn) => "fail (warn)",
                    (Status::Insufficient, _) => "insufficient",
                };
                rows.push([
                    b.name.clone(),
                    b.route.clone(),
                    o.state.as_str().to_owned(),
                    o.expr.clone(),
                    status.to_owned(),
                    o.samples.to_string(),
                    format!("{}/{}", o.bad, o.allowed),
                    format!("{:.2}%", o.lower_bound * 100.0),
                    format!("{:.2}/{:.2}", o.burn_short, o.burn_long),
                    observed.clone(),
                ]);
            }
        }
        rows
    }

    const HEAD: [&'static str; 10] = [
        "budget",
        "route",
        "state",
        "objective",
        "status",
        "n",
        "bad/allowed",
        "lower",
        "burn s/l",
        "observed",
    ];

    /// An aligned text table.
    pub fn to_text(&self) -> String {
        let rows = self.rows();
        let mut w: Vec<usize> = Self::HEAD.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, c) in w.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let parts: Vec<String> = cells.zip(&w).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&mut Self::HEAD.iter().copied());
        for r in &rows {
            line(&mut r.iter().map(String::as_str));
        }
        let verdict = if self.pass { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{verdict}: window {}s, confidence {}",
            self.window_s, self.confidence
        );
        out
    }

    /// A Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| {} |\n|{}\n",
            Self::HEAD.join(" | "),
            "---|".repeat(Self::HEAD.len())
        );
        for r in self.rows() {
            let _ = writeln!(out, "| {} |", r.map(|c| c.replace('|', "\\|")).join(" | "));
        }
        out
    }
}
