//! Stable HTTP server semantic-convention attributes (semconv v1.44), computed only for recording spans.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{FORWARDED, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version};
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};

use super::layer::Config;

/// The `http.request.method` value (and span name prefix) when the method is known, else `None`
/// (the span then records `_OTHER` and `http.request.method_original`). A non-empty `known` list
/// replaces the default set (semconv `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` semantics).
pub(crate) fn known_method(method: &Method, known: &[Method]) -> Option<Cow<'static, str>> {
    let standard = match *method {
        Method::GET => Some("GET"),
        Method::POST => Some("POST"),
        Method::PUT => Some("PUT"),
        Method::DELETE => Some("DELETE"),
        Method::HEAD => Some("HEAD"),
        Method::OPTIONS => Some("OPTIONS"),
        Method::PATCH => Some("PATCH"),
        Method::CONNECT => Some("CONNECT"),
        Method::TRACE => Some("TRACE"),
        _ => None,
    };
    if known.is_empty() {
        return standard.map(Cow::Borrowed);
    }
    if !known.contains(method) {
        return None;
    }
    Some(standard.map_or_else(|| Cow::Owned(method.as_str().to_owned()), Cow::Borrowed))
}

/// `network.protocol.version` values as semconv spells them.
pub(crate) fn protocol_version(v: Version) -> Option<&'static str> {
    Some(match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// The default query keys whose values are replaced by `REDACTED` (semconv `url.query`).
pub(crate) const DEFAULT_REDACTED_QUERY_KEYS: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
];

/// `url.query` with the values of sensitive keys replaced by `REDACTED`; keys stay.
pub(crate) fn redact_query(query: &str, keys: &[Cow<'static, str>]) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if keys.iter().any(|r| r == k) => {
                out.push_str(k);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port; `None` when the host is empty.
/// A port that is not 1–5 digits below 65536 is dropped.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim_ascii();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':').and_then(parse_port);
        return (!host.is_empty()).then_some((host, port));
    }
    let b = s.as_bytes();
    let (host, port) = match b.iter().rposition(|&c| c == b':') {
        // A bare IPv6 address without brackets has several colons: no port.
        Some(i) if !b[..i].contains(&b':') => (&s[..i], parse_port(&s[i + 1..])),
        _ => (s, None),
    };
    (!host.is_empty()).then_some((host, port))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        return None;
    }
    let mut n: u32 = 0;
    for c in p.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    u16::try_from(n).ok()
}

/// The first element's `name=` parameter of an RFC 7239 `Forwarded` header, unquoted.
pub(crate) fn forwarded_param<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(FORWARDED)?.to_str().ok()?;
    let first = value.split(',').next()?;
    first.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
            .filter(|v| !v.is_empty())
    })
}

/// The first comma-separated value of a header.
fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let v = headers.get(name)?.to_str().ok()?.split(',').next()?.trim();
    (!v.is_empty()).then_some(v)
}

/// The address part of a `Forwarded for=` / `X-Forwarded-For` node (drops brackets and port).
fn node_address(node: &str) -> Option<&str> {
    if node.eq_ignore_ascii_case("unknown") || node.starts_with('_') {
        return None; // obfuscated identifiers carry no address
    }
    if node.parse::<IpAddr>().is_ok() {
        return Some(node);
    }
    split_host_port(node).map(|(h, _)| h)
}

/// The socket peer, from axum's `ConnectInfo` or [`PeerAddr`](crate::PeerAddr).
pub(crate) fn peer_addr(ext: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(ci) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(ci.0);
    }
    ext.get::<crate::PeerAddr>().map(|p| p.0)
}

fn kv(key: &'static str, value: impl Into<Value>) -> KeyValue {
    KeyValue::new(Key::from_static_str(key), value)
}

fn owned(key: &'static str, value: &str) -> KeyValue {
    kv(key, Value::String(StringValue::from(value.to_owned())))
}

/// `url.scheme` as a static string for the usual values.
fn scheme(s: &str) -> StringValue {
    if s.eq_ignore_ascii_case("http") {
        StringValue::from("http")
    } else if s.eq_ignore_ascii_case("https") {
        StringValue::from("https")
    } else {
        StringValue::from(s.to_ascii_lowercase())
    }
}

/// An IP address as one shared string (formatted on the stack, one allocation).
fn ip_string(ip: IpAddr) -> StringValue {
    struct Buf {
        bytes: [u8; 48],
        len: usize,
    }
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            self.bytes
                .get_mut(self.len..end)
                .ok_or(std::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut buf = Buf {
        bytes: [0; 48],
        len: 0,
    };
    // An IPv6 address is at most 45 characters, so the buffer always suffices.
    let shared: Arc<str> = match std::fmt::Write::write_fmt(&mut buf, format_args!("{ip}")) {
        Ok(()) => std::str::from_utf8(&buf.bytes[..buf.len])
            .map_or_else(|_| ip.to_string().into(), Arc::from),
        Err(_) => ip.to_string().into(),
    };
    StringValue::from(shared)
}

/// `Host` and `User-Agent` in one pass over a small header map (hashing each name costs more).
fn host_and_user_agent(headers: &HeaderMap) -> (Option<&HeaderValue>, Option<&HeaderValue>) {
    if headers.len() > 12 {
        return (headers.get(HOST), headers.get(USER_AGENT));
    }
    let (mut host, mut user_agent) = (None, None);
    for (name, value) in headers {
        if *name == HOST {
            host = host.or(Some(value));
        } else if *name == USER_AGENT {
            user_agent = user_agent.or(Some(value));
        }
    }
    (host, user_agent)
}

/// Strings of at most this length are kept by [`recent_string`].
const RECENT_MAX_LEN: usize = 64;
/// Slots of the per-thread cache of [`recent_string`].
const RECENT_SLOTS: usize = 4;

thread_local! {
    static RECENT: RefCell<[Option<Arc<str>>; RECENT_SLOTS]> = const { RefCell::new([const { None }; RECENT_SLOTS]) };
}

/// A shared string for a value that most requests repeat (the server address): the same `Arc<str>`
/// as the previous requests on this thread when it was one of the last few, else a new one. Saves
/// an allocation here and a free on the export thread per span; bounded (a few short strings per
/// thread).
fn recent_string(s: &str) -> StringValue {
    if s.len() > RECENT_MAX_LEN {
        return StringValue::from(s.to_owned());
    }
    let shared = RECENT
        .try_with(|recent| {
            let mut recent = recent.try_borrow_mut().ok()?;
            if let Some(hit) = recent.iter().flatten().find(|r| &***r == s) {
                return Some(hit.clone());
            }
            let new: Arc<str> = Arc::from(s);
            recent.rotate_right(1);
            recent[0] = Some(new.clone());
            Some(new)
        })
        .ok()
        .flatten();
    shared.map_or_else(|| StringValue::from(s.to_owned()), StringValue::from)
}

/// An upper bound of the attributes a recording span of `req` gets: those [`request`] pushes and
/// the response's status code and captured headers (an `error.type` or a late `http.route` may
/// add one more). Cheap checks only (no string is built), so the SDK can be handed a list of the
/// right size before it decides: a list grown by pushing is re-allocated, and one larger than
/// needed is memory the export thread frees in bulk (with glibc's allocator, batches of larger
/// chunks freed on that thread make the heap shrink and grow again: page faults per span).
pub(crate) fn count<B>(
    config: &Config,
    req: &Request<B>,
    known_method: bool,
    routed: bool,
) -> usize {
    let headers = req.headers();
    let uri = req.uri();
    let peer = peer_addr(req.extensions()).is_some();
    let (host, user_agent) = host_and_user_agent(headers);
    let forwarded = |name: &str| {
        config.trust_forwarded && (headers.contains_key(FORWARDED) || headers.contains_key(name))
    };
    // method, url.path, url.scheme, network.protocol.version, http.response.status_code
    5 + usize::from(!known_method)
        + usize::from(uri.query().is_some_and(|q| !q.is_empty()))
        + usize::from(routed)
        + 2 * usize::from(
            uri.authority().is_some() || host.is_some() || forwarded("x-forwarded-host"),
        )
        + usize::from(peer || forwarded("x-forwarded-for"))
        + 2 * usize::from(peer)
        + usize::from(user_agent.is_some())
        + config
            .request_headers
            .iter()
            .filter(|(name, _)| headers.contains_key(name))
            .count()
        + config.response_headers.len()
}

/// All request attributes known at the start of a recording span, handed to `push` one by one
/// (the span stores them; no intermediate list). `method` is [`known_method`]'s answer, `route`
/// the `http.route` value, if routed.
pub(crate) fn request<B>(
    config: &Config,
    req: &Request<B>,
    method: Option<Cow<'static, str>>,
    route: Option<StringValue>,
    push: &mut impl FnMut(KeyValue),
) {
    let headers = req.headers();
    let uri = req.uri();
    match method {
        Some(m) => push(kv("http.request.method", Value::String(m.into()))),
        None => {
            push(kv("http.request.method", "_OTHER"));
            push(owned("http.request.method_original", req.method().as_str()));
        }
    }
    // A route without parameters usually is the path: share its string.
    let path = uri.path();
    match &route {
        Some(r) if r.as_str() == path => push(kv("url.path", Value::String(r.clone()))),
        _ => push(owned("url.path", path)),
    }
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        push(kv(
            "url.query",
            redact_query(q, &config.redacted_query_keys),
        ));
    }
    // Scheme: trusted proxy headers, then the request target (HTTP/2 `:scheme`), then the connection.
    let forwarded_proto = config
        .trust_forwarded
        .then(|| {
            forwarded_param(headers, "proto").or_else(|| first_value(headers, "x-forwarded-proto"))
        })
        .flatten();
    match forwarded_proto.or_else(|| uri.scheme_str()) {
        Some(s) => push(kv("url.scheme", Value::String(scheme(s)))),
        None => push(kv("url.scheme", config.scheme)),
    }
    if let Some(r) = route {
        push(kv("http.route", Value::String(r)));
    }
    // server.address / server.port: trusted forwarded host, then :authority, then Host.
    let forwarded_host = config
        .trust_forwarded
        .then(|| {
            forwarded_param(headers, "host").or_else(|| first_value(headers, "x-forwarded-host"))
        })
        .flatten();
    let (host_header, user_agent) = host_and_user_agent(headers);
    let host = forwarded_host
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .or_else(|| host_header.and_then(|h| h.to_str().ok()));
    if let Some((h, port)) = host.and_then(split_host_port) {
        push(kv("server.address", Value::String(recent_string(h))));
        if let Some(p) = port {
            push(kv("server.port", i64::from(p)));
        }
    }
    let peer = peer_addr(req.extensions());
    let forwarded_client = config
        .trust_forwarded
        .then(|| {
            forwarded_param(headers, "for").or_else(|| first_value(headers, "x-forwarded-for"))
        })
        .flatten()
        .and_then(node_address);
    // One string for the peer IP, shared by `client.address` and `network.peer.address`.
    let peer_ip = peer.map(|p| ip_string(p.ip()));
    match (forwarded_client, &peer_ip) {
        (Some(c), _) => push(owned("client.address", c)),
        (None, Some(ip)) => push(kv("client.address", Value::String(ip.clone()))),
        (None, None) => {}
    }
    if let (Some(p), Some(ip)) = (peer, peer_ip) {
        push(kv("network.peer.address", Value::String(ip)));
        push(kv("network.peer.port", i64::from(p.port())));
    }
    if let Some(v) = protocol_version(req.version()) {
        push(kv("network.protocol.version", v));
    }
    if let Some(ua) = user_agent {
        push(kv(
            "user_agent.original",
            String::from_utf8_lossy(ua.as_bytes()).into_owned(),
        ));
    }
    capture_headers(&config.request_headers, headers, push);
}

/// Hands `http.{request,response}.header.<name>` string arrays for the configured headers present
/// to `push`.
pub(crate) fn capture_headers(
    wanted: &[(HeaderName, Key)],
    headers: &HeaderMap,
    push: &mut impl FnMut(KeyValue),
) {
    for (name, key) in wanted {
        let values: Vec<StringValue> = headers
            .get_all(name)
            .iter()
            .map(|v| StringValue::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        if !values.is_empty() {
            push(KeyValue::new(
                key.clone(),
                Value::Array(Array::String(values)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splitting() {
        assert_eq!(
            split_host_port("example.com:8080"),
            Some(("example.com", Some(8080)))
        );
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(split_host_port("[::1]:443"), Some(("::1", Some(443))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        assert_eq!(split_host_port("host:notaport"), Some(("host", None)));
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port("[]:80"), None);
        assert_eq!(split_host_port(" h:65535 "), Some(("h", Some(65535))));
        assert_eq!(split_host_port("h:65536"), Some(("h", None)));
        assert_eq!(split_host_port("h:+80"), Some(("h", None)));
        assert_eq!(split_host_port("h:"), Some(("h", None)));
    }

    #[test]
    fn query_redaction_keeps_keys() {
        let keys: Vec<Cow<'static, str>> = DEFAULT_REDACTED_QUERY_KEYS
            .iter()
            .map(|k| Cow::Borrowed(*k))
            .collect();
        assert_eq!(redact_query("a=1&sig=abc&b", &keys), "a=1&sig=REDACTED&b");
        assert_eq!(
            redact_query("X-Amz-Signature=x&SIG=y", &keys),
            "X-Amz-Signature=REDACTED&SIG=y"
        );
    }

    #[test]
    fn forwarded_first_element_and_quotes() {
        let mut h = HeaderMap::new();
        h.insert(
            FORWARDED,
            r#"for="[2001:db8::1]:4711";proto=HTTPS;host=api.example.com, for=10.0.0.1"#
                .parse()
                .unwrap(),
        );
        assert_eq!(forwarded_param(&h, "for"), Some("[2001:db8::1]:4711"));
        assert_eq!(node_address("[2001:db8::1]:4711"), Some("2001:db8::1"));
        assert_eq!(forwarded_param(&h, "proto"), Some("HTTPS"));
        assert_eq!(forwarded_param(&h, "host"), Some("api.example.com"));
        assert_eq!(node_address("unknown"), None);
        assert_eq!(node_address("192.0.2.1:80"), Some("192.0.2.1"));
    }

    #[test]
    fn the_count_bounds_the_attributes_closely() {
        use opentelemetry::trace::TracerProvider as _;
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .build()
            .tracer("t");
        let plain = crate::OtelLayer::new(tracer.clone());
        let full = crate::OtelLayer::builder(tracer)
            .trust_forwarded_headers(true)
            .add_request_header(http::header::ACCEPT)
            .add_response_header(http::header::CONTENT_TYPE)
            .build();
        let peer = crate::PeerAddr("192.0.2.1:5000".parse().unwrap());
        let requests = [
            Request::get("/a").body(()).unwrap(),
            Request::get("/a?x=1")
                .header(HOST, "h:80")
                .header(USER_AGENT, "ua")
                .body(())
                .unwrap(),
            Request::get("https://h/a").body(()).unwrap(),
            Request::builder()
                .method("PURGE")
                .uri("/a")
                .header(HOST, "h")
                .header("x-forwarded-for", "203.0.113.1")
                .header(http::header::ACCEPT, "*/*")
                .body(())
                .unwrap(),
        ];
        for layer in [&plain, &full] {
            for mut req in requests.iter().map(|r| {
                let mut c = Request::new(());
                *c.method_mut() = r.method().clone();
                *c.uri_mut() = r.uri().clone();
                *c.headers_mut() = r.headers().clone();
                c
            }) {
                for with_peer in [false, true] {
                    if with_peer {
                        req.extensions_mut().insert(peer);
                    }
                    for route in [None, Some(StringValue::from("/a"))] {
                        let mut pushed = 1 + layer.config.response_headers.len(); // status, response headers
                        let method = known_method(req.method(), &layer.config.known_methods);
                        let known = method.is_some();
                        request(&layer.config, &req, method, route.clone(), &mut |_| {
                            pushed += 1
                        });
                        let bound = count(&layer.config, &req, known, route.is_some());
                        assert!(
                            (pushed..=pushed + 2).contains(&bound),
                            "{} {:?}: {pushed} attributes, bound {bound}",
                            req.uri(),
                            req.headers()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn methods_outside_the_known_list_are_other() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(known_method(&Method::GET, &[]).as_deref(), Some("GET"));
        assert_eq!(known_method(&purge, &[]), None);
        assert_eq!(known_method(&Method::PATCH, &[Method::GET]), None);
        assert_eq!(
            known_method(&purge, std::slice::from_ref(&purge)).as_deref(),
            Some("PURGE")
        );
    }
}
