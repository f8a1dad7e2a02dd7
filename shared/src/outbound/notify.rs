//! The notify function's core: one batch of stream records in, webhooks out,
//! and the records to retry (a partial batch response). Tests call
//! [`Notifier::process`] with records read from DynamoDB Local's stream.
//!
//! Per batch: storm checks (the incident passed a channel threshold: record
//! it, which is itself a change on the stream); the webhooks, read fresh;
//! for every change, every webhook that wants it; what already succeeded
//! (a retried batch) is skipped. Deliveries run in lanes, one per webhook and
//! incident, lanes concurrently: one incident's changes reach a receiver in
//! order, and a slow or dead receiver holds up only its own lanes. Once a
//! receiver times out or refuses connections through all its attempts, its
//! further deliveries in the batch are recorded `failed` without being tried
//! (resend them), so it costs the batch at most one delivery's budget.
//! Every delivery's history entry is written before the batch answers; if
//! one cannot be written, its record and every later one is retried by the
//! stream, and what succeeded is not sent again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;

use super::config::Webhook;
use super::event::{derive, OutEvent, RecordWork};
use super::kinds::{build, Context};
use super::service::{Sender, Sent};
use super::stream::image;
use super::target::Targets;
use crate::engine;
use crate::model::Channel;
use crate::store::deliveries::delivery_id;
use crate::store::items::{get_bool, incident_pk, key, INCIDENT_SK};
use crate::store::{now_ms, Store};

/// Lanes sending at once.
pub const LANES: usize = 32;

#[derive(Clone)]
pub struct Notifier {
    pub store: Store,
    pub sender: Sender,
    pub ctx: Context,
}

struct Planned {
    record: usize,
    hook: Arc<Webhook>,
    delivery_id: String,
    event: OutEvent,
}

/// What a batch did, for tests and the bench.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Sequence numbers of the records to retry.
    pub failed: Vec<String>,
    pub delivered: usize,
    pub failed_deliveries: usize,
    /// Already succeeded in an earlier try of the batch.
    pub skipped: usize,
}

impl Notifier {
    /// `PUBLIC_BASE_URL`: the console's base URL for links in IM messages;
    /// `ALLOW_PRIVATE_WEBHOOK_TARGETS`: see [`Targets::from_env`].
    pub fn from_env(store: Store) -> Notifier {
        Notifier {
            store,
            sender: Sender::new(Default::default(), Targets::from_env()),
            ctx: Context {
                public_base_url: std::env::var("PUBLIC_BASE_URL")
                    .ok()
                    .filter(|u| !u.is_empty()),
            },
        }
    }

    /// The Lambda answer: the records whose processing failed.
    pub async fn handle(&self, records: &[EventRecord]) -> DynamoDbEventResponse {
        let report = self.process(records).await;
        let mut response = DynamoDbEventResponse::default();
        for seq in report.failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq);
            response.batch_item_failures.push(failure);
        }
        response
    }

    pub async fn process(&self, records: &[EventRecord]) -> BatchReport {
        let works: Vec<RecordWork> = records
            .iter()
            .map(|r| {
                derive(
                    &r.event_name,
                    &image(&r.change.keys),
                    &image(&r.change.old_image),
                    &image(&r.change.new_image),
                )
            })
            .collect();
        let mut failed: BTreeSet<usize> = BTreeSet::new();
        self.storms(&works, &mut failed).await;
        let mut report = BatchReport::default();
        if works
            .iter()
            .all(|w| w.events.is_empty() && w.resend.is_none())
        {
            return self.finish(records, failed, report);
        }
        let hooks: Vec<Arc<Webhook>> = match self.store.list_webhooks().await {
            Ok(h) => h.into_iter().map(Arc::new).collect(),
            Err(_) => {
                failed.extend(0..records.len());
                return self.finish(records, failed, report);
            }
        };
        let mut planned = plan(&works, &hooks);
        if let Err(()) = self.drop_flapping_alerts(&mut planned).await {
            failed.extend(0..records.len());
            return self.finish(records, failed, report);
        }
        let pairs: Vec<(String, String)> = planned
            .iter()
            .map(|p| (p.hook.webhook_id.clone(), p.delivery_id.clone()))
            .collect();
        let done = match self.store.succeeded_deliveries(&pairs).await {
            Ok(d) => d,
            Err(_) => {
                failed.extend(0..records.len());
                return self.finish(records, failed, report);
            }
        };
        let before = planned.len();
        planned.retain(|p| !done.contains(&(p.hook.webhook_id.clone(), p.delivery_id.clone())));
        report.skipped = before - planned.len();

        // Lanes: one per (webhook, incident), in record order.
        let mut lanes: Vec<Vec<Planned>> = Vec::new();
        let mut lane_of: HashMap<(String, String), usize> = HashMap::new();
        for p in planned {
            let k = (p.hook.webhook_id.clone(), p.event.incident_id.clone());
            let idx = *lane_of.entry(k).or_insert_with(|| {
                lanes.push(Vec::new());
                lanes.len() - 1
            });
            lanes[idx].push(p);
        }
        let down: Arc<Mutex<HashSet<String>>> = Arc::default();
        let results: Vec<LaneResult> = futures_util::stream::iter(lanes.into_iter().map(|lane| {
            let this = self.clone();
            let down = Arc::clone(&down);
            async move { this.run_lane(lane, &down).await }
        }))
        .buffer_unordered(LANES)
        .collect()
        .await;
        for r in results {
            report.delivered += r.delivered;
            report.failed_deliveries += r.failed;
            failed.extend(r.broken_at);
        }
        self.finish(records, failed, report)
    }

    fn finish(
        &self,
        records: &[EventRecord],
        failed: BTreeSet<usize>,
        mut report: BatchReport,
    ) -> BatchReport {
        // Lambda retries from the lowest; every failed one is named.
        report.failed = failed
            .into_iter()
            .filter_map(|i| records.get(i)?.change.sequence_number.clone())
            .collect();
        report
    }

    /// Record the storm thresholds incidents passed (decided by the engine).
    async fn storms(&self, works: &[RecordWork], failed: &mut BTreeSet<usize>) {
        let mut channels: HashMap<String, Option<Channel>> = HashMap::new();
        for (i, w) in works.iter().enumerate() {
            let Some(check) = &w.storm else { continue };
            if !channels.contains_key(&check.channel_id) {
                match self.store.get_channel(&check.channel_id).await {
                    Ok(c) => {
                        channels.insert(check.channel_id.clone(), c);
                    }
                    Err(_) => {
                        failed.insert(i);
                        continue;
                    }
                }
            }
            let Some(Some(channel)) = channels.get(&check.channel_id) else {
                continue;
            };
            let crossed = engine::storm_crossings(
                &channel.storm_thresholds,
                check.storm_level,
                check.old_count,
                check.new_count,
            );
            if crossed.is_empty() {
                continue;
            }
            if self
                .store
                .record_storm(&check.incident_id, &check.channel_id, &crossed, now_ms())
                .await
                .is_err()
            {
                failed.insert(i);
            }
        }
    }

    /// SPEC 11: nothing is delivered for a flapping incident but its
    /// `i_m_flapping`; alert events learn the mark from their incident.
    async fn drop_flapping_alerts(&self, planned: &mut Vec<Planned>) -> Result<(), ()> {
        let incidents: HashSet<&str> = planned
            .iter()
            .filter(|p| p.event.event_type.starts_with("a_") && p.event.event_type != "a_merge")
            .map(|p| p.event.incident_id.as_str())
            .collect();
        if incidents.is_empty() {
            return Ok(());
        }
        let keys = incidents
            .iter()
            .map(|id| key(incident_pk(id), INCIDENT_SK))
            .collect();
        let items = self.store.batch_get(keys).await.map_err(|_| ())?;
        let flapping: HashSet<String> = items
            .iter()
            .filter(|i| get_bool(i, "flapping").unwrap_or(false))
            .filter_map(|i| crate::store::items::get_opt_s(i, "incident_id"))
            .collect();
        planned.retain(|p| {
            !(p.event.event_type.starts_with("a_")
                && p.event.event_type != "a_merge"
                && flapping.contains(&p.event.incident_id))
        });
        Ok(())
    }

    async fn run_lane(&self, lane: Vec<Planned>, down: &Mutex<HashSet<String>>) -> LaneResult {
        let mut result = LaneResult::default();
        for p in lane {
            let is_down = down
                .lock()
                .map(|d| d.contains(&p.hook.webhook_id))
                .unwrap_or(false);
            let sent = if is_down {
                Sent {
                    succeeded: false,
                    attempts: 0,
                    http_status: None,
                    duration_ms: 0,
                    error: Some(
                        "not attempted: the receiver timed out or refused connections earlier in this batch; resend it"
                            .into(),
                    ),
                    unreachable: true,
                }
            } else {
                let req = build(&p.hook, &p.event.body, now_ms(), &self.ctx);
                self.sender.send(&req).await
            };
            if !sent.succeeded && sent.unreachable {
                if let Ok(mut d) = down.lock() {
                    d.insert(p.hook.webhook_id.clone());
                }
            }
            tracing::info!(
                webhook_id = %p.hook.webhook_id,
                event_type = %p.event.event_type,
                event_id = %p.event.event_id,
                succeeded = sent.succeeded,
                attempts = sent.attempts,
                http_status = sent.http_status,
                duration_ms = sent.duration_ms,
                "webhook delivery"
            );
            crate::metrics::delivery(if sent.succeeded {
                "delivered"
            } else {
                "failed"
            });
            if self
                .store
                .record_delivery(
                    &p.hook.webhook_id,
                    &p.delivery_id,
                    &p.event,
                    &sent,
                    now_ms(),
                )
                .await
                .is_err()
            {
                // This record and every later one is retried; what succeeded
                // so far has its history entry and is not sent again.
                result.broken_at = Some(p.record);
                return result;
            }
            if sent.succeeded {
                result.delivered += 1;
            } else {
                result.failed += 1;
            }
        }
        result
    }
}

#[derive(Default)]
struct LaneResult {
    delivered: usize,
    failed: usize,
    broken_at: Option<usize>,
}

/// Every (change, webhook) pair to deliver, in record order.
fn plan(works: &[RecordWork], hooks: &[Arc<Webhook>]) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (record, w) in works.iter().enumerate() {
        for ev in &w.events {
            for hook in hooks
                .iter()
                .filter(|h| h.wants(&ev.event_type, &ev.channel_id))
            {
                planned.push(Planned {
                    record,
                    hook: Arc::clone(hook),
                    delivery_id: delivery_id(&hook.webhook_id, &ev.event_id),
                    event: ev.clone(),
                });
            }
        }
        if let Some(r) = &w.resend {
            match hooks.iter().find(|h| h.webhook_id == r.webhook_id) {
                Some(hook) => planned.push(Planned {
                    record,
                    hook: Arc::clone(hook),
                    delivery_id: r.delivery_id.clone(),
                    event: r.event.clone(),
                }),
                None => tracing::info!("resend of a deleted webhook dropped"),
            }
        }
    }
    planned
}
