//! The DynamoDB store: one table, conditional writes and transactions. The
//! engine decides; this module only reads state, hands it to the engine and
//! writes the answer, retrying with fresh state when a condition fails.
//!
//! By use case, over one thin layer ([`db`]: metering, paging, conditional
//! puts, transactions): [`alerts`] (the push path), [`incidents`] (reads,
//! a person's actions, the timeline), [`config`] (channels, integrations,
//! app keys, rules, mapping tables), [`deliveries`] (webhooks and their
//! history), [`ratelimit`]; [`items`] holds the item codecs, [`schema`] the
//! table definition.
//!
//! Table layout (pk / sk, all strings):
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | alert head (live state of `(channel, alert_key)`) | `AK#{channel}#{alert_key}` | `HEAD` |
//! | incident | `INC#{incident}` | `INCIDENT` |
//! | alert record (membership, the alert's first event and its opening's timeline entry; snapshot once superseded) | `INC#{incident}` | `ALERT#{alert}` |
//! | record of an alert in no incident (silenced, inhibited) | `AK#{channel}#{alert_key}` | `ALERT#{alert}` |
//! | stored event after the first (TTL) | `EV#{alert}` | `{event_time_ms:015}#{sequence:010}` |
//! | inhibition source of a rule, by its `equals` values (TTL; alerts/inhibition.rs) | `INH#{channel}#{rule}#{hash}` | `{alert_key}` |
//! | merge group → open incident | `GRP#{channel}#{group}` | `GROUP` |
//! | channels a key fired into via a shared integration (TTL) | `RT#{integration}#{alert_key}` | `ROUTE` |
//! | channel | `CH#{channel}` | `CHANNEL` |
//! | integration | `INT#{integration}` | `INTEGRATION` |
//! | integration key (hash) → integration | `IKEY#{sha256(key)}` | `IKEY` |
//! | app key (hash) | `APPKEY#{sha256(key)}` | `APPKEY` |
//! | app key id → hash, name | `APPKEYID#{id}` | `APPKEYID` |
//! | channel rule (drop, silence, inhibit) | `CH#{channel}` | `RULE#{kind}#{rule}` |
//! | mapping table | `MAPT#{table}` | `TABLE` |
//! | on-call member (config/members.rs) | `MEM#{member}` | `MEMBER` |
//! | schedule, its feed token hashed (config/schedules.rs) | `SCHED#{schedule}` | `SCHEDULE` |
//! | mapping row (per upload version) | `MAPR#{table}#{version}` | source values joined by U+001F |
//! | timeline entry (incidents/timeline.rs) | `INC#{incident}` | `TL#{at_ms:015}#{n:02}#{entry}` |
//! | flapping state of `(channel, alert_key)` (TTL) | `FLAP#{channel}#{alert_key}` | `FLAP` |
//! | webhook (deliveries.rs; one partition, read strongly per notify batch) | `WEBHOOKS` | `WH#{webhook}` |
//! | delivery (TTL 7 days) or queued resend | `DLV#{webhook}` | `D#{delivery}` / `R#{delivery}` |
//! | delivery waiting in its lane (retries.rs) | `DLV#{webhook}` | `Q#{incident}#{sequence:0>40}#{delivery}` |
//! | lane marker, due for its next attempt | `DLV#{webhook}` | `L#{incident}` |
//! | a channel's escalation rules (escalations.rs) | `CH#{channel}` | `ESCALATION` |
//! | notification of a member by a level | `INC#{incident}` | `NOTIF#{at_ms:015}#{n:03}#{member}#{via}` |
//! | ack link signing key (config/ack_secret.rs) | `CONFIG` | `ACK_LINK_SECRET` |
//!
//! `gsi1` (gsi1pk, gsi1sk): incidents by `INC#{channel}#{status}`, alert
//! records by `ALERT#{alert}` (only those whose id does not name their
//! incident: ids::new_alert_id), channels by `CHANNELS`, integrations by
//! `INTEGRATIONS`, app keys by `APPKEYS`, members by `MEMBERS`, schedules by `SCHEDULES`,
//! deliveries newest first by `DLV#{webhook}`.
//! `gsi2` (gsi2pk, gsi2sk): incidents by `INC#*#{status}` across channels.
//! `gsi3`: no longer written or read (inhibition sources are items of their
//! own, see alerts/inhibition.rs); still declared, since one stack update may
//! create or delete only one index and this release creates gsi4.
//! `gsi4` (gsi4pk, gsi4sk): the due index, sparse, keys only: what waits for
//! a time, by `DUE#{kind}` and due time: deliveries (retries.rs), incidents
//! whose escalation chain is due and emails to send (escalations.rs).

pub mod alerts;
pub mod config;
pub mod db;
pub mod deliveries;
pub mod escalations;
pub mod incidents;
pub mod items;
pub mod ratelimit;
pub mod retries;
pub mod schema;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;

pub(crate) use db::{build_error, storage_error};
pub use db::{client_from_env, Meter, Units};

pub const GSI1: &str = "gsi1";
pub const GSI2: &str = "gsi2";
pub const GSI3: &str = "gsi3";
/// What `gsi3` projects besides its keys.
pub const GSI3_PROJECTION: &[&str] = &[
    "alert_id",
    "incident_id",
    "alert_key",
    "severity",
    "title",
    "description",
    "labels",
];

#[derive(Clone)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub meter: Arc<Meter>,
    /// How long stored events are kept (DynamoDB TTL).
    pub event_retention_secs: i64,
    /// Attempts per event when other instances keep winning the conditional writes.
    pub max_attempts: u32,
    /// How long an event keeps retrying conflicts before the push answers 500.
    pub retry_budget: Duration,
    /// Joins of this instance's alerts into open incidents, queued per incident.
    pub(crate) merges: Arc<alerts::merge::MergeQueues>,
    /// Rate-limit tokens this instance has leased and not used yet.
    pub(crate) leases: Arc<ratelimit::Leases>,
    /// How long one invocation sweeps a manual resolve's alerts before it
    /// leaves the rest to the notify function (incidents/lifecycle.rs).
    pub sweep_budget: Duration,
    /// Alert records a sweep reads per page.
    pub sweep_page: i32,
    /// The ack link signing key, once read (config/ack_secret.rs).
    pub(crate) ack_secret: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    /// Tests set this to make the push path's eventually consistent look at
    /// an alert's head stale: DynamoDB Local answers every read consistently,
    /// so staleness is never seen otherwise.
    pub stale_looks: StaleLooks,
    /// For [`StaleLooks::Frozen`]: each key's head as this instance first saw it.
    pub(crate) frozen_looks:
        Arc<std::sync::Mutex<std::collections::HashMap<String, Option<items::Item>>>>,
}

/// How stale the push path's look at a head is (tests only; see `Store::stale_looks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StaleLooks {
    /// As DynamoDB answers.
    #[default]
    Off,
    /// Sees no head at all, as if the key's first write had not shown yet.
    Nothing,
    /// Sees each key's head as this instance first looked at it: an older
    /// version once others have written.
    Frozen,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            meter: Arc::new(Meter::default()),
            event_retention_secs: 90 * 86_400,
            max_attempts: alerts::MAX_ATTEMPTS,
            retry_budget: alerts::RETRY_BUDGET,
            merges: Arc::default(),
            leases: Arc::default(),
            sweep_budget: incidents::lifecycle::SWEEP_BUDGET,
            sweep_page: incidents::lifecycle::SWEEP_PAGE,
            ack_secret: Arc::default(),
            stale_looks: StaleLooks::Off,
            frozen_looks: Arc::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The same store (table, meter, queues, leases) through another client,
    /// e.g. one with an interceptor.
    pub fn with_client(&self, client: Client) -> Store {
        Store {
            client,
            ..self.clone()
        }
    }
}

pub use crate::domain::time::now_ms;
