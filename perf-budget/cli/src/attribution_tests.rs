//! The gate judges client-side numbers against the budget the server's layer counted: both must
//! attribute every request to the same budget, whether the layer matches the path itself or reads
//! the template a router recorded.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Empty;
use perf_budget::{BudgetLayer, BudgetPolicy, OTHER};
use perf_middleware::{MatchRouteLayer, RouteTable};
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};

use crate::gate::budget_for;

/// The name of the budget the layer counted one `method` `path` request against: matching the
/// path itself, or (`routed`) reading the template that a `MatchRouteLayer` over the budgets'
/// templates recorded.
fn layer_attribution(policy: &BudgetPolicy, method: &Method, path: &str, routed: bool) -> String {
    let (layer, handle) = BudgetLayer::pair(policy.clone());
    let inner = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    }));
    let req = Request::builder()
        .method(method.clone())
        .uri(path)
        .body(())
        .expect("request");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    if routed {
        let templates: Vec<&str> = policy.budgets().iter().map(|b| b.route()).collect();
        let table = RouteTable::new(templates).expect("the policy's templates");
        let svc = MatchRouteLayer::new(table).layer(inner);
        rt.block_on(svc.oneshot(req)).expect("response");
    } else {
        rt.block_on(inner.oneshot(req)).expect("response");
    }
    let report = handle.report();
    let counted: Vec<_> = report
        .budgets
        .iter()
        .filter(|b| b.samples == 1)
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(counted.len(), 1, "one request, one budget: {counted:?}");
    counted[0].clone()
}

/// The name of the budget the gate attributes the request to.
fn cli_attribution(policy: &BudgetPolicy, method: &Method, path: &str) -> String {
    let i = budget_for(policy, method, path);
    policy
        .budgets()
        .get(i)
        .map_or(OTHER.to_owned(), |b| b.name().to_owned())
}

#[test]
fn a_static_route_wins_over_a_parameter_whatever_the_order_in_the_file() {
    let policy = BudgetPolicy::from_toml(
        r#"
        [[budget]]
        name = "by_id"
        route = "GET /users/{id}"
        objectives = ["p95 < 200ms"]
        [[budget]]
        name = "me"
        route = "GET /users/me"
        objectives = ["p95 < 100ms"]
        "#,
    )
    .expect("valid budgets");
    for (path, expected) in [
        ("/users/me", "me"),
        ("/users/7", "by_id"),
        ("/users", OTHER),
    ] {
        assert_eq!(
            cli_attribution(&policy, &Method::GET, path),
            expected,
            "{path}"
        );
        for routed in [false, true] {
            assert_eq!(
                layer_attribution(&policy, &Method::GET, path, routed),
                expected,
                "{path}"
            );
        }
    }
}

/// A template segment: a static word from a small alphabet (so paths collide with templates)
/// or a parameter.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["users", "me", "a", "b"]).prop_map(str::to_owned),
        1 => Just("{p}".to_owned()),
    ]
}

fn method() -> impl Strategy<Value = Option<Method>> {
    prop::sample::select(vec![None, Some(Method::GET), Some(Method::POST)])
}

/// `(method, template)` budget routes, in file order.
fn routes() -> impl Strategy<Value = Vec<(Option<Method>, String)>> {
    let template = prop::collection::vec(segment(), 1..4).prop_map(|s| format!("/{}", s.join("/")));
    prop::collection::vec((method(), template), 1..8)
}

/// A request path from the same words, sometimes with other ones.
fn path() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec!["users", "me", "a", "b", "7", "x"]);
    prop::collection::vec(word, 0..4).prop_map(|s| format!("/{}", s.join("/")))
}

/// The budgets file of `routes`, or `None` when two templates conflict (the policy rejects it).
fn policy_of(routes: &[(Option<Method>, String)]) -> Option<BudgetPolicy> {
    let mut toml = String::new();
    for (i, (m, t)) in routes.iter().enumerate() {
        let m = m.as_ref().map_or("*", Method::as_str);
        toml += &format!(
            "[[budget]]\nname = \"b{i}\"\nroute = \"{m} {t}\"\nobjectives = [\"p95 < 200ms\"]\n"
        );
    }
    BudgetPolicy::from_toml(&toml).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_gate_and_the_layer_attribute_every_request_alike(
        routes in routes(),
        requests in prop::collection::vec((prop::sample::select(vec![Method::GET, Method::POST, Method::PUT]), path()), 1..12),
    ) {
        let policy = policy_of(&routes);
        prop_assume!(policy.is_some());
        let policy = policy.expect("assumed");
        for (m, p) in &requests {
            let gate = cli_attribution(&policy, m, p);
            prop_assert_eq!(&gate, &layer_attribution(&policy, m, p, false), "{} {}", m, p);
            prop_assert_eq!(&gate, &layer_attribution(&policy, m, p, true), "{} {} (routed)", m, p);
        }
    }
}
