//! The gate's output as text, JUnit XML and Markdown (JSON is `Output`'s serde form).

mod html;
mod svg;

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::gate::*;

impl Output {
    /// The checks as a JUnit XML report: one test case per check.
    pub(crate) fn junit(&self) -> String {
        let mut suite = TestSuite::new("perf-budget gate");
        for c in &self.checks {
            let budget = c.budget.as_deref().unwrap_or("run");
            let class = format!("perf-budget.{}.{}.{budget}", c.class, c.view);
            let name = junit_name(c);
            let mut status = match c.outcome.as_str() {
                "fail" => TestCaseStatus::non_success(NonSuccessKind::Failure),
                "skipped" => TestCaseStatus::skipped(),
                _ => TestCaseStatus::success(),
            };
            if matches!(c.outcome.as_str(), "fail" | "skipped") {
                status.set_message(c.message.as_str());
            }
            if c.outcome == "fail" {
                status.set_type(c.class.as_str());
                status.set_description(c.message.as_str());
            }
            let mut case = TestCase::new(name, status);
            case.set_classname(class);
            if !matches!(c.outcome.as_str(), "fail" | "skipped") {
                case.set_system_out(format!("{}: {}", c.outcome, c.message));
            }
            suite.add_test_case(case);
        }
        let mut report = Report::new("perf-budget");
        report.add_test_suite(suite);
        report.to_string().unwrap_or_default()
    }

    fn rows(&self) -> Vec<[String; 6]> {
        self.checks
            .iter()
            .map(|c| {
                [
                    c.outcome.to_uppercase(),
                    c.class.clone(),
                    c.view.clone(),
                    c.budget.clone().unwrap_or_default(),
                    c.objective.clone().unwrap_or_default(),
                    c.message.clone(),
                ]
            })
            .collect()
    }

    fn header(&self) -> String {
        let mut s = format!(
            "perf-budget gate: {} (exit {}), judged {} of {} objectives",
            self.verdict.to_uppercase(),
            self.exit_code,
            self.judged,
            self.objectives
        );
        if let Some(r) = &self.run {
            let _ = write!(
                s,
                "\nrun: {:.1}/{:.1} req/s, {} sent, {} dropped, lag p99 {:.2}ms, {} connections, {}s after {}s warm-up",
                r.achieved_rate,
                r.target_rate,
                r.sent,
                r.dropped,
                r.lag_p99_ms,
                r.connections,
                r.duration_s,
                r.warmup_s
            );
        }
        s
    }

    pub(crate) fn text(&self) -> String {
        let head = ["outcome", "class", "view", "budget", "objective", "detail"];
        let rows = self.rows();
        let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
        for r in &rows {
            for (w, c) in w.iter_mut().zip(r).take(5) {
                *w = (*w).max(c.len());
            }
        }
        let mut out = self.header();
        out.push('\n');
        let line = |cells: Vec<&str>| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i < 5 {
                    let _ = write!(l, "{c:<w$}  ", w = w[i]);
                } else {
                    l.push_str(c);
                }
            }
            l.trim_end().to_owned() + "\n"
        };
        out += &line(head.to_vec());
        for r in &rows {
            out += &line(r.iter().map(String::as_str).collect());
        }
        if !self.client.is_empty() {
            out.push_str("\nclient view (latency from each request's start):\n");
            for c in &self.client {
                let q: Vec<String> = c
                    .quantiles
                    .iter()
                    .map(|q| format!("p{} {:.2}ms", q.0 * 100.0, q.1))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {:<20} n={:<7} errors={:<5} {} max {:.2}ms",
                    c.budget,
                    c.n,
                    c.errors,
                    q.join(" "),
                    c.max_ms
                );
            }
        }
        if let Some(s) = &self.server {
            out.push_str("\nserver view (latency inside the layer):\n");
            for b in s.budgets.iter().filter(|b| b.samples > 0) {
                let q: Vec<String> = [
                    (50, b.observed.p50_ms),
                    (95, b.observed.p95_ms),
                    (99, b.observed.p99_ms),
                ]
                .iter()
                .map(|(q, v)| v.map_or_else(|| format!("p{q} -"), |v| format!("p{q} {v:.2}ms")))
                .collect();
                let _ = writeln!(
                    out,
                    "  {:<20} n={:<7} errors={:<5} {}",
                    b.name,
                    b.samples,
                    b.errors,
                    q.join(" ")
                );
            }
            out += &s.to_text();
        }
        out
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "### {}\n\n| outcome | class | view | budget | objective | detail |\n|---|---|---|---|---|---|\n",
            self.header().replace('\n', "\n\n")
        );
        for r in self.rows() {
            let _ = writeln!(out, "| {} |", r.map(|c| c.replace('|', "\\|")).join(" | "));
        }
        out
    }
}

/// The JUnit test name: stable across runs (`order.p95`, `validity.rate`), the values stay in
/// the message.
fn junit_name(c: &Check) -> String {
    let label = |o: &str| o.split_whitespace().next().unwrap_or(o).to_owned();
    let key = if c.key.is_empty() { &c.view } else { &c.key };
    match (&c.budget, &c.objective) {
        (Some(b), Some(o)) => format!("{b}.{}", label(o)),
        (Some(b), None) => format!("{b}.{key}"),
        (None, Some(o)) => format!("{}.{}", c.class, label(o)),
        (None, None) => format!("{}.{key}", c.class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let out = Output {
            verdict: "budget failed".into(),
            exit_code: 1,
            profile: String::new(),
            run: None,
            client: vec![],
            server: None,
            judged: 1,
            objectives: 1,
            checks: vec![check(
                "budget",
                "client",
                Some("a"),
                Some("p95 < 200ms"),
                "fail",
                "p95 = 300ms > \"x\" & y".into(),
            )],
        };
        let x = out.junit();
        assert!(
            x.contains("name=\"a.p95\"") && x.contains("&amp; y") && x.contains("failures=\"1\""),
            "{x}"
        );
    }
}
