//! Unit tests of the service, future and body over `tower::service_fn` (no socket).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use perf_test_support::{Collector, Events, TestRecorder};
use tower::{ServiceBuilder, ServiceExt, service_fn};

use crate::{Completion, Outcome, PerfLayer, RouteTemplate};

type Seen = Collector<(Outcome, Option<u16>, Option<String>, u64, Duration)>;

fn layer(seen: &Seen) -> PerfLayer<impl crate::OnComplete> {
    let seen = seen.clone();
    PerfLayer::builder()
        .metrics(false)
        .on_complete(move |c: &Completion<'_>| {
            seen.push((
                c.outcome,
                c.status.map(|s| s.as_u16()),
                c.route.map(str::to_owned),
                c.response_body_size,
                c.duration,
            ));
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn works_in_service_builder_with_a_route_template_and_paused_time() {
    let seen = Seen::default();
    let svc = ServiceBuilder::new()
        .layer(layer(&seen))
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            assert!(req.extensions().get::<RouteTemplate>().is_some());
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
        }));
    let mut req = Request::new(Full::new(Bytes::from_static(b"abc")));
    req.extensions_mut().insert(RouteTemplate::new("/t/{x}"));
    let res = svc.oneshot(req).await.unwrap();
    assert!(seen.is_empty(), "recorded only when the body ends");
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
    let seen = seen.items();
    assert_eq!(seen.len(), 1);
    let (outcome, status, route, size, duration) = seen[0].clone();
    assert_eq!(
        (outcome, status, route.as_deref(), size),
        (Outcome::Completed, Some(200), Some("/t/{x}"), 5)
    );
    assert_eq!(duration, Duration::from_millis(40), "paused clock: exact");
}

#[tokio::test]
async fn service_errors_and_body_errors_are_their_own_outcomes() {
    let seen = Seen::default();
    let failing = ServiceBuilder::new()
        .layer(layer(&seen))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Err::<Response<Full<Bytes>>, _>("boom")
        }));
    assert_eq!(
        failing
            .oneshot(Request::new(Full::default()))
            .await
            .unwrap_err(),
        "boom"
    );

    let broken_body = ServiceBuilder::new()
        .layer(layer(&seen))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            let frames = futures_util::stream::iter([
                Ok(http_body::Frame::data(Bytes::from_static(b"ab"))),
                Err("disk on fire"),
            ]);
            Ok::<_, Infallible>(
                Response::builder()
                    .status(StatusCode::OK)
                    .body(StreamBody::new(frames))
                    .unwrap(),
            )
        }));
    let res = broken_body
        .oneshot(Request::new(Full::default()))
        .await
        .unwrap();
    assert!(res.into_body().collect().await.is_err());

    let seen = seen.items();
    assert_eq!(seen[0].0, Outcome::ServiceError);
    assert_eq!(seen[0].1, None);
    assert_eq!(
        (seen[1].0, seen[1].1, seen[1].3),
        (Outcome::BodyError, Some(200), 2)
    );
}

#[tokio::test]
async fn empty_bodies_complete_at_headers_and_keep_content_length() {
    let seen = Seen::default();
    let svc = ServiceBuilder::new()
        .layer(layer(&seen))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .status(204)
                    .body(Full::<Bytes>::default())
                    .unwrap(),
            )
        }));
    let res = svc.oneshot(Request::new(Full::default())).await.unwrap();
    assert_eq!(
        seen.items()[0].0,
        Outcome::Completed,
        "recorded without polling the body"
    );
    assert_eq!(http_body::Body::size_hint(res.body()).exact(), Some(0));
    drop(res);
    assert_eq!(seen.len(), 1, "recorded exactly once");
}

#[tokio::test(start_paused = true)]
async fn dropped_future_is_cancelled() {
    let seen = Seen::default();
    let svc = ServiceBuilder::new()
        .layer(layer(&seen))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            std::future::pending::<()>().await;
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }));
    let fut = svc.oneshot(Request::new(Full::default()));
    assert!(
        tokio::time::timeout(Duration::from_millis(10), fut)
            .await
            .is_err()
    );
    assert_eq!(seen.items()[0].0, Outcome::Cancelled);
}

#[tokio::test]
async fn ignored_routes_are_not_measured() {
    let seen = Seen::default();
    let seen2 = seen.clone();
    let layer = PerfLayer::builder()
        .skip_route("/health")
        .server_timing(crate::ServerTiming::Always)
        .on_complete(move |c: &Completion<'_>| seen2.push((c.outcome, None, None, 0, c.duration)))
        .build()
        .unwrap();
    let svc =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }));
    for route in ["/health", "/work"] {
        let mut req = Request::new(Full::default());
        req.extensions_mut().insert(RouteTemplate::new(route));
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(
            res.headers().contains_key("server-timing"),
            route == "/work"
        );
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
    assert_eq!(seen.len(), 1);
}

/// Templates and label sets beyond the bounded maps are still measured and labelled right
/// (resolved per request instead of cached).
#[tokio::test(flavor = "current_thread")]
async fn routes_and_label_sets_beyond_the_maps_are_labelled_right() {
    use super::registry::{MAX_ROUTES, MAX_SERIES};

    let recorder = TestRecorder::new();
    let _local = recorder.local();
    let slow = Events::for_target("perf_middleware::slow");
    let _sub = slow.set_default();
    let routes = Collector::new();
    let seen = routes.clone();
    let layer = PerfLayer::builder()
        .route_slow_threshold("/r/1500", Duration::ZERO)
        .skip_route("/r/1501")
        .on_complete(move |c: &Completion<'_>| seen.push(c.route.map(str::to_owned)))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(service_fn(
        |req: Request<Full<Bytes>>| async move {
            let status = req.headers()["x-status"].to_str().unwrap().parse().unwrap();
            Ok::<_, Infallible>(
                Response::builder()
                    .status::<u16>(status)
                    .body(Full::new(Bytes::from_static(b"ok")))
                    .unwrap(),
            )
        },
    ));
    let call = |route: String, status: u16| {
        let mut req = Request::builder()
            .header("x-status", status)
            .body(Full::default())
            .unwrap();
        req.extensions_mut().insert(RouteTemplate::new(route));
        let svc = svc.clone();
        async move {
            let res = svc.oneshot(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        }
    };
    // More templates than the route map holds...
    const { assert!(MAX_ROUTES < 1500) };
    for i in 0..1502 {
        call(format!("/r/{i}"), 200).await;
    }
    // ...and more label sets on one route than its series map holds.
    let statuses = 200..(200 + MAX_SERIES as u16 + 16);
    for status in statuses.clone() {
        call("/many".into(), status).await;
        call("/many".into(), status).await;
    }
    let routes = routes.items();
    assert_eq!(
        routes.len(),
        1501 + 2 * statuses.len(),
        "/r/1501 is ignored"
    );
    assert_eq!(routes[1500].as_deref(), Some("/r/1500"));
    assert!(
        routes[..1501]
            .iter()
            .enumerate()
            .all(|(i, r)| r.as_deref() == Some(format!("/r/{i}").as_str()))
    );

    let snap = recorder.snapshot();
    let durations: Vec<_> = snap
        .matching(super::metrics::REQUEST_DURATION, &[])
        .collect();
    assert_eq!(durations.len(), 1501 + statuses.len());
    let samples = |route: &str, status: &str| {
        let labels = [("http.route", route), ("http.response.status_code", status)];
        snap.samples(super::metrics::REQUEST_DURATION, &labels)
            .len()
    };
    assert_eq!(samples("/r/1499", "200"), 1);
    assert_eq!(samples("/many", "200"), 2);
    assert_eq!(samples("/many", &(statuses.end - 1).to_string()), 2);
    assert_eq!(samples("/r/1501", "200"), 0);
    assert_eq!(
        slow.events().len(),
        1,
        "the per-route threshold of an overflowing template applies"
    );
}
