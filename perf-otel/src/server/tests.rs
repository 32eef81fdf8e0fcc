use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracer, SdkTracerProvider, SpanData,
};
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn provider(sampler: Sampler) -> (InMemorySpanExporter, SdkTracerProvider) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_sampler(sampler)
        .build();
    (exporter, provider)
}

fn always() -> (InMemorySpanExporter, SdkTracerProvider) {
    provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
}

fn app(layer: OtelLayer<SdkTracer>) -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/hang",
            get(|| async { std::future::pending::<&'static str>().await }),
        )
        .route(
            "/trace-id",
            get(|req: Request<Body>| async move {
                req.extensions()
                    .get::<perf_middleware::TraceId>()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            }),
        )
        .route(
            "/baggage",
            get(|| async {
                let cx = Context::current();
                format!(
                    "{}|{}",
                    cx.baggage()
                        .get("tenant")
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default(),
                    cx.span().span_context().trace_id()
                )
            }),
        )
        .layer(layer)
}

fn request(uri: &str) -> http::request::Builder {
    Request::get(uri)
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header("host", "api.example.com:8443")
        .header("user-agent", "curl/8.5")
}

async fn send(app: Router, req: Request<Body>) -> Response<Vec<u8>> {
    let res = app.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    Response::from_parts(parts, bytes)
}

fn attrs(span: &SpanData) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect()
}

fn only_span(exporter: &InMemorySpanExporter) -> SpanData {
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    spans.into_iter().next().unwrap()
}

fn s(v: &str) -> Value {
    Value::from(v.to_owned())
}

#[tokio::test]
async fn matched_route_has_exact_name_kind_parent_and_attributes() {
    let (exporter, provider) = always();
    let app = app(OtelLayer::new(provider.tracer("t")));
    let mut req = request("/users/42?sig=secret&page=2")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 50123))));
    let res = send(app, req).await;
    assert_eq!(res.status(), 200);

    let span = only_span(&exporter);
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.span_context.trace_id().to_string(), TRACE);
    assert_eq!(span.parent_span_id.to_string(), PARENT);
    assert!(span.parent_span_is_remote);
    assert_eq!(span.status, Status::Unset);
    let expected: BTreeMap<String, Value> = [
        ("http.request.method", s("GET")),
        ("url.path", s("/users/42")),
        ("url.query", s("sig=REDACTED&page=2")),
        ("url.scheme", s("http")),
        ("http.route", s("/users/{id}")),
        ("server.address", s("api.example.com")),
        ("server.port", Value::I64(8443)),
        ("client.address", s("192.0.2.7")),
        ("network.peer.address", s("192.0.2.7")),
        ("network.peer.port", Value::I64(50123)),
        ("network.protocol.version", s("1.1")),
        ("user_agent.original", s("curl/8.5")),
        ("http.response.status_code", Value::I64(200)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(attrs(&span), expected);
}

#[tokio::test]
async fn unmatched_route_is_named_by_method_without_http_route() {
    let (exporter, provider) = always();
    let res = send(
        app(OtelLayer::new(provider.tracer("t"))),
        request("/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), 404);
    let span = only_span(&exporter);
    assert_eq!(span.name, "GET");
    let a = attrs(&span);
    assert!(!a.contains_key("http.route"));
    assert!(!a.contains_key("url.query"));
    assert!(!a.contains_key("client.address"));
    assert_eq!(a["http.response.status_code"], Value::I64(404));
    assert!(!a.contains_key("error.type"));
    assert_eq!(span.status, Status::Unset);
    assert!(
        a.values().all(|v| v.as_str() != ""),
        "no empty-string attributes: {a:?}"
    );
}

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
async fn unknown_method_is_other_with_original() {
    let (exporter, provider) = always();
    let req = Request::builder()
        .method("PURGE")
        .uri("/users/1")
        .body(Body::empty())
        .unwrap();
    send(app(OtelLayer::new(provider.tracer("t"))), req).await;
    let span = only_span(&exporter);
    assert_eq!(span.name, "HTTP /users/{id}"); // semconv: unknown methods are named `HTTP`
    assert_eq!(attrs(&span)["http.request.method"], s("_OTHER"));
    assert_eq!(attrs(&span)["http.request.method_original"], s("PURGE"));
}

#[tokio::test]
async fn query_is_a_known_method_as_in_the_metrics_label() {
    let (exporter, provider) = always();
    let req = Request::builder()
        .method("QUERY")
        .uri("/users/1")
        .body(Body::empty())
        .unwrap();
    send(app(OtelLayer::new(provider.tracer("t"))), req).await;
    let span = only_span(&exporter);
    assert_eq!(span.name, "QUERY /users/{id}");
    let a = attrs(&span);
    let label =
        perf_middleware::KnownMethod::from_method(&http::Method::from_bytes(b"QUERY").unwrap());
    assert_eq!(a["http.request.method"], s(label.as_str()));
    assert_eq!(a["http.request.method"], s("QUERY"));
    assert!(!a.contains_key("http.request.method_original"));
}

#[tokio::test]
async fn methods_are_named_as_the_family_names_them() {
    // Case-sensitive: `get` is not `GET` (RFC 9110 §9.1), so it is `_OTHER` like any unknown method.
    for (method, name, recorded) in [
        ("PATCH", "PATCH /users/{id}", "PATCH"),
        ("get", "HTTP /users/{id}", "_OTHER"),
    ] {
        let (exporter, provider) = always();
        let req = Request::builder()
            .method(method)
            .uri("/users/1")
            .body(Body::empty())
            .unwrap();
        send(app(OtelLayer::new(provider.tracer("t"))), req).await;
        let span = only_span(&exporter);
        assert_eq!(span.name, name);
        assert_eq!(attrs(&span)["http.request.method"], s(recorded));
    }
}

#[tokio::test]
async fn forwarded_headers_only_when_trusted() {
    let (exporter, provider) = always();
    let req = || {
        let mut r = Request::get("/users/1")
            .header("host", "internal:8080")
            .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "shop.example.com")
            .body(Body::empty())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40000))));
        r
    };
    send(app(OtelLayer::new(provider.tracer("t"))), req()).await;
    let a = attrs(&only_span(&exporter));
    assert_eq!(
        (a["client.address"].clone(), a["url.scheme"].clone()),
        (s("10.0.0.1"), s("http"))
    );
    assert_eq!(a["server.address"], s("internal"));

    exporter.reset();
    send(
        app(OtelLayer::builder(provider.tracer("t"))
            .trust_forwarded_headers(true)
            .build()
            .unwrap()),
        req(),
    )
    .await;
    let a = attrs(&only_span(&exporter));
    assert_eq!(a["client.address"], s("203.0.113.9"));
    assert_eq!(a["url.scheme"], s("https"));
    assert_eq!(a["server.address"], s("shop.example.com"));
    assert!(!a.contains_key("server.port"));
    assert_eq!(a["network.peer.address"], s("10.0.0.1"));
}

#[tokio::test]
async fn unsampled_requests_export_nothing_but_still_propagate() {
    let (exporter, provider) = provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let layer = OtelLayer::builder(provider.tracer("t"))
        .inject_response_traceparent(true)
        .build()
        .unwrap();
    // The caller decided not to sample: ParentBased follows it.
    let req = Request::get("/trace-id")
        .header("traceparent", format!("00-{TRACE}-{PARENT}-00"))
        .body(Body::empty())
        .unwrap();
    let res = send(app(layer), req).await;
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    assert_eq!(
        String::from_utf8(res.body().clone()).unwrap(),
        TRACE,
        "TraceId extension for the slow log"
    );
    let tp = res.headers()["traceparent"].to_str().unwrap();
    assert!(
        tp.starts_with(&format!("00-{TRACE}-")) && tp.ends_with("-00") && !tp.contains(PARENT),
        "{tp}"
    );
}

#[tokio::test]
async fn response_traceparent_carries_the_server_span_id() {
    let (exporter, provider) = always();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .inject_response_traceparent(true)
        .build()
        .unwrap();
    let res = send(app(layer), request("/users/1").body(Body::empty()).unwrap()).await;
    let span = only_span(&exporter);
    assert_eq!(
        res.headers()["traceparent"],
        format!("00-{TRACE}-{}-01", span.span_context.span_id())
    );
    // The caller sent no `tracestate`: no empty field is sent back.
    assert!(!res.headers().contains_key("tracestate"));
    let with_state = request("/users/1")
        .header("tracestate", "vendor=abc")
        .body(Body::empty())
        .unwrap();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .inject_response_traceparent(true)
        .build()
        .unwrap();
    let res = send(app(layer), with_state).await;
    assert_eq!(res.headers()["tracestate"], "vendor=abc");
}

#[tokio::test]
async fn baggage_and_context_reach_the_handler() {
    let (exporter, provider) = always();
    let req = request("/baggage")
        .header("baggage", "tenant=acme,other=1")
        .body(Body::empty())
        .unwrap();
    let res = send(app(OtelLayer::new(provider.tracer("t"))), req).await;
    assert_eq!(
        String::from_utf8(res.body().clone()).unwrap(),
        format!("acme|{TRACE}")
    );
    assert_eq!(only_span(&exporter).name, "GET /baggage");
}

#[tokio::test]
async fn captured_headers_are_string_arrays() {
    let (exporter, provider) = always();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .add_request_header(http::header::ACCEPT)
        .add_response_header(http::header::CONTENT_TYPE)
        .build()
        .unwrap();
    let req = request("/users/1")
        .header("accept", "text/plain")
        .header("accept", "*/*")
        .body(Body::empty())
        .unwrap();
    send(app(layer), req).await;
    let a = attrs(&only_span(&exporter));
    let strings = |v: &[&str]| {
        Value::Array(opentelemetry::Array::String(
            v.iter().map(|s| (*s).to_owned().into()).collect(),
        ))
    };
    assert_eq!(
        a["http.request.header.accept"],
        strings(&["text/plain", "*/*"])
    );
    assert_eq!(
        a["http.response.header.content-type"],
        strings(&["text/plain; charset=utf-8"])
    );
}

#[cfg(feature = "tracing")]
#[tokio::test]
async fn handler_tracing_spans_are_children_of_the_request_span() {
    use tracing_subscriber::layer::SubscriberExt;
    let (exporter, provider) = always();
    let subscriber =
        tracing_subscriber::registry().with(crate::tracing_layer(provider.tracer("app")));
    let _default = tracing::subscriber::set_default(subscriber);
    let app = Router::new()
        .route(
            "/work",
            get(|| async {
                let span = tracing::info_span!("load_user");
                async { tokio::task::yield_now().await }
                    .instrument(span)
                    .await;
                "done"
            }),
        )
        .layer(OtelLayer::new(provider.tracer("t")));
    send(app, request("/work").body(Body::empty()).unwrap()).await;
    let spans = exporter.get_finished_spans().unwrap();
    let server = spans
        .iter()
        .find(|s| s.name == "GET /work")
        .expect("server span");
    let child = spans
        .iter()
        .find(|s| s.name == "load_user")
        .expect("handler span");
    assert_eq!(child.parent_span_id, server.span_context.span_id());
    assert_eq!(child.span_context.trace_id().to_string(), TRACE);
    use tracing::Instrument as _;
}

/// The W3C `traceparent` grammar, written independently of the layer's check.
fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && (parts[0] != "00" || parts.len() == 4)
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        // Near-valid traceparents: one byte of a valid value replaced.
        (0usize..55, any::<u8>()).prop_map(|(i, b)| {
            let mut v = format!("00-{TRACE}-{PARENT}-01").into_bytes();
            v[i] = b;
            v
        }),
        // Future versions, with and without extra fields.
        ("[0-9a-f]{2}", "(-[0-9a-z]{0,4}){0,2}")
            .prop_map(|(ver, tail)| format!("{ver}-{TRACE}-{PARENT}-01{tail}").into_bytes()),
        "[0-9a-f-]{0,60}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_propagation_headers_never_panic_and_invalid_ones_start_a_new_trace(
        traceparent in header_bytes(),
        tracestate in proptest::collection::vec(any::<u8>(), 0..300),
        baggage in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // AlwaysOn: valid parents with the sampled flag off must still produce a span to inspect.
        let (exporter, provider) = provider(Sampler::AlwaysOn);
        let svc = ServiceBuilder::new()
            .layer(OtelLayer::builder(provider.tracer("t")).inject_response_traceparent(true).build().unwrap())
            .service(service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::new()))) }));
        let mut req = Request::new(());
        for (name, value) in [("traceparent", &traceparent), ("tracestate", &tracestate), ("baggage", &baggage)] {
            if let Ok(v) = http::HeaderValue::from_bytes(value) {
                req.headers_mut().insert(name, v);
            }
        }
        let tp = req.headers().get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let res = rt.block_on(svc.oneshot(req)).unwrap();
        drop(res);
        let span = only_span(&exporter);
        let parent_valid = span.parent_span_id != opentelemetry::trace::SpanId::INVALID;
        match tp.as_deref() {
            Some(tp) if valid_traceparent(tp) => {
                prop_assert!(parent_valid);
                prop_assert_eq!(span.span_context.trace_id().to_string(), &tp[3..35]);
            }
            _ => {
                prop_assert!(!parent_valid, "invalid traceparent {:?} continued a trace", tp);
                prop_assert!(span.span_context.trace_id() != opentelemetry::trace::TraceId::INVALID);
            }
        }
    }
}

#[tokio::test]
async fn http2_authority_scheme_and_version() {
    let (exporter, provider) = always();
    let req = Request::get("https://shop.example.com:8443/users/5")
        .version(http::Version::HTTP_2)
        .body(Body::empty())
        .unwrap();
    send(app(OtelLayer::new(provider.tracer("t"))), req).await;
    let a = attrs(&only_span(&exporter));
    assert_eq!(a["network.protocol.version"], s("2"));
    assert_eq!(a["url.scheme"], s("https"));
    assert_eq!(a["server.address"], s("shop.example.com"));
    assert_eq!(a["server.port"], Value::I64(8443));
    assert_eq!(a["url.path"], s("/users/5"));
}

#[tokio::test]
async fn tls_connections_record_https() {
    let (exporter, provider) = always();
    send(
        app(OtelLayer::builder(provider.tracer("t"))
            .scheme(perf_middleware::Scheme::Https)
            .build()
            .unwrap()),
        request("/users/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(attrs(&only_span(&exporter))["url.scheme"], s("https"));
}

/// Sends `req` through an `InjectContextLayer` client from inside the handler and returns the
/// `traceparent` the downstream service would see, plus the handler's view of the current span.
fn propagating_app(layer: OtelLayer<SdkTracer>) -> Router {
    Router::new()
        .route(
            "/call",
            get(|| async {
                let cx = Context::current();
                let sc = cx.span().span_context().clone();
                let client = ServiceBuilder::new()
                    .layer(crate::InjectContextLayer::new())
                    .service(service_fn(|req: Request<()>| async move {
                        Ok::<_, Infallible>(req.headers().get("traceparent").cloned())
                    }));
                let sent = client.oneshot(Request::new(())).await.unwrap();
                format!(
                    "{}|{}|{}",
                    sc.trace_id(),
                    sc.is_sampled(),
                    sent.map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                )
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn unsampled_requests_give_the_handler_and_outgoing_calls_the_trace() {
    // The caller decided not to sample; ParentBased follows it.
    let (exporter, on) = always();
    let req = Request::get("/call")
        .header("traceparent", format!("00-{TRACE}-{PARENT}-00"))
        .body(Body::empty())
        .unwrap();
    let res = send(propagating_app(OtelLayer::new(on.tracer("t"))), req).await;
    let body = String::from_utf8(res.body().clone()).unwrap();
    let [trace, sampled, sent] = body.split('|').collect::<Vec<_>>()[..] else {
        panic!("{body}")
    };
    assert_eq!((trace, sampled), (TRACE, "false"));
    assert!(
        sent.starts_with(&format!("00-{TRACE}-"))
            && sent.ends_with("-00")
            && !sent.contains(PARENT),
        "downstream continues the trace, unsampled, under our span id: {sent}"
    );
    assert!(exporter.get_finished_spans().unwrap().is_empty());

    // A root request the sampler drops still gets a trace id, for the handler and downstream.
    let (exporter, off) = provider(Sampler::AlwaysOff);
    let req = Request::get("/call").body(Body::empty()).unwrap();
    let res = send(propagating_app(OtelLayer::new(off.tracer("t"))), req).await;
    let body = String::from_utf8(res.body().clone()).unwrap();
    let [trace, sampled, sent] = body.split('|').collect::<Vec<_>>()[..] else {
        panic!("{body}")
    };
    assert_ne!(trace, opentelemetry::trace::TraceId::INVALID.to_string());
    assert_eq!(sampled, "false");
    assert!(
        sent.starts_with(&format!("00-{trace}-")) && sent.ends_with("-00"),
        "{sent}"
    );
    assert!(exporter.get_finished_spans().unwrap().is_empty());
}

#[tokio::test]
async fn sampled_requests_give_outgoing_calls_the_server_span() {
    let (exporter, provider) = always();
    let req = request("/call").body(Body::empty()).unwrap();
    let res = send(propagating_app(OtelLayer::new(provider.tracer("t"))), req).await;
    let span = only_span(&exporter);
    assert_eq!(
        String::from_utf8(res.body().clone()).unwrap(),
        format!("{TRACE}|true|00-{TRACE}-{}-01", span.span_context.span_id())
    );
}

#[tokio::test]
async fn requests_without_propagation_headers_continue_the_current_context() {
    // What the propagator would do: a request without its headers keeps the current context.
    let (exporter, provider) = always();
    let _outer =
        Context::current_with_baggage([opentelemetry::KeyValue::new("tenant", "acme")]).attach();
    let req = Request::get("/baggage").body(Body::empty()).unwrap();
    let res = send(app(OtelLayer::new(provider.tracer("t"))), req).await;
    let span = only_span(&exporter);
    assert_eq!(
        String::from_utf8(res.body().clone()).unwrap(),
        format!("acme|{}", span.span_context.trace_id())
    );
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

/// Reads the parent from `x-parent: <trace id>-<span id>`, and names no fields.
#[derive(Debug)]
struct XParent;

impl opentelemetry::propagation::TextMapPropagator for XParent {
    fn inject_context(
        &self,
        _cx: &Context,
        _injector: &mut dyn opentelemetry::propagation::Injector,
    ) {
    }

    fn extract_with_context(
        &self,
        cx: &Context,
        extractor: &dyn opentelemetry::propagation::Extractor,
    ) -> Context {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let Some((t, s)) = extractor.get("x-parent").and_then(|v| v.split_once('-')) else {
            return cx.clone();
        };
        let (Ok(t), Ok(s)) = (TraceId::from_hex(t), SpanId::from_hex(s)) else {
            return cx.clone();
        };
        cx.with_remote_span_context(SpanContext::new(
            t,
            s,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ))
    }

    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        opentelemetry::propagation::text_map_propagator::FieldIter::new(&[])
    }
}

#[tokio::test]
async fn a_custom_propagator_is_asked_even_without_w3c_headers() {
    let (exporter, provider) = always();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .propagator(XParent)
        .build()
        .unwrap();
    let req = Request::get("/users/1")
        .header("x-parent", format!("{TRACE}-{PARENT}"))
        .body(Body::empty())
        .unwrap();
    send(app(layer), req).await;
    let span = only_span(&exporter);
    assert_eq!(span.span_context.trace_id().to_string(), TRACE);
    assert_eq!(span.parent_span_id.to_string(), PARENT);
}

#[tokio::test]
async fn server_addresses_of_consecutive_requests_stay_apart() {
    // Server addresses are shared between requests that repeat them: each span keeps its own.
    let (exporter, provider) = always();
    let layer = OtelLayer::new(provider.tracer("t"));
    let hosts = [
        "a.example",
        "b.example",
        "a.example",
        "c.example",
        "d.example",
        "e.example",
        "a.example",
    ];
    for host in hosts {
        let req = Request::get("/users/1")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        send(app(layer.clone()), req).await;
    }
    let spans = exporter.get_finished_spans().unwrap();
    let got: Vec<Value> = spans
        .iter()
        .map(|s| attrs(s)["server.address"].clone())
        .collect();
    assert_eq!(got, hosts.map(s));
}

#[tokio::test]
async fn sampled_and_unsampled_requests_alternate_cleanly() {
    // The attribute-list size hint follows the last decision; neither guess changes a span.
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
