//! Domain records and their JSON shapes in the management API (SPEC section 8).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::event::EventStatus;
use crate::domain::mark::Mark;

fn empty_as_null<S: serde::Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_empty() {
        serializer.serialize_none()
    } else {
        serializer.serialize_str(value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupingMethod {
    #[default]
    None,
    Rules,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WindowType {
    #[default]
    Tumbling,
    Sliding,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Grouping {
    #[serde(default)]
    pub method: GroupingMethod,
    /// Ordered key groups; each key is `title`, `severity` or `labels.NAME`.
    #[serde(default)]
    pub equals: Vec<Vec<String>>,
    #[serde(default)]
    pub strict: bool,
    /// 0 = the incident takes alerts until it closes.
    #[serde(default)]
    pub window_minutes: u32,
    #[serde(default)]
    pub window_type: WindowType,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub channel_id: String,
    pub name: String,
    pub grouping: Grouping,
    pub auto_close: bool,
    pub created_at: i64,
    /// `alert_count` values that mark an incident as a storm (SPEC 11).
    #[serde(default)]
    pub storm_thresholds: Vec<u32>,
    #[serde(default)]
    pub flapping: Flapping,
}

/// A channel's flapping setting (SPEC 11), counted per alert key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flapping {
    pub enabled: bool,
    pub max_changes: u32,
    pub window_minutes: u32,
    pub mute_minutes: u32,
}

impl Default for Flapping {
    fn default() -> Self {
        Flapping {
            enabled: false,
            max_changes: 4,
            window_minutes: 60,
            mute_minutes: 120,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentStatus {
    Triggered,
    Processing,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "Triggered",
            Self::Processing => "Processing",
            Self::Closed => "Closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Triggered" => Some(Self::Triggered),
            "Processing" => Some(Self::Processing),
            "Closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub incident_id: String,
    pub channel_id: String,
    pub title: String,
    /// The highest severity any of its alerts has reached while it was open.
    pub severity: EventStatus,
    pub status: IncidentStatus,
    pub labels: BTreeMap<String, String>,
    pub alert_count: i64,
    pub active_alert_count: i64,
    pub created_at: i64,
    pub acknowledged_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// The highest storm threshold its `alert_count` reached; 0: none.
    #[serde(default)]
    pub storm_level: i64,
    /// Marked by a flapping alert key: webhooks deliver only its `i_m_flapping`.
    #[serde(default)]
    pub flapping: bool,
    /// Who its escalation paged last (SPEC 14): the members of the level.
    #[serde(default)]
    pub responders: Vec<Responder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Vec<Alert>>,
}

/// A member an escalation level paged for an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responder {
    pub member_id: String,
    /// 1-based.
    pub level: usize,
    /// Unix seconds.
    pub assigned_at: i64,
    /// Unix seconds, once this member acknowledged (from its link).
    pub acknowledged_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub alert_key: String,
    pub channel_id: String,
    /// Empty while the alert joins no incident (silenced or inhibited); shown as null.
    #[serde(serialize_with = "empty_as_null", default)]
    pub incident_id: String,
    pub title: String,
    pub description: String,
    pub severity: EventStatus,
    pub event_status: EventStatus,
    pub labels: BTreeMap<String, String>,
    pub active: bool,
    /// Every event that reached this alert, duplicates included (retries and stale events are not counted).
    /// `event_count - duplicate_count - refresh_count` is the length of its stored history.
    pub event_count: i64,
    pub duplicate_count: i64,
    pub refresh_count: i64,
    pub created_at: i64,
    pub last_event_at: i64,
    pub closed_at: Option<i64>,
    /// A silence rule marked it: it joins no incident while that lasts.
    pub silenced: bool,
    pub silenced_by: Option<String>,
    /// An open source alert inhibits it: it joins no incident while that lasts.
    pub inhibited: bool,
    pub inhibited_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<StoredEvent>>,
}

/// The event that closed an alert (its `Ok`), the last of its history: kept
/// on its head, then on its record once superseded, instead of as an item
/// of its own (one item fewer in a recovery's transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosingEvent {
    pub event: StoredEvent,
    pub event_time_ms: i64,
    /// Its place in the alert's history (`event_count` once it applied).
    pub sequence: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_status: EventStatus,
    pub title: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub event_time: i64,
}

/// The live state of the alert of one `(channel, alert_key)` pair, as the
/// engine sees it. One record per pair; a new alert reuses it with a new id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertHead {
    pub channel_id: String,
    pub alert_key: String,
    pub alert_id: String,
    pub incident_id: String,
    pub active: bool,
    pub event_status: EventStatus,
    /// The alert's severity: its last non-Ok status.
    pub severity: EventStatus,
    pub title: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// Layer-1 fingerprint (status, title, description, labels) of the last applied event.
    pub last_content: String,
    /// Layer-2 fingerprint (status, title, description) of the last applied event.
    pub last_brief: String,
    /// Newest event time applied, in ms. Survives alert generations, so stale
    /// events can never reopen or close anything.
    pub last_time_ms: i64,
    /// Content fingerprints applied at exactly `last_time_ms`, with when each
    /// was received: a re-send of one of them within the retry window is a
    /// retry, not a new event. Entries older than the window are dropped.
    pub recent_contents: BTreeMap<String, i64>,
    pub event_count: i64,
    pub duplicate_count: i64,
    pub refresh_count: i64,
    pub created_at: i64,
    pub last_event_at: i64,
    pub closed_at: Option<i64>,
    /// Optimistic-concurrency version; every write of the head checks and bumps it.
    pub version: i64,
    /// Set while a silence or an inhibition keeps it out of any incident
    /// (`incident_id` is then empty).
    pub mark: Option<crate::domain::mark::Mark>,
    /// The inhibition-source partitions where this alert is listed as an open
    /// source (one per inhibit rule whose `source_if` it matches): decided by
    /// the store at each write, so that the next write can withdraw them.
    pub source_keys: Vec<String>,
    /// The `Ok` that closed it, once one has.
    pub closing_event: Option<ClosingEvent>,
}

impl AlertHead {
    pub fn is_marked(&self) -> bool {
        self.mark.is_some()
    }

    pub fn to_alert(&self) -> Alert {
        Alert {
            alert_id: self.alert_id.clone(),
            alert_key: self.alert_key.clone(),
            channel_id: self.channel_id.clone(),
            incident_id: self.incident_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            severity: self.severity,
            event_status: self.event_status,
            labels: self.labels.clone(),
            active: self.active,
            event_count: self.event_count,
            duplicate_count: self.duplicate_count,
            refresh_count: self.refresh_count,
            created_at: self.created_at,
            last_event_at: self.last_event_at,
            closed_at: self.closed_at,
            silenced: matches!(self.mark, Some(Mark::Silenced(_))),
            silenced_by: match &self.mark {
                Some(Mark::Silenced(rule_id)) => Some(rule_id.clone()),
                _ => None,
            },
            inhibited: matches!(self.mark, Some(Mark::Inhibited(_))),
            inhibited_by: match &self.mark {
                Some(Mark::Inhibited(alert_id)) => Some(alert_id.clone()),
                _ => None,
            },
            events: None,
        }
    }
}

/// What an integration is, as the push path needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub integration_id: String,
    pub name: String,
    pub kind: String,
    /// A private integration's channel; `None` for a shared one (`routes`).
    pub channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<crate::rules::routing::Routes>,
    /// Names the routes' current version; the key lookup carries only this.
    #[serde(skip)]
    pub routes_version: Option<String>,
    pub rate_limit: crate::rules::ratelimit::RateLimit,
    pub created_at: i64,
    #[serde(skip_serializing)]
    pub callback_token: Option<String>,
    /// Sentry's client secret (never shown again).
    #[serde(skip_serializing, default)]
    pub client_secret: Option<String>,
    /// CloudWatch/SNS: `Some(false)` skips the signature check; absent means on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verify_signature: Option<bool>,
    /// CloudWatch/SNS: when not empty, messages from any other topic are
    /// refused (SPEC 15).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sns_topic_arns: Vec<String>,
    /// Label enrichment (SPEC 7.1), run before routing.
    #[serde(skip)]
    pub enrichment: Vec<crate::rules::integration::IntegrationRule>,
    /// The pipeline (SPEC 7.2), run after enrichment on non-`Ok` events.
    #[serde(skip)]
    pub pipeline: Vec<crate::rules::integration::IntegrationRule>,
    /// Names the version of enrichment and pipeline; the key lookup carries only this.
    #[serde(skip)]
    pub rules_version: Option<String>,
}

/// What an app key may do (SPEC 15), least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Reads; acks, unacks, resolves, reopens, comments, quick-silences.
    Responder,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Responder, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// One notification of a member by an escalation level (SPEC 14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub member_id: String,
    /// `email` or `im`.
    pub via: String,
    pub level: usize,
    /// `pending` (an email being sent or waiting for its next attempt),
    /// `sent` or `failed`.
    pub status: String,
    /// Unix seconds of the page.
    pub at: i64,
    pub attempts: i64,
    pub error: Option<String>,
}
