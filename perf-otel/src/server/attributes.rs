//! Stable HTTP server semantic-convention attributes (semconv v1.44), computed only for recording
//! spans. Every name is a constant of `opentelemetry-semantic-conventions`.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, Request, Version};
use opentelemetry::trace::Span;
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    CLIENT_ADDRESS, HTTP_REQUEST_METHOD, HTTP_REQUEST_METHOD_ORIGINAL, HTTP_ROUTE,
    NETWORK_PEER_ADDRESS, NETWORK_PEER_PORT, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT,
    URL_PATH, URL_QUERY, URL_SCHEME, USER_AGENT_ORIGINAL,
};
use perf_middleware::KnownMethod;

use super::address::{forwarded, node_address, peer_addr, split_host_port};
use super::layer::Settings;

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

/// Sets all request attributes known at the start of a recording span on it. `route` is the
/// route template, if routed.
pub(crate) fn request<B>(
    settings: &Settings,
    req: &Request<B>,
    method: KnownMethod,
    route: Option<&str>,
    span: &mut impl Span,
) {
    let headers = req.headers();
    let uri = req.uri();
    span.set_attribute(KeyValue::new(HTTP_REQUEST_METHOD, method.as_str()));
    if method.is_other() {
        span.set_attribute(KeyValue::new(
            HTTP_REQUEST_METHOD_ORIGINAL,
            req.method().as_str().to_owned(),
        ));
    }
    span.set_attribute(KeyValue::new(URL_PATH, uri.path().to_owned()));
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        span.set_attribute(KeyValue::new(
            URL_QUERY,
            redact_query(q, &settings.redacted_query_keys),
        ));
    }
    span.set_attribute(KeyValue::new(URL_SCHEME, scheme(settings, req)));
    if let Some(route) = route {
        span.set_attribute(KeyValue::new(HTTP_ROUTE, route.to_owned()));
    }
    server_address(settings, req, span);
    client_and_peer(settings, req, span);
    if let Some(v) = protocol_version(req.version()) {
        span.set_attribute(KeyValue::new(NETWORK_PROTOCOL_VERSION, v));
    }
    if let Some(ua) = headers.get(USER_AGENT) {
        span.set_attribute(KeyValue::new(
            USER_AGENT_ORIGINAL,
            String::from_utf8_lossy(ua.as_bytes()).into_owned(),
        ));
    }
    span.set_attributes(captured_headers(&settings.request_headers, headers));
}

/// `url.scheme`: trusted proxy headers, then the request target (HTTP/2 `:scheme`), then the
/// connection's scheme.
fn scheme<B>(settings: &Settings, req: &Request<B>) -> Cow<'static, str> {
    let forwarded_proto = settings
        .trust_forwarded
        .then(|| forwarded(req.headers(), "proto", "x-forwarded-proto"))
        .flatten();
    match forwarded_proto {
        Some(p) if p.eq_ignore_ascii_case("http") => Cow::Borrowed("http"),
        Some(p) if p.eq_ignore_ascii_case("https") => Cow::Borrowed("https"),
        Some(p) => Cow::Owned(p.to_ascii_lowercase()),
        None => Cow::Borrowed(settings.scheme.of(req.uri()).as_str()),
    }
}

/// `server.address` / `server.port`: trusted forwarded host, then `:authority`, then `Host`.
fn server_address<B>(settings: &Settings, req: &Request<B>, span: &mut impl Span) {
    let headers = req.headers();
    let host = settings
        .trust_forwarded
        .then(|| forwarded(headers, "host", "x-forwarded-host"))
        .flatten()
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()));
    if let Some((host, port)) = host.and_then(split_host_port) {
        span.set_attribute(KeyValue::new(SERVER_ADDRESS, host.to_owned()));
        if let Some(port) = port {
            span.set_attribute(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
    }
}

/// `client.address` (trusted forwarded client, else the peer) and `network.peer.*`.
fn client_and_peer<B>(settings: &Settings, req: &Request<B>, span: &mut impl Span) {
    let peer = peer_addr(req.extensions());
    let forwarded_client = settings
        .trust_forwarded
        .then(|| forwarded(req.headers(), "for", "x-forwarded-for"))
        .flatten()
        .and_then(node_address);
    // One string for the peer IP, shared by `client.address` and `network.peer.address`.
    let peer_ip = peer.map(|p| StringValue::from(Arc::<str>::from(p.ip().to_string())));
    match (forwarded_client, &peer_ip) {
        (Some(c), _) => span.set_attribute(KeyValue::new(CLIENT_ADDRESS, c.to_owned())),
        (None, Some(ip)) => span.set_attribute(KeyValue::new(CLIENT_ADDRESS, ip.clone())),
        (None, None) => {}
    }
    if let (Some(p), Some(ip)) = (peer, peer_ip) {
        span.set_attribute(KeyValue::new(NETWORK_PEER_ADDRESS, ip));
        span.set_attribute(KeyValue::new(NETWORK_PEER_PORT, i64::from(p.port())));
    }
}

/// The `http.{request,response}.header.<name>` string arrays of the configured headers present.
pub(crate) fn captured_headers<'a>(
    wanted: &'a [(HeaderName, Key)],
    headers: &'a HeaderMap,
) -> impl Iterator<Item = KeyValue> + 'a {
    wanted.iter().filter_map(|(name, key)| {
        let values: Vec<StringValue> = headers
            .get_all(name)
            .iter()
            .map(|v| StringValue::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        (!values.is_empty())
            .then(|| KeyValue::new(key.clone(), Value::Array(Array::String(values))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
