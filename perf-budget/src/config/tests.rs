//! Tests of the TOML front end.
use super::*;

const GOOD: &str = r#"
[defaults]
window = "30s"
slots = 6
mode = "annotate"
errors = ["5xx", "4xx", "deadline"]

[shed.shares]
live = 0.9

[[budget]]
name = "users"
route = "GET /api/users/{id}"
objectives = ["p95 < 200ms", "p(99)<500", "error_rate < 1%"]
deadline = "2s"
priority = "live"

[budget.regression]
p95 = "+20%"
floor = "5ms"
error_rate = "+0.5pp"

[[budget]]
name = "slow"
route = "/api/slow"
objectives = ["p95 < 1s"]
severity = "warn"
measure = "body"
"#;

#[test]
fn reads_the_full_schema() {
    let p = BudgetPolicy::from_toml(GOOD).unwrap();
    assert_eq!(p.window(), Duration::from_secs(30));
    assert_eq!(p.slots(), 6);
    assert_eq!(p.mode(), Mode::Annotate);
    assert!(p.errors.client);
    assert!(!p.errors.shed);
    let u = &p.budgets()[0];
    assert_eq!(u.route_key(), "GET /api/users/{id}");
    assert_eq!(u.objectives().len(), 3);
    assert_eq!(u.objectives()[1].to_string(), "p99 < 500ms");
    assert_eq!(u.deadline(), Some(Duration::from_secs(2)));
    assert_eq!(u.regression().quantiles, vec![(0.95, 0.2)]);
    assert_eq!(u.regression().floor, Duration::from_millis(5));
    assert_eq!(u.regression().error_rate, Some(0.005));
    assert_eq!(p.share_for(Some("live")), 0.9);
    let s = &p.budgets()[1];
    assert_eq!(s.method(), None);
    assert_eq!(s.severity(), Severity::Warn);
    assert_eq!(s.measure(), Measure::Body);
}

fn line_and_msg(src: &str) -> (Option<usize>, String) {
    let e = BudgetPolicy::from_toml(src).unwrap_err();
    (e.line(), e.to_string())
}

#[test]
fn errors_name_the_line_and_the_fix() {
    let (l, m) = line_and_msg(&GOOD.replace("\"p(99)<500\"", "\"p99 > 500ms\""));
    assert_eq!(l, Some(14), "{m}");
    assert!(m.contains("use < or <="), "{m}");
    let (l, m) = line_and_msg(&GOOD.replace("deadline = \"2s\"", "deadline = \"2 fortnights\""));
    assert_eq!(l, Some(15), "{m}");
    assert!(m.contains("deadline"), "{m}");
    let (l, m) = line_and_msg(&GOOD.replace("priority = \"live\"", "prio = \"live\""));
    assert_eq!(l, Some(16), "{m}");
    assert!(m.contains("prio"), "{m}");
    let (l, m) =
        line_and_msg(&GOOD.replace("route = \"/api/slow\"", "route = \"GET /api/users/{id}\""));
    assert_eq!(l, Some(24), "{m}");
    assert!(m.contains("merge their objectives"), "{m}");
    let (l, m) = line_and_msg(&GOOD.replace("slots = 6", "slots = 1"));
    assert_eq!(l, Some(4), "{m}");
    let (l, m) = line_and_msg(&GOOD.replace("\"4xx\"", "\"teapot\""));
    assert_eq!(l, Some(6), "{m}");
    assert!(m.contains("\"4xx\""), "{m}");
    let (l, m) = line_and_msg(&GOOD.replace("p95 = \"+20%\"", "p95 = \"20 percent\""));
    assert_eq!(l, Some(19), "{m}");
    assert!(m.contains("+20%"), "{m}");
    let (l, m) = line_and_msg("[[budget]]\nname = 3\n");
    assert_eq!(l, Some(2), "{m}");
}
