//! The DynamoDB store: one table, conditional writes and transactions. The
//! engine decides; this module only reads state, hands it to the engine and
//! writes the answer, retrying with fresh state when a condition fails.
//!
//! Table layout (pk / sk, all strings):
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | alert head (live state of `(channel, alert_key)`) | `AK#{channel}#{alert_key}` | `HEAD` |
//! | incident | `INC#{incident}` | `INCIDENT` |
//! | alert record (membership; snapshot once superseded) | `INC#{incident}` | `ALERT#{alert}` |
//! | record of an alert in no incident (silenced, inhibited) | `AK#{channel}#{alert_key}` | `ALERT#{alert}` |
//! | stored event (TTL) | `EV#{alert}` | `{event_time_ms:015}#{fingerprint}` |
//! | merge group → open incident | `GRP#{channel}#{group}` | `GROUP` |
//! | channels a key fired into via a shared integration (TTL) | `RT#{integration}#{alert_key}` | `ROUTE` |
//! | channel | `CH#{channel}` | `CHANNEL` |
//! | integration | `INT#{integration}` | `INTEGRATION` |
//! | integration key (hash) → integration | `IKEY#{sha256(key)}` | `IKEY` |
//! | app key (hash) | `APPKEY#{sha256(key)}` | `APPKEY` |
//! | app key id → hash, name | `APPKEYID#{id}` | `APPKEYID` |
//! | channel rule (drop, silence, inhibit) | `CH#{channel}` | `RULE#{kind}#{rule}` |
//! | mapping table | `MAPT#{table}` | `TABLE` |
//! | mapping row (per upload version) | `MAPR#{table}#{version}` | source values joined by U+001F |
//! | timeline entry (store/timeline.rs) | `INC#{incident}` | `TL#{at_ms:015}#{n:02}#{entry}` |
//! | flapping state of `(channel, alert_key)` (TTL) | `FLAP#{channel}#{alert_key}` | `FLAP` |
//! | webhook (store/webhooks.rs; one partition, read strongly per notify batch) | `WEBHOOKS` | `WH#{webhook}` |
//! | delivery (TTL 7 days) or queued resend | `DLV#{webhook}` | `D#{delivery}` / `R#{delivery}` |
//!
//! `gsi1` (gsi1pk, gsi1sk): incidents by `INC#{channel}#{status}`, alert
//! records by `ALERT#{alert}`, channels by `CHANNELS`, integrations by
//! `INTEGRATIONS`, app keys by `APPKEYS`,
//! deliveries newest first by `DLV#{webhook}`.
//! `gsi2` (gsi2pk, gsi2sk): incidents by `INC#*#{status}` across channels.
//! `gsi3` (gsi3pk, gsi3sk): open, unmarked alert heads by `OPEN#{channel}`
//! and the minute of their last event, only in channels with inhibit rules:
//! the inhibition sources. It projects only what a source check reads.

pub mod admin;
pub mod alerts;
pub mod items;
pub mod merge;
pub mod ratelimit;
pub mod schema;
pub mod timeline;
pub mod webhooks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::ConsumedCapacity;
use aws_sdk_dynamodb::Client;

use crate::error::ApiError;

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
pub mod mapping;
pub mod rules;

/// Counts what the store asks of DynamoDB, for the cost benchmarks.
#[derive(Debug, Default)]
pub struct Meter {
    pub requests: AtomicU64,
    /// Capacity units × 1000, summed over reads and writes as DynamoDB reports them.
    pub capacity_milli: AtomicU64,
    /// The write units among them (index writes included), × 1000.
    pub write_milli: AtomicU64,
    /// The units spent on secondary indexes, × 1000 (writes ask for `INDEXES`).
    pub index_milli: AtomicU64,
    /// Requests of the rate limiter among `requests` (one per leased block).
    pub limiter_requests: AtomicU64,
    /// Write units as AWS bills them, × 1000: DynamoDB Local under-reports a
    /// transaction's table writes (it counts each distinct item size once:
    /// three 900-byte puts report 2 units, AWS bills 6), so for a transaction
    /// this counts 2 units per started KB of every item, as AWS does.
    pub billed_write_milli: AtomicU64,
}

/// Which kind of capacity a request consumed: they are priced differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    Read,
    Write,
}

impl Meter {
    pub fn snapshot(&self) -> (u64, f64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.capacity_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    /// Write units so far as AWS bills them (index writes included).
    pub fn billed_writes(&self) -> f64 {
        self.billed_write_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Write units so far (index writes included), and the index share of all units.
    pub fn writes(&self) -> (f64, f64) {
        (
            self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.index_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    fn add(&self, kind: Units, capacity: &ConsumedCapacity) {
        self.add_billed(kind, capacity, None);
    }

    /// Adds a request's reported units; `table_units`, when given, replaces
    /// the reported table share in the billed write units.
    fn add_billed(&self, kind: Units, capacity: &ConsumedCapacity, table_units: Option<f64>) {
        let milli = |units: f64| (units * 1000.0).round() as u64;
        let units = capacity.capacity_units().unwrap_or(0.0);
        self.capacity_milli
            .fetch_add(milli(units), Ordering::Relaxed);
        let on_indexes: f64 = capacity
            .global_secondary_indexes()
            .map(|indexes| indexes.values().filter_map(|c| c.capacity_units()).sum())
            .unwrap_or(0.0);
        if kind == Units::Write {
            self.write_milli.fetch_add(milli(units), Ordering::Relaxed);
            let billed = table_units.map_or(units, |table| table + on_indexes);
            self.billed_write_milli
                .fetch_add(milli(billed), Ordering::Relaxed);
        }
        self.index_milli
            .fetch_add(milli(on_indexes), Ordering::Relaxed);
    }
}

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
    pub(crate) merges: Arc<merge::MergeQueues>,
    /// Rate-limit tokens this instance has leased and not used yet.
    pub(crate) leases: Arc<ratelimit::Leases>,
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

    pub(crate) fn count(&self, kind: Units, capacity: Option<&ConsumedCapacity>) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(capacity) = capacity {
            self.meter.add(kind, capacity);
        }
    }

    /// A transaction's reported units, billed at `table_units` for its table writes.
    pub(crate) fn count_transaction(&self, capacity: &[ConsumedCapacity], table_units: f64) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        for (i, c) in capacity.iter().enumerate() {
            self.meter.add_billed(
                Units::Write,
                c,
                Some(if i == 0 { table_units } else { 0.0 }),
            );
        }
    }

    pub(crate) fn count_many(&self, kind: Units, capacity: &[ConsumedCapacity]) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        for c in capacity {
            self.meter.add(kind, c);
        }
    }
}

/// Build the DynamoDB client once per cold start. One rustls+ring TLS stack;
/// `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local. Timeouts are tight
/// so that an unreachable database turns into a prompt 500, never a hang.
pub async fn client_from_env() -> Client {
    use aws_config::timeout::TimeoutConfig;
    use aws_smithy_http_client::tls;

    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let secs = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(default), Duration::from_secs)
    };
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(secs("DYNAMODB_ATTEMPT_TIMEOUT_SECS", 3))
        .operation_timeout(secs("DYNAMODB_OPERATION_TIMEOUT_SECS", 8))
        .build();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .load()
        .await;
    Client::new(&config)
}

/// Turn an SDK failure into the caller-visible error, logging the detail.
pub(crate) fn storage_error<E: std::fmt::Debug>(operation: &str, err: E) -> ApiError {
    tracing::error!(operation, error = ?err, "dynamodb request failed");
    ApiError::internal(format!("storage request {operation} failed; retry later"))
}

pub(crate) fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> ApiError {
    ApiError::internal(format!("could not build a storage request: {err}"))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
