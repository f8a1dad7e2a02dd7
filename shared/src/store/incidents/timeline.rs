//! Incident timelines (SPEC 11) and the per-key flapping state.
//!
//! Each timeline entry is its own item in the incident's partition,
//! `INC#{incident}` / `TL#{at_ms:015}#{n:02}#{entry}`, written in the same
//! transaction as the change it records, so reading the partition in key
//! order is reading the timeline oldest first. The same write sets the
//! incident item's `changes` to the entries it made: the table's stream then
//! carries each change together with the incident as it is after it (the
//! record's new image), which is what webhooks deliver.
//!
//! A key's flapping state is one item per `(channel, alert_key)`,
//! `FLAP#{channel}#{alert_key}` / `FLAP`, read only when the channel has
//! flapping on and written in the transaction that opens the key's alert
//! (the head's version condition orders openings of one key, so the state
//! needs no condition of its own).

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::{self, FlapState, Transition};
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::model::Channel;
use crate::store::db::Cancelled;
use crate::store::items::*;
use crate::store::{build_error, storage_error, Store};

pub const TIMELINE_PREFIX: &str = "TL#";
const FLAP_SK: &str = "FLAP";
/// How long an untouched flapping state is kept (it only matters within a
/// window and a mute, each at most a day).
const FLAP_RETENTION_SECS: i64 = 2 * 86_400;

/// One timeline entry. Its `id` is the `event_id` webhooks send for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: String,
    pub kind: &'static str,
    pub at_ms: i64,
    pub detail: Value,
    /// Its place among the entries of one write (an opening and its flapping mark).
    pub index: u8,
}

/// A timeline entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: i64,
    pub detail: Value,
    pub entry_id: String,
}

impl Entry {
    /// An entry for `transition`; `extra` (an object) adds to the transition's own detail.
    pub fn new(transition: Transition, extra: Value, at_ms: i64, index: u8) -> ApiResult<Entry> {
        let mut detail = transition.detail();
        if let (Some(d), Value::Object(more)) = (detail.as_object_mut(), extra) {
            d.extend(more);
        }
        Ok(Entry {
            id: random_hex(16)?,
            kind: transition.timeline_type(),
            at_ms,
            detail,
            index,
        })
    }

    pub fn sk(&self) -> String {
        format!(
            "{TIMELINE_PREFIX}{:015}#{:02}#{}",
            self.at_ms, self.index, self.id
        )
    }

    fn item(&self, incident_id: &str, channel_id: &str) -> Item {
        let mut item = key(incident_pk(incident_id), self.sk());
        item.extend([
            ("entry_id".to_string(), s(&self.id)),
            ("type".to_string(), s(self.kind)),
            ("at".to_string(), n(self.at_ms / 1000)),
            ("at_ms".to_string(), n(self.at_ms)),
            ("detail".to_string(), s(self.detail.to_string())),
            ("incident_id".to_string(), s(incident_id)),
            ("channel_id".to_string(), s(channel_id)),
        ]);
        item
    }
}

/// What an alert's opening records: `i_new` for a new incident or
/// `a_merge` for a join, then `i_m_flapping` when its key flaps.
pub fn opening_entries(
    new_incident: bool,
    alert_id: &str,
    flapping: bool,
    now_ms: i64,
) -> ApiResult<Vec<Entry>> {
    let mut entries = vec![if new_incident {
        Entry::new(Transition::Open, json!({ "alert_id": alert_id }), now_ms, 0)?
    } else {
        Entry::new(
            Transition::Merge,
            json!({ "alert_id": alert_id }),
            now_ms,
            0,
        )?
    }];
    if flapping {
        entries.push(Entry::new(
            Transition::Flapping,
            json!({ "alert_id": alert_id }),
            now_ms,
            1,
        )?);
    }
    Ok(entries)
}

/// The incident item's `changes`: the entries its latest write made.
pub fn changes_value(entries: &[Entry]) -> AttributeValue {
    AttributeValue::L(
        entries
            .iter()
            .map(|e| {
                AttributeValue::M(
                    [
                        ("id".to_string(), s(&e.id)),
                        ("type".to_string(), s(e.kind)),
                        ("at_ms".to_string(), n(e.at_ms)),
                        ("detail".to_string(), s(e.detail.to_string())),
                    ]
                    .into(),
                )
            })
            .collect(),
    )
}

/// A change read back from an incident item (or its stream image).
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeRef {
    pub id: String,
    pub kind: String,
    pub at_ms: i64,
    pub detail: Value,
}

pub fn changes_of(item: &Item) -> Vec<ChangeRef> {
    let Some(AttributeValue::L(list)) = item.get("changes") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|v| v.as_m().ok())
        .filter_map(|m| {
            Some(ChangeRef {
                id: get_opt_s(m, "id")?,
                kind: get_opt_s(m, "type")?,
                at_ms: get_opt_n(m, "at_ms")?,
                detail: get_opt_s(m, "detail")
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_else(|| json!({})),
            })
        })
        .collect()
}

fn flap_pk(channel_id: &str, alert_key: &str) -> String {
    format!("FLAP#{channel_id}#{alert_key}")
}

fn timeline_item(item: &Item) -> ApiResult<TimelineItem> {
    Ok(TimelineItem {
        kind: get_s(item, "type")?,
        at: get_n(item, "at")?,
        detail: get_opt_s(item, "detail")
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_else(|| json!({})),
        entry_id: get_s(item, "entry_id")?,
    })
}

/// Whether `cursor` is a timeline sort key this API could have issued.
pub fn is_timeline_cursor(cursor: &str) -> bool {
    let Some(rest) = cursor.strip_prefix(TIMELINE_PREFIX) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('#').collect();
    matches!(parts.as_slice(), [ms, idx, id]
        if ms.len() == 15 && ms.bytes().all(|b| b.is_ascii_digit())
            && idx.len() == 2 && idx.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Store {
    /// The puts of `entries` into the incident's partition, for a transaction.
    pub(crate) fn timeline_puts(
        &self,
        incident_id: &str,
        channel_id: &str,
        entries: &[Entry],
    ) -> ApiResult<Vec<TransactWriteItem>> {
        entries
            .iter()
            .map(|e| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(e.item(incident_id, channel_id)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
                    .map_err(build_error)
            })
            .collect()
    }

    /// A key opens an alert now: whether its incident is marked flapping, and
    /// the write of the key's new state (nothing when the channel has
    /// flapping off: no read, no write).
    pub(crate) async fn flapping_on_open(
        &self,
        channel: &Channel,
        alert_key: &str,
        now_ms: i64,
    ) -> ApiResult<(Option<TransactWriteItem>, bool)> {
        if !channel.flapping.enabled {
            return Ok((None, false));
        }
        let pk = flap_pk(&channel.channel_id, alert_key);
        let state = match self.get(pk.clone(), FLAP_SK).await? {
            Some(item) => FlapState {
                opens: match item.get("opens") {
                    Some(AttributeValue::L(l)) => l
                        .iter()
                        .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                        .collect(),
                    _ => Vec::new(),
                },
                muted_until_ms: get_opt_n(&item, "muted_until").unwrap_or(0),
            },
            None => FlapState::default(),
        };
        let (next, mark) = engine::flapping_on_open(&channel.flapping, &state, now_ms);
        let mut item = key(pk, FLAP_SK);
        item.extend([
            (
                "opens".to_string(),
                AttributeValue::L(next.opens.iter().map(|t| n(*t)).collect()),
            ),
            ("muted_until".to_string(), n(next.muted_until_ms)),
            (
                "expires_at".to_string(),
                n(now_ms / 1000 + FLAP_RETENTION_SECS),
            ),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(build_error)?;
        Ok((Some(TransactWriteItem::builder().put(put).build()), mark))
    }

    /// One page of an incident's timeline, oldest first, after `cursor` (the
    /// sort key of the last entry of the previous page).
    pub async fn timeline(
        &self,
        incident_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> ApiResult<(Vec<TimelineItem>, Option<String>)> {
        let pk = incident_pk(incident_id);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :tl)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":tl", s(TIMELINE_PREFIX))
            .consistent_read(true)
            .limit(limit as i32 + 1);
        if let Some(c) = cursor {
            query = query.set_exclusive_start_key(Some(key(pk, c)));
        }
        let page = query.send().await.map_err(|e| storage_error("Query", e))?;
        let items = page.items();
        let next = if items.len() > limit {
            items.get(limit - 1).and_then(|i| get_opt_s(i, "sk"))
        } else {
            None
        };
        let list = items
            .iter()
            .take(limit)
            .map(timeline_item)
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((list, next))
    }

    /// Add `i_comm` to an incident's timeline. `Ok(None)`: no such incident.
    pub async fn add_comment(
        &self,
        incident_id: &str,
        text: &str,
        extra: Value,
        now_ms: i64,
    ) -> ApiResult<Option<TimelineItem>> {
        let Some(incident) = self.get_incident(incident_id).await? else {
            return Ok(None);
        };
        // `extra` (who commented) first: the text is the comment's own field.
        let mut detail = extra;
        if let Some(d) = detail.as_object_mut() {
            d.insert("text".into(), json!(text));
        } else {
            detail = json!({ "text": text });
        }
        let entry = Entry::new(Transition::Comment, detail, now_ms, 0)?;
        let entries = [entry];
        let written = self
            .record_on_incident(
                incident_id,
                &incident.channel_id,
                &entries,
                "SET changes = :changes, updated_at = :now",
                "attribute_exists(pk)",
                vec![],
                now_ms,
            )
            .await?;
        if !written {
            return Ok(None);
        }
        let [entry] = entries;
        Ok(Some(TimelineItem {
            kind: entry.kind.to_string(),
            at: entry.at_ms / 1000,
            detail: entry.detail,
            entry_id: entry.id,
        }))
    }

    /// Record the storm thresholds an incident passed (decided by
    /// [`engine::storm_crossings`]): `storm_level` becomes the highest, each
    /// gets its `i_storm`, unless another writer recorded them first.
    pub async fn record_storm(
        &self,
        incident_id: &str,
        channel_id: &str,
        crossed: &[u32],
        now_ms: i64,
    ) -> ApiResult<bool> {
        let (Some(&lowest), Some(&highest)) = (crossed.first(), crossed.last()) else {
            return Ok(false);
        };
        let entries = crossed
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry::new(Transition::Storm(t), json!({}), now_ms, i as u8))
            .collect::<ApiResult<Vec<_>>>()?;
        self.record_on_incident(
            incident_id,
            channel_id,
            &entries,
            "SET changes = :changes, updated_at = :now, storm_level = :level",
            "attribute_exists(pk) AND (attribute_not_exists(storm_level) OR storm_level < :lowest)",
            vec![
                (":level", n(i64::from(highest))),
                (":lowest", n(i64::from(lowest))),
            ],
            now_ms,
        )
        .await
    }

    /// One transaction: the incident update (setting `changes` to `entries`)
    /// and the entries' items. `Ok(false)`: the condition did not hold.
    #[allow(clippy::too_many_arguments)]
    async fn record_on_incident(
        &self,
        incident_id: &str,
        channel_id: &str,
        entries: &[Entry],
        update_expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        now_ms: i64,
    ) -> ApiResult<bool> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(incident_pk(incident_id), INCIDENT_SK)))
            .update_expression(update_expression)
            .condition_expression(condition)
            .expression_attribute_values(":changes", changes_value(entries))
            .expression_attribute_values(":now", n(now_ms / 1000));
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let mut items = vec![TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build()];
        items.extend(self.timeline_puts(incident_id, channel_id, entries)?);
        match self.send_transaction(items).await {
            Ok(()) => Ok(true),
            Err(Cancelled::Reasons(_)) => Ok(false),
            Err(Cancelled::Fatal(e)) => Err(e),
        }
    }
}

/// Refuses a comment that is empty or longer than SPEC 11 allows.
pub fn check_comment(text: &str) -> ApiResult<()> {
    let chars = text.chars().count();
    if text.trim().is_empty() || chars > 1024 {
        return Err(ApiError::invalid("text: must be 1 to 1024 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_time_then_place() {
        let a = Entry::new(Transition::Open, json!({"alert_id": "a"}), 1_000, 0).unwrap();
        let b = Entry::new(Transition::Flapping, json!({}), 1_000, 1).unwrap();
        let c = Entry::new(Transition::Ack, json!({}), 1_001, 0).unwrap();
        assert!(a.sk() < b.sk() && b.sk() < c.sk());
        assert!(is_timeline_cursor(&a.sk()));
        assert!(!is_timeline_cursor("TL#1#00#x"));
        assert!(!is_timeline_cursor("ALERT#abc"));
        assert_eq!(a.detail, json!({"alert_id": "a"}));
    }

    #[test]
    fn changes_round_trip() {
        let e = Entry::new(Transition::Storm(10), json!({}), 5, 0).unwrap();
        let item = Item::from([(
            "changes".to_string(),
            changes_value(std::slice::from_ref(&e)),
        )]);
        let back = changes_of(&item);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].id, e.id);
        assert_eq!(back[0].kind, "i_storm");
        assert_eq!(back[0].detail["threshold"], 10);
    }

    #[test]
    fn comments_have_bounds() {
        assert!(check_comment("ok").is_ok());
        assert!(check_comment(" ").is_err());
        assert!(check_comment(&"é".repeat(1024)).is_ok());
        assert!(check_comment(&"x".repeat(1025)).is_err());
    }
}
