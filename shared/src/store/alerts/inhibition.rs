//! Inhibition by index (Alertmanager's `inhibit/index.go`, in DynamoDB).
//!
//! A source alert is listed once per inhibit rule whose `source_if` it
//! matches, in the partition `INH#{channel}#{rule}#{hash of its equals
//! values}` (sort key: its alert key), written in the same transaction as its
//! head and withdrawn (`open: false`) by the write that closes, marks or
//! changes it. A target finds its inhibitors with one Query per rule that
//! targets it, of the partition named by the target's own equals values:
//! exactly the sources that agree with it, however many open alerts the
//! channel has. A source counts while its last event is at most
//! `INHIBIT_SOURCE_FRESH_SECS` old and its incident is `Triggered` (one
//! BatchGetItem); an incident closed by hand thus stops its alerts
//! inhibiting without touching their entries.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, TransactWriteItem};

use super::{EventRules, Hints, WriteFailure};
use crate::domain::event::StandardEvent;
use crate::domain::mark::Mark;
use crate::domain::outcome::Outcome;
use crate::error::ApiResult;
use crate::model::{AlertHead, Channel, IncidentStatus};
use crate::rules::channel::{CompiledInhibit, Verdict, INHIBIT_SOURCE_FRESH_SECS};
use crate::rules::conditions::Subject;
use crate::store::items::*;
use crate::store::{build_error, storage_error, Store, Units};

impl Store {
    /// What the channel's silence and inhibit rules say about `ev`. Silence
    /// costs nothing; inhibition one Query per inhibit rule that targets the
    /// event, plus one BatchGetItem (per 100) of the candidate sources'
    /// incidents when there are any.
    pub(super) async fn verdict(
        &self,
        channel: &Channel,
        ev: &StandardEvent,
        rules: &EventRules<'_>,
        now_ms: i64,
        hints: &mut Hints<'_>,
    ) -> ApiResult<Verdict> {
        if let Some(silence) = &rules.silence {
            if *silence != Verdict::Pass {
                return Ok(silence.clone());
            }
        }
        if rules.inhibit.is_empty() {
            return Ok(Verdict::Pass);
        }
        if let Some(known) = &hints.inhibition {
            return Ok(known.clone());
        }
        let target = Subject::of_event(ev, None);
        let mut candidates: Vec<(&CompiledInhibit, SourceEntry)> = Vec::new();
        for rule in &rules.inhibit {
            for source in self
                .sources_agreeing(&channel.channel_id, rule, &target, now_ms / 1000)
                .await?
            {
                candidates.push((rule, source));
            }
        }
        let verdict = if candidates.is_empty() {
            Verdict::Pass
        } else {
            let mut incidents: Vec<&str> = candidates
                .iter()
                .map(|(_, s)| s.incident_id.as_str())
                .collect();
            incidents.sort_unstable();
            incidents.dedup();
            let mut triggered = Vec::new();
            for chunk in incidents.chunks(100) {
                triggered = self.triggered_incidents(chunk).await?;
                if !triggered.is_empty() {
                    break;
                }
            }
            candidates
                .iter()
                .find(|(_, s)| triggered.contains(&s.incident_id))
                .map_or(Verdict::Pass, |(rule, source)| match rule.action {
                    crate::rules::channel::RuleAction::Drop => Verdict::Drop(Outcome::Inhibited),
                    crate::rules::channel::RuleAction::Mark => {
                        Verdict::Mark(Mark::Inhibited(source.alert_id.clone()))
                    }
                })
        };
        hints.inhibition = Some(verdict.clone());
        Ok(verdict)
    }

    /// The open, fresh sources of `rule` that agree with `target` on the
    /// rule's `equals`: one Query of the partition that holds exactly those
    /// (every page: no source is missed however many the channel has).
    async fn sources_agreeing(
        &self,
        channel_id: &str,
        rule: &CompiledInhibit,
        target: &Subject<'_>,
        now_s: i64,
    ) -> ApiResult<Vec<SourceEntry>> {
        let equals = rule.equals_values(target);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(rule.source_partition(channel_id, &equals)))
            .consistent_read(true);
        let oldest = now_s - INHIBIT_SOURCE_FRESH_SECS;
        Ok(self
            .all_pages(query)
            .await?
            .iter()
            .filter(|item| get_bool(item, "open").unwrap_or(false))
            .filter(|item| get_opt_n(item, "last_event_at").is_some_and(|t| t >= oldest))
            .filter(|item| get_opt_s(item, "equals").as_deref() == Some(equals.as_str()))
            .filter_map(|item| {
                let alert_key = get_opt_s(item, "alert_key")?;
                // An alert never inhibits itself.
                (alert_key != target.alert_key).then_some(SourceEntry {
                    alert_id: get_opt_s(item, "alert_id")?,
                    incident_id: get_opt_s(item, "incident_id")?,
                })
            })
            .collect())
    }

    /// Keep the inhibition index true to `next`: list it as an open source
    /// in the partition of each of the channel's inhibit rules whose
    /// `source_if` it matches (while it is open and unmarked), and withdraw
    /// it from the partitions `previous` was listed in and `next` is not.
    /// Sets `next.source_keys`. The writes join the head's transaction, so
    /// the head's version orders them.
    pub(super) fn source_writes(
        &self,
        rules: &[CompiledInhibit],
        previous: Option<&AlertHead>,
        next: &mut AlertHead,
    ) -> Result<Vec<TransactWriteItem>, WriteFailure> {
        let mut listed = Vec::new();
        let mut writes = Vec::new();
        if next.active && next.mark.is_none() && !next.incident_id.is_empty() {
            let subject = head_subject(next);
            for rule in rules.iter().filter(|r| r.is_source(&subject)) {
                let equals = rule.equals_values(&subject);
                let partition = rule.source_partition(&next.channel_id, &equals);
                if listed.contains(&partition) {
                    continue;
                }
                let mut entry = key(partition.clone(), next.alert_key.clone());
                entry.extend([
                    ("alert_id".to_string(), s(&next.alert_id)),
                    ("incident_id".to_string(), s(&next.incident_id)),
                    ("alert_key".to_string(), s(&next.alert_key)),
                    ("equals".to_string(), s(equals)),
                    ("last_event_at".to_string(), n(next.last_event_at)),
                    ("open".to_string(), b(true)),
                    (
                        "expires_at".to_string(),
                        n(
                            next.last_event_at
                                + INHIBIT_SOURCE_FRESH_SECS
                                + SOURCE_ENTRY_SLACK_SECS,
                        ),
                    ),
                ]);
                writes.push(entry);
                listed.push(partition);
            }
        }
        for withdrawn in previous
            .iter()
            .flat_map(|p| p.source_keys.iter())
            .filter(|k| !listed.contains(k))
        {
            let mut entry = key(withdrawn.clone(), next.alert_key.clone());
            entry.extend([
                ("open".to_string(), b(false)),
                (
                    "expires_at".to_string(),
                    n(next.last_event_at + SOURCE_ENTRY_SLACK_SECS),
                ),
            ]);
            writes.push(entry);
        }
        next.source_keys = listed;
        writes
            .into_iter()
            .map(|item| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
                    .map_err(|e| WriteFailure::Fatal(build_error(e)))
            })
            .collect()
    }

    /// A repeat of a source alert keeps its entries fresh: one conditional
    /// PutItem per partition it is listed in, only while the entry is still
    /// this alert's and open (a later withdrawal is never undone).
    pub(super) async fn refresh_sources(&self, head: &AlertHead) -> ApiResult<()> {
        for partition in &head.source_keys {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(partition.clone(), head.alert_key.clone())))
                .update_expression("SET last_event_at = :now, expires_at = :expires")
                .condition_expression("alert_id = :alert AND #open = :true")
                .expression_attribute_names("#open", "open")
                .expression_attribute_values(":alert", s(&head.alert_id))
                .expression_attribute_values(":true", b(true))
                .expression_attribute_values(":now", n(head.last_event_at))
                .expression_attribute_values(
                    ":expires",
                    n(head.last_event_at + INHIBIT_SOURCE_FRESH_SECS + SOURCE_ENTRY_SLACK_SECS),
                )
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await;
            match result {
                Ok(out) => self.count(Units::Write, out.consumed_capacity()),
                Err(err) => {
                    self.count(Units::Write, None);
                    if !matches!(
                        err.as_service_error(),
                        Some(UpdateItemError::ConditionalCheckFailedException(_))
                    ) {
                        return Err(storage_error("UpdateItem", err));
                    }
                }
            }
        }
        Ok(())
    }

    /// Which of these incidents are `Triggered` (not acknowledged, not closed).
    async fn triggered_incidents(&self, incident_ids: &[&str]) -> ApiResult<Vec<String>> {
        let keys = incident_ids
            .iter()
            .map(|id| key(incident_pk(id), INCIDENT_SK))
            .collect();
        Ok(self
            .batch_get_projected(keys, "incident_id, #st", &[("#st", "status")])
            .await?
            .iter()
            .filter(|i| {
                get_opt_s(i, "status").as_deref() == Some(IncidentStatus::Triggered.as_str())
            })
            .filter_map(|i| get_opt_s(i, "incident_id"))
            .collect())
    }
}

/// Entries outlive their freshness by this much before TTL removes them.
const SOURCE_ENTRY_SLACK_SECS: i64 = 86_400;

/// A listed source, as a target's check needs it.
struct SourceEntry {
    alert_id: String,
    incident_id: String,
}

/// An alert head as the rules' conditions see it.
fn head_subject(head: &AlertHead) -> Subject<'_> {
    Subject {
        severity: head.severity.as_str(),
        title: &head.title,
        description: &head.description,
        alert_key: &head.alert_key,
        integration_id: None,
        labels: &head.labels,
    }
}
