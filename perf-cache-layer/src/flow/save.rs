//! Writing to the store from the request path, refused when an invalidation or purge happened
//! after the request started (see [`crate::flow::generation`]).

use std::sync::Arc;

use crate::flow::RequestCtx;
use crate::flow::coalesce::Leader;
use crate::shared::Shared;
use crate::store::CachedResponse;

/// Stores the entry and hands it to coalesced waiters; `false` when an invalidation since the
/// request started refused it (the waiters then make their own calls).
pub(crate) async fn save(
    shared: &Shared,
    ctx: &RequestCtx,
    entry: Arc<CachedResponse>,
    leader: Option<Leader>,
) -> bool {
    let stored = put(shared, ctx, entry.clone()).await;
    if let Some(leader) = leader {
        leader.publish(stored.then_some(entry));
    }
    stored
}

/// Stores `entry` under the request's key unless the key or one of the entry's tags was
/// invalidated after the request started. The check is repeated after the write, so an
/// invalidation that lands between the check and the write removes what was written.
pub(crate) async fn put(shared: &Shared, ctx: &RequestCtx, entry: Arc<CachedResponse>) -> bool {
    let generations = &shared.inflight.generations;
    if !generations.allows(ctx.started, &ctx.key, &entry.tags) {
        return false;
    }
    let tags = entry.tags.clone();
    if let Err(err) = shared.store.put(&ctx.key, entry).await {
        tracing::warn!(%err, "cache store failed");
    }
    if generations.allows(ctx.started, &ctx.key, &tags) {
        return true;
    }
    if let Err(err) = shared.store.remove(&ctx.key).await {
        tracing::warn!(%err, "cache invalidation failed");
    }
    false
}
