//! Status, `error.type`, when the span ends, cancellation.

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use opentelemetry::trace::{Status, TracerProvider as _};
use tower::{ServiceBuilder, ServiceExt, service_fn};

use super::*;

#[tokio::test]
async fn server_error_sets_error_status_and_type_client_error_does_not() {
    let (exporter, provider) = always();
    let layer = OtelLayer::new(provider.tracer("t"));
    send(
        app(layer.clone()),
        request("/boom").body(Body::empty()).unwrap(),
    )
    .await;
    let span = only_span(&exporter);
    assert_eq!(span.status, Status::error(""));
    assert_eq!(attrs(&span)["error.type"], s("500"));
    assert_eq!(attrs(&span)["http.response.status_code"], Value::I64(500));

    exporter.reset();
    send(app(layer), request("/teapot").body(Body::empty()).unwrap()).await;
    let span = only_span(&exporter);
    assert_eq!(span.name, "GET /teapot");
    assert_eq!(span.status, Status::Unset);
    assert!(!attrs(&span).contains_key("error.type"));
    assert_eq!(attrs(&span)["http.response.status_code"], Value::I64(418));
}

#[tokio::test(start_paused = true)]
async fn dropped_request_ends_span_as_cancelled() {
    let (exporter, provider) = always();
    let fut = app(OtelLayer::new(provider.tracer("t")))
        .oneshot(request("/hang").body(Body::empty()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_secs(1), fut)
            .await
            .is_err()
    );
    let span = only_span(&exporter);
    assert_eq!(span.name, "GET /hang");
    assert_eq!(span.status, Status::error(""));
    assert_eq!(attrs(&span)["error.type"], s("cancelled"));
    assert!(!attrs(&span).contains_key("http.response.status_code"));
}

#[tokio::test]
async fn span_ends_at_end_of_body_and_a_dropped_body_is_cancelled() {
    let (exporter, provider) = always();
    let svc = ServiceBuilder::new()
        .layer(OtelLayer::new(provider.tracer("t")))
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::from_static(
                b"hello",
            ))))
        }));
    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert!(
        exporter.get_finished_spans().unwrap().is_empty(),
        "span still open while the body streams"
    );
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
    let span = only_span(&exporter);
    assert_eq!(span.status, Status::Unset);
    assert!(!attrs(&span).contains_key("error.type"));

    exporter.reset();
    let res = svc.oneshot(Request::new(())).await.unwrap();
    drop(res);
    let span = only_span(&exporter);
    assert_eq!(attrs(&span)["error.type"], s("cancelled"));
    assert_eq!(attrs(&span)["http.response.status_code"], Value::I64(200));
}

#[tokio::test]
async fn headers_mode_ends_at_response_head() {
    let (exporter, provider) = always();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .span_end(SpanEnd::Headers)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::from_static(
                b"hello",
            ))))
        }));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    let span = only_span(&exporter);
    assert!(!attrs(&span).contains_key("error.type"));
    drop(res);
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 1);
}

#[derive(Debug)]
struct Refused;

#[tokio::test]
async fn inner_error_sets_error_type_to_the_error_type_name() {
    let (exporter, provider) = always();
    let svc = ServiceBuilder::new()
        .layer(OtelLayer::new(provider.tracer("t")))
        .service(service_fn(|_req: Request<()>| async {
            Err::<Response<Full<bytes::Bytes>>, _>(Refused)
        }));
    assert!(svc.oneshot(Request::new(())).await.is_err());
    let span = only_span(&exporter);
    assert_eq!(span.status, Status::error(""));
    assert_eq!(attrs(&span)["error.type"], s("Refused"));
}

#[tokio::test]
async fn sampled_and_unsampled_requests_alternate_cleanly() {
    // Unsampled requests in between leave the sampled spans whole.
    let (exporter, on) = always();
    let layer = OtelLayer::new(on.tracer("t"));
    for flags in ["01", "00", "00", "01", "01", "00"] {
        let req = Request::get("/users/3")
            .header("traceparent", format!("00-{TRACE}-{PARENT}-{flags}"))
            .body(Body::empty())
            .unwrap();
        send(app(layer.clone()), req).await;
    }
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 3);
    for span in spans {
        assert_eq!(span.name, "GET /users/{id}");
        assert_eq!(attrs(&span).len(), 6, "{:?}", attrs(&span));
    }
}

#[tokio::test]
async fn a_skipped_route_gets_no_span_and_an_untouched_response() {
    let (exporter, provider) = always();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .server_timing(perf_middleware::ServerTiming::Always)
        .inject_response_traceparent(true)
        .skip_route("/trace-id")
        .build()
        .unwrap();
    let res = send(
        app(layer.clone()),
        request("/trace-id").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.body().is_empty(), "no TraceId put in the request");
    assert!(res.headers().get("server-timing").is_none());
    assert!(res.headers().get("traceparent").is_none());
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    let res = send(app(layer), request("/users/1").body(Body::empty()).unwrap()).await;
    assert!(res.headers().get("server-timing").is_some());
    assert_eq!(only_span(&exporter).name, "GET /users/{id}");
}
