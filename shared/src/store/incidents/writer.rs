//! The one incident writer: turns an [`IncidentStep`] the engine decided
//! into the condition and the update of the incident item, plus the puts of
//! the timeline entries it records. This is the only file that builds
//! DynamoDB expressions on the incident item; the push path, the management
//! API and the notify function all come through here.
//!
//! Every step sets the incident's `changes` to the entries it records (when
//! it records any): the table's stream then carries each change together
//! with the incident as it is after it, which is what webhooks deliver.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use crate::engine::step::{ActiveAlerts, ChainChange, Effect, Guard, IncidentStep};
use crate::engine::{ClosedBy, Transition};
use crate::error::ApiResult;
use crate::model::IncidentStatus;
use crate::store::db::Cancelled;
use crate::store::escalations::chain_due_keys;
use crate::store::incidents::timeline::changes_value;
use crate::store::items::*;
use crate::store::{build_error, Store};

/// A condition and an update expression with their placeholders.
#[derive(Default)]
struct Expression {
    condition: String,
    set: Vec<&'static str>,
    add: Vec<&'static str>,
    remove: Vec<&'static str>,
    values: HashMap<String, AttributeValue>,
    uses_status: bool,
}

impl Expression {
    fn value(&mut self, name: &str, value: AttributeValue) {
        self.values.insert(name.to_string(), value);
    }

    fn update(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        parts.join(" ")
    }
}

/// The guard as a condition on the incident item.
fn guard_condition(guard: Guard, e: &mut Expression) {
    let closed = || s(IncidentStatus::Closed.as_str());
    e.condition = match guard {
        Guard::Absent => "attribute_not_exists(pk)".into(),
        Guard::Exists => "attribute_exists(pk)".into(),
        Guard::Open => {
            e.value(":closed", closed());
            e.uses_status = true;
            "attribute_exists(pk) AND #st <> :closed".into()
        }
        Guard::Accepting { now_ms } => {
            // engine::accepts_alert, as a condition: open, not sealed, inside its window.
            e.value(":closed", closed());
            e.value(":zero", n(0));
            e.value(":now_ms", n(now_ms));
            e.uses_status = true;
            "attribute_exists(pk) AND #st <> :closed AND attribute_not_exists(sealed) \
             AND (merge_deadline = :zero OR merge_deadline > :now_ms)"
                .into()
        }
        Guard::OpenWithActive(expected) => {
            let (op, count) = match expected {
                ActiveAlerts::Exactly(c) => ("=", c),
                ActiveAlerts::MoreThan(c) => (">", c),
                ActiveAlerts::AtLeast(c) => (">=", c),
            };
            e.value(":closed", closed());
            e.value(":active", n(count));
            e.uses_status = true;
            format!("attribute_exists(pk) AND #st <> :closed AND active_alert_count {op} :active")
        }
        Guard::Status(from) => {
            e.value(":from", s(from.as_str()));
            e.uses_status = true;
            "#st = :from".into()
        }
        Guard::StormBelow(lowest) => {
            e.value(":lowest", n(i64::from(lowest)));
            "attribute_exists(pk) AND (attribute_not_exists(storm_level) OR storm_level < :lowest)"
                .into()
        }
    };
}

/// A new status: the status and the index keys the listings read.
fn set_status(step: &IncidentStep, to: IncidentStatus, e: &mut Expression) {
    e.set
        .extend(["#st = :to", "gsi1pk = :scope", "gsi2pk = :scope_all"]);
    e.uses_status = true;
    e.value(":to", s(to.as_str()));
    e.value(":scope", s(incident_scope(&step.channel_id, to)));
    e.value(":scope_all", s(incident_scope_all(to)));
}

fn json_string(value: &impl serde::Serialize, what: &str) -> ApiResult<AttributeValue> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| crate::error::ApiError::internal(format!("could not encode {what}: {e}")))
}

/// The chain's attributes: the chain itself, its version (the condition of
/// the next write) and, while it waits for a time, its entry in the due index.
fn chain_attributes(step: &IncidentStep, change: &ChainChange) -> ApiResult<Item> {
    let mut item = Item::new();
    item.insert("escalation".into(), json_string(&change.chain, "a chain")?);
    item.insert("esc_version".into(), n(change.chain.version as i64));
    if let Some(due) = change.chain.due_at_ms {
        let (pk, sk) = chain_due_keys(due, &step.incident_id);
        item.insert("gsi4pk".into(), s(pk));
        item.insert("gsi4sk".into(), s(sk));
    }
    if let Some(responders) = &change.responders {
        item.insert("responders".into(), json_string(responders, "responders")?);
    }
    Ok(item)
}

/// The chain's write, beside the effect's: only if its version is still
/// the one read.
fn chain_update(step: &IncidentStep, change: &ChainChange, e: &mut Expression) -> ApiResult<()> {
    if let Some(version) = change.expected_version {
        e.condition = format!("({}) AND esc_version = :esc_read", e.condition);
        e.value(":esc_read", n(version as i64));
    }
    let attributes = chain_attributes(step, change)?;
    for (name, set, placeholder) in [
        ("escalation", "escalation = :esc", ":esc"),
        ("esc_version", "esc_version = :esc_version", ":esc_version"),
        ("gsi4pk", "gsi4pk = :esc_due_pk", ":esc_due_pk"),
        ("gsi4sk", "gsi4sk = :esc_due_sk", ":esc_due_sk"),
        ("responders", "responders = :responders", ":responders"),
    ] {
        if let Some(value) = attributes.get(name) {
            e.set.push(set);
            e.value(placeholder, value.clone());
        }
    }
    if change.chain.due_at_ms.is_none() {
        e.remove.extend(["gsi4pk", "gsi4sk"]);
    }
    Ok(())
}

/// The effect as an update of the incident item (not for `Open`, a put, nor
/// `Unchanged`, a condition check).
fn effect_update(step: &IncidentStep, e: &mut Expression) -> ApiResult<()> {
    let now_s = step.at_ms / 1000;
    match &step.effect {
        Effect::Open(_) | Effect::Unchanged => {}
        Effect::Join {
            alerts,
            severities,
            deadline_ms,
            flapping,
        } => {
            e.set.push("updated_at = :now");
            if let Some(deadline) = deadline_ms {
                e.set.push("merge_deadline = :deadline");
                e.value(":deadline", n(*deadline));
            }
            if *flapping {
                e.set.push("flapping = :true");
                e.value(":true", b(true));
            }
            e.add.extend([
                "alert_count :joined",
                "active_alert_count :joined",
                "severities :sev",
            ]);
            e.value(":joined", n(*alerts));
            let names: BTreeSet<&str> = severities.iter().map(|s| s.as_str()).collect();
            e.value(
                ":sev",
                AttributeValue::Ss(names.into_iter().map(str::to_string).collect()),
            );
        }
        Effect::RaiseSeverity(severity) => {
            e.set.push("updated_at = :now");
            e.add.push("severities :sev");
            e.value(
                ":sev",
                AttributeValue::Ss(vec![severity.as_str().to_string()]),
            );
        }
        Effect::AlertRecovered => {
            e.set.push("updated_at = :now");
            e.add.push("active_alert_count :minus_one");
            e.value(":minus_one", n(-1));
        }
        Effect::Close(by) => {
            set_status(step, IncidentStatus::Closed, e);
            e.set.extend([
                "updated_at = :now",
                "closed_at = :now",
                "active_alert_count = :zero",
            ]);
            e.value(":zero", n(0));
            if *by == ClosedBy::Manual {
                e.set.push("closed_by = :manual");
                e.value(":manual", s("manual"));
                e.remove.push("resolving");
            }
        }
        Effect::SetStatus { to, transition } => {
            set_status(step, *to, e);
            e.set.push("updated_at = :now");
            match transition {
                Transition::Ack => e.set.push("acknowledged_at = :now"),
                Transition::Unack => e.remove.push("acknowledged_at"),
                Transition::Reopen => e.remove.extend([
                    "closed_at",
                    "sealed",
                    "closed_by",
                    "sweep_after",
                    "resolving",
                ]),
                _ => {}
            }
        }
        Effect::Seal => {
            e.set.push("sealed = :true");
            e.value(":true", b(true));
        }
        Effect::Storm { level } => {
            e.set.extend(["updated_at = :now", "storm_level = :level"]);
            e.value(":level", n(i64::from(*level)));
        }
        Effect::Note => e.set.push("updated_at = :now"),
        Effect::SweepProgress { after } => {
            e.set.push("sweep_after = :after");
            e.value(":after", s(after));
        }
        Effect::ContinueResolve => {
            e.add.push("resolving :one");
            e.value(":one", n(1));
        }
        Effect::Escalation => {}
    }
    if let Some(change) = &step.chain {
        chain_update(step, change, e)?;
    }
    if !step.entries.is_empty() {
        e.set.push("changes = :changes");
        e.value(":changes", changes_value(&step.entries));
    }
    if e.set.contains(&"updated_at = :now") || e.set.contains(&"closed_at = :now") {
        e.value(":now", n(now_s));
    }
    Ok(())
}

impl Store {
    /// The write of the incident item that `step` makes, for a transaction.
    /// A refused condition returns the item as it was.
    pub(crate) fn incident_write(&self, step: &IncidentStep) -> ApiResult<TransactWriteItem> {
        let key = key(incident_pk(&step.incident_id), INCIDENT_SK);
        let mut e = Expression::default();
        guard_condition(step.guard, &mut e);
        if let Effect::Open(opening) = &step.effect {
            let mut item = new_incident_item(&NewIncident {
                incident_id: &step.incident_id,
                channel_id: &step.channel_id,
                title: &opening.title,
                labels: &opening.labels,
                severity: opening.severity,
                now_ms: step.at_ms,
                merge_deadline_ms: opening.merge_deadline_ms,
                group_key: opening.group_key.as_deref(),
            });
            item.insert("changes".into(), changes_value(&step.entries));
            if opening.flapping {
                item.insert("flapping".into(), b(true));
            }
            if let Some(change) = &step.chain {
                item.extend(chain_attributes(step, change)?);
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(e.condition)
                .set_expression_attribute_values((!e.values.is_empty()).then_some(e.values))
                .build()
                .map_err(build_error)?;
            return Ok(TransactWriteItem::builder().put(put).build());
        }
        effect_update(step, &mut e)?;
        let names = e
            .uses_status
            .then(|| HashMap::from([("#st".to_string(), "status".to_string())]));
        let values = (!e.values.is_empty()).then_some(e.values.clone());
        if e.set.is_empty() && e.add.is_empty() && e.remove.is_empty() {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression(e.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(build_error)?;
            return Ok(TransactWriteItem::builder().condition_check(check).build());
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(e.update())
            .condition_expression(e.condition.clone())
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The step's whole write: the incident item first, then its timeline entries.
    pub(crate) fn step_items(&self, step: &IncidentStep) -> ApiResult<Vec<TransactWriteItem>> {
        self.step_items_but(step, &[])
    }

    /// [`Self::step_items`] without the timeline items of the entries whose
    /// ids are in `on_records`: new alerts' records carry those (they are
    /// still the incident's `changes`).
    pub(crate) fn step_items_but(
        &self,
        step: &IncidentStep,
        on_records: &[&str],
    ) -> ApiResult<Vec<TransactWriteItem>> {
        let mut items = vec![self.incident_write(step)?];
        let own: Vec<_> = step
            .entries
            .iter()
            .filter(|e| !on_records.contains(&e.id.as_str()))
            .cloned()
            .collect();
        items.extend(self.timeline_puts(&step.incident_id, &step.channel_id, &own)?);
        Ok(items)
    }

    /// Write a step on its own, as one transaction. `Ok(false)`: its guard
    /// did not hold (read again and ask the engine again).
    pub(crate) async fn write_step(&self, step: &IncidentStep) -> ApiResult<bool> {
        match self.send_transaction(self.step_items(step)?).await {
            Ok(()) => Ok(true),
            Err(Cancelled::Reasons(_)) => Ok(false),
            Err(Cancelled::Fatal(e)) => Err(e),
        }
    }
}
