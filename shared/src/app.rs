//! What a function builds once per cold start and shares across requests:
//! the store, settings read from the environment, and the push path's caches
//! of compiled rules (filled by `intake::shaping`).

use std::time::Duration;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::domain::delivery::Targets;
use crate::domain::sns::TimestampWindow;
use crate::engine::escalation::CompiledEscalation;
use crate::model::Channel;
use crate::rules::channel::ChannelRules;
use crate::rules::integration::CompiledRules;
use crate::rules::routing::CompiledRoutes;
use crate::store::{client_from_env, Store};

#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// How long a channel's settings may be served from this instance's memory.
    pub channel_cache_ttl: Duration,
    /// Which literal addresses a webhook may be saved with (SPEC 15).
    pub webhook_targets: Targets,
    /// How old or early an SNS `Notification`'s `Timestamp` may be (SPEC 15).
    pub sns_timestamp_window: TimestampWindow,
    /// `PUBLIC_BASE_URL`, when set: the base of the links the API hands out
    /// (a schedule's `ical_url`); else they are built from the request's host.
    pub public_base_url: Option<String>,
    pub(crate) rule_caches: RuleCaches,
}

impl App {
    pub fn new(store: Store) -> Self {
        App {
            store,
            channel_cache_ttl: Duration::from_secs(0),
            webhook_targets: Targets::Public,
            sns_timestamp_window: Default::default(),
            public_base_url: None,
            rule_caches: RuleCaches::default(),
        }
    }

    /// Reads `TABLE_NAME` (required), `CHANNEL_CACHE_SECONDS` (default 10)
    /// and `ALLOW_PRIVATE_WEBHOOK_TARGETS` (default false).
    pub async fn from_env() -> Result<Self, String> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set".to_string())?;
        let mut store = Store::new(client_from_env().await, table);
        if let Some(days) = std::env::var("EVENT_RETENTION_DAYS")
            .ok()
            .and_then(|d| d.parse::<i64>().ok())
        {
            store.event_retention_secs = days * 86_400;
        }
        let ttl = std::env::var("CHANNEL_CACHE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let mut app = App::new(store);
        app.channel_cache_ttl = Duration::from_secs(ttl);
        app.webhook_targets = Targets::from_env();
        app.public_base_url = std::env::var("PUBLIC_BASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        Ok(app)
    }
}

/// A channel with its rules compiled.
pub struct ChannelSetup {
    pub channel: Channel,
    pub rules: ChannelRules,
    pub escalation: CompiledEscalation,
}

/// An integration's routes (shared integrations), enrichment and pipeline, compiled.
#[derive(Default)]
pub struct IntegrationSetup {
    pub routes: Option<CompiledRoutes>,
    pub enrichment: CompiledRules,
    pub pipeline: CompiledRules,
}

pub type ChannelCache = Arc<Mutex<HashMap<String, (Instant, Arc<ChannelSetup>)>>>;
/// Per integration: the versions compiled from, and what was compiled.
pub type IntegrationCache = Arc<Mutex<HashMap<String, (String, Arc<IntegrationSetup>)>>>;

/// A mapping table as lookups need it: its source labels and rows version.
pub(crate) type TableShape = (Vec<String>, String);
/// (table id, rows version, row key).
pub(crate) type RowKey = (String, String, String);

/// What the push path keeps of the rules between requests, per instance.
#[derive(Clone, Default)]
pub struct RuleCaches {
    pub(crate) channels: ChannelCache,
    pub(crate) integrations: IntegrationCache,
    pub(crate) mappings: Arc<Mutex<MappingCache>>,
}

#[derive(Default)]
pub struct MappingCache {
    /// table id → (read at, its shape, or none when gone).
    pub(crate) tables: HashMap<String, (Instant, Option<TableShape>)>,
    /// row → (read at, its result labels, or none when there is no such row).
    pub(crate) rows: HashMap<RowKey, (Instant, Option<BTreeMap<String, String>>)>,
}
