//! Where the layer sits: in a `ServiceBuilder` over a plain service, as an axum `route_layer`,
//! and around a whole router with a route table. Paused Tokio time, in process.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use common::{Seen, get as get_path, hook};
use perf_middleware::metrics::{ACTIVE_REQUESTS, LABEL_ROUTE, REQUEST_DURATION};
use perf_middleware::{Outcome, PerfLayer, RouteTable, RouteTemplate, UNMATCHED_ROUTE};
use perf_test_support::{Collector, Events, TestRecorder};

#[tokio::test(start_paused = true)]
async fn in_a_service_builder_the_route_comes_from_the_extension() {
    let log = Collector::<Seen>::new();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .map_request(|mut req: http::Request<Body>| {
            req.extensions_mut()
                .insert(RouteTemplate::new("/items/{id}"));
            req
        })
        .layer(layer)
        .service_fn(|_req| async {
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                Bytes::from_static(b"item"),
            )))
        });
    let (status, _, body) = get_path(svc, "/items/42").await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"item"[..]));
    let seen = log.items();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].route.as_deref(), Some("/items/{id}"));
    assert_eq!(seen[0].outcome, Outcome::Completed);
}

#[tokio::test(start_paused = true)]
async fn as_a_route_layer_only_matched_routes_are_measured() {
    let log = Collector::<Seen>::new();
    let layer = PerfLayer::builder()
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/r/{x}", get(|| async { "r" }))
        .route_layer(layer);
    get_path(app.clone(), "/r/1").await;
    let (status, _, _) = get_path(app, "/nope").await;
    assert_eq!(status.as_u16(), 404);
    let seen = log.items();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].route.as_deref(), Some("/r/{x}"));
}

#[tokio::test(start_paused = true)]
async fn around_the_whole_router_templates_come_from_the_route_table() {
    let recorder = TestRecorder::new();
    let _local = recorder.local();
    let log = Collector::<Seen>::new();
    let events = Events::for_target("perf_middleware::slow");
    let _sub = events.set_default();

    let mut routes = RouteTable::builder();
    let router = Router::new()
        .route(routes.add("/users/{id}"), get(|| async { "u" }))
        .route(
            routes.add("/slow"),
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "s"
            }),
        )
        .route(routes.add("/health"), get(|| async { "ok" }));
    let layer = PerfLayer::builder()
        .route_table(routes.build().unwrap())
        .slow_threshold(Duration::from_secs(10))
        .route_slow_threshold("/slow", Duration::from_millis(20))
        .skip_route("/health")
        .on_complete(hook(&log))
        .build()
        .unwrap();
    let app = layer.around(router);

    for i in 0..3 {
        let (status, _, body) = get_path(app.clone(), &format!("/users/{i}")).await;
        assert_eq!((status.as_u16(), &body[..]), (200, &b"u"[..]));
    }
    let (status, _, _) = get_path(app.clone(), "/nope/1").await;
    assert_eq!(status.as_u16(), 404);
    get_path(app.clone(), "/slow").await;
    get_path(app, "/health").await;

    let seen = log.items();
    let routes: Vec<_> = seen.iter().map(|s| s.route.as_deref()).collect();
    assert_eq!(
        routes,
        [
            Some("/users/{id}"),
            Some("/users/{id}"),
            Some("/users/{id}"),
            None,
            Some("/slow")
        ],
        "/health is ignored"
    );
    assert_eq!(
        seen[3].status,
        Some(404),
        "the router's 404 is measured too"
    );
    assert_eq!(seen[4].duration, Duration::from_millis(30));

    let snap = recorder.snapshot();
    assert_eq!(
        snap.label_values(REQUEST_DURATION, LABEL_ROUTE),
        ["/slow", "/users/{id}", UNMATCHED_ROUTE]
            .map(String::from)
            .into()
    );
    let users = snap.samples(REQUEST_DURATION, &[(LABEL_ROUTE, "/users/{id}")]);
    assert_eq!(users.len(), 3);
    assert_eq!(snap.gauge(ACTIVE_REQUESTS, &[]), 0.0);

    let ev = events.events();
    assert_eq!(ev.len(), 1, "only /slow crosses its own threshold: {ev:?}");
    assert_eq!(ev[0].str("route"), Some("/slow"));
    assert_eq!(ev[0].f64("threshold_ms"), Some(20.0));
    assert_eq!(ev[0].f64("latency_ms"), Some(30.0));
}
