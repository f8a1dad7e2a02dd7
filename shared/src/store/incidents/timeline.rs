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

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::step::{self, TimelineEntry};
use crate::engine::{self, FlapState};
use crate::error::{ApiError, ApiResult};
use crate::model::Channel;
use crate::store::items::*;
use crate::store::{build_error, storage_error, Store};

pub const TIMELINE_PREFIX: &str = "TL#";
const FLAP_SK: &str = "FLAP";
/// How long an untouched flapping state is kept (it only matters within a
/// window and a mute, each at most a day).
const FLAP_RETENTION_SECS: i64 = 2 * 86_400;

/// A timeline entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: i64,
    pub detail: Value,
    pub entry_id: String,
}

/// The sort key of a timeline entry: time, then its place in its write.
pub fn entry_sk(entry: &TimelineEntry) -> String {
    format!(
        "{TIMELINE_PREFIX}{:015}#{:02}#{}",
        entry.at_ms, entry.index, entry.id
    )
}

fn entry_item(entry: &TimelineEntry, incident_id: &str, channel_id: &str) -> Item {
    let mut item = key(incident_pk(incident_id), entry_sk(entry));
    item.extend([
        ("entry_id".to_string(), s(&entry.id)),
        ("type".to_string(), s(entry.kind)),
        ("at".to_string(), n(entry.at_ms / 1000)),
        ("at_ms".to_string(), n(entry.at_ms)),
        ("detail".to_string(), s(entry.detail.to_string())),
        ("incident_id".to_string(), s(incident_id)),
        ("channel_id".to_string(), s(channel_id)),
    ]);
    item
}

/// The incident item's `changes`: the entries its latest write made.
pub fn changes_value(entries: &[TimelineEntry]) -> AttributeValue {
    AttributeValue::L(entries.iter().map(entry_value).collect())
}

/// One entry as a map: in `changes`, and on the record of the alert whose
/// opening it records (`opening_entry`).
pub fn entry_value(e: &TimelineEntry) -> AttributeValue {
    AttributeValue::M(
        [
            ("id".to_string(), s(&e.id)),
            ("type".to_string(), s(e.kind)),
            ("at_ms".to_string(), n(e.at_ms)),
            ("detail".to_string(), s(e.detail.to_string())),
        ]
        .into(),
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

/// Entries of one source, in sort-key order, from a cursor on; `complete`:
/// nothing of this source comes after the last of them.
struct Source {
    complete: bool,
    entries: Vec<(String, TimelineItem)>,
}

/// A timeline sort key's millisecond, place and entry id.
fn parse_entry_sk(sk: &str) -> Option<(i64, u8, &str)> {
    let rest = sk.strip_prefix(TIMELINE_PREFIX)?;
    let mut parts = rest.splitn(3, '#');
    let ms = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    Some((ms, index, parts.next()?))
}

/// Where an incident's records are read from after a timeline cursor: the
/// lowest sort key, and the record to start right after. Records sort by
/// their alert ids, which begin with the incident's id and the opening
/// millisecond, as their entries' keys do: right after the record whose
/// entry the cursor is; else within the cursor's millisecond, after the
/// cursor's own entry (records' entries come first in a millisecond at
/// place 00, then by id).
fn records_from(incident_id: &str, cursor: Option<&str>) -> (String, Option<String>) {
    match cursor.and_then(parse_entry_sk) {
        None => (format!("ALERT#{incident_id}"), None),
        Some((_, 0, id)) if crate::ids::is_alert_of(id, incident_id) => {
            (format!("ALERT#{incident_id}"), Some(alert_record_sk(id)))
        }
        Some((ms, index, id)) => {
            let in_ms = format!("{incident_id}{ms:011x}");
            if index == 0 && id < in_ms.as_str() {
                (format!("ALERT#{in_ms}"), None)
            } else {
                (format!("ALERT#{incident_id}{:011x}", ms + 1), None)
            }
        }
    }
}

/// The opening entry a record carries, with the sort key it has in the timeline.
fn carried_entry(record: &Item) -> Option<(String, TimelineItem)> {
    let Some(AttributeValue::M(m)) = record.get(OPENING_ENTRY) else {
        return None;
    };
    let id = get_opt_s(m, "id")?;
    let at_ms = get_opt_n(m, "at_ms")?;
    let sk = format!("{TIMELINE_PREFIX}{at_ms:015}#00#{id}");
    let item = TimelineItem {
        kind: get_opt_s(m, "type")?,
        at: at_ms.div_euclid(1000),
        detail: get_opt_s(m, "detail")
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_else(|| json!({})),
        entry_id: id,
    };
    Some((sk, item))
}

/// Up to `limit` entries of both sources in sort-key order, and the cursor
/// after them when either source may have more. An entry is served only
/// when the other source is known to hold nothing before it.
fn merge_sources(
    own: Source,
    carried: Source,
    limit: usize,
) -> (Vec<TimelineItem>, Option<String>) {
    let mut own_entries = own.entries.into_iter().peekable();
    let mut carried_entries = carried.entries.into_iter().peekable();
    let mut page = Vec::new();
    let mut last = None;
    while page.len() < limit {
        let from_own = match (own_entries.peek(), carried_entries.peek()) {
            (Some((a, _)), Some((b, _))) => a < b,
            // One source has nothing read: the other's next entry is next
            // only when that source holds nothing more.
            (Some(_), None) if carried.complete => true,
            (None, Some(_)) if own.complete => false,
            _ => break,
        };
        let next = if from_own {
            own_entries.next()
        } else {
            carried_entries.next()
        };
        let Some((sk, item)) = next else { break };
        last = Some(sk);
        page.push(item);
    }
    let more = own_entries.peek().is_some()
        || carried_entries.peek().is_some()
        || !own.complete
        || !carried.complete;
    (page, if more { last } else { None })
}

impl Store {
    /// The puts of `entries` into the incident's partition, for a transaction.
    pub(crate) fn timeline_puts(
        &self,
        incident_id: &str,
        channel_id: &str,
        entries: &[TimelineEntry],
    ) -> ApiResult<Vec<TransactWriteItem>> {
        entries
            .iter()
            .map(|e| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(entry_item(e, incident_id, channel_id)))
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
    /// sort key of the last entry of the previous page). Two sources in one
    /// order: the timeline's own items, and the opening entries that new
    /// alerts' records carry (incidents since 2026-12-05, whose alerts' ids
    /// sort by opening time: ids::new_alert_id). Each is read from the
    /// cursor on and they are merged by the entries' sort keys; the cursor
    /// is the last key served, whichever source it came from.
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
            query = query.set_exclusive_start_key(Some(key(pk.clone(), c)));
        }
        let page = query.send().await.map_err(|e| storage_error("Query", e))?;
        let own = Source {
            complete: page.last_evaluated_key().is_none(),
            entries: page
                .items()
                .iter()
                .map(|i| Ok((get_s(i, "sk")?, timeline_item(i)?)))
                .collect::<ApiResult<Vec<_>>>()?,
        };
        let carried = self
            .carried_entries(incident_id, &pk, limit, cursor)
            .await?;
        Ok(merge_sources(own, carried, limit))
    }

    /// The opening entries new alerts' records carry, from `cursor` on.
    async fn carried_entries(
        &self,
        incident_id: &str,
        pk: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> ApiResult<Source> {
        let mut source = Source {
            complete: true,
            entries: Vec::new(),
        };
        if incident_id.len() != crate::ids::INCIDENT_ID_CHARS {
            return Ok(source);
        }
        let (from, start) = records_from(incident_id, cursor);
        let fetch = limit + 1;
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(&from))
            .expression_attribute_values(":to", s(format!("ALERT#{incident_id}~")))
            .projection_expression("pk, sk, #entry")
            .expression_attribute_names("#entry", OPENING_ENTRY)
            .set_exclusive_start_key(start.map(|sk| key(pk.to_string(), sk)))
            .consistent_read(true)
            .limit(fetch as i32)
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        // A page ends at `fetch` items or at 1 MB read (records are large):
        // only no LastEvaluatedKey says there is nothing more.
        source.complete = page.last_evaluated_key().is_none();
        source.entries = page
            .items()
            .iter()
            .filter_map(carried_entry)
            .filter(|(sk, _)| cursor.is_none_or(|c| sk.as_str() > c))
            .collect();
        Ok(source)
    }

    /// Add `i_comm` to an incident's timeline (`extra`: who wrote it).
    /// `Ok(None)`: no such incident.
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
        let step = step::comment(incident_id, &incident.channel_id, text, extra, now_ms)?;
        if !self.write_step(&step).await? {
            return Ok(None);
        }
        let Some(entry) = step.entries.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(TimelineItem {
            kind: entry.kind.to_string(),
            at: entry.at_ms / 1000,
            detail: entry.detail,
            entry_id: entry.id,
        }))
    }

    /// Record the storm thresholds an incident passed (decided by
    /// [`engine::storm_crossings`]), unless another writer recorded them first.
    pub async fn record_storm(
        &self,
        incident_id: &str,
        channel_id: &str,
        crossed: &[u32],
        now_ms: i64,
    ) -> ApiResult<bool> {
        match step::storm(incident_id, channel_id, crossed, now_ms)? {
            Some(step) => self.write_step(&step).await,
            None => Ok(false),
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
    use crate::engine::Transition;

    #[test]
    fn entries_sort_by_time_then_place() {
        let a = TimelineEntry::new(Transition::Open, json!({"alert_id": "a"}), 1_000, 0).unwrap();
        let b = TimelineEntry::new(Transition::Flapping, json!({}), 1_000, 1).unwrap();
        let c = TimelineEntry::new(Transition::Ack, json!({}), 1_001, 0).unwrap();
        assert!(entry_sk(&a) < entry_sk(&b) && entry_sk(&b) < entry_sk(&c));
        assert!(is_timeline_cursor(&entry_sk(&a)));
        assert!(!is_timeline_cursor("TL#1#00#x"));
        assert!(!is_timeline_cursor("ALERT#abc"));
        assert_eq!(a.detail, json!({"alert_id": "a"}));
    }

    fn source(keys: &[&str], complete: bool) -> Source {
        Source {
            complete,
            entries: keys
                .iter()
                .map(|k| {
                    let item = TimelineItem {
                        kind: "x".into(),
                        at: 0,
                        detail: json!({}),
                        entry_id: (*k).into(),
                    };
                    ((*k).to_string(), item)
                })
                .collect(),
        }
    }

    fn ids(page: &[TimelineItem]) -> Vec<&str> {
        page.iter().map(|i| i.entry_id.as_str()).collect()
    }

    #[test]
    fn two_sources_merge_in_key_order_and_page_without_gaps() {
        // Both read to the end: one page in order, no cursor.
        let (page, next) = merge_sources(source(&["a", "c"], true), source(&["b", "d"], true), 10);
        assert_eq!(ids(&page), ["a", "b", "c", "d"]);
        assert_eq!(next, None);
        // A full page: the cursor is the last key served, whichever source.
        let (page, next) = merge_sources(source(&["a", "c"], true), source(&["b", "d"], true), 3);
        assert_eq!(ids(&page), ["a", "b", "c"]);
        assert_eq!(next.as_deref(), Some("c"));
        // A source read only up to "c" may hold more after it: nothing of the
        // other source beyond "c" is served before it is known.
        let (page, next) = merge_sources(source(&["a", "c"], false), source(&["b", "e"], true), 10);
        assert_eq!(ids(&page), ["a", "b", "c"]);
        assert_eq!(next.as_deref(), Some("c"));
        let (page, next) = merge_sources(source(&["b"], true), source(&["a", "d"], false), 10);
        assert_eq!(ids(&page), ["a", "b", "d"]);
        assert_eq!(next.as_deref(), Some("d"));
    }

    #[test]
    fn records_are_read_from_right_after_the_cursor() {
        let incident = "0123456789abcdef";
        let at = 1_780_000_000_000i64;
        let alert = crate::ids::new_alert_id(incident, at).unwrap();
        let key = |index: u8, id: &str| format!("TL#{at:015}#{index:02}#{id}");
        assert_eq!(
            records_from(incident, None),
            (format!("ALERT#{incident}"), None)
        );
        // A carried entry: right after its record.
        assert_eq!(
            records_from(incident, Some(&key(0, &alert))),
            (format!("ALERT#{incident}"), Some(format!("ALERT#{alert}")))
        );
        // An own entry at place 00 whose id sorts before the millisecond's
        // records: all of them come after it; after them: none.
        let in_ms = format!("{incident}{at:011x}");
        assert_eq!(
            records_from(incident, Some(&key(0, &"0".repeat(32)))),
            (format!("ALERT#{in_ms}"), None)
        );
        let next_ms = format!("ALERT#{incident}{:011x}", at + 1);
        assert_eq!(
            records_from(incident, Some(&key(0, &"f".repeat(32)))).0,
            next_ms
        );
        // Place 01 (a flapping mark): after every record of its millisecond.
        assert_eq!(records_from(incident, Some(&key(1, &alert))).0, next_ms);
        assert!(alert.as_str() > in_ms.as_str() && format!("ALERT#{alert}") < next_ms);
    }

    #[test]
    fn a_cursor_names_its_millisecond_place_and_entry() {
        let e = TimelineEntry::new(Transition::Ack, json!({}), 1_780_000_000_123, 1).unwrap();
        let sk = entry_sk(&e);
        assert_eq!(
            parse_entry_sk(&sk),
            Some((1_780_000_000_123, 1, e.id.as_str()))
        );
        assert_eq!(parse_entry_sk("ALERT#x"), None);
    }

    #[test]
    fn changes_round_trip() {
        let e = TimelineEntry::new(Transition::Storm(10), json!({}), 5, 0).unwrap();
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
