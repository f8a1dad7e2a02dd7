//! A person's action on an incident (ack, unack, resolve, reopen), and
//! the sweep that closes a resolved incident's alerts.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;

use crate::engine::step;
use crate::engine::{self, Action, Refusal, Transition};
use crate::error::{ApiError, ApiResult};
use crate::model::Incident;
use crate::store::items::*;
use crate::store::{storage_error, Store};

/// Alerts closed at once by a manual resolve.
const SWEEP_CONCURRENCY: usize = 32;

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
            let incident = self.require_incident(incident_id).await?;
            let change = match engine::decide_action(incident.status, action) {
                Ok(Some(change)) => change,
                Ok(None) if action == Action::Resolve => {
                    // Already closed: still close any alert left open in it
                    // (a sweep cut short by an older version), then answer.
                    self.seal_and_sweep(&incident, now_ms).await?;
                    return Ok(incident);
                }
                Ok(None) => return Ok(incident),
                Err(Refusal(why)) => return Err(ApiError::invalid(format!("incident_id: {why}"))),
            };
            if let Transition::Resolve(_) = change.transition {
                self.seal_and_sweep(&incident, now_ms).await?;
            }
            let step = step::person_acts(
                incident_id,
                &incident.channel_id,
                change,
                detail.clone(),
                now_ms,
            )?;
            if self.write_step(&step).await? {
                return self.require_incident(incident_id).await;
            }
        }
        Err(ApiError::internal(
            "the incident kept changing concurrently; retry",
        ))
    }

    /// Before a manual close: seal the incident (it takes no new alert from
    /// here on), then close every open alert of it. Only then is the incident
    /// marked closed, so no event can land on an alert of a closed incident;
    /// a resolve cut short leaves an open, sealed incident that resolving
    /// again finishes.
    async fn seal_and_sweep(&self, incident: &Incident, now_ms: i64) -> ApiResult<()> {
        let seal = step::seal(&incident.incident_id, &incident.channel_id, now_ms);
        if !self.write_step(&seal).await? {
            return Err(ApiError::ResourceNotFound(format!(
                "incident {} does not exist",
                incident.incident_id
            )));
        }
        let open: Vec<(String, String, String)> = self
            .alert_records_of(&incident.incident_id)
            .await?
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
        let now_s = now_ms / 1000;
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
        results.into_iter().collect()
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

    /// The alert records of an incident, only the fields a sweep needs.
    async fn alert_records_of(&self, incident_id: &str) -> ApiResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :alert)")
            .expression_attribute_values(":pk", s(incident_pk(incident_id)))
            .expression_attribute_values(":alert", s("ALERT#"))
            .projection_expression("channel_id, alert_key, alert_id, archived")
            .consistent_read(true);
        self.all_pages(query).await
    }
}
