//! Reading a [`BudgetPolicy`] from TOML.
//!
//! ```toml
//! [defaults]
//! window      = "60s"       # sliding window
//! slots       = 12          # ring of 12 x 5 s
//! min_samples = 200         # no verdict below this (raised per objective to 10 / allowance)
//! # sample_floor = 20       # tests only: verdicts from this many samples, no raise
//! confidence  = 0.95        # Wilson lower bound of the miss share must exceed the allowance
//! mode        = "annotate"  # observe | annotate | deadline | shed
//! errors      = ["5xx", "deadline", "shed"]   # add "4xx" to count client errors
//!
//! [shed.shares]             # admitted share per priority while breached (mode = "shed")
//! live = 0.9
//!
//! [[budget]]
//! name       = "users"
//! route      = "GET /api/users/{id}"
//! objectives = ["p95 < 200ms", "p99 < 500ms", "error_rate < 1%"]
//! severity   = "error"      # or "warn"
//! deadline   = "2s"
//! priority   = "live"
//!
//! [budget.regression]       # used by `perf-budget gate --baseline`
//! p95        = "+20%"
//! floor      = "5ms"
//! error_rate = "+0.5pp"
//! ```
//!
//! # Example
//!
//! ```
//! let err = perf_budget::BudgetPolicy::from_toml(
//!     "[[budget]]\nname = \"a\"\nroute = \"GET /a\"\nobjectives = [\"p95 < 2 parsecs\"]\n",
//! )
//! .unwrap_err();
//! assert_eq!(err.line(), Some(4));
//! assert!(err.to_string().contains("unknown unit"), "{err}");
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{ConfigError, Kind};
use crate::policy::{
    BudgetPolicy, BudgetPolicyBuilder, ErrorClasses, Measure, Mode, Objective, Regression,
    RouteBudget, Severity, parse_duration, parse_route,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    shed: Shed,
    #[serde(default)]
    other: Option<Other>,
    #[serde(default)]
    budget: Vec<BudgetToml>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    window: Option<Spanned<String>>,
    slots: Option<Spanned<usize>>,
    short_slots: Option<usize>,
    min_samples: Option<u64>,
    sample_floor: Option<u64>,
    confidence: Option<Spanned<f64>>,
    mode: Option<Mode>,
    measure: Option<Measure>,
    severity: Option<Severity>,
    errors: Option<Spanned<Vec<String>>>,
    breach_burn: Option<f64>,
    recover_burn: Option<f64>,
    breach_evals: Option<u32>,
    recover_evals: Option<u32>,
    deadline_status: Option<Spanned<u16>>,
    instance: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Shed {
    default_share: Option<f64>,
    #[serde(default)]
    shares: BTreeMap<String, Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Other {
    objectives: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetToml {
    name: Spanned<String>,
    route: Spanned<String>,
    #[serde(default)]
    objectives: Vec<Spanned<String>>,
    severity: Option<Severity>,
    deadline: Option<Spanned<String>>,
    priority: Option<String>,
    measure: Option<Measure>,
    #[serde(default)]
    regression: BTreeMap<String, Spanned<String>>,
}

struct Src<'a>(&'a str);

impl Src<'_> {
    fn line(&self, offset: usize) -> usize {
        self.0[..offset.min(self.0.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }
    fn at<T>(&self, s: &Spanned<T>) -> Option<usize> {
        Some(self.line(s.span().start))
    }
}

impl BudgetPolicy {
    /// Reads a policy from TOML (see the [`config`](crate::config) module for the schema).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the line and what to fix.
    pub fn from_toml(source: &str) -> Result<Self, ConfigError> {
        let src = Src(source);
        let file: File = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| src.line(s.start));
            ConfigError::new(Kind::Syntax, e.message().trim().to_owned()).at_line(line)
        })?;
        let d = &file.defaults;
        let mut b = read_defaults(&src, d)?;
        b = read_shed(&src, &file.shed, b)?;
        if let Some(other) = &file.other {
            let mut objectives = Vec::new();
            for o in &other.objectives {
                objectives.push(Objective::parse(o.get_ref()).map_err(|e| e.at_line(src.at(o)))?);
            }
            b = b.other(|mut bb| {
                for o in objectives {
                    bb = bb.objective(&o.to_string());
                }
                bb
            });
        }
        for t in &file.budget {
            b.push_budget(read_budget(&src, t, d.measure, d.severity)?);
        }
        b.build().map_err(|e| {
            // Attach the most useful line we know for policy-level errors.
            let line = match e.kind() {
                Kind::Route => file
                    .budget
                    .iter()
                    .rev()
                    .find(|t| e.message().contains(&format!("{:?}", t.name.get_ref())))
                    .and_then(|t| src.at(&t.name)),
                _ if e.message().starts_with("slots") => d.slots.as_ref().and_then(|s| src.at(s)),
                _ if e.message().starts_with("confidence") => {
                    d.confidence.as_ref().and_then(|s| src.at(s))
                }
                _ => None,
            };
            e.at_line(line)
        })
    }
}

fn value_error<T>(message: String, line: Option<usize>) -> Result<T, ConfigError> {
    Err(ConfigError::new(Kind::Value, message).at_line(line))
}

/// The `[defaults]` table.
fn read_defaults(src: &Src<'_>, d: &Defaults) -> Result<BudgetPolicyBuilder, ConfigError> {
    let mut b = BudgetPolicy::builder();
    if let Some(w) = &d.window {
        match parse_duration(w.get_ref()) {
            Ok(w) => b = b.window(w),
            Err(m) => return value_error(format!("window: {m}"), src.at(w)),
        }
    }
    if let Some(s) = &d.slots {
        b = b.slots(*s.get_ref());
    }
    if let Some(c) = &d.confidence {
        b = b.confidence(*c.get_ref());
    }
    if let Some(v) = d.short_slots {
        b = b.short_slots(v);
    }
    if let Some(v) = d.min_samples {
        b = b.min_samples(v);
    }
    if let Some(v) = d.sample_floor {
        b = b.sample_floor(v);
    }
    if let Some(v) = d.mode {
        b = b.mode(v);
    }
    if let Some(v) = d.breach_burn {
        b = b.breach_burn(v);
    }
    if let Some(v) = d.recover_burn {
        b = b.recover_burn(v);
    }
    if let Some(v) = d.breach_evals {
        b = b.breach_evals(v);
    }
    if let Some(v) = d.recover_evals {
        b = b.recover_evals(v);
    }
    if let Some(v) = &d.instance {
        b = b.instance(v.clone());
    }
    if let Some(s) = &d.deadline_status {
        match http::StatusCode::from_u16(*s.get_ref()) {
            Ok(st) => b = b.deadline_status(st),
            Err(_) => {
                let m = format!("deadline_status {} is not a status code", s.get_ref());
                return value_error(m, src.at(s));
            }
        }
    }
    if let Some(errs) = &d.errors {
        b = b.errors(read_errors(errs.get_ref()).or_else(|m| value_error(m, src.at(errs)))?);
    }
    Ok(b)
}

/// `errors = ["5xx", "deadline"]`.
fn read_errors(classes: &[String]) -> Result<ErrorClasses, String> {
    let mut c = ErrorClasses {
        server: false,
        client: false,
        deadline: false,
        shed: false,
    };
    for e in classes {
        match e.as_str() {
            "5xx" => c.server = true,
            "4xx" => c.client = true,
            "deadline" | "timeout" => c.deadline = true,
            "shed" => c.shed = true,
            other => {
                return Err(format!(
                    "errors: unknown class {other:?}; use \"5xx\", \"4xx\", \"deadline\" or \"shed\""
                ));
            }
        }
    }
    Ok(c)
}

/// The `[shed]` table.
fn read_shed(
    src: &Src<'_>,
    shed: &Shed,
    mut b: BudgetPolicyBuilder,
) -> Result<BudgetPolicyBuilder, ConfigError> {
    if let Some(s) = shed.default_share {
        b = b.default_share(s);
    }
    for (name, share) in &shed.shares {
        if !(0.0..=1.0).contains(share.get_ref()) {
            let m = format!("shed share {name} = {} must lie in [0, 1]", share.get_ref());
            return value_error(m, src.at(share));
        }
        b = b.add_shed_share(name.clone(), *share.get_ref());
    }
    Ok(b)
}

/// One `[[budget]]`, validated as the builder validates it.
fn read_budget(
    src: &Src<'_>,
    t: &BudgetToml,
    measure: Option<Measure>,
    severity: Option<Severity>,
) -> Result<RouteBudget, ConfigError> {
    let name = t.name.get_ref();
    let err = |kind, m: String, line| {
        Err(ConfigError::new(kind, format!("budget {name:?}: {m}")).at_line(line))
    };
    let (method, route) = match parse_route(t.route.get_ref()) {
        Ok(r) => r,
        Err(m) => return err(Kind::Route, m, src.at(&t.route)),
    };
    let mut objectives = Vec::new();
    for o in &t.objectives {
        match Objective::parse(o.get_ref()) {
            Ok(o) => objectives.push(o),
            Err(e) => return err(Kind::Objective, e.message().to_owned(), src.at(o)),
        }
    }
    let deadline = match &t.deadline {
        Some(d) => match parse_duration(d.get_ref()) {
            Ok(d) => Some(d),
            Err(m) => return err(Kind::Value, format!("deadline: {m}"), src.at(d)),
        },
        None => None,
    };
    let mut regression = Regression {
        floor: Duration::from_millis(1),
        ..Regression::default()
    };
    for (k, v) in &t.regression {
        if let Err(m) = read_regression(&mut regression, k, v.get_ref().trim()) {
            return err(Kind::Value, m, src.at(v));
        }
    }
    let route_str = match &method {
        Some(m) => format!("{m} {route}"),
        None => route.clone(),
    };
    let policy = BudgetPolicy::builder()
        .add_budget(name.clone(), &route_str, |mut b| {
            for o in &objectives {
                b = b.objective(&o.to_string());
            }
            if let Some(d) = deadline {
                b = b.deadline(d);
            }
            if let Some(p) = &t.priority {
                b = b.priority(p.clone());
            }
            if let Some(s) = t.severity.or(severity) {
                b = b.severity(s);
            }
            if let Some(m) = t.measure.or(measure) {
                b = b.measure(m);
            }
            b.regression(regression)
        })
        .build()
        .map_err(|e| e.at_line(src.at(&t.name)))?;
    let mut budget = policy.budgets.into_iter().next();
    if let Some(b) = &mut budget {
        // Keep the parsed objectives exactly (the round trip through text is lossless, but
        // avoid depending on it).
        b.objectives = objectives;
    }
    budget.ok_or_else(|| ConfigError::new(Kind::Value, "internal: budget lost"))
}

/// One `[budget.regression]` entry: `floor = "2ms"`, `error_rate = "+0.5pp"` or `p95 = "+20%"`.
fn read_regression(r: &mut Regression, key: &str, value: &str) -> Result<(), String> {
    if key == "floor" {
        r.floor = parse_duration(value).map_err(|m| format!("regression.floor: {m}"))?;
        return Ok(());
    }
    if key == "error_rate" {
        let pp = value
            .trim_start_matches('+')
            .strip_suffix("pp")
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|pp| *pp >= 0.0);
        let pp = pp.ok_or_else(|| {
            format!("regression.error_rate = {value:?}: write percentage points, e.g. \"+0.5pp\"")
        })?;
        r.error_rate = Some(pp / 100.0);
        return Ok(());
    }
    let q = key
        .strip_prefix('p')
        .and_then(|q| q.parse::<f64>().ok())
        .filter(|q| *q > 0.0 && *q < 100.0)
        .ok_or_else(|| {
            format!("regression key {key:?} is unknown; use pNN, floor or error_rate")
        })?;
    let rel = value
        .trim_start_matches('+')
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|rel| *rel >= 0.0)
        .ok_or_else(|| {
            format!("regression.{key} = {value:?}: write a relative tolerance, e.g. \"+20%\"")
        })?;
    r.quantiles.push((q / 100.0, rel / 100.0));
    Ok(())
}

#[cfg(test)]
mod tests;
