//! The push path: apply one standard event to its alert and incident.
//!
//! Every write is conditional on what was read (the head's `version`, the
//! incident's status and counters, the group pointer), and every change that
//! touches several items is one transaction. When a condition fails, the
//! state is read again and the engine asked again, a bounded number of times.
//!
//! Why one file of about 1,200 lines: the retry loop of `apply_event_via`
//! and the writes it chooses between (head only, update, recover, open or
//! join, marked) share the private `Hints` and `WriteFailure` that carry what
//! a refused write taught the next attempt; inhibition, merges and route
//! memory, which need none of that, are modules of their own.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::Serialize;

use crate::store::db::{backoff, Cancelled};
use crate::store::incidents::timeline::entry_value;
use crate::store::items::*;
use crate::store::{build_error, storage_error, StaleLooks, Store, Units};
use merge::Joiner;

pub mod inhibition;
pub mod merge;
pub mod route_memory;
use crate::domain::event::StandardEvent;
use crate::domain::mark::Mark;
use crate::engine::escalation::{self, CompiledEscalation};
use crate::engine::step::{self, TimelineEntry};
use crate::engine::{self, Decision, Fingerprint, NewAlert, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::model::{AlertHead, Channel, IncidentStatus};
use crate::rules::channel::{CompiledInhibit, Verdict};

/// Conflicts (another instance wrote first) are retried, with fresh state,
/// until this much time has passed since the event's first attempt. A storm
/// of merges into one incident from many instances drains at the rate the
/// incident item takes writes; the budget keeps every push inside the
/// function's 15 s timeout.
pub const RETRY_BUDGET: Duration = Duration::from_secs(10);
/// And at most this many attempts (tests lower it to provoke exhaustion).
pub const MAX_ATTEMPTS: u32 = 10_000;
/// How long a shared integration remembers the channels a key's firing went
/// to, so that its `Ok` reaches them whatever the routes say about an `Ok`.
pub const ROUTE_MEMORY_SECS: i64 = 90 * 86_400;

/// What one event did, as the push response reports it: `alert_id` and
/// `incident_id` are null when none was stored or none was joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub alert_key: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    pub alert_id: Option<String>,
    pub incident_id: Option<String>,
}

impl Applied {
    pub(crate) fn new(ev: &StandardEvent, outcome: Outcome, head: Option<&AlertHead>) -> Self {
        // A placeholder head (an `Ok` seen before any alert) has no ids to report.
        let head = head.filter(|h| !h.alert_id.is_empty());
        Applied {
            alert_key: ev.alert_key.clone(),
            outcome,
            channel_id: None,
            alert_id: head.map(|h| h.alert_id.clone()),
            incident_id: head
                .filter(|h| !h.incident_id.is_empty())
                .map(|h| h.incident_id.clone()),
        }
    }
}

/// What a channel's silence and inhibit rules say about one event, as far as
/// the push path knows without storage.
#[derive(Clone, Debug, Default)]
pub struct EventRules<'a> {
    /// The silence verdict (pure: the rule's window and conditions).
    pub silence: Option<Verdict>,
    /// The enabled inhibit rules whose `target_if` the event matches.
    pub inhibit: Vec<&'a CompiledInhibit>,
    /// Every enabled inhibit rule of the channel: the event's alert is listed
    /// as a source of those whose `source_if` it matches (recoveries too: they
    /// withdraw it).
    pub sources: &'a [CompiledInhibit],
    /// The channel's escalation rules: a new incident starts its chain.
    pub escalation: Option<&'a CompiledEscalation>,
}

/// Why a write did not happen.
#[derive(Clone)]
pub(crate) enum WriteFailure {
    /// Someone changed what we read: read again.
    Conflict,
    /// Only the incident was not as guessed; the head read is still good.
    IncidentMismatch {
        incident: Option<Item>,
    },
    Fatal(ApiError),
}

/// What we learned about the incident side between attempts.
#[derive(Default)]
struct Hints<'r> {
    head: Option<Option<AlertHead>>,
    /// Active-alert count of the alert's incident, from a failed condition.
    incident_active: Option<i64>,
    /// `Some(None)`: the group has no incident. `Some(Some(id))`: it points at `id`.
    group: Option<Option<String>>,
    /// The group's incident refused the merge (closed or out of window).
    group_incident_unusable: bool,
    /// The inhibition verdict, once asked (a retry does not query again).
    inhibition: Option<Verdict>,
    /// The channel's inhibit rules, for the index of inhibition sources.
    sources: &'r [CompiledInhibit],
    /// The channel's escalation rules.
    escalation: Option<&'r CompiledEscalation>,
}

impl Store {
    /// Apply `ev` to its alert in `channel`. Answers what happened; an
    /// `InternalError` means nothing of this event was written.
    pub async fn apply_event(
        &self,
        channel: &Channel,
        ev: &StandardEvent,
        now_ms: i64,
    ) -> ApiResult<Applied> {
        self.apply_event_via(channel, ev, now_ms, None, &EventRules::default())
            .await
    }

    /// [`Store::apply_event`] for an event that a shared integration routed:
    /// a new alert records its channel under `(integration, alert_key)`, so
    /// that the key's `Ok` finds it ([`Store::remembered_channels`]).
    pub async fn apply_event_via(
        &self,
        channel: &Channel,
        ev: &StandardEvent,
        now_ms: i64,
        shared_integration: Option<&str>,
        rules: &EventRules<'_>,
    ) -> ApiResult<Applied> {
        let fp = engine::fingerprint(ev);
        let mut hints = Hints {
            sources: rules.sources,
            escalation: rules.escalation,
            ..Hints::default()
        };
        let started = Instant::now();
        let mut attempt = 0;
        while attempt < self.max_attempts && started.elapsed() < self.retry_budget {
            if attempt > 0 {
                backoff(attempt).await;
            }
            attempt += 1;
            // Whether `head` is only a look (eventually consistent, maybe stale).
            let mut guessed = false;
            let head = match hints.head.take() {
                Some(head) => head,
                None if ev.event_status.is_ok() => {
                    self.get_head(&channel.channel_id, &ev.alert_key).await?
                }
                None if attempt == 1 => {
                    // A look first, at half a read unit: only an event that
                    // looks like a duplicate tries the duplicate write (a
                    // refused conditional write is billed a write unit).
                    // Anything else goes on with what it saw: every write it
                    // makes is conditional on the version seen, and an answer
                    // that writes nothing is confirmed by a strong read.
                    let seen = self.peek_head(&channel.channel_id, &ev.alert_key).await?;
                    if engine::decide(seen.as_ref(), ev, &fp, now_ms) == Decision::Duplicate {
                        match self
                            .try_duplicate(&channel.channel_id, ev, &fp, now_ms)
                            .await?
                        {
                            Ok(updated) => {
                                return Ok(Applied::new(ev, Outcome::Deduplicated, Some(&updated)))
                            }
                            Err(current) => current,
                        }
                    } else {
                        guessed = true;
                        seen
                    }
                }
                None => match self
                    .try_duplicate(&channel.channel_id, ev, &fp, now_ms)
                    .await?
                {
                    Ok(updated) => {
                        return Ok(Applied::new(ev, Outcome::Deduplicated, Some(&updated)))
                    }
                    Err(current) => current,
                },
            };
            let decision = engine::decide(head.as_ref(), ev, &fp, now_ms);
            let mark = if engine::meets_channel_rules(head.as_ref(), decision) {
                match self.verdict(channel, ev, rules, now_ms, &mut hints).await? {
                    Verdict::Drop(outcome) => {
                        if guessed && !self.look_holds(channel, ev, &head, &mut hints).await? {
                            continue;
                        }
                        return Ok(Applied::new(ev, outcome, None));
                    }
                    Verdict::Mark(mark) => Some(mark),
                    Verdict::Pass => None,
                }
            } else {
                None
            };
            let lifting = head.as_ref().is_some_and(|h| h.active && h.is_marked());
            let result = match (decision, mark) {
                (Decision::Nothing(outcome), _) => {
                    if guessed && !self.look_holds(channel, ev, &head, &mut hints).await? {
                        continue;
                    }
                    return Ok(Applied::new(ev, outcome, head.as_ref()));
                }
                (_, Some(mark)) => {
                    self.write_marked(
                        channel,
                        head.as_ref(),
                        ev,
                        &fp,
                        decision,
                        mark,
                        now_ms,
                        shared_integration,
                        &hints,
                    )
                    .await
                }
                (Decision::Duplicate | Decision::Refresh | Decision::Update, None) if lifting => {
                    self.write_open(
                        channel,
                        head.as_ref(),
                        ev,
                        &fp,
                        now_ms,
                        shared_integration,
                        OpenPlan::Lift(decision),
                        &mut hints,
                    )
                    .await
                }
                (Decision::Duplicate | Decision::Refresh | Decision::Watermark, None) => {
                    self.write_head_only(channel, head.as_ref(), ev, &fp, decision, now_ms, &hints)
                        .await
                }
                (Decision::Update, None) => {
                    self.write_update(channel, head.as_ref(), ev, &fp, now_ms, &hints)
                        .await
                }
                (Decision::Recover, None) => {
                    self.write_recover(channel, head.as_ref(), ev, &fp, now_ms, &hints)
                        .await
                }
                (Decision::Open, None) => {
                    self.write_open(
                        channel,
                        head.as_ref(),
                        ev,
                        &fp,
                        now_ms,
                        shared_integration,
                        OpenPlan::Fresh,
                        &mut hints,
                    )
                    .await
                }
            };
            match result {
                Ok(applied) => return Ok(applied),
                Err(WriteFailure::Fatal(e)) => return Err(e),
                Err(WriteFailure::Conflict) => {}
                Err(WriteFailure::IncidentMismatch { incident }) => {
                    if matches!(decision, Decision::Open) {
                        // The group's incident refused the merge: closed,
                        // sealed or past its window, as the engine judges the
                        // incident returned. Open a new one for the group (or,
                        // when it still takes alerts, join it again).
                        hints.group_incident_unusable = incident
                            .as_ref()
                            .is_none_or(|item| !incident_takes_alerts(item, now_ms));
                        hints.head = Some(head);
                        continue;
                    }
                    // DynamoDB returns the item whose condition failed; if it
                    // did not, read it rather than guess.
                    let incident = match incident {
                        Some(item) => Some(item),
                        None => match &head {
                            Some(h) => self.get_incident_item(&h.incident_id).await?,
                            None => None,
                        },
                    };
                    let closed = incident
                        .as_ref()
                        .and_then(|i| get_opt_s(i, "status"))
                        .is_none_or(|s| s == IncidentStatus::Closed.as_str());
                    if closed {
                        // The incident was closed by hand while this alert was
                        // still marked open: close the alert, then re-decide.
                        if let Some(h) = &head {
                            self.close_orphaned_head(h, now_ms).await?;
                        }
                    } else {
                        hints.incident_active = incident
                            .as_ref()
                            .and_then(|i| get_opt_n(i, "active_alert_count"));
                        hints.head = Some(head);
                    }
                    continue;
                }
            }
        }
        tracing::warn!(
            alert_key_len = ev.alert_key.len(),
            "conflict retries exhausted"
        );
        Err(ApiError::internal(format!(
            "too many concurrent changes to this alert; gave up after {attempt} attempts, nothing was written; retry the request"
        )))
    }

    pub async fn get_head(
        &self,
        channel_id: &str,
        alert_key: &str,
    ) -> ApiResult<Option<AlertHead>> {
        self.get(head_pk(channel_id, alert_key), HEAD_SK)
            .await?
            .as_ref()
            .map(item_to_head)
            .transpose()
    }

    async fn peek_head(&self, channel_id: &str, alert_key: &str) -> ApiResult<Option<AlertHead>> {
        let pk = head_pk(channel_id, alert_key);
        let item = match self.stale_looks {
            StaleLooks::Off => self.peek(pk, HEAD_SK).await?,
            StaleLooks::Nothing => {
                self.count(Units::Read, None);
                None
            }
            StaleLooks::Frozen => {
                let first_seen = self
                    .frozen_looks
                    .lock()
                    .ok()
                    .and_then(|seen| seen.get(&pk).cloned());
                match first_seen {
                    Some(item) => item,
                    None => {
                        let item = self.peek(pk.clone(), HEAD_SK).await?;
                        if let Ok(mut seen) = self.frozen_looks.lock() {
                            seen.insert(pk, item.clone());
                        }
                        item
                    }
                }
            }
        };
        item.as_ref().map(item_to_head).transpose()
    }

    /// Before an answer that writes nothing rests on a look: whether a strong
    /// read shows the same head. If not, the strong read is the next
    /// attempt's head.
    async fn look_holds(
        &self,
        channel: &Channel,
        ev: &StandardEvent,
        seen: &Option<AlertHead>,
        hints: &mut Hints<'_>,
    ) -> ApiResult<bool> {
        let current = self.get_head(&channel.channel_id, &ev.alert_key).await?;
        let same = current.as_ref().map(|h| h.version) == seen.as_ref().map(|h| h.version);
        if !same {
            hints.head = Some(current);
        }
        Ok(same)
    }

    /// Layer 1 in one write: if the open alert's last event has this exact
    /// content and is older, bump the counters. Otherwise answers the current
    /// head (from the failed condition), so the slow path needs no extra read.
    async fn try_duplicate(
        &self,
        channel_id: &str,
        ev: &StandardEvent,
        fp: &Fingerprint,
        now_ms: i64,
    ) -> ApiResult<Result<AlertHead, Option<AlertHead>>> {
        // A marked alert's repeat goes the slow way: it may lift the mark.
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(head_pk(channel_id, &ev.alert_key), HEAD_SK)))
            .condition_expression(
                "active = :true AND last_content = :content AND last_time < :t \
                 AND attribute_not_exists(silenced_by) AND attribute_not_exists(inhibited_by)",
            );
        let request = request.update_expression(
            "SET last_time = :t, recent_contents = :contents, last_event_at = :now \
             ADD event_count :one, duplicate_count :one, version :one",
        );
        let result = request
            .expression_attribute_values(":true", b(true))
            .expression_attribute_values(":content", s(&fp.content))
            .expression_attribute_values(":t", n(ev.event_time_ms))
            .expression_attribute_values(
                ":contents",
                AttributeValue::M(std::collections::HashMap::from([(
                    fp.content.clone(),
                    n(now_ms),
                )])),
            )
            .expression_attribute_values(":now", n(now_ms / 1000))
            .expression_attribute_values(":one", n(1))
            // The head as it was: its ids are what the answer reports, and its
            // last event's minute says whether its source entries need a refresh.
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                let item = out
                    .attributes()
                    .ok_or_else(|| ApiError::internal("update returned no item"))?;
                let mut head = item_to_head(item)?;
                let now_s = now_ms / 1000;
                // Sources count to the minute: a repeat in the same minute
                // leaves their entries alone.
                if !head.source_keys.is_empty()
                    && head.last_event_at.div_euclid(60) < now_s.div_euclid(60)
                {
                    head.last_event_at = now_s;
                    if let Err(e) = self.refresh_sources(&head).await {
                        // The repeat is applied; a source left a minute stale
                        // is refreshed by its next event.
                        tracing::warn!(error = %e, "inhibition source refresh failed");
                    }
                }
                Ok(Ok(head))
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    self.count_refused_write(e.item());
                    Ok(Err(e.item().map(item_to_head).transpose()?))
                }
                _ => {
                    self.count(Units::Write, None);
                    Err(storage_error("UpdateItem", err))
                }
            },
        }
    }

    fn head_put(
        &self,
        next: &AlertHead,
        previous: Option<&AlertHead>,
    ) -> Result<Put, WriteFailure> {
        let builder = Put::builder()
            .table_name(&self.table)
            .set_item(Some(head_to_item(next)));
        let builder = match previous {
            Some(p) => builder
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(p.version)),
            None => builder.condition_expression("attribute_not_exists(pk)"),
        };
        builder
            .build()
            .map_err(|e| WriteFailure::Fatal(build_error(e)))
    }

    /// The event's place in its alert's history: `sequence` is the alert's
    /// event count once it is applied, unique per alert, so a stored event is
    /// never overwritten (history is append-only).
    fn event_put(
        &self,
        next: &AlertHead,
        ev: &StandardEvent,
        now_ms: i64,
    ) -> Result<Put, WriteFailure> {
        let expires_at = now_ms / 1000 + self.event_retention_secs;
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(event_item(
                &next.alert_id,
                ev,
                next.event_count,
                expires_at,
            )))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| WriteFailure::Fatal(build_error(e)))
    }

    fn plain_put(&self, item: Item) -> Result<Put, WriteFailure> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| WriteFailure::Fatal(build_error(e)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_head_only(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        fp: &Fingerprint,
        decision: Decision,
        now_ms: i64,
        hints: &Hints<'_>,
    ) -> Result<Applied, WriteFailure> {
        let Some(mut next) =
            engine::next_head(head, &channel.channel_id, ev, fp, decision, None, now_ms)
        else {
            return Err(WriteFailure::Conflict);
        };
        let sources = self.source_writes(hints.sources, head, &mut next)?;
        let outcome = match decision {
            Decision::Duplicate => Outcome::Deduplicated,
            Decision::Refresh => Outcome::Refreshed,
            _ => Outcome::Ignored,
        };
        if !sources.is_empty() {
            // A source alert's entries move with its head, atomically.
            let mut items = vec![TransactWriteItem::builder()
                .put(self.head_put(&next, head)?)
                .build()];
            items.extend(sources);
            self.transact(items, None).await?;
            return Ok(Applied::new(ev, outcome, Some(&next)));
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head_to_item(&next)))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        let request = match head {
            Some(p) => request
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(p.version)),
            None => request.condition_expression("attribute_not_exists(pk)"),
        };
        let result = request
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => self.count(Units::Write, out.consumed_capacity()),
            Err(err) => {
                return match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => {
                        self.count_refused_write(e.item());
                        Err(WriteFailure::Conflict)
                    }
                    _ => {
                        self.count(Units::Write, None);
                        Err(WriteFailure::Fatal(storage_error("PutItem", err)))
                    }
                };
            }
        }
        Ok(Applied::new(ev, outcome, Some(&next)))
    }

    async fn write_update(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        fp: &Fingerprint,
        now_ms: i64,
        hints: &Hints<'_>,
    ) -> Result<Applied, WriteFailure> {
        let Some(current) = head else {
            return Err(WriteFailure::Conflict);
        };
        let Some(mut next) = engine::next_head(
            head,
            &channel.channel_id,
            ev,
            fp,
            Decision::Update,
            None,
            now_ms,
        ) else {
            return Err(WriteFailure::Conflict);
        };
        let sources = self.source_writes(hints.sources, head, &mut next)?;
        let mut items = self.kept_alert_items(&next, head, ev, Decision::Update, now_ms)?;
        let incident_index = items.len();
        // Always conditional on the incident being open: an alert whose
        // incident was closed by hand must not take state changes.
        let step = step::alert_changed(
            &current.incident_id,
            &channel.channel_id,
            engine::raises_incident_severity(current, ev).then_some(ev.event_status),
            now_ms,
        );
        items.push(self.incident_write(&step).map_err(WriteFailure::Fatal)?);
        items.extend(sources);
        self.transact(items, Some(incident_index)).await?;
        Ok(Applied::new(ev, Outcome::Updated, Some(&next)))
    }

    async fn write_recover(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        fp: &Fingerprint,
        now_ms: i64,
        hints: &Hints<'_>,
    ) -> Result<Applied, WriteFailure> {
        let Some(current) = head else {
            return Err(WriteFailure::Conflict);
        };
        let Some(mut next) = engine::next_head(
            head,
            &channel.channel_id,
            ev,
            fp,
            Decision::Recover,
            None,
            now_ms,
        ) else {
            return Err(WriteFailure::Conflict);
        };
        // A recovered alert inhibits nothing from now on.
        let sources = self.source_writes(hints.sources, head, &mut next)?;
        if current.incident_id.is_empty() {
            // A silenced or inhibited alert recovers on its own: no incident counts it.
            let mut items = self.kept_alert_items(&next, head, ev, Decision::Recover, now_ms)?;
            items.extend(sources);
            self.transact(items, None).await?;
            return Ok(Applied::new(ev, Outcome::Recovered, Some(&next)));
        }
        // Guess the incident's open alerts: with no grouping this alert is
        // its only one; otherwise more, and a refused guess tells the count.
        let active = hints.incident_active.unwrap_or(
            if channel.grouping.method == crate::model::GroupingMethod::None {
                1
            } else {
                2
            },
        );
        let step = step::alert_recovered(
            &current.incident_id,
            &channel.channel_id,
            active,
            channel.auto_close,
            now_ms,
        )
        .map_err(WriteFailure::Fatal)?;
        let mut items = self.kept_alert_items(&next, head, ev, Decision::Recover, now_ms)?;
        let incident_index = items.len();
        items.extend(self.step_items(&step).map_err(WriteFailure::Fatal)?);
        items.extend(sources);
        self.transact(items, Some(incident_index)).await?;
        Ok(Applied::new(ev, Outcome::Recovered, Some(&next)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_open(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        fp: &Fingerprint,
        now_ms: i64,
        shared_integration: Option<&str>,
        plan: OpenPlan,
        hints: &mut Hints<'_>,
    ) -> Result<Applied, WriteFailure> {
        let group = engine::group_key(&channel.grouping, ev);
        if let Some(g) = &group {
            if hints.group.is_none() {
                hints.group = Some(
                    self.get_group_incident(&channel.channel_id, g)
                        .await
                        .map_err(WriteFailure::Fatal)?,
                );
            }
        }
        let existing = match (&group, &hints.group) {
            (Some(_), Some(Some(incident_id))) if !hints.group_incident_unusable => {
                Some(incident_id.clone())
            }
            _ => None,
        };
        let incident_id = match &existing {
            Some(id) => id.clone(),
            None => crate::ids::new_incident_id().map_err(WriteFailure::Fatal)?,
        };
        // SPEC 11: whether the key flaps (only a new alert counts).
        let (flap_state, flapping) = match plan {
            OpenPlan::Fresh => self
                .flapping_on_open(channel, &ev.alert_key, now_ms)
                .await
                .map_err(WriteFailure::Fatal)?,
            OpenPlan::Lift(_) => (None, false),
        };
        let (next, mut items, entries) = match plan {
            OpenPlan::Fresh => {
                let mut next = self.fresh_alert(channel, head, ev, fp, now_ms, &incident_id)?;
                // What the timeline records; a new alert whose id names the
                // incident carries the opening's entry on its record.
                let on_record = crate::ids::is_alert_of(&next.alert_id, &incident_id);
                let entries = step::opening_entries(
                    existing.is_none(),
                    &next.alert_id,
                    on_record,
                    flapping,
                    now_ms,
                )
                .map_err(WriteFailure::Fatal)?;
                let sources = self.source_writes(hints.sources, head, &mut next)?;
                let mut items = self.fresh_alert_items(
                    channel,
                    head,
                    &next,
                    ev,
                    now_ms,
                    shared_integration,
                    entries.first().filter(|_| on_record),
                )?;
                items.extend(sources);
                (next, items, entries)
            }
            OpenPlan::Lift(decision) => {
                // The alert's mark lifts: it keeps its id and history and
                // opens or joins an incident like a new alert.
                let Some(current) = head else {
                    return Err(WriteFailure::Conflict);
                };
                let mut next =
                    engine::next_head(head, &channel.channel_id, ev, fp, decision, None, now_ms)
                        .ok_or(WriteFailure::Conflict)?;
                next.mark = None;
                next.incident_id = incident_id.clone();
                let sources = self.source_writes(hints.sources, head, &mut next)?;
                let unassigned = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(
                        alert_record_pk(current),
                        alert_record_sk(&current.alert_id),
                    )))
                    .build()
                    .map_err(|e| WriteFailure::Fatal(build_error(e)))?;
                // The record moves to the incident's partition with the
                // first event it holds (it never changes, so this read
                // cannot be stale; the head's version guards the rest).
                let first_event = self
                    .get(
                        alert_record_pk(current),
                        &alert_record_sk(&current.alert_id),
                    )
                    .await
                    .map_err(WriteFailure::Fatal)?
                    .and_then(|mut record| record.remove(FIRST_EVENT));
                let mut items = self.kept_alert_items(&next, head, ev, decision, now_ms)?;
                items.extend(sources);
                items.push(TransactWriteItem::builder().delete(unassigned).build());
                items.push(
                    TransactWriteItem::builder()
                        .put(self.plain_put(live_record(&next, first_event, None))?)
                        .build(),
                );
                let entries =
                    step::opening_entries(existing.is_none(), &next.alert_id, false, false, now_ms)
                        .map_err(WriteFailure::Fatal)?;
                (next, items, entries)
            }
        };
        // The entry a record carries is not written to the timeline again.
        let on_record: Option<String> = entries
            .first()
            .filter(|e| e.id == next.alert_id)
            .map(|e| e.id.clone());
        items.extend(flap_state);
        if let Some(id) = &existing {
            // The head, the record (its first event is the head's size again)
            // and the superseded alert's snapshot (its head, with its
            // closing event), against the transaction's size limit.
            let bytes = 2 * item_bytes(&head_to_item(&next))
                + head.map_or(0, |h| item_bytes(&head_to_item(h)))
                + 2 * 1024;
            let joined = self
                .join_incident(
                    id,
                    &channel.grouping,
                    Joiner {
                        now_ms,
                        head_pk: head_pk(&channel.channel_id, &ev.alert_key),
                        items,
                        severity: ev.event_status,
                        bytes,
                        entries,
                        on_record,
                        flapping,
                        channel_id: channel.channel_id.clone(),
                    },
                )
                .await;
            return match joined {
                Ok(()) => Ok(Applied::new(ev, Outcome::Merged, Some(&next))),
                Err(WriteFailure::Conflict) => {
                    // The group pointer may have moved: read it again next time.
                    hints.group = None;
                    hints.group_incident_unusable = false;
                    Err(WriteFailure::Conflict)
                }
                Err(other) => Err(other),
            };
        }

        let incident_index = items.len();
        let opening = step::Opening {
            title: ev.title.clone(),
            labels: ev.labels.clone(),
            severity: ev.event_status,
            merge_deadline_ms: if group.is_some() {
                engine::merge_deadline(&channel.grouping, now_ms, now_ms)
            } else {
                0
            },
            group_key: group.clone(),
            flapping,
        };
        // SPEC 14: the chain starts with the incident, in the same write.
        let chain = hints.escalation.and_then(|rules| {
            escalation::begin(
                rules,
                opening.severity.as_str(),
                &opening.title,
                &opening.labels,
                opening.flapping,
                now_ms,
            )
        });
        let opens =
            step::open_incident(&incident_id, &channel.channel_id, opening, entries, now_ms)
                .with_chain(chain.map(|chain| step::ChainChange {
                    expected_version: None,
                    chain,
                    responders: None,
                }));
        let carried: Vec<&str> = on_record.iter().map(String::as_str).collect();
        items.extend(
            self.step_items_but(&opens, &carried)
                .map_err(WriteFailure::Fatal)?,
        );
        if let Some(g) = &group {
            let mut pointer = key(group_pk(&channel.channel_id, g), "GROUP");
            pointer.insert("incident_id".into(), s(&incident_id));
            let builder = Put::builder()
                .table_name(&self.table)
                .set_item(Some(pointer));
            let builder = match &hints.group {
                Some(Some(old)) => builder
                    .condition_expression("incident_id = :old")
                    .expression_attribute_values(":old", s(old)),
                _ => builder.condition_expression("attribute_not_exists(pk)"),
            };
            let put = builder
                .build()
                .map_err(|e| WriteFailure::Fatal(build_error(e)))?;
            items.push(TransactWriteItem::builder().put(put).build());
            if let Some(Some(old)) = &hints.group {
                // The group moves on: seal the incident it leaves, so that an
                // instance whose clock still sees it inside its window cannot
                // merge into it (one open incident per group).
                let seal = step::seal(old, &channel.channel_id, now_ms);
                items.push(self.incident_write(&seal).map_err(WriteFailure::Fatal)?);
            }
        }
        match self.transact(items, Some(incident_index)).await {
            Ok(()) => Ok(Applied::new(ev, Outcome::NewIncident, Some(&next))),
            Err(WriteFailure::Conflict | WriteFailure::IncidentMismatch { .. }) => {
                // The group pointer may have moved: read it again next time.
                hints.group = None;
                hints.group_incident_unusable = false;
                Err(WriteFailure::Conflict)
            }
            Err(other) => Err(other),
        }
    }

    /// The head of a new alert of `ev`'s key, in `incident_id` (empty: none).
    fn fresh_alert(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        fp: &Fingerprint,
        now_ms: i64,
        incident_id: &str,
    ) -> Result<AlertHead, WriteFailure> {
        let alert_id =
            crate::ids::new_alert_id(incident_id, now_ms).map_err(WriteFailure::Fatal)?;
        engine::next_head(
            head,
            &channel.channel_id,
            ev,
            fp,
            Decision::Open,
            Some(NewAlert {
                alert_id: &alert_id,
                incident_id,
            }),
            now_ms,
        )
        .ok_or(WriteFailure::Conflict)
    }

    /// An existing alert's items for `decision`: its head, and the event when
    /// the decision stores one as an item (an update; a recovery's event is
    /// held by the head, `closing_event`; a duplicate or a refresh stores none).
    fn kept_alert_items(
        &self,
        next: &AlertHead,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        decision: Decision,
        now_ms: i64,
    ) -> Result<Vec<TransactWriteItem>, WriteFailure> {
        let mut items = vec![TransactWriteItem::builder()
            .put(self.head_put(next, head)?)
            .build()];
        if decision == Decision::Update {
            items.push(
                TransactWriteItem::builder()
                    .put(self.event_put(next, ev, now_ms)?)
                    .build(),
            );
        }
        Ok(items)
    }

    /// A new alert's own items: its head, its record (which holds its first
    /// event, and `opening_entry` when given), the superseded alert's final
    /// record, and the route memory.
    #[allow(clippy::too_many_arguments)]
    fn fresh_alert_items(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        next: &AlertHead,
        ev: &StandardEvent,
        now_ms: i64,
        shared_integration: Option<&str>,
        opening_entry: Option<&TimelineEntry>,
    ) -> Result<Vec<TransactWriteItem>, WriteFailure> {
        let first_event = first_event_value(ev, next.event_count);
        let record = live_record(next, Some(first_event), opening_entry.map(entry_value));
        // A new record never exists: an id made twice (ids::new_alert_id has
        // 20 random bits per millisecond) refuses the write, which is tried again.
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| WriteFailure::Fatal(build_error(e)))?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.head_put(next, head)?)
                .build(),
            TransactWriteItem::builder().put(record).build(),
        ];
        if let Some(previous) = head.filter(|p| !p.alert_id.is_empty()) {
            // The superseded alert keeps its final state in its record.
            items.push(self.archive_record(previous)?);
        }
        if let Some(integration_id) = shared_integration {
            items.push(self.route_memory_update(integration_id, channel, ev, now_ms)?);
        }
        Ok(items)
    }

    /// The superseded alert's record takes its final snapshot: an update of
    /// every snapshot attribute, so the first event the record holds stays.
    fn archive_record(&self, previous: &AlertHead) -> Result<TransactWriteItem, WriteFailure> {
        let snapshot = alert_record(previous, true);
        let snapshot_names: std::collections::HashSet<String> = snapshot.keys().cloned().collect();
        let mut update = Update::builder().table_name(&self.table).set_key(Some(key(
            alert_record_pk(previous),
            alert_record_sk(&previous.alert_id),
        )));
        let mut sets = Vec::with_capacity(snapshot.len());
        for (i, (name, value)) in snapshot
            .into_iter()
            .filter(|(name, _)| name != "pk" && name != "sk")
            .enumerate()
        {
            sets.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        // A record written before records became pointers is a full snapshot:
        // what the final one lacks must go, or an old mark would outlive it.
        let mut removes = Vec::new();
        for (i, name) in ["closed_at", "silenced_by", "inhibited_by", "source_keys"]
            .into_iter()
            .filter(|name| !snapshot_names.contains(*name))
            .enumerate()
        {
            removes.push(format!("#r{i}"));
            update = update.expression_attribute_names(format!("#r{i}"), name);
        }
        let expression = if removes.is_empty() {
            format!("SET {}", sets.join(", "))
        } else {
            format!("SET {} REMOVE {}", sets.join(", "), removes.join(", "))
        };
        let update = update
            .update_expression(expression)
            .build()
            .map_err(|e| WriteFailure::Fatal(build_error(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// An event a silence or an inhibition marks: a new alert that joins no
    /// incident, or the next event of an alert that stays marked.
    #[allow(clippy::too_many_arguments)]
    async fn write_marked(
        &self,
        channel: &Channel,
        head: Option<&AlertHead>,
        ev: &StandardEvent,
        fp: &Fingerprint,
        decision: Decision,
        mark: Mark,
        now_ms: i64,
        shared_integration: Option<&str>,
        hints: &Hints<'_>,
    ) -> Result<Applied, WriteFailure> {
        let outcome = match mark {
            Mark::Silenced(_) => Outcome::Silenced,
            Mark::Inhibited(_) => Outcome::Inhibited,
        };
        let (next, items) = if decision == Decision::Open {
            let mut next = self.fresh_alert(channel, head, ev, fp, now_ms, "")?;
            next.mark = Some(mark);
            let sources = self.source_writes(hints.sources, head, &mut next)?;
            let mut items =
                self.fresh_alert_items(channel, head, &next, ev, now_ms, shared_integration, None)?;
            items.extend(sources);
            (next, items)
        } else {
            let mut next =
                engine::next_head(head, &channel.channel_id, ev, fp, decision, None, now_ms)
                    .ok_or(WriteFailure::Conflict)?;
            next.mark = Some(mark);
            let sources = self.source_writes(hints.sources, head, &mut next)?;
            let mut items = self.kept_alert_items(&next, head, ev, decision, now_ms)?;
            items.extend(sources);
            (next, items)
        };
        self.transact(items, None).await?;
        Ok(Applied::new(ev, outcome, Some(&next)))
    }

    async fn get_group_incident(&self, channel_id: &str, group: &str) -> ApiResult<Option<String>> {
        Ok(self
            .get(group_pk(channel_id, group), "GROUP")
            .await?
            .and_then(|i| get_opt_s(&i, "incident_id")))
    }

    /// Close an alert whose incident was closed by hand before the sweep reached it.
    /// `Ok(false)`: the head changed meanwhile and was left alone.
    pub(crate) async fn close_orphaned_head(
        &self,
        head: &AlertHead,
        now_ms: i64,
    ) -> ApiResult<bool> {
        let mut next = head.clone();
        next.active = false;
        next.closed_at = Some(now_ms / 1000);
        // Its incident is closed: it inhibits nothing (see alerts::inhibition).
        next.source_keys.clear();
        next.version += 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head_to_item(&next)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(head.version))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(true)
            }
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    self.count_refused_write(None);
                    Ok(false)
                }
                _ => {
                    self.count(Units::Write, None);
                    Err(storage_error("PutItem", err))
                }
            },
        }
    }

    /// Run a transaction. A failed condition on the item at `incident_index`
    /// (if the transaction touches an incident) alone is reported as an
    /// incident mismatch (with the incident as it is); anything else that was
    /// cancelled is a conflict.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        incident_index: Option<usize>,
    ) -> Result<(), WriteFailure> {
        match self.send_transaction(items).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Reasons(reasons)) => {
                let failed: Vec<usize> = reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code().is_some_and(|c| c != "None"))
                    .map(|(i, _)| i)
                    .collect();
                let incident_alone = incident_index.and_then(|i| {
                    (failed == [i] && reasons[i].code() == Some("ConditionalCheckFailed"))
                        .then(|| reasons[i].item().cloned())
                });
                match incident_alone {
                    Some(incident) => Err(WriteFailure::IncidentMismatch { incident }),
                    None => Err(WriteFailure::Conflict),
                }
            }
            Err(Cancelled::Fatal(e)) => Err(WriteFailure::Fatal(e)),
        }
    }
}
/// How an event comes to open or join an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenPlan {
    /// A new alert.
    Fresh,
    /// A marked alert whose mark lifts, applying this decision.
    Lift(Decision),
}

/// Whether an incident item (as a refused write returned it) takes a new
/// alert at `now_ms`: the engine's judgement of the join's guard.
fn incident_takes_alerts(item: &Item, now_ms: i64) -> bool {
    let Some(status) = get_opt_s(item, "status").and_then(|s| IncidentStatus::parse(&s)) else {
        return false;
    };
    step::takes_alerts(
        status,
        get_bool(item, "sealed").unwrap_or(false),
        get_opt_n(item, "merge_deadline").unwrap_or(0),
        now_ms,
    )
}
