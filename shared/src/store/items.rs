//! Item codecs: domain records to DynamoDB attribute maps and back.
//!
//! Why one file of about 570 lines: it is the table's layout, every key
//! (`head_pk`, `incident_pk`, ...) and every item's attributes, read and
//! written by the same pair of functions, so a change to the layout is made
//! and reviewed in one place.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::event::EventStatus;
use crate::domain::mark::Mark;
use crate::error::{ApiError, ApiResult};
use crate::model::{
    Alert, AlertHead, Channel, ClosingEvent, Grouping, Incident, IncidentStatus, StoredEvent,
};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

pub fn string_map(map: &BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect())
}

pub fn string_list<'a>(items: impl IntoIterator<Item = &'a String>) -> AttributeValue {
    AttributeValue::L(items.into_iter().map(|v| s(v.clone())).collect())
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn corrupt(name: &str) -> ApiError {
    ApiError::internal(format!(
        "stored item is missing or has a malformed `{name}`"
    ))
}

pub fn get_s(item: &Item, name: &str) -> ApiResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(corrupt(name)),
    }
}

pub fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub fn get_n(item: &Item, name: &str) -> ApiResult<i64> {
    get_opt_n(item, name).ok_or_else(|| corrupt(name))
}

pub fn get_opt_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn get_bool(item: &Item, name: &str) -> ApiResult<bool> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        _ => Err(corrupt(name)),
    }
}

pub fn get_map(item: &Item, name: &str) -> BTreeMap<String, String> {
    match item.get(name) {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

pub fn get_list(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::L(l)) => l
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(v) => Some(v.clone()),
                _ => None,
            })
            .collect(),
        Some(AttributeValue::Ss(l)) => l.clone(),
        _ => Vec::new(),
    }
}

fn status_of(item: &Item, name: &str) -> ApiResult<EventStatus> {
    EventStatus::parse(&get_s(item, name)?).ok_or_else(|| corrupt(name))
}

pub fn head_pk(channel_id: &str, alert_key: &str) -> String {
    format!("AK#{channel_id}#{alert_key}")
}

pub const HEAD_SK: &str = "HEAD";

pub fn incident_pk(incident_id: &str) -> String {
    format!("INC#{incident_id}")
}

pub const INCIDENT_SK: &str = "INCIDENT";

/// Where an alert's record lives: in its incident's partition, or beside its
/// head while it joins no incident (silenced or inhibited).
pub fn alert_record_pk(h: &AlertHead) -> String {
    if h.incident_id.is_empty() {
        head_pk(&h.channel_id, &h.alert_key)
    } else {
        incident_pk(&h.incident_id)
    }
}

pub fn alert_record_sk(alert_id: &str) -> String {
    format!("ALERT#{alert_id}")
}

pub fn events_pk(alert_id: &str) -> String {
    format!("EV#{alert_id}")
}

/// Which channels the firing of `alert_key` went to through a shared integration.
pub fn route_memory_pk(integration_id: &str, alert_key: &str) -> String {
    format!("RT#{integration_id}#{alert_key}")
}

pub const ROUTE_MEMORY_SK: &str = "ROUTE";

pub fn group_pk(channel_id: &str, group: &str) -> String {
    format!("GRP#{channel_id}#{group}")
}

pub fn channel_pk(channel_id: &str) -> String {
    format!("CH#{channel_id}")
}

/// Incidents of one channel in one status, newest first.
pub fn incident_scope(channel_id: &str, status: IncidentStatus) -> String {
    format!("INC#{channel_id}#{}", status.as_str())
}

/// Incidents of every channel in one status.
pub fn incident_scope_all(status: IncidentStatus) -> String {
    format!("INC#*#{}", status.as_str())
}

pub fn incident_order(created_ms: i64, incident_id: &str) -> String {
    format!("{created_ms:015}#{incident_id}")
}

pub fn head_to_item(h: &AlertHead) -> Item {
    let mut item = key(head_pk(&h.channel_id, &h.alert_key), HEAD_SK);
    item.extend([
        ("channel_id".to_string(), s(&h.channel_id)),
        ("alert_key".to_string(), s(&h.alert_key)),
        ("alert_id".to_string(), s(&h.alert_id)),
        ("incident_id".to_string(), s(&h.incident_id)),
        ("active".to_string(), b(h.active)),
        ("event_status".to_string(), s(h.event_status.as_str())),
        ("severity".to_string(), s(h.severity.as_str())),
        ("title".to_string(), s(&h.title)),
        ("description".to_string(), s(&h.description)),
        ("labels".to_string(), string_map(&h.labels)),
        ("last_content".to_string(), s(&h.last_content)),
        ("last_brief".to_string(), s(&h.last_brief)),
        ("last_time".to_string(), n(h.last_time_ms)),
        (
            "recent_contents".to_string(),
            AttributeValue::M(
                h.recent_contents
                    .iter()
                    .map(|(k, v)| (k.clone(), n(*v)))
                    .collect(),
            ),
        ),
        ("event_count".to_string(), n(h.event_count)),
        ("duplicate_count".to_string(), n(h.duplicate_count)),
        ("refresh_count".to_string(), n(h.refresh_count)),
        ("created_at".to_string(), n(h.created_at)),
        ("last_event_at".to_string(), n(h.last_event_at)),
        ("version".to_string(), n(h.version)),
    ]);
    if let Some(c) = h.closed_at {
        item.insert("closed_at".into(), n(c));
    }
    match &h.mark {
        Some(Mark::Silenced(rule_id)) => {
            item.insert("silenced_by".into(), s(rule_id));
        }
        Some(Mark::Inhibited(alert_id)) => {
            item.insert("inhibited_by".into(), s(alert_id));
        }
        None => {}
    }
    if !h.source_keys.is_empty() {
        item.insert("source_keys".into(), string_list(&h.source_keys));
    }
    if let Some(c) = &h.closing_event {
        item.insert(CLOSING_EVENT.into(), closing_event_value(c));
    }
    item
}

/// The attribute of a head (then of its record) that holds the `Ok` that
/// closed its alert.
pub const CLOSING_EVENT: &str = "closing_event";

fn closing_event_value(c: &ClosingEvent) -> AttributeValue {
    AttributeValue::M(
        [
            ("event_status".to_string(), s(c.event.event_status.as_str())),
            ("title".to_string(), s(&c.event.title)),
            ("description".to_string(), s(&c.event.description)),
            ("labels".to_string(), string_map(&c.event.labels)),
            ("event_time".to_string(), n(c.event.event_time)),
            ("event_time_ms".to_string(), n(c.event_time_ms)),
            ("sequence".to_string(), n(c.sequence)),
        ]
        .into(),
    )
}

fn closing_event_of(item: &Item) -> ApiResult<Option<ClosingEvent>> {
    let Some(AttributeValue::M(map)) = item.get(CLOSING_EVENT) else {
        return Ok(None);
    };
    Ok(Some(ClosingEvent {
        event: item_to_event(map)?,
        event_time_ms: get_n(map, "event_time_ms")?,
        sequence: get_n(map, "sequence")?,
    }))
}

/// The closing event a head or record holds, with the sort key it would
/// have had as an item of the history (so pages continue after it).
pub fn closing_event_entry(item: &Item) -> ApiResult<Option<(String, StoredEvent)>> {
    Ok(closing_event_of(item)?.map(|c| (event_sk(c.event_time_ms, c.sequence), c.event)))
}

pub fn item_to_head(item: &Item) -> ApiResult<AlertHead> {
    Ok(AlertHead {
        channel_id: get_s(item, "channel_id")?,
        alert_key: get_s(item, "alert_key")?,
        alert_id: get_s(item, "alert_id")?,
        incident_id: get_s(item, "incident_id")?,
        active: get_bool(item, "active")?,
        event_status: status_of(item, "event_status")?,
        severity: status_of(item, "severity")?,
        title: get_s(item, "title")?,
        description: get_s(item, "description")?,
        labels: get_map(item, "labels"),
        last_content: get_s(item, "last_content")?,
        last_brief: get_s(item, "last_brief")?,
        last_time_ms: get_n(item, "last_time")?,
        recent_contents: match item.get("recent_contents") {
            Some(AttributeValue::M(m)) => m
                .iter()
                .filter_map(|(k, v)| {
                    v.as_n()
                        .ok()
                        .and_then(|n| n.parse().ok())
                        .map(|n| (k.clone(), n))
                })
                .collect(),
            _ => BTreeMap::new(),
        },
        event_count: get_n(item, "event_count")?,
        duplicate_count: get_n(item, "duplicate_count")?,
        refresh_count: get_opt_n(item, "refresh_count").unwrap_or(0),
        created_at: get_n(item, "created_at")?,
        last_event_at: get_n(item, "last_event_at")?,
        closed_at: get_opt_n(item, "closed_at"),
        version: get_n(item, "version")?,
        mark: match (
            get_opt_s(item, "silenced_by"),
            get_opt_s(item, "inhibited_by"),
        ) {
            (Some(rule_id), _) => Some(Mark::Silenced(rule_id)),
            (None, Some(alert_id)) => Some(Mark::Inhibited(alert_id)),
            (None, None) => None,
        },
        source_keys: get_list(item, "source_keys"),
        closing_event: closing_event_of(item)?,
    })
}

/// The final snapshot of an alert whose head moved on to a newer alert: the
/// head's fields under the record's keys. Written over the live record with
/// an update, so the first event it holds stays.
pub fn alert_record(h: &AlertHead, archived: bool) -> Item {
    let mut item = head_to_item(h);
    item.remove("source_keys");
    item.extend(record_keys(h));
    item.insert("archived".into(), b(archived));
    item
}

/// A record is listed in gsi1 by its alert's id unless that id names the
/// incident whose partition holds it (ids::new_alert_id): one index write
/// fewer per new alert.
fn record_keys(h: &AlertHead) -> Item {
    let mut item = key(alert_record_pk(h), alert_record_sk(&h.alert_id));
    if !crate::ids::is_alert_of(&h.alert_id, &h.incident_id) {
        item.insert("gsi1pk".into(), s(format!("ALERT#{}", h.alert_id)));
        item.insert("gsi1sk".into(), s("ALERT"));
    }
    item
}

/// The record of a live alert: where its head is (reads follow it there),
/// and its first event (`first_event`), which is therefore not an item of
/// its own: one item fewer in the transaction that opens an alert. Later
/// events are items of the alert's history partition. `opening_entry`: the
/// timeline entry of its opening (`i_new` or `a_merge`), carried here instead
/// of as an item of the timeline (incidents/timeline.rs reads it from here).
pub fn live_record(
    h: &AlertHead,
    first_event: Option<AttributeValue>,
    opening_entry: Option<AttributeValue>,
) -> Item {
    let mut item = record_keys(h);
    item.extend([
        ("channel_id".to_string(), s(&h.channel_id)),
        ("alert_key".to_string(), s(&h.alert_key)),
        ("alert_id".to_string(), s(&h.alert_id)),
        ("incident_id".to_string(), s(&h.incident_id)),
        ("archived".to_string(), b(false)),
    ]);
    if let Some(first) = first_event {
        item.insert(FIRST_EVENT.into(), first);
    }
    if let Some(entry) = opening_entry {
        item.insert(OPENING_ENTRY.into(), entry);
    }
    item
}

/// The attribute of a record that holds its alert's opening timeline entry.
pub const OPENING_ENTRY: &str = "opening_entry";

/// The attribute of a record that holds its alert's first event.
pub const FIRST_EVENT: &str = "first_event";

/// Where an event sorts in its alert's history: event time, then its place.
pub fn event_sk(event_time_ms: i64, sequence: i64) -> String {
    format!("{event_time_ms:015}#{sequence:010}")
}

fn event_fields(ev: &crate::domain::event::StandardEvent) -> [(String, AttributeValue); 6] {
    [
        ("event_status".to_string(), s(ev.event_status.as_str())),
        ("title".to_string(), s(&ev.title)),
        ("description".to_string(), s(&ev.description)),
        ("labels".to_string(), string_map(&ev.labels)),
        ("event_time".to_string(), n(ev.event_time_ms / 1000)),
        ("event_time_ms".to_string(), n(ev.event_time_ms)),
    ]
}

/// An alert's first event, as its record holds it (with the sort key it
/// would have had as an item: the cursor after it).
pub fn first_event_value(
    ev: &crate::domain::event::StandardEvent,
    sequence: i64,
) -> AttributeValue {
    let mut map: Item = event_fields(ev).into_iter().collect();
    map.insert("sk".into(), s(event_sk(ev.event_time_ms, sequence)));
    AttributeValue::M(map)
}

/// The first event a record holds, with its sort key. Records written before
/// first events moved onto them hold none (their first event is an item).
pub fn first_event_of(record: &Item) -> ApiResult<Option<(String, StoredEvent)>> {
    let Some(AttributeValue::M(map)) = record.get(FIRST_EVENT) else {
        return Ok(None);
    };
    Ok(Some((get_s(map, "sk")?, item_to_event(map)?)))
}

/// A stored event, sorted by event time and then by its place in the
/// alert's history (`sequence`, unique per alert).
pub fn event_item(
    alert_id: &str,
    ev: &crate::domain::event::StandardEvent,
    sequence: i64,
    expires_at: i64,
) -> Item {
    let mut item = key(events_pk(alert_id), event_sk(ev.event_time_ms, sequence));
    item.extend(event_fields(ev));
    item.insert("expires_at".to_string(), n(expires_at));
    item
}

pub fn item_to_event(item: &Item) -> ApiResult<StoredEvent> {
    Ok(StoredEvent {
        event_status: status_of(item, "event_status")?,
        title: get_s(item, "title")?,
        description: get_s(item, "description")?,
        labels: get_map(item, "labels"),
        event_time: get_n(item, "event_time")?,
    })
}

pub struct NewIncident<'a> {
    pub incident_id: &'a str,
    pub channel_id: &'a str,
    pub title: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub severity: EventStatus,
    pub now_ms: i64,
    pub merge_deadline_ms: i64,
    pub group_key: Option<&'a str>,
}

pub fn new_incident_item(i: &NewIncident<'_>) -> Item {
    let status = IncidentStatus::Triggered;
    let order = incident_order(i.now_ms, i.incident_id);
    let mut item = key(incident_pk(i.incident_id), INCIDENT_SK);
    item.extend([
        ("incident_id".to_string(), s(i.incident_id)),
        ("channel_id".to_string(), s(i.channel_id)),
        ("title".to_string(), s(i.title)),
        ("labels".to_string(), string_map(i.labels)),
        (
            "severities".to_string(),
            AttributeValue::Ss(vec![i.severity.as_str().to_string()]),
        ),
        ("status".to_string(), s(status.as_str())),
        ("alert_count".to_string(), n(1)),
        ("active_alert_count".to_string(), n(1)),
        ("created_at".to_string(), n(i.now_ms / 1000)),
        ("created_ms".to_string(), n(i.now_ms)),
        ("merge_deadline".to_string(), n(i.merge_deadline_ms)),
        (
            "gsi1pk".to_string(),
            s(incident_scope(i.channel_id, status)),
        ),
        ("gsi1sk".to_string(), s(order.clone())),
        ("gsi2pk".to_string(), s(incident_scope_all(status))),
        ("gsi2sk".to_string(), s(order)),
    ]);
    if let Some(g) = i.group_key {
        item.insert("group_key".into(), s(g));
    }
    item
}

pub fn item_to_incident(item: &Item) -> ApiResult<Incident> {
    let severities: Vec<EventStatus> = get_list(item, "severities")
        .iter()
        .filter_map(|v| EventStatus::parse(v))
        .collect();
    Ok(Incident {
        incident_id: get_s(item, "incident_id")?,
        channel_id: get_s(item, "channel_id")?,
        title: get_s(item, "title")?,
        severity: crate::engine::highest_severity(&severities),
        status: IncidentStatus::parse(&get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        labels: get_map(item, "labels"),
        alert_count: get_n(item, "alert_count")?,
        active_alert_count: get_n(item, "active_alert_count")?,
        created_at: get_n(item, "created_at")?,
        acknowledged_at: get_opt_n(item, "acknowledged_at"),
        closed_at: get_opt_n(item, "closed_at"),
        storm_level: get_opt_n(item, "storm_level").unwrap_or(0),
        flapping: get_bool(item, "flapping").unwrap_or(false),
        responders: get_opt_s(item, "responders")
            .map(|json| serde_json::from_str(&json).map_err(|_| corrupt("responders")))
            .transpose()?
            .unwrap_or_default(),
        alerts: None,
    })
}

pub fn alert_from_record(item: &Item) -> ApiResult<Alert> {
    Ok(item_to_head(item)?.to_alert())
}

pub fn channel_to_item(c: &Channel) -> ApiResult<Item> {
    let grouping = serde_json::to_string(&c.grouping)
        .map_err(|e| ApiError::internal(format!("could not encode grouping: {e}")))?;
    let flapping = serde_json::to_string(&c.flapping)
        .map_err(|e| ApiError::internal(format!("could not encode flapping: {e}")))?;
    let mut item = key(channel_pk(&c.channel_id), "CHANNEL");
    item.extend([
        ("channel_id".to_string(), s(&c.channel_id)),
        ("name".to_string(), s(&c.name)),
        ("grouping".to_string(), s(grouping)),
        ("auto_close".to_string(), b(c.auto_close)),
        ("created_at".to_string(), n(c.created_at)),
        (
            "storm_thresholds".to_string(),
            AttributeValue::L(
                c.storm_thresholds
                    .iter()
                    .map(|t| n(i64::from(*t)))
                    .collect(),
            ),
        ),
        ("flapping".to_string(), s(flapping)),
        ("gsi1pk".to_string(), s("CHANNELS")),
        (
            "gsi1sk".to_string(),
            s(format!("{:015}#{}", c.created_at, c.channel_id)),
        ),
    ]);
    Ok(item)
}

pub fn item_to_channel(item: &Item) -> ApiResult<Channel> {
    let grouping: Grouping =
        serde_json::from_str(&get_s(item, "grouping")?).map_err(|_| corrupt("grouping"))?;
    Ok(Channel {
        channel_id: get_s(item, "channel_id")?,
        name: get_s(item, "name")?,
        grouping,
        auto_close: get_bool(item, "auto_close")?,
        created_at: get_n(item, "created_at")?,
        storm_thresholds: match item.get("storm_thresholds") {
            Some(AttributeValue::L(l)) => l
                .iter()
                .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                .collect(),
            _ => Vec::new(),
        },
        flapping: match get_opt_s(item, "flapping") {
            Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("flapping"))?,
            None => crate::model::Flapping::default(),
        },
    })
}

/// About how many bytes DynamoDB counts for an item: names plus values.
pub fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + 1 + value_bytes(v))
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::Ss(l) => l.iter().map(String::len).sum(),
        _ => 1,
    }
}
