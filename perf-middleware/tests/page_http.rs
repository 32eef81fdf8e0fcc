//! The `/perf` page's protection and headers.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use perf_middleware::page::{PerfPage, Protection};
use tower::ServiceExt;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'";

async fn send(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone().oneshot(req).await.unwrap()
}

async fn body(res: Response<Body>) -> String {
    let b = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&b).into_owned()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_token_page_refuses_requests_without_it() {
    let page = PerfPage::builder(Protection::token())
        .card("cache", || serde_json::json!({"hits": 3}))
        .build()
        .unwrap();
    let url = page.url_path();
    assert!(
        url.starts_with("/perf?token=") && url.len() == "/perf?token=".len() + 32,
        "{url}"
    );
    let app: Router = page.router();

    for uri in ["/perf", "/perf/data", "/perf?token=wrong"] {
        let res = send(&app, get(uri)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with(CSP)
        );
    }

    let res = send(&app, get(&url)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with(CSP)
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = h["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let html = body(res).await;
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external asset"
    );

    // The cookie opens the data and the hashed assets, which are immutable.
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |uri: &str| {
        Request::get(uri)
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let data = send(&app, with_cookie("/perf/data")).await;
    assert_eq!(data.status(), StatusCode::OK);
    assert_eq!(data.headers()["cache-control"], "no-store");
    assert!(body(data).await.contains(r#""cache":{"hits":3}"#));
    let script = html
        .split('"')
        .find(|s| s.starts_with("/perf/assets/app-") && s.ends_with(".js"))
        .unwrap()
        .to_owned();
    let res = send(&app, with_cookie(&script)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let bearer = Request::get("/perf/data")
        .header(
            "authorization",
            format!("Bearer {}", &url["/perf?token=".len()..]),
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, bearer).await.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn loopback_only_checks_the_peer() {
    let page = PerfPage::builder(Protection::loopback_only())
        .build()
        .unwrap();
    let app: Router = page.router();
    assert_eq!(
        send(&app, get("/perf")).await.status(),
        StatusCode::FORBIDDEN
    );
    let from = |addr: &str| {
        let mut r = get("/perf/data");
        r.extensions_mut()
            .insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
        r
    };
    assert_eq!(
        send(&app, from("10.1.2.3:5000")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, from("127.0.0.1:5000")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, from("[::1]:5000")).await.status(),
        StatusCode::OK
    );
}
