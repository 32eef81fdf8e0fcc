//! Parsing and validation of objectives and budgets.

use super::*;

#[test]
fn parses_k6_and_unit_forms() {
    let p = |s: &str| Objective::parse(s).unwrap();
    assert_eq!(
        p("p95 < 200ms"),
        Objective::Latency {
            quantile: 0.95,
            threshold: Duration::from_millis(200),
            inclusive: false
        }
    );
    assert_eq!(p("p(95)<200"), p("p95 < 200ms"));
    assert_eq!(p("p(99.9) <= 1.5s").to_string(), "p99.9 <= 1.5s");
    assert_eq!(p("error_rate < 1%"), Objective::ErrorRate { max: 0.01 });
    assert_eq!(p("error_rate<0.005").to_string(), "error_rate < 0.5%");
    assert_eq!(p("p50 < 800us").to_string(), "p50 < 800us");
}

#[test]
fn rejects_with_a_fix() {
    let e = |s: &str| Objective::parse(s).unwrap_err().to_string();
    assert!(e("p95 > 200ms").contains("use < or <="));
    assert!(e("p95 < 200xs").contains("unknown unit"));
    assert!(e("p100 < 1s").contains("strictly between"));
    assert!(e("avg < 1s").contains("unknown metric"));
    assert!(e("error_rate < 120%").contains("between 0% and 100%"));
    assert!(e("p95 200ms").contains("expected `metric < value`"));
}

#[test]
fn builder_validates_consistency() {
    let e = BudgetPolicy::builder()
        .add_budget("a", "GET /a", |b| {
            b.p95(Duration::from_millis(300))
                .p99(Duration::from_millis(200))
        })
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("stricter"), "{e}");
    let e = BudgetPolicy::builder()
        .add_budget("a", "GET /a", |b| b)
        .add_budget("b", "GET /a", |b| b)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("merge"), "{e}");
    let e = BudgetPolicy::builder()
        .add_budget("a", "api", |b| b)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("METHOD /path"), "{e}");
    let e = BudgetPolicy::builder().slots(1).build().unwrap_err();
    assert!(e.to_string().contains("slots"), "{e}");
    let p = BudgetPolicy::builder()
        .add_budget("a", "/a", |b| b.objective("p99.9 < 1s"))
        .build()
        .unwrap();
    assert!(
        p.warnings()[0].contains("10000 samples"),
        "{:?}",
        p.warnings()
    );
    assert_eq!(p.min_samples_for(&p.budgets()[0].objectives()[0]), 10_000);
}
