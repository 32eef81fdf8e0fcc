//! Storability and freshness (RFC 9111 §3, §4.2) for a shared cache.

use std::time::{Duration, SystemTime};

use http::header::{AUTHORIZATION, ETAG, EXPIRES, HeaderName, LAST_MODIFIED, SET_COOKIE, VARY};
use http::{HeaderMap, Method, StatusCode};

use super::directives::{self, Delta, ResponseDirectives};

/// What to do with responses that carry `Set-Cookie`.
///
/// Serving one user's `Set-Cookie` to another is the classic shared-cache leak, so the default is
/// [`SetCookiePolicy::Bypass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SetCookiePolicy {
    /// Never store a response with `Set-Cookie` (the default; Varnish and nginx behave the same).
    #[default]
    Bypass,
    /// Store the response without its `Set-Cookie` fields; only the client that caused the store sees them.
    Strip,
    /// Store and replay `Set-Cookie` like any other field, as RFC 9111 permits. Only for caches in
    /// front of origins that never set per-user cookies on cacheable responses.
    Store,
}

/// Freshness settings shared by the layer (built by [`CacheLayer`](crate::CacheLayer)).
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Fraction of `Date - Last-Modified` used as heuristic lifetime; `None` disables heuristics.
    pub(crate) heuristic: Option<f64>,
    /// Cap on heuristic lifetimes.
    pub(crate) heuristic_max: Duration,
    /// Lifetime for heuristically cacheable responses with no freshness information at all.
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) set_cookie: SetCookiePolicy,
    /// Targeted cache-control fields (RFC 9213), first present wins over `Cache-Control`.
    pub(crate) targeted: Vec<HeaderName>,
    /// How long a stale entry with validators is kept for conditional revalidation.
    pub(crate) keep: Duration,
}

/// Freshness facts computed once when an entry is stored or refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freshness {
    /// Freshness lifetime (zero for "stale at once").
    pub(crate) lifetime: Duration,
    /// Age when the response was received (RFC 9111 §4.2.3 `corrected_initial_age`).
    pub(crate) initial_age: Duration,
    /// When the response was received, by the layer's clock.
    pub(crate) response_time: SystemTime,
    pub(crate) stale_while_revalidate: Duration,
    pub(crate) stale_if_error: Duration,
    /// Never serve stale (must-revalidate, proxy-revalidate, s-maxage, no-cache).
    pub(crate) forbids_stale: bool,
    /// Revalidate on every use (`no-cache`).
    pub(crate) no_cache: bool,
}

impl Freshness {
    /// Current age at `now` (RFC 9111 §4.2.3).
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        self.initial_age + directives::since(now, self.response_time)
    }

    /// Remaining freshness (negative when stale), in whole seconds.
    pub(crate) fn ttl(&self, now: SystemTime) -> i64 {
        self.ttl_at(self.age(now))
    }

    /// Remaining freshness at `age` (negative when stale), in whole seconds.
    pub(crate) fn ttl_at(&self, age: Duration) -> i64 {
        (self.lifetime.as_secs() as i64).saturating_sub(age.as_secs() as i64)
    }

    /// How long the store should keep the entry.
    pub(crate) fn retain(&self, keep: Duration, has_validator: bool) -> Duration {
        let grace = self.stale_while_revalidate.max(self.stale_if_error);
        let keep = if has_validator { keep } else { Duration::ZERO };
        (self.lifetime.saturating_sub(self.initial_age) + grace.max(keep))
            .max(Duration::from_secs(1))
    }
}

/// Why a response was not stored (reported in `Cache-Status` `detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    Method,
    Status,
    NoStore,
    Private,
    Authorization,
    SetCookie,
    VaryStar,
    NoFreshness,
}

impl NotStored {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Status => "status",
            Self::NoStore => "no-store",
            Self::Private => "private",
            Self::Authorization => "authorization",
            Self::SetCookie => "set-cookie",
            Self::VaryStar => "vary-star",
            Self::NoFreshness => "no-freshness",
        }
    }
}

/// RFC 9110 §15.1: statuses that are heuristically cacheable.
pub(crate) fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Statuses this cache understands well enough to store (no 206: ranges are not implemented).
/// Any final status can be stored with explicit freshness, except 206 (ranges are not stored) and 304.
fn storable_status(status: StatusCode) -> bool {
    !status.is_informational()
        && status != StatusCode::PARTIAL_CONTENT
        && status != StatusCode::NOT_MODIFIED
}

/// Statuses defined by RFC 9110, for `must-understand` (RFC 9111 §5.2.2.3).
fn understood(status: StatusCode) -> bool {
    matches!(status.as_u16(), 200..=205 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505)
}

/// The response directives that apply to this cache: the first targeted field present that parses,
/// else `Cache-Control`.
pub(crate) fn response_directives(policy: &Policy, headers: &HeaderMap) -> ResponseDirectives {
    policy
        .targeted
        .iter()
        .filter(|name| headers.contains_key(*name))
        .find_map(|name| {
            if name == SURROGATE_CONTROL {
                Some(surrogate(headers, name))
            } else {
                targeted(headers, name)
            }
        })
        .unwrap_or_else(|| ResponseDirectives::parse(headers, &http::header::CACHE_CONTROL))
}

/// `Surrogate-Control` (Edge Architecture 1.0) predates Structured Fields: its directives are
/// matched case-insensitively and carry `;target` suffixes.
const SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");

/// `Surrogate-Control` parsed like `Cache-Control`, with its `;target` suffixes dropped.
fn surrogate(headers: &HeaderMap, name: &HeaderName) -> ResponseDirectives {
    let mut out = HeaderMap::new();
    for v in headers.get_all(name) {
        let Ok(s) = v.to_str() else { continue };
        let cleaned: Vec<&str> = s
            .split(',')
            .map(|d| d.split(';').next().unwrap_or_default())
            .collect();
        if let Ok(v) = http::HeaderValue::from_str(&cleaned.join(",")) {
            out.append(name.clone(), v);
        }
    }
    ResponseDirectives::parse(&out, name)
}

/// A targeted field (RFC 9213 §2.1) parsed as a Structured Field Dictionary (RFC 9651 §3.2).
/// `None` when it is empty or does not parse: the whole field is then ignored, as if absent. Parameters
/// (`max-age=60;edge`) are dropped; a value of the wrong type makes its directive invalid.
fn targeted(headers: &HeaderMap, name: &HeaderName) -> Option<ResponseDirectives> {
    let mut joined = Vec::new();
    for line in headers.get_all(name) {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
    }
    let dictionary: sfv::Dictionary = sfv::Parser::new(&joined).parse_dictionary().ok()?;
    if dictionary.is_empty() {
        return None;
    }
    let mut directives = Vec::with_capacity(dictionary.len());
    for (key, entry) in &dictionary {
        let key = key.as_str();
        let item = match entry {
            sfv::ListEntry::Item(item) => &item.bare_item,
            sfv::ListEntry::InnerList(_) => {
                directives.push(format!("{key}=invalid"));
                continue;
            }
        };
        match item {
            sfv::BareItem::Boolean(true) => directives.push(key.to_owned()),
            sfv::BareItem::Boolean(false) => {}
            sfv::BareItem::Integer(n) => directives.push(format!("{key}={n}")),
            // Only the field-name lists of `no-cache` and `private` are strings; a quoted
            // `max-age` is a type error in a Structured Field.
            sfv::BareItem::String(s) if matches!(key, "no-cache" | "private") => {
                directives.push(format!("{key}=\"{}\"", s.as_str()));
            }
            sfv::BareItem::Token(t) => directives.push(format!("{key}={}", t.as_str())),
            _ => directives.push(format!("{key}=invalid")),
        }
    }
    let mut fields = HeaderMap::new();
    let value = http::HeaderValue::from_str(&directives.join(", ")).ok()?;
    fields.insert(name.clone(), value);
    Some(ResponseDirectives::parse(&fields, name))
}

/// Whether the response may be stored (RFC 9111 §3), given the request it answers.
pub(crate) fn storable(
    policy: &Policy,
    method: &Method,
    req_headers: &HeaderMap,
    status: StatusCode,
    headers: &HeaderMap,
    rd: &ResponseDirectives,
) -> Result<(), NotStored> {
    // A response to HEAD has no body: storing it would answer a later GET with an empty one
    // (RFC 9111 §4.3.5 lets it update a stored GET's fields, nothing more).
    if method != Method::GET {
        return Err(NotStored::Method);
    }
    if !storable_status(status) || rd.must_understand && !understood(status) {
        return Err(NotStored::Status);
    }
    if rd.no_store && !rd.must_understand {
        return Err(NotStored::NoStore);
    }
    if rd.private {
        return Err(NotStored::Private);
    }
    if req_headers.contains_key(AUTHORIZATION)
        && !(rd.public || rd.s_maxage.is_some() || rd.must_revalidate)
    {
        return Err(NotStored::Authorization);
    }
    if headers.contains_key(SET_COOKIE) && policy.set_cookie == SetCookiePolicy::Bypass {
        return Err(NotStored::SetCookie);
    }
    if vary_names(headers).is_none() {
        return Err(NotStored::VaryStar);
    }
    let explicit =
        rd.max_age.is_some() || rd.s_maxage.is_some() || headers.contains_key(EXPIRES) || rd.public;
    if !explicit && !heuristically_cacheable(status) {
        return Err(NotStored::NoFreshness);
    }
    Ok(())
}

/// Whether a storable response could ever be reused: it has a freshness lifetime or a stale
/// window, or a validator from the origin to revalidate it with. Without any, storing it would
/// only cost a copy, a hash and a generated `ETag` that no request can use.
pub(crate) fn reusable(freshness: &Freshness, headers: &HeaderMap) -> Result<(), NotStored> {
    let validator = headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED);
    let window = !freshness.lifetime.is_zero()
        || !freshness.stale_while_revalidate.is_zero()
        || !freshness.stale_if_error.is_zero();
    if window || validator {
        Ok(())
    } else {
        Err(NotStored::NoFreshness)
    }
}

/// The `Vary` field names, lower-cased and de-duplicated; `None` for `Vary: *` (never matches).
pub(crate) fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names: Vec<HeaderName> = Vec::new();
    for line in headers.get_all(VARY) {
        for item in line.to_str().unwrap_or("*").split(',') {
            let item = item.trim();
            if item == "*" {
                return None;
            }
            if let Ok(name) = HeaderName::from_bytes(item.as_bytes())
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// Computes freshness for a response received at `response_time` for a request sent at
/// `request_time`.
pub(crate) fn freshness(
    policy: &Policy,
    status: StatusCode,
    headers: &HeaderMap,
    rd: &ResponseDirectives,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Freshness {
    let date = directives::parse_date(headers, &http::header::DATE).and_then(Result::ok);
    let age = directives::parse_age(headers);
    let apparent = date
        .map(|d| directives::since(response_time, d))
        .unwrap_or_default();
    let delay = directives::since(response_time, request_time);
    let corrected = Duration::from_secs(age.map_or(0, Delta::secs)) + delay;
    let initial_age = apparent.max(corrected);

    let explicit = rd
        .s_maxage
        .or(rd.max_age)
        .map(Delta::secs)
        .map(Duration::from_secs)
        .or_else(|| {
            directives::parse_date(headers, &EXPIRES).map(|expires| match expires {
                Ok(expires) => directives::since(expires, date.unwrap_or(response_time)),
                Err(()) => Duration::ZERO,
            })
        });
    let lifetime = match explicit {
        Some(lifetime) => lifetime,
        None if heuristically_cacheable(status) || rd.public => {
            heuristic(policy, headers, date.unwrap_or(response_time))
        }
        None => Duration::ZERO,
    };
    // An `Age` that cannot be trusted makes the response stale (RFC 9111 §4.2.3).
    let lifetime = if age == Some(Delta::Invalid) {
        Duration::ZERO
    } else {
        lifetime
    };
    Freshness {
        lifetime,
        initial_age,
        response_time,
        stale_while_revalidate: Duration::from_secs(rd.stale_while_revalidate.unwrap_or(0)),
        stale_if_error: Duration::from_secs(rd.stale_if_error.unwrap_or(0)),
        forbids_stale: rd.forbids_stale(),
        no_cache: rd.no_cache,
    }
}

fn heuristic(policy: &Policy, headers: &HeaderMap, date: SystemTime) -> Duration {
    let from_lm = policy.heuristic.and_then(|fraction| {
        let lm = directives::parse_date(headers, &LAST_MODIFIED)?.ok()?;
        let secs = directives::since(date, lm).as_secs_f64() * fraction;
        Some(Duration::from_secs_f64(secs).min(policy.heuristic_max))
    });
    from_lm.or(policy.default_ttl).unwrap_or_default()
}

#[cfg(test)]
mod tests;
