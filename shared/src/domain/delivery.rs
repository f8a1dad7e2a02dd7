//! What a delivery is about, as the outbound side and the deliveries store
//! both speak it: a webhook's settings, one change to deliver, and how a
//! delivery ended. Their behaviour (validation, masking, sending) lives in
//! `outbound`; the store only keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    #[default]
    Generic,
    Slack,
    Feishu,
    Dingtalk,
    Wecom,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    pub url: String,
    pub kind: WebhookKind,
    /// Empty: every channel.
    pub channel_ids: Vec<String>,
    pub event_types: Vec<String>,
    pub headers: BTreeMap<String, String>,
    /// Stored, never shown again.
    #[serde(skip_serializing, default)]
    pub secret: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
}

/// One change to deliver.
#[derive(Clone, Debug, PartialEq)]
pub struct OutEvent {
    /// The same for the same change, across retries and resends.
    pub event_id: String,
    pub event_type: String,
    pub event_time_ms: i64,
    pub channel_id: String,
    /// Changes of one incident are delivered in order, one at a time.
    pub incident_id: String,
    /// The incident or alert it is about.
    pub object_id: String,
    /// The generic body: `{event_id, event_type, event_time, incident | alert, detail?}`.
    pub body: Value,
}

/// How a delivery ended, for its history entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub succeeded: bool,
    pub attempts: u32,
    pub http_status: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// Its last attempt timed out or could not connect: the receiver is down
    /// or hanging (notify sends it nothing more in this batch).
    pub unreachable: bool,
    /// It failed in a way worth trying again later (timeout, connection, 429, 5xx).
    pub retryable: bool,
}

/// Which addresses the outbound client may connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Public addresses only: the deployed default.
    Public,
    /// Public, loopback and private (`make run`, the test suite, a deployment
    /// whose receivers are inside its network).
    PublicAndPrivate,
    /// Anything: the local stream pump, which invokes a function on loopback
    /// and sends nothing a user chose.
    Any,
}
