//! Per-request cost of `OtelLayer` in a form `valgrind --tool=callgrind` can count exactly
//! (instructions are repeatable where wall-clock time on a shared machine is not). Spans go
//! through the SDK's `BatchSpanProcessor` to an exporter that discards them, as in the bench
//! server.
//!
//! ```sh
//! cargo build --release -p perf-otel --example cost_otel
//! for n in 10000 30000; do
//!   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=cg.$n \
//!     target/release/examples/cost_otel sampled $n
//! done
//! # per request: (totals of cg.30000-01 - cg.10000-01) / 20000 for the request thread,
//! # the same with the -02 files for the batch processor's thread
//! ```
//!
//! The batch processor is flushed every 256 requests, so that under valgrind (which runs one
//! thread at a time) its queue never overflows: its thread's count is then the cost of exporting
//! every span, and the count of each thread is repeatable (`COST_FLUSH=0` turns this off for
//! wall-clock timing). The router gets its state once
//! (`with_state(())`), as `axum::serve` does.
//!
//! Variants:
//! - `bare`; `noop` (an identity layer via `Router::layer`: axum's own per-layer cost);
//! - `unsampled` (`ParentBased(AlwaysOff)`), `1pct` (`ParentBased(TraceIdRatioBased(0.01))`),
//!   `sampled` (`ParentBased(AlwaysOn)`), `sampled-parent` (sampled, the request carries a sampled
//!   `traceparent`): `OtelLayer` via `Router::layer`;
//! - `outer-unsampled`, `outer-sampled`, ...: `OtelLayer` around the whole router, the route
//!   template from a `RouteTemplate` request extension;
//! - `sdk-start-unsampled` (an unsampled SDK span started and dropped), `sdk-unsampled` /
//!   `sdk-sampled` (a SERVER span with the bench request's attributes, put into a `Context`,
//!   ended): the SDK alone, no HTTP stack;
//! - `sizes`: sizes of the SDK types that move per span.

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use perf_middleware::RouteTemplate;
use perf_otel::OtelLayer;
use tower::ServiceExt;

use std::sync::atomic::{AtomicUsize, Ordering};

/// Spans that reached the exporter (the rest were dropped by a full queue).
static EXPORTED: AtomicUsize = AtomicUsize::new(0);

/// Discards every batch (after counting it).
#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        EXPORTED.fetch_add(batch.len(), Ordering::Relaxed);
        drop(batch);
        Ok(())
    }
}

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(BatchSpanProcessor::builder(NullExporter).build())
        .build()
}

fn sampler(name: &str) -> Sampler {
    let inner = match name {
        "unsampled" => Sampler::AlwaysOff,
        "1pct" => Sampler::TraceIdRatioBased(0.01),
        _ => Sampler::AlwaysOn,
    };
    Sampler::ParentBased(Box::new(inner))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "sampled".into());
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let router = Router::new().route("/json", get(|| async { r#"{"id":1}"# }));
    let (base, outer) = match variant.strip_prefix("outer-") {
        Some(b) => (b, true),
        None => (variant.as_str(), false),
    };
    if base == "sizes" {
        println!(
            "KeyValue {} B, SDK Span {} B, SpanData {} B, SpanBuilder {} B, Context {} B",
            size_of::<KeyValue>(),
            size_of::<opentelemetry_sdk::trace::Span>(),
            size_of::<SpanData>(),
            size_of::<opentelemetry::trace::SpanBuilder>(),
            size_of::<Context>(),
        );
        return;
    }
    if base == "sdk-start-unsampled" {
        sdk_start(&provider(sampler("unsampled")), n);
        return;
    }
    if let Some(s) = base.strip_prefix("sdk-") {
        sdk_only(&provider(sampler(s)), n);
        return;
    }
    let p = matches!(base, "unsampled" | "1pct" | "sampled" | "sampled-parent")
        .then(|| provider(sampler(base)));
    let traceparent = base == "sampled-parent";
    // `with_state(())` once, as `axum::serve` does per connection (without it axum re-boxes every
    // handler per request).
    match (base, &p) {
        ("bare", _) => run(router.with_state(()), n, false, None),
        ("noop", _) => run(
            router
                .layer(tower::util::MapResponseLayer::new(
                    |r: axum::response::Response| r,
                ))
                .with_state(()),
            n,
            false,
            None,
        ),
        // Around the whole router, the route template from a `RouteTemplate` a layer in front put
        // into the request (as perf-middleware's `MatchRouteLayer` does: its table lookup is not
        // counted here); `axum::serve` wants axum's own response type.
        (_, Some(p)) if outer => {
            let template = RouteTemplate::new("/json");
            run(
                tower::ServiceBuilder::new()
                    .map_response(IntoResponse::into_response)
                    .map_request(move |mut req: Request<Body>| {
                        req.extensions_mut().insert(template.clone());
                        req
                    })
                    .layer(OtelLayer::new(p.tracer("bench")))
                    .service(router.with_state(())),
                n,
                traceparent,
                Some(p),
            )
        }
        (_, Some(p)) => run(
            router
                .layer(OtelLayer::new(p.tracer("bench")))
                .with_state(()),
            n,
            traceparent,
            Some(p),
        ),
        (other, None) => panic!("unknown variant {other}"),
    }
    if let Some(p) = p {
        p.shutdown().expect("shutdown");
    }
    eprintln!("exported {}", EXPORTED.load(Ordering::Relaxed));
}

/// Requests between two flushes of the batch processor, so its queue never overflows under
/// valgrind's serialised threads (dropped spans would make the processor's count meaningless).
/// `COST_FLUSH=0` turns the flushes off, for wall-clock timing (each flush is a round trip to the
/// processor's thread).
fn flush_every() -> u32 {
    match std::env::var("COST_FLUSH").as_deref() {
        Ok("0") => u32::MAX,
        _ => 256,
    }
}

fn run<S, B>(app: S, n: u32, traceparent: bool, provider: Option<&SdkTracerProvider>)
where
    S: tower::Service<Request<Body>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let flush = flush_every();
    rt.block_on(async {
        for i in 0..n {
            if i % flush == 0
                && let Some(p) = provider
            {
                p.force_flush().expect("flush");
            }
            let mut req = Request::get("/json").header("host", "127.0.0.1:3900");
            if traceparent {
                req = req.header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                );
            }
            let req = req.body(Body::empty()).expect("request");
            let res = app.clone().oneshot(req).await.expect("response");
            std::hint::black_box(res.into_body().collect().await.expect("body"));
        }
    });
}

/// The SDK alone: one SERVER span per iteration with the attributes the layer records for the
/// bench's request, put into a context as the layer does, then ended.
fn sdk_only(provider: &SdkTracerProvider, n: u32) {
    let tracer = provider.tracer("bench");
    let flush = flush_every();
    for i in 0..n {
        if i % flush == 0 {
            provider.force_flush().expect("flush");
        }
        let mut span = tracer
            .span_builder("GET")
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &Context::new());
        if span.is_recording() {
            span.update_name("GET /json");
            span.set_attributes([
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.path", "/json"),
                KeyValue::new("url.scheme", "http"),
                KeyValue::new("http.route", "/json"),
                KeyValue::new("server.address", "127.0.0.1"),
                KeyValue::new("server.port", 3900_i64),
                KeyValue::new("network.protocol.version", "1.1"),
            ]);
        }
        let cx = Context::new().with_span(span);
        std::hint::black_box(&cx);
        cx.span()
            .set_attribute(KeyValue::new("http.response.status_code", 200_i64));
        cx.span().end();
    }
    provider.shutdown().expect("shutdown");
    eprintln!("exported {}", EXPORTED.load(Ordering::Relaxed));
}

/// The SDK's sampling decision alone: an unsampled SERVER span started and dropped.
fn sdk_start(provider: &SdkTracerProvider, n: u32) {
    let tracer = provider.tracer("bench");
    let cx = Context::new();
    for _ in 0..n {
        let span = tracer
            .span_builder("GET")
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &cx);
        std::hint::black_box(span);
    }
}
