//! [`CachedResponse`]: a stored response and the facts the cache needs to reuse it.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};

use crate::rfc::policy::Freshness;

/// A complete stored response plus what the cache needs to reuse it.
///
/// The layer builds one when it stores a response; a store keeps it (behind an `Arc`, or as bytes
/// through [`to_bytes`](Self::to_bytes) and [`from_bytes`](Self::from_bytes)) and never changes it.
/// It holds only facts about the response: nothing in it depends on the settings of the layer that
/// serves it, so any layer sharing the store can serve it.
///
/// The freshness facts are computed once, when the response is received (RFC 9111 §4.2): the
/// freshness lifetime, the corrected initial age, and the `stale-while-revalidate` and
/// `stale-if-error` windows. [`CachedResponse::builder`] sets them directly.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// When the request that produced the response was sent, by the layer's clock.
    pub(crate) request_time: SystemTime,
    pub(crate) freshness: Freshness,
    /// `Vary`-selected request headers: name and normalised value (`None` when absent).
    pub(crate) vary: Vec<(HeaderName, Option<String>)>,
    /// Surrogate keys (tags) for purging.
    pub(crate) tags: Vec<Box<str>>,
    /// How long a stale entry with validators is kept for conditional revalidation.
    pub(crate) keep: Duration,
}

impl fmt::Debug for CachedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("vary", &self.vary)
            .field("tags", &self.tags)
            .field("freshness", &self.freshness)
            .finish_non_exhaustive()
    }
}

impl CachedResponse {
    /// A builder for an entry with this status, header fields and body, received at
    /// `response_time`. Everything else defaults to "stale at once, nothing varied, untagged".
    pub fn builder(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        response_time: SystemTime,
    ) -> CachedResponseBuilder {
        CachedResponseBuilder {
            entry: Self {
                status,
                headers,
                body,
                request_time: response_time,
                freshness: Freshness {
                    lifetime: Duration::ZERO,
                    initial_age: Duration::ZERO,
                    response_time,
                    stale_while_revalidate: Duration::ZERO,
                    stale_if_error: Duration::ZERO,
                    forbids_stale: false,
                    no_cache: false,
                },
                vary: Vec::new(),
                tags: Vec::new(),
                keep: Duration::ZERO,
            },
        }
    }

    /// The stored status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stored header fields (hop-by-hop fields already removed).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The stored body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// When the request that produced the response was sent (RFC 9111 §4.2.3 `request_time`).
    pub fn request_time(&self) -> SystemTime {
        self.request_time
    }

    /// When the response was received and stored (RFC 9111 §4.2.3 `response_time`); a
    /// revalidation that refreshes the entry moves it forward.
    pub fn response_time(&self) -> SystemTime {
        self.freshness.response_time
    }

    /// The freshness lifetime (RFC 9111 §4.2.1).
    pub fn lifetime(&self) -> Duration {
        self.freshness.lifetime
    }

    /// The age when the response was received (RFC 9111 §4.2.3 `corrected_initial_age`).
    pub fn initial_age(&self) -> Duration {
        self.freshness.initial_age
    }

    /// The current age at `now` (RFC 9111 §4.2.3).
    pub fn age(&self, now: SystemTime) -> Duration {
        self.freshness.age(now)
    }

    /// How long after going stale it may still be served while revalidating (RFC 5861).
    pub fn stale_while_revalidate(&self) -> Duration {
        self.freshness.stale_while_revalidate
    }

    /// How long after going stale it may still be served when revalidation fails (RFC 5861).
    pub fn stale_if_error(&self) -> Duration {
        self.freshness.stale_if_error
    }

    /// Whether it must never be served stale (`must-revalidate`, `proxy-revalidate`, `s-maxage`,
    /// `no-cache`).
    pub fn must_revalidate(&self) -> bool {
        self.freshness.forbids_stale
    }

    /// Whether every use needs revalidation (`no-cache`).
    pub fn no_cache(&self) -> bool {
        self.freshness.no_cache
    }

    /// The request header values this variant was selected by (`Vary`), normalised: name and
    /// value, `None` when the request did not carry the field.
    pub fn vary(&self) -> impl Iterator<Item = (&HeaderName, Option<&str>)> {
        self.vary.iter().map(|(n, v)| (n, v.as_deref()))
    }

    /// Whether `other` is the same variant of the same resource (equal `Vary` selections): a store
    /// replaces it rather than keeping both.
    pub fn same_variant(&self, other: &CachedResponse) -> bool {
        self.vary == other.vary
    }

    /// Surrogate keys this response was tagged with.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(|t| &**t)
    }

    /// How long it is kept, once stale, for conditional revalidation when it has validators.
    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// Approximate memory footprint in bytes (body + header fields + bookkeeping).
    pub fn weight(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum();
        let vary: usize = self
            .vary
            .iter()
            .map(|(n, v)| n.as_str().len() + v.as_ref().map_or(0, String::len))
            .sum();
        let tags: usize = self.tags.iter().map(|t| t.len() + 16).sum();
        self.body.len() + headers + vary + tags + 256
    }

    /// How long a store should retain it (freshness + stale windows + revalidation keep).
    pub fn retain_for(&self) -> Duration {
        self.freshness.retain(self.keep, self.has_validator())
    }

    /// A copy that is stale from `at` on (a soft purge): its lifetime ends at `at`, or at once
    /// if it was received after `at`.
    pub(crate) fn stale_at(&self, at: SystemTime) -> Self {
        let mut copy = self.clone();
        copy.freshness.lifetime = self.freshness.lifetime.min(self.freshness.age(at));
        copy
    }

    pub(crate) fn has_validator(&self) -> bool {
        self.headers.contains_key(http::header::ETAG)
            || self.headers.contains_key(http::header::LAST_MODIFIED)
    }
}

/// Builds a [`CachedResponse`]; see [`CachedResponse::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct CachedResponseBuilder {
    entry: CachedResponse,
}

impl CachedResponseBuilder {
    /// When the request was sent. Defaults to the response time.
    pub fn request_time(mut self, time: SystemTime) -> Self {
        self.entry.request_time = time;
        self
    }

    /// The freshness lifetime. Defaults to zero (stale at once).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.entry.freshness.lifetime = lifetime;
        self
    }

    /// The age when received. Defaults to zero.
    pub fn initial_age(mut self, age: Duration) -> Self {
        self.entry.freshness.initial_age = age;
        self
    }

    /// The `stale-while-revalidate` window. Defaults to zero.
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.entry.freshness.stale_while_revalidate = window;
        self
    }

    /// The `stale-if-error` window. Defaults to zero.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.entry.freshness.stale_if_error = window;
        self
    }

    /// Never serve it stale. Defaults to `false`.
    pub fn must_revalidate(mut self, yes: bool) -> Self {
        self.entry.freshness.forbids_stale = yes;
        self
    }

    /// Revalidate on every use. Defaults to `false`.
    pub fn no_cache(mut self, yes: bool) -> Self {
        self.entry.freshness.no_cache = yes;
        self
    }

    /// Adds a `Vary`-selected request field and its normalised value (`None`: absent).
    pub fn add_vary(mut self, name: HeaderName, value: Option<String>) -> Self {
        self.entry.vary.push((name, value));
        self
    }

    /// Adds a surrogate key.
    pub fn add_tag(mut self, tag: impl Into<Box<str>>) -> Self {
        self.entry.tags.push(tag.into());
        self
    }

    /// How long it is kept, once stale, for revalidation. Defaults to zero.
    pub fn keep(mut self, keep: Duration) -> Self {
        self.entry.keep = keep;
        self
    }

    /// The entry.
    pub fn build(self) -> CachedResponse {
        self.entry
    }
}
