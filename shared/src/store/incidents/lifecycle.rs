//! A person's action on an incident (ack, unack, resolve, reopen), and
//! the sweep that closes a resolved incident's alerts.
//!
//! A sweep reads the incident's alert records a page at a time and notes
//! its progress (`sweep_after`) on the incident after each page, so no
//! alert is closed twice however often a resolve is retried. One invocation
//! sweeps for at most `Store::sweep_budget`; then it raises the incident's
//! `resolving` count and answers with the incident not closed yet. That
//! change reaches the notify function through the stream, which resolves
//! again from the noted progress (outbound/notify.rs), invocation after
//! invocation, until the incident closes.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;

use crate::engine::escalation;
use crate::engine::step;
use crate::engine::{self, Action, Refusal, Transition};
use crate::error::{ApiError, ApiResult};
use crate::model::Incident;
use crate::store::escalations::chain_of;
use crate::store::items::*;
use crate::store::{storage_error, Store};

/// What a person's action tells the incident's escalation chain (SPEC 14):
/// ack stops a `not_acked` chain, unack resumes it, close stops any, reopen
/// restarts it; a member acknowledging through its link is marked among the
/// responders. `None`: the incident has no chain, or nothing changes.
fn chain_told(
    item: &Item,
    incident: &Incident,
    transition: Transition,
    detail: &serde_json::Value,
    now_ms: i64,
) -> ApiResult<Option<step::ChainChange>> {
    let (Some(chain), Some(input)) = (chain_of(item)?, escalation::input_for(transition)) else {
        return Ok(None);
    };
    let next = escalation::told(&chain, input, now_ms);
    let member = detail
        .pointer("/actor/member_id")
        .and_then(|m| m.as_str())
        .filter(|_| transition == Transition::Ack);
    let responders =
        member.and_then(|m| escalation::responder_acknowledged(&incident.responders, m, now_ms));
    if next.version == chain.version && responders.is_none() {
        return Ok(None);
    }
    Ok(Some(step::ChainChange {
        expected_version: Some(chain.version),
        chain: next,
        responders,
    }))
}

/// Alerts closed at once by a manual resolve.
const SWEEP_CONCURRENCY: usize = 32;
/// One invocation's share of a sweep: well inside the management
/// function's 15 s timeout (and the notify function's 60 s).
pub const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);
/// Alert records a sweep reads per page.
pub const SWEEP_PAGE: i32 = 500;

impl Store {
    /// Apply a person's action to an incident: the engine decides the
    /// change from the status read, and it is written only if the status is
    /// still that one (else read again and decide again).
    pub async fn act_on_incident(
        &self,
        incident_id: &str,
        action: Action,
        now_ms: i64,
    ) -> ApiResult<Incident> {
        self.act_on_incident_with(incident_id, action, serde_json::json!({}), now_ms)
            .await
    }

    /// [`Store::act_on_incident`] with more for the timeline entry's detail
    /// (a reopen's `reason`).
    pub async fn act_on_incident_with(
        &self,
        incident_id: &str,
        action: Action,
        detail: serde_json::Value,
        now_ms: i64,
    ) -> ApiResult<Incident> {
        for _ in 0..5 {
            let item = self.get_incident_item(incident_id).await?.ok_or_else(|| {
                ApiError::ResourceNotFound(format!("incident {incident_id} does not exist"))
            })?;
            let incident = item_to_incident(&item)?;
            let change = match engine::decide_action(incident.status, action) {
                Ok(Some(change)) => change,
                Ok(None) if action == Action::Resolve => {
                    // Already closed: still close any alert left open in it
                    // (a sweep cut short by an older version), then answer.
                    if !self.seal_and_sweep(&incident, now_ms).await? {
                        self.continue_resolve_later(&incident, now_ms).await?;
                    }
                    return Ok(incident);
                }
                Ok(None) => return Ok(incident),
                Err(Refusal(why)) => return Err(ApiError::invalid(format!("incident_id: {why}"))),
            };
            if let Transition::Resolve(_) = change.transition {
                if !self.seal_and_sweep(&incident, now_ms).await? {
                    // Out of time: the notify function continues; the
                    // incident closes once every alert is closed.
                    self.continue_resolve_later(&incident, now_ms).await?;
                    return Ok(incident);
                }
            }
            let step = step::person_acts(
                incident_id,
                &incident.channel_id,
                change,
                detail.clone(),
                now_ms,
            )?
            .with_chain(chain_told(
                &item,
                &incident,
                change.transition,
                &detail,
                now_ms,
            )?);
            if self.write_step(&step).await? {
                return self.require_incident(incident_id).await;
            }
        }
        Err(ApiError::internal(
            "the incident kept changing concurrently; retry",
        ))
    }

    /// Before a manual close: seal the incident (it takes no new alert from
    /// here on), then close every open alert of it, a page at a time from
    /// where the last sweep stopped. Only then is the incident marked
    /// closed, so no event can land on an alert of a closed incident.
    /// `Ok(false)`: the budget ran out with records left (progress noted).
    async fn seal_and_sweep(&self, incident: &Incident, now_ms: i64) -> ApiResult<bool> {
        let started = std::time::Instant::now();
        let (id, channel) = (&incident.incident_id, &incident.channel_id);
        let seal = step::seal(id, channel, now_ms);
        if !self.write_step(&seal).await? {
            return Err(ApiError::ResourceNotFound(format!(
                "incident {id} does not exist"
            )));
        }
        let pk = incident_pk(id);
        let mut after = self
            .get_incident_item(id)
            .await?
            .and_then(|item| get_opt_s(&item, "sweep_after"));
        let now_s = now_ms / 1000;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :alert)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":alert", s("ALERT#"))
                .projection_expression("channel_id, alert_key, alert_id, archived")
                .set_exclusive_start_key(after.as_ref().map(|a| key(pk.clone(), a)))
                .consistent_read(true)
                .limit(self.sweep_page)
                .send()
                .await
                .map_err(|e| storage_error("Query", e))?;
            let open: Vec<(String, String, String)> = page
                .items()
                .iter()
                .filter(|r| !get_bool(r, "archived").unwrap_or(false))
                .map(|r| {
                    Ok((
                        get_s(r, "channel_id")?,
                        get_s(r, "alert_key")?,
                        get_s(r, "alert_id")?,
                    ))
                })
                .collect::<ApiResult<_>>()?;
            let closes = open.into_iter().map(|(channel_id, alert_key, alert_id)| {
                let store = self.clone();
                async move {
                    store
                        .close_alert(&channel_id, &alert_key, &alert_id, now_s)
                        .await
                }
            });
            let results: Vec<ApiResult<()>> = futures_util::stream::iter(closes)
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect()
                .await;
            results.into_iter().collect::<ApiResult<()>>()?;
            let Some(last) = page.last_evaluated_key().and_then(|k| get_opt_s(k, "sk")) else {
                return Ok(true);
            };
            self.write_step(&step::sweep_progress(id, channel, &last, now_ms))
                .await?;
            after = Some(last);
            if started.elapsed() >= self.sweep_budget {
                return Ok(false);
            }
        }
    }

    /// Leaves the rest of a sweep to the notify function.
    async fn continue_resolve_later(&self, incident: &Incident, now_ms: i64) -> ApiResult<()> {
        let next = step::continue_resolve(&incident.incident_id, &incident.channel_id, now_ms);
        self.write_step(&next).await?;
        Ok(())
    }

    /// Close the alert of `(channel, key)` if it is still `alert_id` and open.
    async fn close_alert(
        &self,
        channel_id: &str,
        alert_key: &str,
        alert_id: &str,
        now_s: i64,
    ) -> ApiResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(head_pk(channel_id, alert_key), HEAD_SK)))
            // It is no longer a source; its entries in the inhibition index
            // inhibit nothing, as its incident is closed (sources count while
            // their incident is triggered).
            .update_expression(
                "SET active = :false, closed_at = :now REMOVE source_keys ADD version :one",
            )
            .condition_expression("alert_id = :alert AND active = :true")
            .expression_attribute_values(":alert", s(alert_id))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(storage_error("UpdateItem", err)),
        }
    }
}
