//! Deliveries waiting for their next attempt (SPEC 11), kept in the table so
//! that nothing waits on the stream's 24-hour retention.
//!
//! Each (webhook, incident) pair is a lane: one incident's changes reach one
//! webhook in order. A lane with waiting deliveries has
//!
//! - its entries, `DLV#{webhook}` / `Q#{incident}#{sequence:0>40}#{delivery}`
//!   (the stream record's sequence number),
//!   in change order, each holding the event it delivers; and
//! - its marker, `DLV#{webhook}` / `L#{incident}`, which carries the due
//!   index's keys: `gsi4pk = DUE#delivery`, `gsi4sk = {due_ms:015}#...`.
//!
//! `gsi4` is the due index: sparse (only items waiting for a time carry its
//! keys), keys only, partitioned by what is due (`DUE#{kind}`), sorted by
//! the due time. The notify function's scheduled run finds every due lane
//! with one Query (`gsi4pk = DUE#delivery AND gsi4sk <= now`); on-call
//! escalations (SPEC 14) can use the same index under `DUE#escalation`.
//!
//! The marker's `version` rises with each entry the stream adds, so a
//! scheduled run that emptied the lane deletes the marker only if nothing
//! was added meanwhile; a run claims a lane by moving its due time (a
//! conditional write), so two runs never work one lane at once.

use std::collections::HashSet;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use serde_json::Value;

use crate::domain::delivery::OutEvent;
use crate::error::{ApiError, ApiResult};
use crate::store::items::*;
use crate::store::{storage_error, Store, Units};

/// The due index (sparse, keys only).
pub const GSI4: &str = "gsi4";
/// The due index's partition of deliveries.
pub const DUE_DELIVERIES: &str = "DUE#delivery";
/// A lane and its entries outlive the last attempt (24 h) by a day.
const LANE_RETENTION_SECS: i64 = 2 * 86_400;
/// How long a scheduled run holds a lane it claimed if it dies mid-way.
pub const CLAIM_MS: i64 = 120_000;

fn deliveries_pk(webhook_id: &str) -> String {
    format!("DLV#{webhook_id}")
}

fn lane_sk(incident_id: &str) -> String {
    format!("L#{incident_id}")
}

fn due_sk(due_ms: i64, webhook_id: &str, incident_id: &str) -> String {
    format!("{due_ms:015}#{webhook_id}#{incident_id}")
}

/// A delivery waiting in its lane.
#[derive(Clone, Debug)]
pub struct Waiting {
    pub sk: String,
    pub delivery_id: String,
    pub attempts: u32,
    /// When notify first handled it: its retry schedule counts from here.
    pub since_ms: i64,
    pub event: OutEvent,
}

/// A lane whose next attempt is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueLane {
    pub webhook_id: String,
    pub incident_id: String,
    pub due_ms: i64,
}

impl Store {
    /// Which of these (webhook, incident) lanes have deliveries waiting.
    pub async fn waiting_lanes(
        &self,
        lanes: &[(String, String)],
    ) -> ApiResult<HashSet<(String, String)>> {
        if lanes.is_empty() {
            return Ok(HashSet::new());
        }
        let keys = lanes
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|(w, i)| key(deliveries_pk(w), lane_sk(i)))
            .collect();
        let found = self.batch_get(keys).await?;
        Ok(found
            .iter()
            .filter_map(|i| Some((get_opt_s(i, "webhook_id")?, get_opt_s(i, "incident_id")?)))
            .collect())
    }

    /// Puts a delivery at the end of its lane; the lane is due at `due_ms`
    /// unless it already waits for an earlier time. `now_ms`: when notify
    /// first handled the change, the start of its retry schedule.
    /// `order` sorts the lane's entries in change order (the stream
    /// record's sequence number).
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue_delivery(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        order: &str,
        ev: &OutEvent,
        attempts: u32,
        due_ms: i64,
        now_ms: i64,
    ) -> ApiResult<()> {
        let expires = n(now_ms / 1000 + LANE_RETENTION_SECS);
        let mut entry = key(
            deliveries_pk(webhook_id),
            format!("Q#{}#{order:0>40}#{delivery_id}", ev.incident_id),
        );
        entry.extend([
            ("delivery_id".to_string(), s(delivery_id)),
            ("attempts".to_string(), n(i64::from(attempts))),
            ("since_ms".to_string(), n(now_ms)),
            ("event_id".to_string(), s(&ev.event_id)),
            ("event_type".to_string(), s(&ev.event_type)),
            ("event_time_ms".to_string(), n(ev.event_time_ms)),
            ("channel_id".to_string(), s(&ev.channel_id)),
            ("incident_id".to_string(), s(&ev.incident_id)),
            ("object_id".to_string(), s(&ev.object_id)),
            ("body".to_string(), s(ev.body.to_string())),
            ("expires_at".to_string(), expires.clone()),
        ]);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(entry))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("PutItem", e))?;
        self.count(Units::Write, out.consumed_capacity());
        // The marker after the entry: a run never finds a marker whose
        // entries are not written yet.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                deliveries_pk(webhook_id),
                lane_sk(&ev.incident_id),
            )))
            .update_expression(
                "SET webhook_id = :w, incident_id = :i, gsi4pk = :due_pk, \
                 due_ms = if_not_exists(due_ms, :due), gsi4sk = if_not_exists(gsi4sk, :due_sk), \
                 expires_at = :expires ADD version :one",
            )
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":i", s(&ev.incident_id))
            .expression_attribute_values(":due_pk", s(DUE_DELIVERIES))
            .expression_attribute_values(":due", n(due_ms))
            .expression_attribute_values(":due_sk", s(due_sk(due_ms, webhook_id, &ev.incident_id)))
            .expression_attribute_values(":expires", expires)
            .expression_attribute_values(":one", n(1))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("UpdateItem", e))?;
        self.count(Units::Write, out.consumed_capacity());
        Ok(())
    }

    /// Lanes due at `now_ms`, earliest first: one Query of the due index.
    pub async fn due_lanes(&self, now_ms: i64, limit: i32) -> ApiResult<Vec<DueLane>> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI4)
            .key_condition_expression("gsi4pk = :pk AND gsi4sk <= :now")
            .expression_attribute_values(":pk", s(DUE_DELIVERIES))
            // Every sort key of a due time at or before now sorts below this.
            .expression_attribute_values(":now", s(format!("{now_ms:015}#~")))
            .limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        self.count(Units::Read, page.consumed_capacity());
        Ok(page
            .items()
            .iter()
            .filter_map(|item| {
                let webhook_id = get_opt_s(item, "pk")?.strip_prefix("DLV#")?.to_string();
                let incident_id = get_opt_s(item, "sk")?.strip_prefix("L#")?.to_string();
                let due_ms = get_opt_s(item, "gsi4sk")?.get(..15)?.parse().ok()?;
                Some(DueLane {
                    webhook_id,
                    incident_id,
                    due_ms,
                })
            })
            .collect())
    }

    /// Claims a due lane for this run (its due time moves `CLAIM_MS` ahead);
    /// `Some(version)` when claimed, `None` when another run has it.
    pub async fn claim_lane(&self, lane: &DueLane, now_ms: i64) -> ApiResult<Option<i64>> {
        let until = now_ms + CLAIM_MS;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                deliveries_pk(&lane.webhook_id),
                lane_sk(&lane.incident_id),
            )))
            .update_expression("SET due_ms = :until, gsi4sk = :due_sk")
            .condition_expression("due_ms = :seen")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(
                ":due_sk",
                s(due_sk(until, &lane.webhook_id, &lane.incident_id)),
            )
            .expression_attribute_values(":seen", n(lane.due_ms))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(Some(
                    out.attributes()
                        .and_then(|a| get_opt_n(a, "version"))
                        .unwrap_or(0),
                ))
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.meter
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(storage_error("UpdateItem", e)),
        }
    }

    /// The lane's first `limit` waiting deliveries, in change order.
    pub async fn lane_entries(
        &self,
        webhook_id: &str,
        incident_id: &str,
        limit: i32,
    ) -> ApiResult<Vec<Waiting>> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(deliveries_pk(webhook_id)))
            .expression_attribute_values(":prefix", s(format!("Q#{incident_id}#")))
            .consistent_read(true)
            .limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        self.count(Units::Read, page.consumed_capacity());
        page.items().iter().map(item_to_waiting).collect()
    }

    /// Counts a failed attempt of a waiting delivery.
    pub async fn count_attempt(&self, webhook_id: &str, entry_sk: &str) -> ApiResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(deliveries_pk(webhook_id), entry_sk)))
            .update_expression("ADD attempts :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("UpdateItem", e))?;
        self.count(Units::Write, out.consumed_capacity());
        Ok(())
    }

    /// Takes a delivery out of its lane (it succeeded or failed for good).
    pub async fn dequeue_delivery(&self, webhook_id: &str, entry_sk: &str) -> ApiResult<()> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(deliveries_pk(webhook_id), entry_sk)))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("DeleteItem", e))?;
        self.count(Units::Write, out.consumed_capacity());
        Ok(())
    }

    /// The lane is next due at `due_ms`.
    pub async fn reschedule_lane(
        &self,
        webhook_id: &str,
        incident_id: &str,
        due_ms: i64,
    ) -> ApiResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(deliveries_pk(webhook_id), lane_sk(incident_id))))
            .update_expression("SET due_ms = :due, gsi4sk = :due_sk, gsi4pk = :due_pk")
            .expression_attribute_values(":due", n(due_ms))
            .expression_attribute_values(":due_sk", s(due_sk(due_ms, webhook_id, incident_id)))
            .expression_attribute_values(":due_pk", s(DUE_DELIVERIES))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("UpdateItem", e))?;
        self.count(Units::Write, out.consumed_capacity());
        Ok(())
    }

    /// Removes an emptied lane's marker unless the stream added an entry
    /// since the claim (`version`); `false` then.
    pub async fn close_lane(
        &self,
        webhook_id: &str,
        incident_id: &str,
        version: i64,
    ) -> ApiResult<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(deliveries_pk(webhook_id), lane_sk(incident_id))))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.meter
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(false)
            }
            Err(e) => Err(storage_error("DeleteItem", e)),
        }
    }
}

fn item_to_waiting(item: &Item) -> ApiResult<Waiting> {
    let body: Value = serde_json::from_str(&get_s(item, "body")?)
        .map_err(|_| ApiError::internal("a waiting delivery has a malformed `body`"))?;
    Ok(Waiting {
        sk: get_s(item, "sk")?,
        delivery_id: get_s(item, "delivery_id")?,
        attempts: u32::try_from(get_n(item, "attempts")?).unwrap_or(0),
        since_ms: get_n(item, "since_ms")?,
        event: OutEvent {
            event_id: get_s(item, "event_id")?,
            event_type: get_s(item, "event_type")?,
            event_time_ms: get_n(item, "event_time_ms")?,
            channel_id: get_s(item, "channel_id")?,
            incident_id: get_s(item, "incident_id")?,
            object_id: get_s(item, "object_id")?,
            body,
        },
    })
}
