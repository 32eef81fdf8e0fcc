//! [`Shared`]: what every request, clone and handle of one layer shares, and the layer's [`Clock`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::HeaderName;
use perf_middleware::SkipRoutes;
use perf_middleware::server_timing::ServerTiming;

use crate::flow::coalesce::Inflight;
use crate::metrics::Counters;
use crate::rfc::conditional::EtagMode;
use crate::rfc::policy::Policy;
use crate::store::CacheStore;

/// The layer's clock: wall time that advances with Tokio's (pausable) clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall: SystemTime,
    mono: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.wall + self.mono.elapsed()
    }
}

/// State shared by every clone of the layer, its services and handles.
pub(crate) struct Shared {
    pub(crate) policy: Policy,
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) inflight: Arc<Inflight>,
    pub(crate) refreshing: Mutex<HashSet<String>>,
    pub(crate) clock: Clock,
    pub(crate) etag: EtagMode,
    pub(crate) tag_header: Option<HeaderName>,
    pub(crate) status_name: String,
    pub(crate) honor_max_stale: bool,
    pub(crate) honor_request_directives: bool,
    pub(crate) coalesce_timeout: Duration,
    pub(crate) server_timing: ServerTiming,
    pub(crate) stale_on_disconnect: Option<Duration>,
    pub(crate) counters: Counters,
    /// Routes passed straight to the inner service (`skip_route`).
    pub(crate) skip: SkipRoutes,
}
