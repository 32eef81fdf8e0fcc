//! The page's routes: the HTML at the page's path, `data` (JSON), and the content-hashed script
//! and stylesheet. Every response goes through [`respond`], which sets the security headers.

use std::hash::BuildHasher;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, SET_COOKIE};
use http::{Response, StatusCode};
use tokio::time::Instant;

use super::builder::PerfPage;
use super::protection::query_param;

const HTML: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// The policy on every response: the page's own script, style and data, nothing else.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'none'";
const NO_STORE: &str = "no-store";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A content hash for asset names (fixed seed: the same bytes give the same name in every run).
fn hash(s: &str) -> String {
    let h = foldhash::fast::FixedState::with_seed(0x7065_7266).hash_one(s);
    format!("{h:016x}")
}

impl PerfPage {
    /// The page's axum router: merge it into the app's router *after* the app's `.layer(perf)`
    /// (axum layers wrap only the routes added before them), so that the page's own requests
    /// are not measured. It serves the page's [`path`](Self::path), `{path}/data` and
    /// `{path}/assets/*`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let base = self.path();
        let script = format!("{base}/assets/app-{}.js", hash(SCRIPT));
        let style = format!("{base}/assets/app-{}.css", hash(STYLE));
        let html = Bytes::from(
            HTML.replace("{base}", base)
                .replace("{script}", &script)
                .replace("{style}", &style),
        );
        let (p1, p2, p3, p4) = (self.clone(), self.clone(), self.clone(), self.clone());
        let root = if base.is_empty() { "/" } else { base };
        Router::new()
            .route(
                root,
                get(move |r: Request| page(p1.clone(), r, html.clone())),
            )
            .route(
                &format!("{base}/data"),
                get(move |r: Request| data(p2.clone(), r)),
            )
            .route(
                &script,
                get(move |r: Request| {
                    asset(p3.clone(), r, SCRIPT, "text/javascript; charset=utf-8")
                }),
            )
            .route(
                &style,
                get(move |r: Request| asset(p4.clone(), r, STYLE, "text/css; charset=utf-8")),
            )
    }
}

async fn page(page: PerfPage, req: Request, html: Bytes) -> Response<Body> {
    let (parts, _) = req.into_parts();
    match page.inner.protection.check(&parts) {
        Err(status) => refused(status),
        Ok(set_cookie) => {
            let mut res = respond(StatusCode::OK, "text/html; charset=utf-8", NO_STORE, html);
            if set_cookie && let Some(token) = page.inner.protection.token_str() {
                let cookie = format!(
                    "perf_token={token}; Path={}; HttpOnly; SameSite=Strict",
                    if page.path().is_empty() {
                        "/"
                    } else {
                        page.path()
                    }
                );
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    res.headers_mut().insert(SET_COOKIE, v);
                }
            }
            res
        }
    }
}

async fn data(page: PerfPage, req: Request) -> Response<Body> {
    let (parts, _) = req.into_parts();
    if let Err(status) = page.inner.protection.check(&parts) {
        return refused(status);
    }
    let q = parts.uri.query();
    let num = |name| query_param(q, name).and_then(|v| v.parse::<u64>().ok());
    let body = super::json::data(
        &page.inner,
        num("since").unwrap_or(0),
        num("window").unwrap_or(60),
        Instant::now(),
    );
    respond(StatusCode::OK, "application/json", NO_STORE, body)
}

async fn asset(
    page: PerfPage,
    req: Request,
    body: &'static str,
    content_type: &'static str,
) -> Response<Body> {
    let (parts, _) = req.into_parts();
    match page.inner.protection.check(&parts) {
        Err(status) => refused(status),
        Ok(_) => respond(StatusCode::OK, content_type, IMMUTABLE, body),
    }
}

fn refused(status: StatusCode) -> Response<Body> {
    let msg = if status == StatusCode::UNAUTHORIZED {
        "the perf page needs its token: open the URL the service printed at start\n"
    } else {
        "the perf page is served to loopback peers only\n"
    };
    respond(status, "text/plain; charset=utf-8", NO_STORE, msg)
}

/// A response with the page's headers.
fn respond(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<Body>,
) -> Response<Body> {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}
