//! The push path's view of the rules (SPEC 7): each integration's routes,
//! enrichment and pipeline, and each channel's drop, silence and inhibit
//! rules, compiled once per instance and kept while they are current, and
//! the mapping-table lookups of `map` enrichment, cached likewise.
//!
//! An integration's rules are named by versions on its key lookup item (read
//! strongly consistent on every push), so a change applies at the next push;
//! a channel and its rules, and mapping rows, are kept for
//! `CHANNEL_CACHE_SECONDS`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{ApiError, ApiResult};
use crate::model::Integration;
use crate::rules::channel::ChannelRules;
use crate::rules::integration::{compile, MappingLookup, RuleList};
use crate::rules::routing::CompiledRoutes;
use crate::store::{now_ms, Store};

/// Rows cached per instance, at most this many (then the cache starts over).
const MAX_CACHED_ROWS: usize = 20_000;

use crate::app::{App, TableShape};
pub use crate::app::{
    ChannelCache, ChannelSetup, IntegrationCache, IntegrationSetup, MappingCache, RuleCaches,
};

/// The store and this instance's rule caches, as the shaping stages read them.
#[derive(Clone, Copy)]
pub struct Shaping<'a> {
    pub store: &'a Store,
    pub caches: &'a RuleCaches,
    /// How long a channel's settings and mapping rows may be served from memory.
    pub ttl: std::time::Duration,
}

impl<'a> Shaping<'a> {
    /// What the shaping stages read of a function's `App`.
    pub fn of(app: &'a App) -> Self {
        Shaping {
            store: &app.store,
            caches: &app.rule_caches,
            ttl: app.channel_cache_ttl,
        }
    }
}

/// An integration's compiled rules: nothing to read for a private
/// integration without enrichment or pipeline, else kept per version.
pub async fn integration_setup(
    app: Shaping<'_>,
    integration: &Integration,
) -> ApiResult<Arc<IntegrationSetup>> {
    if integration.routes_version.is_none() && integration.rules_version.is_none() {
        return Ok(Arc::default());
    }
    let version = format!(
        "{}/{}",
        integration.routes_version.as_deref().unwrap_or(""),
        integration.rules_version.as_deref().unwrap_or("")
    );
    if let Ok(cache) = app.caches.integrations.lock() {
        if let Some((cached, setup)) = cache.get(&integration.integration_id) {
            if *cached == version {
                return Ok(Arc::clone(setup));
            }
        }
    }
    let record = app
        .store
        .get_integration(&integration.integration_id)
        .await?
        .ok_or_else(|| ApiError::internal("integration record vanished"))?;
    let setup = Arc::new(IntegrationSetup {
        routes: record
            .routes
            .as_ref()
            .map(CompiledRoutes::compile)
            .transpose()?,
        enrichment: compile(RuleList::Enrichment, &record.enrichment)?,
        pipeline: compile(RuleList::Pipeline, &record.pipeline)?,
    });
    let read_version = format!(
        "{}/{}",
        record.routes_version.as_deref().unwrap_or(""),
        record.rules_version.as_deref().unwrap_or("")
    );
    if let Ok(mut cache) = app.caches.integrations.lock() {
        cache.insert(
            integration.integration_id.clone(),
            (read_version, Arc::clone(&setup)),
        );
    }
    Ok(setup)
}

/// A channel and its compiled rules, kept per instance for `channel_cache_ttl`:
/// they change rarely, and the push path should not pay a read every time.
pub async fn channel_setup(app: Shaping<'_>, channel_id: &str) -> ApiResult<Arc<ChannelSetup>> {
    if !app.ttl.is_zero() {
        if let Ok(cache) = app.caches.channels.lock() {
            if let Some((at, c)) = cache.get(channel_id) {
                if at.elapsed() < app.ttl {
                    return Ok(Arc::clone(c));
                }
            }
        }
    }
    let (channel, rules, escalation) = app
        .store
        .channel_with_rules(channel_id, now_ms() / 1000)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "channel_id: channel {channel_id} of this integration no longer exists"
            ))
        })?;
    // Rules stored were valid when written: one that no longer compiles
    // (a newer version's field) pages nobody rather than refusing pushes.
    let escalation = escalation
        .and_then(|rules| rules.compile().ok())
        .unwrap_or_default();
    let setup = Arc::new(ChannelSetup {
        channel,
        rules: ChannelRules::compile(&rules),
        escalation,
    });
    if let Ok(mut cache) = app.caches.channels.lock() {
        cache.insert(channel_id.to_string(), (Instant::now(), Arc::clone(&setup)));
    }
    Ok(setup)
}

/// `map` rules' lookups through the instance's cache.
pub struct CachedMappings<'a>(pub Shaping<'a>);

impl CachedMappings<'_> {
    fn fresh(&self, at: &Instant) -> bool {
        at.elapsed() < self.0.ttl
    }

    async fn table(&self, table_id: &str) -> ApiResult<Option<TableShape>> {
        if let Ok(cache) = self.0.caches.mappings.lock() {
            if let Some((at, known)) = cache.tables.get(table_id) {
                if self.fresh(at) {
                    return Ok(known.clone());
                }
            }
        }
        let known = self
            .0
            .store
            .get_mapping_table(table_id)
            .await?
            .map(|t| (t.source_labels, t.rows_version));
        if let Ok(mut cache) = self.0.caches.mappings.lock() {
            cache
                .tables
                .insert(table_id.to_string(), (Instant::now(), known.clone()));
        }
        Ok(known)
    }
}

impl MappingLookup for CachedMappings<'_> {
    async fn source_labels(&self, table_id: &str) -> ApiResult<Option<Vec<String>>> {
        Ok(self.table(table_id).await?.map(|(labels, _)| labels))
    }

    async fn lookup(
        &self,
        table_id: &str,
        values: &[&str],
    ) -> ApiResult<Option<BTreeMap<String, String>>> {
        let Some((_, version)) = self.table(table_id).await? else {
            return Ok(None);
        };
        let cache_key = (
            table_id.to_string(),
            version.clone(),
            crate::store::config::mapping::row_sk(values),
        );
        if let Ok(cache) = self.0.caches.mappings.lock() {
            if let Some((at, known)) = cache.rows.get(&cache_key) {
                if self.fresh(at) {
                    return Ok(known.clone());
                }
            }
        }
        let found = self
            .0
            .store
            .mapping_lookup(table_id, &version, values)
            .await?;
        if let Ok(mut cache) = self.0.caches.mappings.lock() {
            if cache.rows.len() >= MAX_CACHED_ROWS {
                cache.rows.clear();
            }
            cache
                .rows
                .insert(cache_key, (Instant::now(), found.clone()));
        }
        Ok(found)
    }
}
