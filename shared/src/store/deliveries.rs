//! Webhooks and their delivery history (SPEC 11).
//!
//! Webhooks live in one partition, `WEBHOOKS` / `WH#{webhook}`, so that the
//! notify function reads every subscription with one strongly consistent
//! Query per batch: a webhook created, changed or deleted applies to every
//! change made after its answer. The secret is an attribute of its own,
//! never part of what the API shows.
//!
//! A delivery is `DLV#{webhook}` / `D#{delivery}` (kept 7 days by TTL), listed
//! newest first through gsi1 (`DLV#{webhook}`, `{at_ms:015}#{delivery}`). A
//! delivery from the stream has the id `hash(webhook, event_id)`, so a batch
//! the stream retries finds what it already delivered (one BatchGetItem).
//! A resend is queued as `DLV#{webhook}` / `R#{delivery}` for the notify
//! function to pick up from the stream: the API call never waits on a receiver.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use serde_json::{json, Value};

use crate::domain::delivery::OutEvent;
use crate::domain::delivery::Sent;
use crate::domain::delivery::Webhook;
use crate::error::{ApiError, ApiResult};
use crate::store::items::*;
use crate::store::{storage_error, Store, Units, GSI1};

const WEBHOOKS_PK: &str = "WEBHOOKS";
/// How long delivery history is kept.
pub const DELIVERY_RETENTION_SECS: i64 = 7 * 86_400;
/// How long a queued resend waits for the stream before it is dropped.
const RESEND_RETENTION_SECS: i64 = 86_400;

fn webhook_sk(id: &str) -> String {
    format!("WH#{id}")
}

fn deliveries_pk(webhook_id: &str) -> String {
    format!("DLV#{webhook_id}")
}

/// The id of the delivery of `event_id` to `webhook_id` from the stream.
pub fn delivery_id(webhook_id: &str, event_id: &str) -> String {
    crate::hashing::stable_key(&["delivery", webhook_id, event_id])
}

fn webhook_item(w: &Webhook) -> ApiResult<Item> {
    let config = serde_json::to_string(w)
        .map_err(|e| ApiError::internal(format!("could not encode webhook: {e}")))?;
    let mut item = key(WEBHOOKS_PK, webhook_sk(&w.webhook_id));
    item.insert("config".into(), s(config));
    if let Some(secret) = &w.secret {
        item.insert("secret".into(), s(secret));
    }
    Ok(item)
}

fn item_to_webhook(item: &Item) -> ApiResult<Webhook> {
    let mut w: Webhook = serde_json::from_str(&get_s(item, "config")?)
        .map_err(|_| ApiError::internal("stored item has a malformed `config`"))?;
    w.secret = get_opt_s(item, "secret");
    Ok(w)
}

/// A delivery as the API shows it.
pub fn delivery_view(item: &Item) -> ApiResult<Value> {
    Ok(json!({
        "delivery_id": get_s(item, "delivery_id")?,
        "event_id": get_s(item, "event_id")?,
        "event_type": get_s(item, "event_type")?,
        "object_id": get_s(item, "object_id")?,
        "status": get_s(item, "status")?,
        "attempts": get_n(item, "attempts")?,
        "http_status": get_opt_n(item, "http_status"),
        "duration_ms": get_n(item, "duration_ms")?,
        "at": get_n(item, "at")?,
        "error": get_opt_s(item, "error"),
        "next_attempt_at": get_opt_n(item, "next_attempt_at"),
    }))
}

impl Store {
    pub async fn put_webhook(&self, w: &Webhook, must_exist: bool) -> ApiResult<bool> {
        let condition = if must_exist {
            "attribute_exists(pk)"
        } else {
            "attribute_not_exists(pk)"
        };
        self.put_if(webhook_item(w)?, condition).await
    }

    pub async fn get_webhook(&self, id: &str) -> ApiResult<Option<Webhook>> {
        self.get(WEBHOOKS_PK.to_string(), &webhook_sk(id))
            .await?
            .as_ref()
            .map(item_to_webhook)
            .transpose()
    }

    /// Every webhook, strongly consistent (one Query for up to 1 MB of them).
    pub async fn list_webhooks(&self) -> ApiResult<Vec<Webhook>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(WEBHOOKS_PK))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| storage_error("Query", e))?;
            self.count(Units::Read, page.consumed_capacity());
            for item in page.items() {
                out.push(item_to_webhook(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(out),
            }
        }
    }

    pub async fn delete_webhook(&self, id: &str) -> ApiResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(WEBHOOKS_PK, webhook_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| storage_error("DeleteItem", e))?;
        Ok(out.attributes().is_some())
    }

    /// Write a delivery's history entry (replacing an earlier one of the same
    /// id). `pending`: it waits in its lane, for `next_attempt_ms` or (None)
    /// behind an earlier delivery of its incident.
    pub async fn record_delivery(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        ev: &OutEvent,
        sent: &Sent,
        at_ms: i64,
        pending: Option<Option<i64>>,
    ) -> ApiResult<()> {
        let mut item = key(deliveries_pk(webhook_id), format!("D#{delivery_id}"));
        item.extend([
            ("delivery_id".to_string(), s(delivery_id)),
            ("webhook_id".to_string(), s(webhook_id)),
            ("event_id".to_string(), s(&ev.event_id)),
            ("event_type".to_string(), s(&ev.event_type)),
            ("object_id".to_string(), s(&ev.object_id)),
            ("channel_id".to_string(), s(&ev.channel_id)),
            ("incident_id".to_string(), s(&ev.incident_id)),
            (
                "status".to_string(),
                s(match (sent.succeeded, pending) {
                    (true, _) => "succeeded",
                    (false, Some(_)) => "pending",
                    (false, None) => "failed",
                }),
            ),
            ("attempts".to_string(), n(i64::from(sent.attempts))),
            ("duration_ms".to_string(), n(sent.duration_ms)),
            ("at".to_string(), n(at_ms / 1000)),
            ("body".to_string(), s(ev.body.to_string())),
            (
                "expires_at".to_string(),
                n(at_ms / 1000 + DELIVERY_RETENTION_SECS),
            ),
            ("gsi1pk".to_string(), s(deliveries_pk(webhook_id))),
            (
                "gsi1sk".to_string(),
                s(format!("{at_ms:015}#{delivery_id}")),
            ),
        ]);
        if let Some(status) = sent.http_status {
            item.insert("http_status".into(), n(i64::from(status)));
        }
        if let Some(error) = &sent.error {
            item.insert("error".into(), s(error));
        }
        if let (false, Some(Some(next_ms))) = (sent.succeeded, pending) {
            item.insert("next_attempt_at".into(), n(next_ms / 1000));
        }
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("PutItem", e))?;
        self.count(Units::Write, out.consumed_capacity());
        Ok(())
    }

    /// Which of these `(webhook, delivery)` pairs already succeeded.
    pub async fn succeeded_deliveries(
        &self,
        pairs: &[(String, String)],
    ) -> ApiResult<HashSet<(String, String)>> {
        if pairs.is_empty() {
            return Ok(HashSet::new());
        }
        let keys: Vec<Item> = pairs
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|(w, d)| key(deliveries_pk(w), format!("D#{d}")))
            .collect();
        let found = self.batch_get(keys).await?;
        self.meter.requests.fetch_add(
            pairs.len().div_ceil(100) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(found
            .iter()
            .filter(|i| get_opt_s(i, "status").as_deref() == Some("succeeded"))
            .filter_map(|i| Some((get_opt_s(i, "webhook_id")?, get_opt_s(i, "delivery_id")?)))
            .collect())
    }

    /// Newest first; `status` filters; `bound`: continue below this sort key.
    pub async fn list_deliveries(
        &self,
        webhook_id: &str,
        status: Option<&str>,
        limit: usize,
        bound: Option<&str>,
    ) -> ApiResult<(Vec<Value>, Option<String>)> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .scan_index_forward(false)
            .expression_attribute_values(":pk", s(deliveries_pk(webhook_id)));
        query = match bound {
            Some(b) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk < :bound")
                .expression_attribute_values(":bound", s(b)),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let mut items: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        // A filtered listing may need several pages to fill one; at most 20.
        for _ in 0..20 {
            let page = query
                .clone()
                .limit((limit + 1) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| storage_error("Query", e))?;
            // gsi1 holds keys only: read the deliveries it names, then filter.
            let listed = self.items_listed(page.items()).await?;
            items.extend(
                listed.into_iter().filter(|i| {
                    status.is_none_or(|st| get_opt_s(i, "status").as_deref() == Some(st))
                }),
            );
            start = page.last_evaluated_key().cloned();
            if items.len() > limit || start.is_none() {
                break;
            }
        }
        let more = items.len() > limit || start.is_some();
        items.truncate(limit);
        let next = if more {
            items.last().and_then(|i| get_opt_s(i, "gsi1sk"))
        } else {
            None
        };
        let views = items.iter().map(delivery_view).collect::<ApiResult<_>>()?;
        Ok((views, next))
    }

    /// Queue `delivery_id`'s event for delivery again; answers the new
    /// delivery's id, or `None` when there is no such delivery.
    pub async fn queue_resend(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        now_ms: i64,
    ) -> ApiResult<Option<String>> {
        let Some(old) = self
            .get(deliveries_pk(webhook_id), &format!("D#{delivery_id}"))
            .await?
        else {
            return Ok(None);
        };
        let new_id = crate::hashing::random_hex(16)?;
        let mut item = key(deliveries_pk(webhook_id), format!("R#{new_id}"));
        for name in [
            "event_id",
            "event_type",
            "object_id",
            "channel_id",
            "incident_id",
            "body",
        ] {
            if let Some(v) = old.get(name) {
                item.insert(name.to_string(), v.clone());
            }
        }
        item.insert(
            "expires_at".into(),
            n(now_ms / 1000 + RESEND_RETENTION_SECS),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| storage_error("PutItem", e))?;
        Ok(Some(new_id))
    }
}
