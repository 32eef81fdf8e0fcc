//! Context in (`traceparent`, `baggage`, custom propagators) and out (response, outgoing calls).

use std::convert::Infallible;

use http_body_util::Full;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use super::*;

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
async fn server_timing_carries_the_traceparent_when_selected() {
    let (_exporter, provider) = always();
    let layer = OtelLayer::builder(provider.tracer("t"))
        .server_timing(perf_middleware::ServerTiming::when_header(
            http::HeaderName::from_static("x-timing"),
        ))
        .build()
        .unwrap();
    let plain = send(
        app(layer.clone()),
        request("/users/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(plain.headers().get("server-timing").is_none());
    let res = send(
        app(layer),
        request("/users/1")
            .header("x-timing", "1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let value = res.headers()["server-timing"].to_str().unwrap();
    assert!(
        value.starts_with(&format!("traceparent;desc=\"00-{TRACE}-")),
        "{value}"
    );
    assert!(value.ends_with("-01\""), "{value}");
}
