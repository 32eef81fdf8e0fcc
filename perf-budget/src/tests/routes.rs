//! Which budget a request counts against: axum's `MatchedPath`, the configured templates.

use super::*;

#[tokio::test(start_paused = true)]
async fn axum_matched_path_selects_the_budget_and_the_report_is_served() {
    use axum::{Router, routing::get};
    let policy = BudgetPolicy::builder()
        .add_budget("user", "GET /users/{id}", |b| {
            b.p95(Duration::from_millis(100))
        })
        .add_budget("user-put", "PUT /users/{id}", |b| {
            b.p95(Duration::from_millis(100))
        })
        .build()
        .unwrap();
    let (layer, handle) = BudgetLayer::pair(policy);
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async { "{}" })
                .put(|| async { "{}" })
                .post(|| async { "{}" }),
        )
        .layer(layer)
        .route(
            "/perf/budgets",
            get(crate::axum::report).with_state(handle.clone()),
        );
    for (m, p) in [
        ("GET", "/users/1"),
        ("GET", "/users/2"),
        ("PUT", "/users/3"),
        ("POST", "/users/4"),
    ] {
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(m)
                    .uri(p)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let r = handle.report();
    assert_eq!(r.budget("user").unwrap().samples, 2);
    assert_eq!(r.budget("user-put").unwrap().samples, 1);
    assert_eq!(r.budget(OTHER).unwrap().samples, 1);
    let res = app
        .clone()
        .oneshot(
            Request::get("/perf/budgets")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let json: crate::BudgetReport =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(json.budget("user").unwrap().samples, 2);
    let res = app
        .oneshot(
            Request::get("/perf/budgets?format=text")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.lines().next().unwrap().starts_with("budget"), "{text}");
    assert!(
        text.contains("GET /users/{id}") && text.contains("PASS"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn axum_routes_keep_every_mode() {
    use axum::{Router, routing::get};
    let app = |policy: BudgetPolicyBuilder| {
        let (layer, handle) = BudgetLayer::pair(policy.build().unwrap());
        let router = Router::new()
            .route("/users", get(|| async { "users" }))
            .route(
                "/dl",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "dl"
                }),
            )
            .layer(layer);
        (router, handle)
    };
    // observe: the handler's body as it is, and the request recorded.
    let (router, handle) = app(p95_policy());
    let (parts, body) = axum_call(&router, "GET", "/users").await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"users"[..]));
    assert_eq!(handle.report().budget("users").unwrap().samples, 1);
    // annotate: the headers are added to the passed-through response.
    let (router, _) = app(p95_policy().mode(Mode::Annotate));
    let (parts, _) = axum_call(&router, "GET", "/users").await;
    assert_eq!(parts.headers["perf-budget"], "users; state=ok; dur=0.0ms");
    // deadline: the layer's own response as an axum body.
    let (router, handle) =
        app(p95_policy()
            .mode(Mode::Deadline)
            .add_budget("dl", "GET /dl", |b| {
                b.p99(Duration::from_secs(1))
                    .deadline(Duration::from_secs(2))
            }));
    let start = Instant::now();
    let (parts, body) = axum_call(&router, "GET", "/dl").await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(parts.extensions.get::<BudgetExceeded>().is_some());
    assert!(body.starts_with(b"performance budget deadline exceeded"));
    assert_eq!(handle.report().budget("dl").unwrap().errors, 1);
    // measure = body: still timed to the end of the body, and a dropped body is cancelled.
    let (router, handle) = app(BudgetPolicy::builder().add_budget(
        "users-body",
        "GET /users",
        |b| b.p95(Duration::from_secs(1)).measure(Measure::Body),
    ));
    let res = router
        .clone()
        .oneshot(
            Request::get("/users")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(handle.report().budget("users-body").unwrap().samples, 0);
    tokio::time::advance(Duration::from_secs(2)).await;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"users");
    let b = handle.report().budget("users-body").unwrap().clone();
    assert_eq!((b.samples, b.objectives[0].bad), (1, 1));
    drop(
        router
            .oneshot(
                Request::get("/users")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await,
    );
    assert_eq!(handle.report().budget("users-body").unwrap().cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn around_the_whole_router_the_configured_templates_select_the_budget() {
    use axum::{Router, routing::get};
    let policy = BudgetPolicy::builder()
        .add_budget("user", "GET /users/{id}", |b| {
            b.p95(Duration::from_millis(100))
        })
        .add_budget("any-static", "/static", |b| {
            b.p95(Duration::from_millis(100))
        })
        .add_budget("me", "GET /users/me", |b| b.p95(Duration::from_millis(100)))
        .build()
        .unwrap();
    let (layer, handle) = BudgetLayer::pair(policy);
    let router = Router::new()
        .route("/users/{id}", get(|| async { "{}" }).put(|| async { "{}" }))
        .route("/users/me", get(|| async { "me" }))
        .route("/static", get(|| async { "s" }).post(|| async { "s" }))
        .route("/other", get(|| async { "o" }));
    let app = tower::ServiceBuilder::new().layer(layer).service(router);
    for (m, p) in [
        ("GET", "/users/1"),
        ("GET", "/users/2"),
        ("PUT", "/users/3"),
        ("GET", "/users/me"),
        ("GET", "/users/me/"),
        ("GET", "/static"),
        ("POST", "/static"),
        ("GET", "/other"),
        ("GET", "/missing"),
    ] {
        axum_call(&app, m, p).await;
    }
    let r = handle.report();
    assert_eq!(r.budget("user").unwrap().samples, 2);
    assert_eq!(
        r.budget("me").unwrap().samples,
        1,
        "the static template wins"
    );
    assert_eq!(r.budget("any-static").unwrap().samples, 2);
    assert_eq!(r.budget(OTHER).unwrap().samples, 4);
}

#[tokio::test(start_paused = true)]
async fn matched_path_resolutions_stay_right_with_many_routes_and_routers() {
    use axum::{Router, routing::get};
    // Many routes, two routers sharing one layer (equal
    // templates, distinct strings), budgets on some templates and methods only.
    let mut b = BudgetPolicy::builder();
    for i in (0..100).step_by(3) {
        b = b.add_budget(format!("r{i}"), &format!("GET /r{i}/{{id}}"), |b| {
            b.p95(Duration::from_secs(1))
        });
    }
    let (layer, handle) = BudgetLayer::pair(b.build().unwrap());
    let router = || {
        let mut r = Router::new();
        for i in 0..100 {
            r = r.route(
                &format!("/r{i}/{{id}}"),
                get(|| async { "" }).post(|| async { "" }),
            );
        }
        r.layer(layer.clone())
    };
    let (a, b) = (router(), router());
    for round in 0..3 {
        for i in 0..100 {
            let path = format!("/r{i}/{round}");
            axum_call(&a, "GET", &path).await;
            axum_call(&b, "GET", &path).await;
            axum_call(&a, "POST", &path).await;
        }
    }
    let r = handle.report();
    for i in (0..100).step_by(3) {
        assert_eq!(r.budget(&format!("r{i}")).unwrap().samples, 6, "r{i}");
    }
    assert_eq!(r.budget(OTHER).unwrap().samples, 3 * (100 * 3 - 34 * 2));
}

#[tokio::test(start_paused = true)]
async fn the_router_template_from_match_route_layer_wins_over_the_budgets_templates() {
    use perf_middleware::{MatchRouteLayer, RouteTable};
    // Only `/users/{id}` has a budget; the app's table also knows `/users/me`.
    let policy = BudgetPolicy::builder()
        .add_budget("user", "GET /users/{id}", |b| b.p95(Duration::from_secs(1)))
        .build()
        .unwrap();
    let (layer, handle) = BudgetLayer::pair(policy);
    let table = RouteTable::new(["/users/{id}", "/users/me"]).unwrap();
    let app = tower::ServiceBuilder::new()
        .layer(MatchRouteLayer::new(table))
        .layer(layer)
        .service(service_fn(handler));
    for path in ["/users/7", "/users/me", "/nowhere"] {
        app.clone().oneshot(req(path, 0)).await.unwrap();
    }
    let r = handle.report();
    assert_eq!(r.budget("user").unwrap().samples, 1);
    assert_eq!(
        r.budget(OTHER).unwrap().samples,
        2,
        "/users/me is its own route: not the budget of /users/{{id}}"
    );
}

/// Around the whole router, the layer's service serves with `axum::serve` once its body is
/// boxed into axum's `Body` (as the bench server's `budget-outer` variant does).
#[test]
fn around_the_router_it_serves_with_axum() {
    use axum::body::Body;
    use tower::util::MapResponse;
    fn servable<S>(_: &S)
    where
        S: Service<Request<Body>, Response = axum::response::Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send,
    {
    }
    let policy = BudgetPolicy::builder().build().unwrap();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "" }));
    let svc = tower::Layer::layer(&BudgetLayer::new(policy), router.with_state::<()>(()));
    let to_axum: fn(Response<crate::ResponseBody<Body>>) -> axum::response::Response =
        |res| res.map(Body::new);
    servable(&MapResponse::new(svc, to_axum));
}

/// Given the router's routes, a budget route with a typo fails at startup, naming the closest
/// route; a right one builds.
#[test]
fn a_budget_route_that_is_no_route_of_the_router_fails_at_startup() {
    use perf_middleware::RouteTable;
    let table = RouteTable::new(["/orders/{id}", "/orders", "/health"]).unwrap();
    let policy = |route: &str| {
        BudgetPolicy::builder()
            .add_budget("order", route, |b| b.p95(Duration::from_millis(50)))
            .build()
            .unwrap()
    };
    let err = BudgetLayer::builder()
        .policy(policy("GET /order/{id}"))
        .route_table(&table)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, crate::ConfigError::UnknownRoute { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(r#"budget "order": route "GET /order/{id}" is no route of the router"#)
            && msg.contains(r#"did you mean "/orders/{id}"?"#),
        "{msg}"
    );
    let _ok = BudgetLayer::builder()
        .policy(policy("GET /orders/{id}"))
        .route_table(&table)
        .build()
        .unwrap();
    // Without the table the typo builds (and the first `__other__` request logs a WARN).
    let _unchecked = BudgetLayer::builder()
        .policy(policy("GET /order/{id}"))
        .build()
        .unwrap();
}

/// Without the router's routes, the first request that matches no budget logs one WARN; later
/// ones log nothing. Given the routes, none.
#[tokio::test(start_paused = true)]
async fn the_first_request_to_other_logs_one_warn_without_the_routes() {
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (mut svc, _handle) = stack(p95_policy());
    send(&mut svc, "/users", 3, 0).await;
    send(&mut svc, "/user", 3, 0).await;
    send(&mut svc, "/elsewhere", 3, 0).await;
    let table = perf_middleware::RouteTable::new(["/users", "/elsewhere"]).unwrap();
    let (mut svc, _handle) = stack_with(
        BudgetLayer::builder()
            .policy(p95_policy().build().unwrap())
            .route_table(&table),
    );
    send(&mut svc, "/elsewhere", 3, 0).await;
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(
        text.contains("path=\"/user\"") && text.contains("__other__"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_skipped_route_passes_through_untouched() {
    use axum::{Router, routing::get};
    let policy = p95_policy()
        .mode(Mode::Deadline)
        .add_budget("health", "GET /health", |b| {
            b.p99(Duration::from_secs(1))
                .deadline(Duration::from_secs(2))
        })
        .build()
        .unwrap();
    let (layer, handle) = BudgetLayer::builder()
        .policy(policy)
        .server_timing(perf_middleware::ServerTiming::Always)
        .skip_route("/health")
        .build_pair()
        .unwrap();
    let router = Router::new()
        .route("/users", get(|| async { "users" }))
        .route(
            "/health",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "ok"
            }),
        )
        .layer(layer);
    let start = Instant::now();
    let (parts, body) = axum_call(&router, "GET", "/health").await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(start.elapsed(), Duration::from_secs(3), "never deadlined");
    assert!(parts.headers.get("server-timing").is_none());
    let (parts, _) = axum_call(&router, "GET", "/users").await;
    assert!(parts.headers.get("server-timing").is_some());
    let r = handle.report();
    assert_eq!(r.budget("health").unwrap().samples, 0);
    assert_eq!(r.budget(OTHER).unwrap().samples, 0);
    assert_eq!(r.budget("users").unwrap().samples, 1);
    let err = BudgetLayer::builder()
        .policy(p95_policy().build().unwrap())
        .skip_route("health")
        .build()
        .unwrap_err();
    assert!(matches!(err, crate::ConfigError::Route { .. }), "{err}");
}
