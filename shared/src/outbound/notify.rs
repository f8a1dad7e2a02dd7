//! The notify function's core: one batch of stream records in, webhooks out,
//! and the records to retry (a partial batch response). Tests call
//! [`Notifier::process`] with records read from DynamoDB Local's stream.
//!
//! Per batch: storm checks (the incident passed a channel threshold: record
//! it, which is itself a change on the stream); the webhooks, read fresh;
//! for every change, every webhook that wants it; what already succeeded
//! (a retried batch) is skipped. Deliveries run in lanes, one per webhook and
//! incident, lanes concurrently: one incident's changes reach a receiver in
//! order, and a slow or dead receiver holds up only its own lanes.
//!
//! A delivery whose quick attempts fail (timeout, connection, 429, 5xx) is
//! not lost: it goes `pending` into its lane's queue in the table
//! (store/retries.rs), with its next attempt on the schedule of SPEC 11, and
//! every later change of that lane waits behind it. A lane that already has
//! deliveries waiting takes new ones at its end without trying them. Once a
//! receiver times out or refuses connections through all its attempts, its
//! further deliveries in the batch go `pending` without being tried, so it
//! costs the batch at most one delivery's budget. [`Notifier::retry_due`]
//! (the scheduled run) works the due lanes.
//! Every delivery's history entry is written before the batch answers; if
//! one cannot be written, its record and every later one is retried by the
//! stream, and what succeeded is not sent again.
//!
//! Why one file of about 600 lines: the batch's lanes, the quick attempts
//! and the move to `pending` share one per-batch state (which receivers are
//! down, what is already delivered); the kinds' bodies, the HTTP send and the
//! retry queue are modules of their own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;

use super::config::Webhook;
use super::event::{derive, OutEvent, RecordWork};
use super::kinds::{build, Context};
use super::retry::RetrySchedule;
use super::service::{Sender, Sent};
use super::stream::image;
use super::target::Targets;
use crate::engine;
use crate::error::ApiResult;
use crate::model::Channel;
use crate::store::deliveries::delivery_id;
use crate::store::retries::DueLane;
use crate::store::{now_ms, Store};

/// Lanes sending at once.
pub const LANES: usize = 32;
/// Due lanes one scheduled run takes, and deliveries per lane.
pub const DUE_LANES_PER_RUN: i32 = 100;
pub const ENTRIES_PER_LANE: i32 = 25;

#[derive(Clone)]
pub struct Notifier {
    pub store: Store,
    pub sender: Sender,
    pub ctx: Context,
    pub schedule: RetrySchedule,
}

struct Planned {
    record: usize,
    /// The record's sequence number: the change's place in its lane.
    order: String,
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
    /// Waiting in their lanes for a later attempt.
    pub pending: usize,
}

/// What one scheduled run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    pub lanes: usize,
    pub delivered: usize,
    pub failed_deliveries: usize,
    pub pending: usize,
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
            schedule: RetrySchedule::from_env(),
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
        self.continue_resolves(&works, &mut failed).await;
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
        let mut planned = plan(records, &works, &hooks);
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
        let lane_keys: Vec<(String, String)> = lanes
            .iter()
            .filter_map(|l| l.first())
            .map(|p| (p.hook.webhook_id.clone(), p.event.incident_id.clone()))
            .collect();
        let waiting = match self.store.waiting_lanes(&lane_keys).await {
            Ok(w) => w,
            Err(_) => {
                failed.extend(0..records.len());
                return self.finish(records, failed, report);
            }
        };
        let down: Arc<Mutex<HashSet<String>>> = Arc::default();
        let results: Vec<LaneResult> = futures_util::stream::iter(lanes.into_iter().map(|lane| {
            let this = self.clone();
            let down = Arc::clone(&down);
            let behind = lane.first().is_some_and(|p| {
                waiting.contains(&(p.hook.webhook_id.clone(), p.event.incident_id.clone()))
            });
            async move { this.run_lane(lane, &down, behind).await }
        }))
        .buffer_unordered(LANES)
        .collect()
        .await;
        for r in results {
            report.delivered += r.delivered;
            report.failed_deliveries += r.failed;
            report.pending += r.pending;
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

    /// Continue the manual resolves that ran out of time (SPEC 5, "Resolve
    /// is complete"): each invocation sweeps from the noted progress for at
    /// most the store's budget, and raises `resolving` again if it too runs
    /// out, which brings the incident back here through the stream.
    async fn continue_resolves(&self, works: &[RecordWork], failed: &mut BTreeSet<usize>) {
        for (i, w) in works.iter().enumerate() {
            let Some(incident_id) = &w.continue_resolve else {
                continue;
            };
            let resolved = self
                .store
                .act_on_incident(incident_id, engine::Action::Resolve, now_ms())
                .await;
            if let Err(e) = resolved {
                tracing::warn!(error = e.message(), "continuing a resolve failed");
                failed.insert(i);
            }
        }
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
        let ids: Vec<&str> = incidents.into_iter().collect();
        let flapping = self.store.flapping_incidents(&ids).await.map_err(|_| ())?;
        planned.retain(|p| {
            !(p.event.event_type.starts_with("a_")
                && p.event.event_type != "a_merge"
                && flapping.contains(&p.event.incident_id))
        });
        Ok(())
    }

    /// One lane of a batch, in order. `behind`: the lane already has
    /// deliveries waiting, so these wait behind them untried.
    async fn run_lane(
        &self,
        lane: Vec<Planned>,
        down: &Mutex<HashSet<String>>,
        mut behind: bool,
    ) -> LaneResult {
        let mut result = LaneResult::default();
        for p in lane {
            let now = now_ms();
            let is_down = down
                .lock()
                .map(|d| d.contains(&p.hook.webhook_id))
                .unwrap_or(false);
            let (sent, next) = if behind {
                let waits = not_attempted("waiting behind an earlier delivery of this incident");
                (waits, Next::Behind)
            } else if is_down {
                let waits = not_attempted(
                    "not attempted yet: the receiver timed out or refused connections earlier in this batch",
                );
                (waits, self.next(now, now))
            } else {
                let req = build(&p.hook, &p.event.body, now, &self.ctx);
                let sent = self.sender.send(&req).await;
                let next = if sent.retryable {
                    self.next(now, now_ms())
                } else {
                    Next::Never
                };
                (sent, next)
            };
            if !sent.succeeded && sent.unreachable {
                if let Ok(mut d) = down.lock() {
                    d.insert(p.hook.webhook_id.clone());
                }
            }
            let pending = match next {
                Next::Behind => Some(None),
                Next::At(due) => Some(Some(due)),
                Next::Never => None,
            };
            tracing::info!(
                webhook_id = %p.hook.webhook_id,
                event_type = %p.event.event_type,
                event_id = %p.event.event_id,
                succeeded = sent.succeeded,
                pending = pending.is_some(),
                attempts = sent.attempts,
                http_status = sent.http_status,
                duration_ms = sent.duration_ms,
                "webhook delivery"
            );
            crate::metrics::delivery(match (sent.succeeded, pending) {
                (true, _) => "delivered",
                (false, Some(_)) => "pending",
                (false, None) => "failed",
            });
            let saved = async {
                if let (false, Some(due)) = (sent.succeeded, pending) {
                    // The lane's first waiting delivery is due at its own
                    // next attempt; later ones only wait behind it.
                    let due = due.unwrap_or(now);
                    self.store
                        .enqueue_delivery(
                            &p.hook.webhook_id,
                            &p.delivery_id,
                            &p.order,
                            &p.event,
                            sent.attempts,
                            due,
                            now,
                        )
                        .await?;
                }
                self.store
                    .record_delivery(
                        &p.hook.webhook_id,
                        &p.delivery_id,
                        &p.event,
                        &sent,
                        now_ms(),
                        if sent.succeeded { None } else { pending },
                    )
                    .await
            };
            if saved.await.is_err() {
                // This record and every later one is retried; what succeeded
                // so far has its history entry and is not sent again.
                result.broken_at = Some(p.record);
                return result;
            }
            if sent.succeeded {
                result.delivered += 1;
            } else if pending.is_some() {
                behind = true;
                result.pending += 1;
            } else {
                result.failed += 1;
            }
        }
        result
    }

    /// The scheduled run (every minute in AWS, every few seconds under
    /// `make run`): finds the due lanes with one Query of the due index and
    /// works them concurrently, each in order.
    pub async fn retry_due(&self) -> ApiResult<RunReport> {
        let due = self.store.due_lanes(now_ms(), DUE_LANES_PER_RUN).await?;
        let mut report = RunReport {
            lanes: due.len(),
            ..Default::default()
        };
        if due.is_empty() {
            return Ok(report);
        }
        let hooks: HashMap<String, Arc<Webhook>> = self
            .store
            .list_webhooks()
            .await?
            .into_iter()
            .map(|h| (h.webhook_id.clone(), Arc::new(h)))
            .collect();
        let results: Vec<ApiResult<LaneResult>> =
            futures_util::stream::iter(due.into_iter().map(|lane| {
                let this = self.clone();
                let hook = hooks.get(&lane.webhook_id).cloned();
                async move { this.retry_lane(lane, hook).await }
            }))
            .buffer_unordered(LANES)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(r) => {
                    report.delivered += r.delivered;
                    report.failed_deliveries += r.failed;
                    report.pending += r.pending;
                }
                // The lane stays claimed until CLAIM_MS passes, then it is due again.
                Err(e) => tracing::warn!(error = e.message(), "a due lane could not be worked"),
            }
        }
        Ok(report)
    }

    /// One due lane: its waiting deliveries in order, one attempt each, until
    /// one fails again (the lane is due at its next attempt) or none is left.
    /// A disabled or deleted webhook receives nothing: its waiting deliveries fail.
    async fn retry_lane(&self, lane: DueLane, hook: Option<Arc<Webhook>>) -> ApiResult<LaneResult> {
        let mut result = LaneResult::default();
        let Some(version) = self.store.claim_lane(&lane, now_ms()).await? else {
            return Ok(result);
        };
        let (webhook_id, incident_id) = (&lane.webhook_id, &lane.incident_id);
        let entries = self
            .store
            .lane_entries(webhook_id, incident_id, ENTRIES_PER_LANE)
            .await?;
        for w in &entries {
            let (sent, next) = match hook.as_deref().filter(|h| h.enabled) {
                None => {
                    let mut sent =
                        not_attempted("not delivered: the webhook was disabled or deleted");
                    sent.attempts = w.attempts;
                    (sent, None)
                }
                Some(hook) => {
                    let req = build(hook, &w.event.body, now_ms(), &self.ctx);
                    let mut sent = self.sender.send_attempts(&req, 1).await;
                    sent.attempts += w.attempts;
                    let next = if sent.retryable {
                        self.schedule.next_attempt(w.since_ms, now_ms())
                    } else {
                        None
                    };
                    (sent, next)
                }
            };
            tracing::info!(
                webhook_id = %webhook_id,
                event_type = %w.event.event_type,
                event_id = %w.event.event_id,
                succeeded = sent.succeeded,
                pending = next.is_some(),
                attempts = sent.attempts,
                http_status = sent.http_status,
                "webhook delivery retried"
            );
            crate::metrics::delivery(match (sent.succeeded, next) {
                (true, _) => "delivered",
                (false, Some(_)) => "pending",
                (false, None) => "failed",
            });
            if let (false, Some(due)) = (sent.succeeded, next) {
                self.store.count_attempt(webhook_id, &w.sk).await?;
                self.store
                    .record_delivery(
                        webhook_id,
                        &w.delivery_id,
                        &w.event,
                        &sent,
                        now_ms(),
                        Some(Some(due)),
                    )
                    .await?;
                self.store
                    .reschedule_lane(webhook_id, incident_id, due)
                    .await?;
                result.pending += 1;
                return Ok(result);
            }
            self.store
                .record_delivery(webhook_id, &w.delivery_id, &w.event, &sent, now_ms(), None)
                .await?;
            self.store.dequeue_delivery(webhook_id, &w.sk).await?;
            if sent.succeeded {
                result.delivered += 1;
            } else {
                result.failed += 1;
            }
        }
        let more = entries.len() as i32 >= ENTRIES_PER_LANE;
        if more
            || !self
                .store
                .close_lane(webhook_id, incident_id, version)
                .await?
        {
            // More entries, or the stream added some since the claim: due now.
            self.store
                .reschedule_lane(webhook_id, incident_id, now_ms())
                .await?;
        }
        Ok(result)
    }
}

/// What becomes of a delivery that did not succeed now.
enum Next {
    /// It waits behind an earlier delivery of its lane.
    Behind,
    /// It is tried again then.
    At(i64),
    /// It has failed for good (a final answer, or past its 24 hours).
    Never,
}

impl Notifier {
    /// After a failure at `now` of a delivery first handled at `since`.
    fn next(&self, since: i64, now: i64) -> Next {
        match self.schedule.next_attempt(since, now) {
            Some(at) => Next::At(at),
            None => Next::Never,
        }
    }
}

fn not_attempted(why: &str) -> Sent {
    Sent {
        succeeded: false,
        attempts: 0,
        http_status: None,
        duration_ms: 0,
        error: Some(why.into()),
        unreachable: false,
        retryable: false,
    }
}

#[derive(Default)]
struct LaneResult {
    delivered: usize,
    failed: usize,
    pending: usize,
    broken_at: Option<usize>,
}

/// Every (change, webhook) pair to deliver, in record order.
fn plan(records: &[EventRecord], works: &[RecordWork], hooks: &[Arc<Webhook>]) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (record, w) in works.iter().enumerate() {
        let order = records
            .get(record)
            .and_then(|r| r.change.sequence_number.clone())
            .unwrap_or_default();
        for ev in &w.events {
            for hook in hooks
                .iter()
                .filter(|h| h.wants(&ev.event_type, &ev.channel_id))
            {
                planned.push(Planned {
                    record,
                    order: order.clone(),
                    hook: Arc::clone(hook),
                    delivery_id: delivery_id(&hook.webhook_id, &ev.event_id),
                    event: ev.clone(),
                });
            }
        }
        if let Some(r) = &w.resend {
            // A disabled webhook receives nothing, resends included.
            match hooks
                .iter()
                .find(|h| h.webhook_id == r.webhook_id && h.enabled)
            {
                Some(hook) => planned.push(Planned {
                    record,
                    order: order.clone(),
                    hook: Arc::clone(hook),
                    delivery_id: r.delivery_id.clone(),
                    event: r.event.clone(),
                }),
                None => tracing::info!("resend of a deleted or disabled webhook dropped"),
            }
        }
    }
    planned
}
