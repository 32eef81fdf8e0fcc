//! [`PerfPage`], its builder and the [`Card`] providers.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use super::protection::Protection;
use super::store::Stores;
use crate::ConfigError;

/// A card the page shows: a provider the app registers, asked for a JSON value on each poll
/// (e.g. the cache's statistics, the budget report, the query capture's top fingerprints). Any
/// `Fn() -> serde_json::Value + Send + Sync` is one.
///
/// The page draws objects as key/value tables and arrays of objects as tables. A card that
/// wants a per-route column in the routes table returns `"routes": {"/template": {"hit_ratio":
/// 0.8}}`, and the routes table shows `hit_ratio` for those routes.
pub trait Card: Send + Sync + 'static {
    /// The card's current value.
    fn snapshot(&self) -> serde_json::Value;
}

impl<F> Card for F
where
    F: Fn() -> serde_json::Value + Send + Sync + 'static,
{
    fn snapshot(&self) -> serde_json::Value {
        self()
    }
}

/// The live `/perf` page: its stores (which [`PerfLayerBuilder::page`](crate::PerfLayerBuilder::page)
/// records into), its cards and its protection. Clones share everything. See the
/// [module docs](super).
#[derive(Clone)]
pub struct PerfPage {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) stores: Arc<Stores>,
    pub(crate) protection: Protection,
    pub(crate) cards: Vec<(Box<str>, Box<dyn Card>)>,
    pub(crate) trace_url: Option<Box<str>>,
    pub(crate) dashboard_url: Option<Box<str>>,
    pub(crate) path: Box<str>,
}

impl fmt::Debug for PerfPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cards: Vec<_> = self.inner.cards.iter().map(|(n, _)| n).collect();
        f.debug_struct("PerfPage")
            .field("path", &self.inner.path)
            .field("protection", &self.inner.protection)
            .field("cards", &cards)
            .finish_non_exhaustive()
    }
}

/// How much the page's stores hold (see *Memory ceiling* in the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Footprint {
    /// Route rows with their own ring (at most [`MAX_ROUTES`](super::MAX_ROUTES)).
    pub routes: usize,
    /// Slow requests held (at most [`SLOW_RING`](super::SLOW_RING)).
    pub slow_requests: usize,
    /// Slowest-per-route entries held (at most [`WORST`](super::WORST) per row).
    pub worst_requests: usize,
    /// Statement fingerprints in the queries card's top list (at most `TOP_FINGERPRINTS`;
    /// always 0 without the `db` feature).
    pub fingerprints: usize,
    /// N+1 detections held (at most `N_PLUS_ONE_RING`; always 0 without the `db` feature).
    pub n_plus_one: usize,
}

impl PerfPage {
    /// Starts a builder; the protection is required.
    pub fn builder(protection: Protection) -> PerfPageBuilder {
        PerfPageBuilder {
            protection,
            cards: Vec::new(),
            trace_url: None,
            dashboard_url: None,
            path: "/perf".into(),
        }
    }

    /// The page's path, with `?token=…` when protected by a token: print it once at start.
    pub fn url_path(&self) -> String {
        match self.inner.protection.token_str() {
            Some(t) => format!("{}?token={t}", self.inner.path),
            None => self.inner.path.to_string(),
        }
    }

    /// The path the page is served at (default `/perf`).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The dashboard link the header shows ([`PerfPageBuilder::dashboard_url`]), if set: print it
    /// next to the page's URL at start.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.inner.dashboard_url.as_deref()
    }

    /// What the stores hold now.
    pub fn footprint(&self) -> Footprint {
        let rows = self.inner.stores.rows();
        #[cfg(feature = "db")]
        let (fingerprints, n_plus_one) = self.inner.stores.queries.len();
        #[cfg(not(feature = "db"))]
        let (fingerprints, n_plus_one) = (0, 0);
        Footprint {
            fingerprints,
            n_plus_one,
            routes: self.inner.stores.route_count(),
            slow_requests: self.inner.stores.slow_len(),
            worst_requests: rows
                .iter()
                .map(|r| super::store::lock(&r.worst).len())
                .sum(),
        }
    }
}

/// Builder for [`PerfPage`]; every setter consumes and returns the builder.
#[must_use]
pub struct PerfPageBuilder {
    protection: Protection,
    cards: Vec<(Box<str>, Box<dyn Card>)>,
    trace_url: Option<String>,
    dashboard_url: Option<String>,
    path: String,
}

impl fmt::Debug for PerfPageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfPageBuilder")
            .field("protection", &self.protection)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PerfPageBuilder {
    /// Adds a card, shown in the order added (a second card of the same name replaces the first).
    pub fn card(mut self, name: &str, card: impl Card) -> Self {
        self.cards.retain(|(n, _)| &**n != name);
        self.cards.push((name.into(), Box::new(card)));
        self
    }

    /// The trace UI's URL for one trace, with `{trace_id}` where the 32-hex-digit id goes, e.g.
    /// `http://localhost:16686/trace/{trace_id}` (Jaeger). Trace ids are links when set; without
    /// `{trace_id}` the id is appended.
    pub fn trace_url(mut self, template: &str) -> Self {
        self.trace_url = Some(template.into());
        self
    }

    /// A link to a fuller dashboard (e.g. the shipped Grafana dashboard), shown in the header.
    pub fn dashboard_url(mut self, url: &str) -> Self {
        self.dashboard_url = Some(url.into());
        self
    }

    /// The path the page's router serves (default `/perf`): the page at it, its data and assets
    /// under it.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.trim_end_matches('/').into();
        self
    }

    /// Validates the configuration, generates the token of [`Protection::token`], and builds
    /// the page.
    ///
    /// # Errors
    ///
    /// A path not starting with `/`; no randomness for the token.
    pub fn build(self) -> Result<PerfPage, ConfigError> {
        if !self.path.starts_with('/') {
            return Err(ConfigError::InvalidRoute { route: self.path });
        }
        Ok(PerfPage {
            inner: Arc::new(Inner {
                stores: Arc::new(Stores::new(Instant::now(), &self.path)),
                protection: self.protection.resolve()?,
                cards: self.cards,
                trace_url: self.trace_url.map(Into::into),
                dashboard_url: self.dashboard_url.map(Into::into),
                path: self.path.into(),
            }),
        })
    }
}
