//! Alerts joining one open incident, committed together.
//!
//! Every alert that joins an incident must count itself on the incident item
//! in the same transaction as its own items, so concurrent joins fight over
//! that one item. Joins of one instance (the alerts of a large push) are
//! queued per incident: whoever finds the queue idle commits what is waiting,
//! up to DynamoDB's transaction limits, with one incident update for the lot,
//! and answers each waiter. Joins from other instances still contend on the
//! item; they are retried within the store's retry budget.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use aws_sdk_dynamodb::types::TransactWriteItem;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::domain::event::EventStatus;
use crate::engine::step::{self, TimelineEntry};
use crate::error::ApiResult;
use crate::model::Grouping;
use crate::store::alerts::WriteFailure;
use crate::store::db::{backoff, Cancelled};
use crate::store::Store;

/// DynamoDB's limits on one transaction, with room for the incident update.
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;
/// Rounds a batch is retried when it lost to another writer, before its
/// members go back to deciding afresh.
const ROUNDS: u32 = 6;

/// One alert's share of a join: its own items (head, record, event, ...).
pub(crate) struct Joiner {
    /// The alert key's head: two joins of one key never share a transaction
    /// (DynamoDB refuses two operations on one item; one of them is stale anyway).
    pub head_pk: String,
    pub items: Vec<TransactWriteItem>,
    pub severity: EventStatus,
    /// When its event was received: the incident's window is judged at the
    /// latest of a batch's times.
    pub now_ms: i64,
    /// About how many bytes its items weigh.
    pub bytes: usize,
    /// Its timeline entries (`a_merge`, maybe `i_m_flapping`): the incident's `changes`.
    pub entries: Vec<TimelineEntry>,
    /// The entry its new record carries (its id is the alert's): not
    /// written to the timeline again, and no second join of that id in one
    /// transaction (an id made twice must fail its record's condition).
    pub on_record: Option<String>,
    /// Its key flaps: the incident is marked.
    pub flapping: bool,
    pub channel_id: String,
}

struct Waiting {
    joiner: Joiner,
    reply: oneshot::Sender<Result<(), WriteFailure>>,
}

#[derive(Default)]
struct Queue {
    committing: bool,
    waiting: VecDeque<Waiting>,
}

/// The per-incident queues of one instance.
#[derive(Default)]
pub struct MergeQueues {
    queues: Mutex<HashMap<String, Queue>>,
}

impl Store {
    /// Join `incident_id` with `joiner`'s items; answers once they are
    /// committed (or why not: the incident refused, or a member's own state
    /// moved and it must decide again).
    pub(crate) async fn join_incident(
        &self,
        incident_id: &str,
        grouping: &Grouping,
        joiner: Joiner,
    ) -> Result<(), WriteFailure> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let Ok(mut queues) = self.merges.queues.lock() else {
                return Err(WriteFailure::Conflict);
            };
            let queue = queues.entry(incident_id.to_string()).or_default();
            queue.waiting.push_back(Waiting { joiner, reply });
            !std::mem::replace(&mut queue.committing, true)
        };
        if lead {
            // A task of its own: a caller that goes away must not strand the queue.
            let store = self.clone();
            let incident_id = incident_id.to_string();
            let grouping = grouping.clone();
            tokio::spawn(
                async move { store.drain_joins(&incident_id, &grouping).await }
                    .instrument(tracing::Span::current()),
            );
        }
        answer.await.unwrap_or(Err(WriteFailure::Conflict))
    }

    async fn drain_joins(&self, incident_id: &str, grouping: &Grouping) {
        loop {
            let batch = {
                let Ok(mut queues) = self.merges.queues.lock() else {
                    return;
                };
                let Some(queue) = queues.get_mut(incident_id) else {
                    return;
                };
                if queue.waiting.is_empty() {
                    queues.remove(incident_id);
                    return;
                }
                let mut batch: Vec<Waiting> = Vec::new();
                let mut later = VecDeque::new();
                let (mut items, mut bytes) = (1, 0);
                while let Some(next) = queue.waiting.pop_front() {
                    let count = next.joiner.items.len() + next.joiner.entries.len()
                        - usize::from(next.joiner.on_record.is_some());
                    let fits = items + count <= MAX_TRANSACTION_ITEMS
                        && bytes + next.joiner.bytes <= MAX_TRANSACTION_BYTES;
                    if !fits && !batch.is_empty() {
                        queue.waiting.push_front(next);
                        break;
                    }
                    if batch.iter().any(|w| {
                        w.joiner.head_pk == next.joiner.head_pk
                            || (w.joiner.on_record.is_some()
                                && w.joiner.on_record == next.joiner.on_record)
                    }) {
                        later.push_back(next);
                        continue;
                    }
                    items += count;
                    bytes += next.joiner.bytes;
                    batch.push(next);
                }
                // Joins left for a later batch keep their place in the queue.
                while let Some(w) = later.pop_back() {
                    queue.waiting.push_front(w);
                }
                batch
            };
            self.commit_joins(incident_id, grouping, batch).await;
        }
    }

    async fn commit_joins(&self, incident_id: &str, grouping: &Grouping, mut batch: Vec<Waiting>) {
        for round in 0..ROUNDS {
            if batch.is_empty() {
                return;
            }
            if round > 0 {
                backoff(round).await;
            }
            let now_ms = batch
                .iter()
                .map(|w| w.joiner.now_ms)
                .max()
                .unwrap_or_default();
            let joins = match self.join_step(incident_id, grouping, now_ms, &batch) {
                Ok(items) => items,
                Err(e) => return answer_all(batch, Err(WriteFailure::Fatal(e))),
            };
            let mut items = Vec::new();
            let mut ranges = Vec::with_capacity(batch.len());
            for w in &batch {
                let start = items.len();
                items.extend(w.joiner.items.iter().cloned());
                ranges.push(start..items.len());
            }
            // The incident's write first, then the batch's timeline entries.
            let incident_index = items.len();
            items.extend(joins);
            match self.send_transaction(items).await {
                Ok(()) => return answer_all(batch, Ok(())),
                Err(Cancelled::Fatal(e)) => return answer_all(batch, Err(WriteFailure::Fatal(e))),
                Err(Cancelled::Reasons(reasons)) => {
                    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
                    if code(incident_index) == "ConditionalCheckFailed" {
                        let incident = reasons.get(incident_index).and_then(|r| r.item().cloned());
                        return answer_all(batch, Err(WriteFailure::IncidentMismatch { incident }));
                    }
                    // Members whose own items failed a condition go back to
                    // deciding; the rest try again together.
                    let mut kept = Vec::with_capacity(batch.len());
                    for (w, range) in batch.into_iter().zip(ranges) {
                        if range.clone().any(|i| code(i) == "ConditionalCheckFailed") {
                            let _ = w.reply.send(Err(WriteFailure::Conflict));
                        } else {
                            kept.push(w);
                        }
                    }
                    batch = kept;
                }
            }
        }
        answer_all(batch, Err(WriteFailure::Conflict));
    }

    /// The incident's side of a join, as the engine decides it for the
    /// whole batch: counters, severities, a sliding window's deadline, the
    /// batch's entries as the incident's `changes` (and its timeline items).
    fn join_step(
        &self,
        incident_id: &str,
        grouping: &Grouping,
        now_ms: i64,
        batch: &[Waiting],
    ) -> ApiResult<Vec<TransactWriteItem>> {
        let Some(first) = batch.first() else {
            return Ok(Vec::new());
        };
        let step = step::join_incident(
            incident_id,
            &first.joiner.channel_id,
            grouping,
            batch.len() as i64,
            batch.iter().map(|w| w.joiner.severity).collect(),
            batch.iter().any(|w| w.joiner.flapping),
            batch
                .iter()
                .flat_map(|w| w.joiner.entries.iter().cloned())
                .collect(),
            now_ms,
        );
        let carried: Vec<&str> = batch
            .iter()
            .filter_map(|w| w.joiner.on_record.as_deref())
            .collect();
        self.step_items_but(&step, &carried)
    }
}

fn answer_all(batch: Vec<Waiting>, result: Result<(), WriteFailure>) {
    for w in batch {
        let _ = w.reply.send(result.clone());
    }
}
