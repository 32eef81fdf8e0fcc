//! Span name and attributes: routes, methods, addresses, captured headers.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use tower::{ServiceBuilder, service_fn};

use super::*;

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

#[tokio::test]
async fn server_addresses_of_consecutive_requests_stay_apart() {
    // Each span keeps the server address of its own request.
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
async fn a_match_route_layer_in_front_names_spans_of_a_layer_around_the_router() {
    use perf_middleware::{MatchRouteLayer, RouteTable};

    let (exporter, provider) = always();
    let routes = RouteTable::new(["/users/{id}", "/users/me"]).unwrap();
    let svc = ServiceBuilder::new()
        .layer(MatchRouteLayer::new(routes))
        .layer(OtelLayer::new(provider.tracer("t")))
        .service(service_fn(|_req: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        }));
    for path in ["/users/7", "/users/me", "/nope"] {
        let req = Request::get(path).body(Body::empty()).unwrap();
        svc.clone().oneshot(req).await.unwrap();
    }
    let spans = exporter.get_finished_spans().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["GET /users/{id}", "GET /users/me", "GET"]);
    assert_eq!(attrs(&spans[0])["http.route"], s("/users/{id}"));
    assert!(!attrs(&spans[2]).contains_key("http.route"));
}

#[tokio::test]
async fn any_api_tracer_works_and_the_trace_continues() {
    // The no-op tracer of the API: nothing records, but the caller's trace id reaches the handler.
    let layer = OtelLayer::new(opentelemetry::trace::noop::NoopTracer::new());
    let res = send(
        app_with(layer),
        request("/trace-id").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(String::from_utf8(res.into_body()).unwrap(), TRACE);
}
