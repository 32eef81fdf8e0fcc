//! [`DbLayer`], its builder and its [`DbHandle`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Once, RwLock};
use std::time::Duration;

use foldhash::fast::FixedState;
use tokio::time::Instant;
use tower_layer::Layer;

use super::DEFAULT_SLOW_STATEMENT;
use super::metrics::RouteMetrics;
use super::service::Db;
use super::summary::NPlusOneProfile;
use super::violation::Violation;
use crate::{ConfigError, RouteTable, ServerTiming, SkipRoutes, route_template};

/// Default time an N+1 warning of one (route, fingerprint) stays quiet after it was logged.
pub const DEFAULT_N_PLUS_ONE_COOLDOWN: Duration = Duration::from_secs(60);

/// (route, fingerprint) pairs remembered for the cooldown before the memory starts over.
const MAX_COOLDOWN_KEYS: usize = 4096;
/// Violations a [`DbHandle`] keeps.
const MAX_VIOLATIONS: usize = 1024;

/// What a [`Db`] service shares with its clones and with the [`DbHandle`].
pub(crate) struct Shared {
    pub(crate) profile: NPlusOneProfile,
    pub(crate) cooldown: Duration,
    pub(crate) server_timing: ServerTiming,
    pub(crate) slow: Option<Duration>,
    pub(crate) route_slow: HashMap<Box<str>, Option<Duration>>,
    pub(crate) max_queries: Option<u32>,
    pub(crate) metrics: bool,
    pub(crate) table: Option<RouteTable>,
    pub(crate) skip: SkipRoutes,
    pub(crate) routes: RwLock<HashMap<Box<str>, Arc<RouteEntry>, FixedState>>,
    pub(crate) warned: Mutex<HashMap<(Arc<str>, u64), Instant, FixedState>>,
    pub(crate) violations: Mutex<Vec<Violation>>,
    pub(crate) checked: Once,
}

/// Per-route state, made once per route template.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    pub(crate) label: Arc<str>,
    pub(crate) slow: Option<Duration>,
    pub(crate) metrics: Option<RouteMetrics>,
}

impl Shared {
    pub(crate) fn route(&self, template: &str) -> Arc<RouteEntry> {
        let read = self.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = read.get(template) {
            return e.clone();
        }
        drop(read);
        let mut write = self.routes.write().unwrap_or_else(|e| e.into_inner());
        write
            .entry(template.into())
            .or_insert_with(|| {
                Arc::new(RouteEntry {
                    label: template.into(),
                    slow: self.route_slow.get(template).copied().unwrap_or(self.slow),
                    metrics: self.metrics.then(|| RouteMetrics::new(template)),
                })
            })
            .clone()
    }

    /// Whether the request's route template (the router's, else the table's) is skipped.
    pub(crate) fn skipped<B>(&self, req: &http::Request<B>) -> bool {
        if self.skip.is_empty() {
            return false;
        }
        let ext = req.extensions();
        route_template(ext)
            .or_else(|| self.table.as_ref()?.resolve(ext, req.uri().path()))
            .is_some_and(|t| self.skip.contains(t))
    }

    /// Whether an N+1 warning for this (route, fingerprint) may be logged now.
    pub(crate) fn may_warn(&self, route: &Arc<str>, fingerprint: u64) -> bool {
        let now = Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = warned.get(&(route.clone(), fingerprint))
            && now.saturating_duration_since(*last) < self.cooldown
        {
            return false;
        }
        if warned.len() >= MAX_COOLDOWN_KEYS {
            warned.clear();
        }
        warned.insert((route.clone(), fingerprint), now);
        true
    }

    pub(crate) fn violation(&self, v: Violation) {
        let mut list = self.violations.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() < MAX_VIOLATIONS {
            list.push(v);
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("profile", &self.profile)
            .field("cooldown", &self.cooldown)
            .field("server_timing", &self.server_timing)
            .field("slow", &self.slow)
            .field("max_queries", &self.max_queries)
            .finish_non_exhaustive()
    }
}

/// Attributes database statements to the request that ran them: opens a request span carrying a
/// collector that [`DbCapture`](super::DbCapture) fills, then reports per request (see the
/// [module docs](super)).
///
/// Clones share the per-route state, the N+1 cooldowns and the violations.
#[must_use]
#[derive(Clone, Debug)]
pub struct DbLayer {
    pub(crate) shared: Arc<Shared>,
}

impl Default for DbLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl DbLayer {
    /// The defaults: production N+1 profile, 60 s cooldown, slow statements from 500 ms,
    /// metrics on, no `Server-Timing`, no query cap.
    pub fn new() -> Self {
        DbLayerBuilder::default()
            .build()
            .unwrap_or_else(|_| unreachable!("defaults are valid"))
    }

    /// A default layer and the handle that reads its violations.
    pub fn pair() -> (Self, DbHandle) {
        let layer = Self::new();
        let handle = layer.handle();
        (layer, handle)
    }

    /// Starts a builder.
    pub fn builder() -> DbLayerBuilder {
        DbLayerBuilder::default()
    }

    /// A handle on this layer's violations (N+1 findings, requests over the query cap).
    pub fn handle(&self) -> DbHandle {
        DbHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for DbLayer {
    type Service = Db<S>;

    fn layer(&self, inner: S) -> Db<S> {
        Db {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Builds a [`DbLayer`].
#[must_use]
#[derive(Debug, Clone)]
pub struct DbLayerBuilder {
    profile: NPlusOneProfile,
    cooldown: Duration,
    server_timing: ServerTiming,
    slow: Option<Duration>,
    route_slow: HashMap<Box<str>, Option<Duration>>,
    max_queries: Option<u32>,
    metrics: bool,
    table: Option<RouteTable>,
    skip: SkipRoutes,
    bad_route: Option<String>,
}

impl Default for DbLayerBuilder {
    fn default() -> Self {
        Self {
            profile: NPlusOneProfile::production(),
            cooldown: DEFAULT_N_PLUS_ONE_COOLDOWN,
            server_timing: ServerTiming::Off,
            slow: Some(DEFAULT_SLOW_STATEMENT),
            route_slow: HashMap::new(),
            max_queries: None,
            metrics: true,
            table: None,
            skip: SkipRoutes::default(),
            bad_route: None,
        }
    }
}

impl DbLayerBuilder {
    /// When repeated statements are an N+1. Defaults to [`NPlusOneProfile::production`]; use
    /// [`NPlusOneProfile::strict`] in development and tests.
    pub fn n_plus_one(mut self, profile: NPlusOneProfile) -> Self {
        self.profile = profile;
        self
    }

    /// How long an N+1 warning of one (route, fingerprint) stays quiet after it was logged.
    /// Defaults to [`DEFAULT_N_PLUS_ONE_COOLDOWN`]. The metric counts every finding.
    pub fn n_plus_one_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// When responses get `Server-Timing: db;dur=…;desc="N queries"`. Defaults to off.
    pub fn server_timing(mut self, policy: ServerTiming) -> Self {
        self.server_timing = policy;
        self
    }

    /// Statements at least this long are logged (target `perf_middleware::db`). Defaults to
    /// [`DEFAULT_SLOW_STATEMENT`].
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow = Some(threshold);
        self
    }

    /// No slow-statement log (per-route thresholds still apply).
    pub fn no_slow_log(mut self) -> Self {
        self.slow = None;
        self
    }

    /// The slow-statement threshold of one route template (`/users/{id}`).
    pub fn route_slow_threshold(mut self, route: &str, threshold: Duration) -> Self {
        self.check_route(route);
        self.route_slow.insert(route.into(), Some(threshold));
        self
    }

    /// No slow-statement log on one route template.
    pub fn route_no_slow_log(mut self, route: &str) -> Self {
        self.check_route(route);
        self.route_slow.insert(route.into(), None);
        self
    }

    /// Leaves requests to this route template untouched: no request span, no summary, no
    /// `Server-Timing`, no per-route metrics (health checks). Their statements are not given to
    /// any request, so they count as orphans and feed only the process-wide metrics. Call it once
    /// per route; a template must start with `/`.
    pub fn skip_route(mut self, route: &str) -> Self {
        self.check_route(route);
        self.skip.insert(route);
        self
    }

    fn check_route(&mut self, route: &str) {
        if !route.starts_with('/') && self.bad_route.is_none() {
            self.bad_route = Some(route.to_owned());
        }
    }

    /// A request that runs more statements than this is a violation (see [`DbHandle`]); for
    /// tests. Defaults to no cap.
    pub fn max_queries(mut self, max: u32) -> Self {
        self.max_queries = Some(max);
        self
    }

    /// Whether per-route metrics are recorded. Defaults to on.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Routes of requests that no router marked, matched against this table (place the layer
    /// outside the router). Requests matching nothing are labelled `unmatched`.
    pub fn route_table(mut self, table: RouteTable) -> Self {
        self.table = Some(table);
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRoute`] when a per-route setting names something that does not
    /// start with `/`.
    pub fn build(self) -> Result<DbLayer, ConfigError> {
        if let Some(route) = self.bad_route {
            return Err(ConfigError::InvalidRoute { route });
        }
        if self.metrics {
            super::metrics::describe();
        }
        Ok(DbLayer {
            shared: Arc::new(Shared {
                profile: self.profile,
                cooldown: self.cooldown,
                server_timing: self.server_timing,
                slow: self.slow,
                route_slow: self.route_slow,
                max_queries: self.max_queries,
                metrics: self.metrics,
                table: self.table,
                skip: self.skip,
                routes: RwLock::default(),
                warned: Mutex::default(),
                violations: Mutex::default(),
                checked: Once::new(),
            }),
        })
    }
}

/// Reads the violations of a [`DbLayer`]: N+1 findings and requests over
/// [`max_queries`](DbLayerBuilder::max_queries). A test fails on any with
/// [`assert_clean`](DbHandle::assert_clean).
#[derive(Clone, Debug)]
pub struct DbHandle {
    shared: Arc<Shared>,
}

impl DbHandle {
    /// The violations so far (the first 1024).
    pub fn violations(&self) -> Vec<Violation> {
        self.shared
            .violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the violations so far.
    pub fn clear(&self) {
        self.shared
            .violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Panics, listing them, when there were violations.
    #[track_caller]
    pub fn assert_clean(&self) {
        let v = self.violations();
        if !v.is_empty() {
            let list: Vec<String> = v.iter().map(ToString::to_string).collect();
            panic!("database violations:\n  {}", list.join("\n  "));
        }
    }
}
