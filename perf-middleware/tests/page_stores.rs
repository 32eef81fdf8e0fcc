//! The `/perf` page's stores stay within their documented ceiling under a flood of random paths,
//! many route templates and slow requests, and what they report matches what was sent.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use perf_middleware::PerfLayer;
use perf_middleware::page::{MAX_ROUTES, PerfPage, Protection, SLOW_RING, WORST};
use tower::ServiceExt;

fn app(page: &PerfPage, templates: usize) -> Router {
    let perf = PerfLayer::builder()
        .slow_threshold(Duration::from_millis(50))
        .page(page)
        .build()
        .unwrap();
    let mut r = Router::new()
        .route(
            "/slow/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "slept"
                },
            ),
        )
        .route(
            "/fail",
            get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "no") }),
        );
    for i in 0..templates {
        r = r.route(&format!("/t{i}/{{id}}"), get(|| async { "ok" }));
    }
    r.layer(perf).merge(page.router())
}

async fn get_text(app: &Router, uri: &str) -> (u16, String) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(start_paused = true)]
async fn a_flood_stays_within_the_ceiling() {
    let page = PerfPage::builder(Protection::unprotected())
        .build()
        .unwrap();
    let app = app(&page, 2 * MAX_ROUTES);
    // A simple deterministic generator: the paths only need to differ.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..5_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let uri = match i % 3 {
            0 => format!("/random/{x:x}/{i}"),
            1 => format!("/t{}/{x}", x % (2 * MAX_ROUTES as u64)),
            _ => format!("/slow/{}", 50 + x % 200),
        };
        let _ = get_text(&app, &uri).await;
    }
    let f = page.footprint();
    assert_eq!(f.routes, MAX_ROUTES, "route rows: {f:?}");
    assert_eq!(f.slow_requests, SLOW_RING, "{f:?}");
    assert!(f.worst_requests <= WORST * (MAX_ROUTES + 1), "{f:?}");

    let (status, data) = get_text(&app, "/perf/data?window=300").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let rows = v["routes"].as_array().unwrap();
    assert_eq!(rows.len(), MAX_ROUTES + 1, "own rows + the shared one");
    assert!(rows.iter().any(|r| r["route"] == "(other routes)"));
    assert_eq!(v["slow"].as_array().unwrap().len(), SLOW_RING);
    // Only the newest slow requests are sent again.
    let seq = v["seq"].as_u64().unwrap();
    let (_, again) = get_text(&app, &format!("/perf/data?since={seq}")).await;
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["slow"].as_array().unwrap().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn rows_report_rate_errors_percentiles_and_the_slowest() {
    let page = PerfPage::builder(Protection::unprotected())
        .build()
        .unwrap();
    let app = app(&page, 0);
    for _ in 0..9 {
        get_text(&app, "/slow/10").await;
    }
    get_text(&app, "/slow/400").await;
    for _ in 0..5 {
        get_text(&app, "/fail").await;
    }
    let (_, data) = get_text(&app, "/perf/data?window=60").await;
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let row = |route: &str| {
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == route)
            .unwrap_or_else(|| panic!("no row {route}: {v}"))
            .clone()
    };
    let slow = row("/slow/{ms}");
    assert_eq!(slow["requests"], 10);
    let p50 = slow["p50_ms"].as_f64().unwrap();
    assert!((9.0..=11.5).contains(&p50), "p50 {p50}");
    assert_eq!(slow["max_ms"].as_f64().unwrap(), 400.0);
    assert_eq!(slow["worst"][0]["duration_ms"].as_f64().unwrap(), 400.0);
    assert_eq!(row("/fail")["error_ratio"].as_f64().unwrap(), 1.0);
    let recent = v["slow"].as_array().unwrap();
    assert_eq!(recent.len(), 1, "only the 400 ms request passed 50 ms");
    assert_eq!(recent[0]["status"], 200);
    assert_eq!(recent[0]["outcome"], "completed");
    // The page's own requests are not measured.
    assert!(
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["route"].as_str().unwrap().starts_with("/perf"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_page_is_not_recorded_even_inside_the_layer() {
    let page = PerfPage::builder(Protection::unprotected())
        .build()
        .unwrap();
    let perf = PerfLayer::builder().page(&page).build().unwrap();
    // The page merged before `.layer`: its requests pass through the timing layer.
    let app = Router::new()
        .route("/a", get(|| async { "a" }))
        .merge(page.router())
        .layer(perf);
    get_text(&app, "/a").await;
    for _ in 0..3 {
        assert_eq!(get_text(&app, "/perf").await.0, 200);
        get_text(&app, "/perf/data").await;
    }
    let (_, data) = get_text(&app, "/perf/data").await;
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let routes: Vec<_> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].clone())
        .collect();
    assert_eq!(routes, ["/a"]);
}
