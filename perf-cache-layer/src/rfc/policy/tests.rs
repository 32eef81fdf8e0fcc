//! Unit tests for storability and freshness.

use super::*;
use http::HeaderValue;
use http::header::CACHE_CONTROL;

fn policy() -> Policy {
    Policy {
        heuristic: None,
        heuristic_max: Duration::from_secs(86_400),
        default_ttl: None,
        set_cookie: SetCookiePolicy::Bypass,
        targeted: vec![HeaderName::from_static("cdn-cache-control")],
        keep: Duration::from_secs(600),
    }
}

fn fresh(lines: &[(&'static str, &'static str)]) -> Freshness {
    let mut h = HeaderMap::new();
    for (n, v) in lines {
        h.append(*n, HeaderValue::from_static(v));
    }
    let rd = response_directives(&policy(), &h);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    freshness(&policy(), StatusCode::OK, &h, &rd, now, now)
}

#[test]
fn s_maxage_beats_max_age_beats_expires() {
    let f = fresh(&[
        ("cache-control", "max-age=3600, s-maxage=1"),
        ("expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ]);
    assert_eq!(f.lifetime, Duration::from_secs(1));
    assert!(f.forbids_stale);
    assert_eq!(
        fresh(&[("cache-control", "max-age=60")]).lifetime,
        Duration::from_secs(60)
    );
    assert_eq!(fresh(&[("expires", "0")]).lifetime, Duration::ZERO);
    assert_eq!(
        fresh(&[
            ("cdn-cache-control", "max-age=9"),
            ("cache-control", "no-store")
        ])
        .lifetime
        .as_secs(),
        9
    );
}

#[test]
fn age_header_counts_and_invalid_age_is_stale() {
    let f = fresh(&[("cache-control", "max-age=3600"), ("age", "7200")]);
    assert!(f.ttl(f.response_time) < 0);
    let f = fresh(&[("cache-control", "max-age=3600"), ("age", "abc")]);
    assert_eq!(f.lifetime, Duration::ZERO);
}

#[test]
fn storability_rules() {
    let p = policy();
    let ok = |h: &HeaderMap, req: &HeaderMap, status: u16| {
        let rd = response_directives(&p, h);
        storable(
            &p,
            &Method::GET,
            req,
            StatusCode::from_u16(status).unwrap(),
            h,
            &rd,
        )
    };
    let mut h = HeaderMap::new();
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("max-age=60, Private"),
    );
    assert_eq!(ok(&h, &HeaderMap::new(), 200), Err(NotStored::Private));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    let mut auth = HeaderMap::new();
    auth.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
    assert_eq!(ok(&h, &auth, 200), Err(NotStored::Authorization));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("max-age=60, public"),
    );
    assert_eq!(ok(&h, &auth, 200), Ok(()));
    h.insert(SET_COOKIE, HeaderValue::from_static("a=b"));
    assert_eq!(ok(&h, &HeaderMap::new(), 200), Err(NotStored::SetCookie));
    h.remove(SET_COOKIE);
    h.insert(VARY, HeaderValue::from_static("Accept, *"));
    assert_eq!(ok(&h, &HeaderMap::new(), 200), Err(NotStored::VaryStar));
    assert_eq!(
        ok(&HeaderMap::new(), &HeaderMap::new(), 201),
        Err(NotStored::NoFreshness)
    );
}
