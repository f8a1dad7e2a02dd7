//! What one stream record means for webhooks: the changes it carries, each
//! with the object as it is after the change (the record's new image).
//!
//! - The incident item: its `changes` that the old image did not have (see
//!   store/incidents/timeline.rs), each an incident event; a flapping incident yields
//!   only its first `i_m_flapping`. A rise of `alert_count` is also a storm
//!   check for the notify function.
//! - An alert head: `a_new` (a new alert id), `a_update` (an event was
//!   stored), `a_close` (the alert closed).
//! - A queued resend (`DLV#{webhook}` / `R#{delivery}`).
//! - An incident whose manual resolve ran out of time (`resolving` rose):
//!   the notify function continues the resolve.

use serde_json::{json, Value};

use crate::hashing::stable_key;
use crate::model::AlertHead;
use crate::store::incidents::timeline::changes_of;
use crate::store::items::{
    get_bool, get_opt_n, get_opt_s, item_to_head, item_to_incident, Item, HEAD_SK, INCIDENT_SK,
};

pub use crate::domain::delivery::OutEvent;

/// An incident whose `alert_count` rose: it may have passed a storm threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StormCheck {
    pub incident_id: String,
    pub channel_id: String,
    pub storm_level: i64,
    pub old_count: i64,
    pub new_count: i64,
}

/// A resend asked for through the API.
#[derive(Clone, Debug, PartialEq)]
pub struct Resend {
    pub webhook_id: String,
    pub delivery_id: String,
    pub event: OutEvent,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordWork {
    pub events: Vec<OutEvent>,
    pub storm: Option<StormCheck>,
    pub resend: Option<Resend>,
    /// An incident whose manual resolve is to be continued.
    pub continue_resolve: Option<String>,
}

/// What a record (`INSERT`, `MODIFY`, `REMOVE`; its images) asks of notify.
pub fn derive(event_name: &str, keys: &Item, old: &Item, new: &Item) -> RecordWork {
    let pk = get_opt_s(keys, "pk").unwrap_or_default();
    let sk = get_opt_s(keys, "sk").unwrap_or_default();
    if event_name == "REMOVE" || new.is_empty() {
        return RecordWork::default();
    }
    if pk.starts_with("INC#") && sk == INCIDENT_SK {
        incident_work(old, new)
    } else if pk.starts_with("AK#") && sk == HEAD_SK {
        RecordWork {
            events: alert_event(old, new).into_iter().collect(),
            ..Default::default()
        }
    } else if event_name == "INSERT" && pk.starts_with("DLV#") && sk.starts_with("R#") {
        RecordWork {
            resend: resend_of(&pk, &sk, new),
            ..Default::default()
        }
    } else {
        RecordWork::default()
    }
}

fn incident_work(old: &Item, new: &Item) -> RecordWork {
    let Ok(incident) = item_to_incident(new) else {
        return RecordWork::default();
    };
    let seen: Vec<String> = changes_of(old).into_iter().map(|c| c.id).collect();
    let was_flapping = get_bool(old, "flapping").unwrap_or(false);
    let mut flap_sent = was_flapping;
    let snapshot = json!(incident);
    let mut events = Vec::new();
    for change in changes_of(new) {
        if seen.contains(&change.id) {
            continue;
        }
        if incident.flapping {
            // SPEC 11: a marked incident delivers one `i_m_flapping`, nothing else.
            if change.kind != "i_m_flapping" || flap_sent {
                continue;
            }
            flap_sent = true;
        }
        events.push(OutEvent {
            event_id: change.id.clone(),
            event_type: change.kind.clone(),
            event_time_ms: change.at_ms,
            channel_id: incident.channel_id.clone(),
            incident_id: incident.incident_id.clone(),
            object_id: incident.incident_id.clone(),
            body: json!({
                "event_id": change.id,
                "event_type": change.kind,
                "event_time": change.at_ms,
                "incident": snapshot,
                "detail": change.detail,
            }),
        });
    }
    let old_count = get_opt_n(old, "alert_count").unwrap_or(0);
    let storm = (incident.alert_count > old_count && !old.is_empty()).then(|| StormCheck {
        incident_id: incident.incident_id.clone(),
        channel_id: incident.channel_id.clone(),
        storm_level: incident.storm_level,
        old_count,
        new_count: incident.alert_count,
    });
    // A manual resolve that ran out of time raised `resolving`: continue it.
    let resolving = |i: &Item| get_opt_n(i, "resolving").unwrap_or(0);
    let continue_resolve = (resolving(new) > resolving(old)).then(|| incident.incident_id.clone());
    RecordWork {
        events,
        storm,
        resend: None,
        continue_resolve,
    }
}

/// The alert event type a head change is, if any.
pub fn alert_change(old: Option<&AlertHead>, new: &AlertHead) -> Option<&'static str> {
    if new.alert_id.is_empty() {
        return None; // the mark of an `Ok` for a key with no alert
    }
    let stored = |h: &AlertHead| h.event_count - h.duplicate_count - h.refresh_count;
    match old.filter(|o| o.alert_id == new.alert_id) {
        None => new.active.then_some("a_new"),
        // A mark lifting is, to the people told, a new alert.
        Some(o) if o.is_marked() && !new.is_marked() && new.active => Some("a_new"),
        Some(o) if o.active && !new.active => Some("a_close"),
        Some(o) if new.active && stored(new) > stored(o) => Some("a_update"),
        Some(_) => None,
    }
}

fn alert_event(old: &Item, new: &Item) -> Option<OutEvent> {
    let new_head = item_to_head(new).ok()?;
    let old_head = if old.is_empty() {
        None
    } else {
        item_to_head(old).ok()
    };
    // A silenced or inhibited alert tells no one while it is marked (SPEC 7):
    // its events are delivered once the mark lifts and it joins an incident.
    if new_head.is_marked() {
        return None;
    }
    let kind = alert_change(old_head.as_ref(), &new_head)?;
    let at_s = match kind {
        "a_new" => new_head.created_at,
        "a_close" => new_head.closed_at.unwrap_or(new_head.last_event_at),
        _ => new_head.last_event_at,
    };
    let event_id = stable_key(&[
        "alert",
        &new_head.alert_id,
        kind,
        &new_head.version.to_string(),
    ]);
    let alert = new_head.to_alert();
    Some(OutEvent {
        event_id: event_id.clone(),
        event_type: kind.to_string(),
        event_time_ms: at_s * 1000,
        channel_id: alert.channel_id.clone(),
        incident_id: alert.incident_id.clone(),
        object_id: alert.alert_id.clone(),
        body: json!({
            "event_id": event_id,
            "event_type": kind,
            "event_time": at_s * 1000,
            "alert": alert,
        }),
    })
}

fn resend_of(pk: &str, sk: &str, new: &Item) -> Option<Resend> {
    let body: Value = serde_json::from_str(&get_opt_s(new, "body")?).ok()?;
    Some(Resend {
        webhook_id: pk.strip_prefix("DLV#")?.to_string(),
        delivery_id: sk.strip_prefix("R#")?.to_string(),
        event: OutEvent {
            event_id: get_opt_s(new, "event_id")?,
            event_type: get_opt_s(new, "event_type")?,
            event_time_ms: body["event_time"].as_i64().unwrap_or(0),
            channel_id: get_opt_s(new, "channel_id").unwrap_or_default(),
            incident_id: get_opt_s(new, "incident_id").unwrap_or_default(),
            object_id: get_opt_s(new, "object_id")?,
            body,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventStatus;
    use std::collections::BTreeMap;

    fn head(alert_id: &str, active: bool, events: i64, dups: i64) -> AlertHead {
        AlertHead {
            channel_id: "c".into(),
            alert_key: "k".into(),
            alert_id: alert_id.into(),
            incident_id: "i".into(),
            active,
            event_status: EventStatus::Critical,
            severity: EventStatus::Critical,
            title: "t".into(),
            description: String::new(),
            labels: BTreeMap::new(),
            last_content: String::new(),
            last_brief: String::new(),
            last_time_ms: 0,
            recent_contents: BTreeMap::new(),
            event_count: events,
            duplicate_count: dups,
            refresh_count: 0,
            created_at: 0,
            last_event_at: 0,
            closed_at: None,
            version: events,
            mark: None,
            source_keys: Vec::new(),
            closing_event: None,
        }
    }

    #[test]
    fn alert_changes() {
        let a1 = head("a1", true, 1, 0);
        assert_eq!(alert_change(None, &a1), Some("a_new"));
        let mut silenced = head("a1", true, 1, 0);
        silenced.mark = Some(crate::domain::mark::Mark::Silenced("r".into()));
        assert_eq!(
            alert_change(Some(&silenced), &head("a1", true, 2, 1)),
            Some("a_new")
        );
        assert_eq!(alert_change(Some(&a1), &head("a1", true, 2, 1)), None);
        assert_eq!(
            alert_change(Some(&a1), &head("a1", true, 2, 0)),
            Some("a_update")
        );
        assert_eq!(
            alert_change(Some(&a1), &head("a1", false, 2, 0)),
            Some("a_close")
        );
        let closed = head("a1", false, 2, 0);
        assert_eq!(
            alert_change(Some(&closed), &head("a2", true, 1, 0)),
            Some("a_new")
        );
        assert_eq!(alert_change(None, &head("", false, 1, 0)), None);
    }
}
