use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower_layer::Layer;

use super::*;
use crate::EtagMode;

async fn run(
    layer: ETagLayer,
    headers: &[(&'static str, &'static str)],
    req: &[(&str, &str)],
) -> Response<ResponseBody<Full<Bytes>>> {
    let headers: Vec<_> = headers.to_vec();
    let svc = layer.layer(tower::service_fn(move |_: Request<()>| {
        let mut res = Response::new(Full::new(Bytes::from_static(b"hello world")));
        for (n, v) in &headers {
            res.headers_mut().insert(*n, v.parse().unwrap());
        }
        async move { Ok::<_, Infallible>(res) }
    }));
    let mut builder = Request::builder();
    for (n, v) in req {
        builder = builder.header(*n, *v);
    }
    svc.oneshot(builder.body(()).unwrap()).await.unwrap()
}

#[tokio::test]
async fn generates_strong_etags_and_answers_304() {
    let first = run(ETagLayer::new(), &[("cache-control", "no-store")], &[]).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(first.headers()["content-length"], "11");
    assert_eq!(
        first.into_body().collect().await.unwrap().to_bytes(),
        "hello world"
    );
    let second = run(
        ETagLayer::new(),
        &[("cache-control", "no-store")],
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(second.headers()["cache-control"], "no-store");
    assert!(
        second
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
}

#[tokio::test]
async fn keeps_handler_etags_and_skips_large_bodies() {
    let own = run(
        ETagLayer::new(),
        &[("etag", "\"mine\"")],
        &[("if-none-match", "W/\"mine\"")],
    )
    .await;
    assert_eq!(own.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(own.headers()["etag"], "\"mine\"");
    let large = run(ETagLayer::new().max_size(4), &[], &[]).await;
    assert!(large.headers().get("etag").is_none());
    assert_eq!(
        large.into_body().collect().await.unwrap().to_bytes(),
        "hello world"
    );
    let weak = run(ETagLayer::new().mode(EtagMode::Weak), &[], &[]).await;
    assert!(weak.headers()["etag"].to_str().unwrap().starts_with("W/\""));
}

#[tokio::test]
async fn bodies_without_a_length_are_read_frame_by_frame_and_stream_when_too_large() {
    use http_body::Frame;
    use http_body_util::StreamBody;

    let svc = ETagLayer::new()
        .max_size(8)
        .layer(tower::service_fn(|_: Request<()>| async {
            let frames =
                ["hell", "o w", "orld"].map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from(s))));
            let body = StreamBody::new(futures_util::stream::iter(frames));
            tokio::task::yield_now().await;
            Ok::<_, Infallible>(Response::new(body))
        }));
    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert!(res.headers().get("etag").is_none());
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        "hello world"
    );

    let svc = ETagLayer::new().layer(tower::service_fn(|_: Request<()>| async {
        let frames = ["hell", "o"].map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from(s))));
        Ok::<_, Infallible>(Response::new(StreamBody::new(futures_util::stream::iter(
            frames,
        ))))
    }));
    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.headers()["content-length"], "5");
    let etag = res.headers()["etag"].clone();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
    let again = Request::builder()
        .header("if-none-match", etag)
        .body(())
        .unwrap();
    assert_eq!(
        svc.oneshot(again).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );
}
