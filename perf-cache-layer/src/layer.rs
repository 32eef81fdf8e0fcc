//! [`CacheLayer`], its builder, and the [`CacheHandle`] for purging.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderName;
use perf_middleware::SkipRoutes;
use perf_middleware::server_timing::ServerTiming;
use tower_layer::Layer;

use crate::handle::CacheHandle;
use crate::metrics::Counters;
use crate::rfc::conditional::EtagMode;
use crate::rfc::policy::{Policy, SetCookiePolicy};
use crate::service::Cache;
use crate::shared::{Clock, Shared};
use crate::store::{CacheStore, MemoryStore};

/// A Tower layer that adds an RFC 9111 shared HTTP cache in front of a service.
///
/// Clones share one store, one coalescing table and one configuration. See the
/// [crate docs](crate) for the behaviour and an example.
#[derive(Clone)]
#[must_use]
pub struct CacheLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer")
            .field("status_name", &self.shared.status_name)
            .finish_non_exhaustive()
    }
}

impl Default for CacheLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheLayer {
    /// A cache with the defaults listed on [`CacheLayerBuilder`].
    pub fn new() -> Self {
        Self::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("the default configuration is valid"))
    }

    /// A builder.
    pub fn builder() -> CacheLayerBuilder {
        CacheLayerBuilder::default()
    }

    /// A handle for purging this layer's store.
    pub fn handle(&self) -> CacheHandle {
        CacheHandle {
            shared: self.shared.clone(),
        }
    }

    /// A cache with the defaults and a handle for purging it.
    ///
    /// For a configured layer, use [`CacheLayerBuilder::build_pair`].
    pub fn pair() -> (Self, CacheHandle) {
        let layer = Self::new();
        let handle = layer.handle();
        (layer, handle)
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache::new(inner, self.shared.clone())
    }
}

/// A configuration mistake reported by [`CacheLayerBuilder::build`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `Cache-Status` name is not an RFC 8941 token such as `perf-cache`.
    #[non_exhaustive]
    StatusName {
        /// The name given.
        name: String,
    },
    /// The heuristic fraction is not in `(0, 1]`.
    #[non_exhaustive]
    HeuristicFraction {
        /// The fraction given.
        fraction: f64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StatusName { name } => write!(
                f,
                "invalid cache status name {name:?}: use a token like \"perf-cache\""
            ),
            Self::HeuristicFraction { fraction } => write!(
                f,
                "invalid heuristic fraction {fraction}: use a value in (0, 1], e.g. 0.1"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Builder for [`CacheLayer`].
///
/// Defaults: a 64 MiB [`MemoryStore`] with 1 MiB objects; no heuristic freshness and no default TTL
/// (only responses with explicit freshness or validators are reused); `Set-Cookie` responses not
/// stored; strong ETags generated for stored 200s; tags read from `Surrogate-Key`; targeted fields
/// `CDN-Cache-Control` then `Surrogate-Control`; client `max-stale` ignored; client `no-cache` and
/// `max-age` honoured; coalesced waiters give up after 10 s; stale entries with validators kept 10
/// minutes for revalidation; `Cache-Status` name `perf-cache`; no `Server-Timing` entry.
#[must_use]
pub struct CacheLayerBuilder {
    store: Arc<dyn CacheStore>,
    policy: Policy,
    etag: EtagMode,
    tag_header: Option<HeaderName>,
    status_name: String,
    honor_max_stale: bool,
    honor_request_directives: bool,
    coalesce_timeout: Duration,
    server_timing: ServerTiming,
    stale_on_disconnect: Option<Duration>,
    skip: SkipRoutes,
}

impl fmt::Debug for CacheLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayerBuilder")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for CacheLayerBuilder {
    fn default() -> Self {
        Self {
            store: Arc::new(MemoryStore::default()),
            policy: Policy {
                heuristic: None,
                heuristic_max: Duration::from_secs(86_400),
                default_ttl: None,
                set_cookie: SetCookiePolicy::Bypass,
                targeted: vec![
                    HeaderName::from_static("cdn-cache-control"),
                    HeaderName::from_static("surrogate-control"),
                ],
                keep: Duration::from_secs(600),
            },
            etag: EtagMode::Strong,
            tag_header: Some(HeaderName::from_static("surrogate-key")),
            status_name: "perf-cache".to_owned(),
            honor_max_stale: false,
            honor_request_directives: true,
            coalesce_timeout: Duration::from_secs(10),
            server_timing: ServerTiming::Off,
            stale_on_disconnect: None,
            skip: SkipRoutes::default(),
        }
    }
}

impl CacheLayerBuilder {
    /// The store. Defaults to [`MemoryStore::default`].
    pub fn store(mut self, store: impl CacheStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Heuristic freshness (RFC 9111 §4.2.2): this fraction of `Date - Last-Modified`, for
    /// heuristically cacheable statuses without explicit freshness. Off by default.
    pub fn heuristic(mut self, fraction: f64) -> Self {
        self.policy.heuristic = Some(fraction);
        self
    }

    /// Cap on heuristic lifetimes. Defaults to one day.
    pub fn heuristic_max(mut self, max: Duration) -> Self {
        self.policy.heuristic_max = max;
        self
    }

    /// Lifetime for heuristically cacheable responses that carry no freshness information at all
    /// (handlers that send no `Cache-Control`). Opt-in; use it per route with `route_layer`.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.policy.default_ttl = Some(ttl);
        self
    }

    /// What to do with `Set-Cookie` responses. Defaults to [`SetCookiePolicy::Bypass`].
    pub fn set_cookie(mut self, policy: SetCookiePolicy) -> Self {
        self.policy.set_cookie = policy;
        self
    }

    /// Targeted cache-control fields (RFC 9213), in precedence order; the first present replaces
    /// `Cache-Control` for this cache. Defaults to `CDN-Cache-Control`, `Surrogate-Control`.
    pub fn targeted_fields(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.policy.targeted = names.into_iter().collect();
        self
    }

    /// How long a stale entry that has validators is kept for conditional revalidation. Defaults to
    /// 10 minutes.
    pub fn keep(mut self, keep: Duration) -> Self {
        self.policy.keep = keep;
        self
    }

    /// ETag generation for stored 200 responses without one. Defaults to [`EtagMode::Strong`].
    pub fn etag(mut self, mode: EtagMode) -> Self {
        self.etag = mode;
        self
    }

    /// Response field listing space-separated tags (surrogate keys); removed before the client sees
    /// it. `None` disables tagging. Defaults to `Surrogate-Key`.
    pub fn tag_header(mut self, name: Option<HeaderName>) -> Self {
        self.tag_header = name;
        self
    }

    /// The cache's name in `Cache-Status`. Defaults to `perf-cache`.
    pub fn status_name(mut self, name: impl Into<String>) -> Self {
        self.status_name = name.into();
        self
    }

    /// Whether a client's `max-stale` may make stale responses reusable. Off by default: in a
    /// server-side cache, clients should not be able to resurrect stale content.
    pub fn honor_max_stale(mut self, honor: bool) -> Self {
        self.honor_max_stale = honor;
        self
    }

    /// Whether a client's `no-cache`, `max-age` and `min-fresh` force revalidation. On by default.
    pub fn honor_request_directives(mut self, honor: bool) -> Self {
        self.honor_request_directives = honor;
        self
    }

    /// How long a coalesced request waits for the in-flight one before making its own call.
    /// Defaults to 10 s.
    pub fn coalesce_timeout(mut self, timeout: Duration) -> Self {
        self.coalesce_timeout = timeout;
        self
    }

    /// When to append a `Server-Timing` entry naming the outcome (`cache;desc="hit"`), with the
    /// family's [`ServerTiming`] switch. Defaults to [`ServerTiming::Off`]: neither RFC 9111 nor
    /// RFC 9211 needs it, and timings can reveal infrastructure details.
    pub fn server_timing(mut self, when: ServerTiming) -> Self {
        self.server_timing = when;
        self
    }

    /// Passes requests to this route template straight to the inner service: no lookup, no
    /// coalescing, no store, no invalidation, no `Cache-Status` or `Server-Timing` (health
    /// checks, live endpoints). Call it once per route. The route is the template a router
    /// recorded, so place the layer inside the router or behind a
    /// [`MatchRouteLayer`](perf_middleware::MatchRouteLayer).
    pub fn skip_route(mut self, route: &str) -> Self {
        self.skip.insert(route);
        self
    }

    /// When the inner service fails with an error (not an error *response*) while revalidating,
    /// serve the stale entry if it is at most `max` stale and stale reuse is not forbidden
    /// (RFC 9111 §4.2.4, "disconnected" operation). Off by default; reverse proxies enable it.
    pub fn stale_on_disconnect(mut self, max: Duration) -> Self {
        self.stale_on_disconnect = Some(max);
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the status name is not a token or the heuristic fraction is out of range.
    pub fn build(self) -> Result<CacheLayer, ConfigError> {
        let token = |s: &str| {
            s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '*')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
        };
        if !token(&self.status_name) {
            return Err(ConfigError::StatusName {
                name: self.status_name,
            });
        }
        if let Some(f) = self.policy.heuristic
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(ConfigError::HeuristicFraction { fraction: f });
        }
        crate::metrics::describe();
        let shared = Shared {
            policy: self.policy,
            store: self.store,
            inflight: Arc::default(),
            refreshing: Mutex::default(),
            clock: Clock::new(),
            etag: self.etag,
            tag_header: self.tag_header,
            status_name: self.status_name,
            honor_max_stale: self.honor_max_stale,
            honor_request_directives: self.honor_request_directives,
            coalesce_timeout: self.coalesce_timeout,
            server_timing: self.server_timing,
            stale_on_disconnect: self.stale_on_disconnect,
            counters: Counters::default(),
            skip: self.skip,
        };
        Ok(CacheLayer {
            shared: Arc::new(shared),
        })
    }

    /// Builds the layer and a handle for purging it.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_pair(self) -> Result<(CacheLayer, CacheHandle), ConfigError> {
        let layer = self.build()?;
        let handle = layer.handle();
        Ok((layer, handle))
    }
}
