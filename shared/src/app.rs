//! What a function builds once per cold start and shares across requests.

use std::time::Duration;

use crate::intake::shaping::{RuleCaches, Shaping};
use crate::store::{client_from_env, Store};

#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// How long a channel's settings may be served from this instance's memory.
    pub channel_cache_ttl: Duration,
    /// Which literal addresses a webhook may be saved with (SPEC 15).
    pub webhook_targets: crate::outbound::target::Targets,
    /// How old or early an SNS `Notification`'s `Timestamp` may be (SPEC 15).
    pub sns_timestamp_window: crate::intake::integrations::aws_cloudwatch::TimestampWindow,
    pub(crate) rule_caches: RuleCaches,
}

impl App {
    pub fn new(store: Store) -> Self {
        App {
            store,
            channel_cache_ttl: Duration::from_secs(0),
            webhook_targets: crate::outbound::target::Targets::Public,
            sns_timestamp_window: Default::default(),
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
        app.webhook_targets = crate::outbound::target::Targets::from_env();
        Ok(app)
    }

    /// The store and the rule caches, as the push path's shaping stages read them.
    pub(crate) fn shaping(&self) -> Shaping<'_> {
        Shaping {
            store: &self.store,
            caches: &self.rule_caches,
            ttl: self.channel_cache_ttl,
        }
    }
}
