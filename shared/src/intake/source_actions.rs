//! What a push does for a source besides applying events
//! ([`SourceAction`]): check an SNS signature, confirm an SNS subscription,
//! acknowledge an incident for PagerDuty's `acknowledge`. Each runs after the
//! integration is known and before anything is written.

use serde_json::{json, Value};

use crate::app::App;
use crate::engine::incident::Action;
use crate::error::{ApiError, ApiResult};
use crate::intake::integrations::{Reply, SourceAction};
use crate::intake::sns;
use crate::model::{Incident, IncidentStatus, Integration};
use crate::rules::ratelimit::too_frequent;

/// `Ok(None)`: carry on with the events. `Ok(Some(data))`: the push is done
/// and this is its answer.
pub async fn source_action(
    app: &App,
    integration: &Integration,
    action: SourceAction,
    reply: Reply,
    received_ms: i64,
) -> ApiResult<Option<Value>> {
    match action {
        SourceAction::VerifySns(signature) => {
            sns::verify(&signature).await?;
            Ok(None)
        }
        SourceAction::ConfirmSnsSubscription {
            signature,
            subscribe_url,
        } => {
            if let Some(signature) = signature {
                sns::verify(&signature).await?;
            }
            sns::confirm_subscription(&subscribe_url).await?;
            tracing::info!("sns subscription confirmed");
            Ok(Some(
                json!({ "alert_key": null, "outcome": "subscription_confirmed" }),
            ))
        }
        SourceAction::Acknowledge { alert_key } => {
            acknowledge(app, integration, alert_key, reply, received_ms)
                .await
                .map(Some)
        }
    }
}

/// Acknowledge the incident of the open alert with this key, in every
/// channel the integration sends that key to, through the one place incident
/// transitions are decided (`engine::incident::decide_action`). A key with
/// no open alert, or whose incident is closed, is `ignored`.
async fn acknowledge(
    app: &App,
    integration: &Integration,
    alert_key: String,
    reply: Reply,
    received_ms: i64,
) -> ApiResult<Value> {
    if let Some(minute_full) = app
        .store
        .admit_request(
            &integration.integration_id,
            &integration.rate_limit,
            received_ms,
        )
        .await?
    {
        return Err(too_frequent(
            &integration.rate_limit,
            minute_full,
            received_ms,
        ));
    }
    let channels = match (&integration.routes_version, &integration.channel_id) {
        (Some(_), _) => {
            app.store
                .remembered_channels(&integration.integration_id, &alert_key)
                .await?
        }
        (None, Some(channel_id)) => vec![channel_id.clone()],
        (None, None) => {
            return Err(ApiError::internal(
                "integration has neither a channel nor routes",
            ))
        }
    };
    let mut acknowledged: Option<(String, String, Incident)> = None;
    for channel_id in channels {
        let Some(head) = app.store.get_head(&channel_id, &alert_key).await? else {
            continue;
        };
        if !head.active || head.incident_id.is_empty() {
            continue;
        }
        let incident = match app
            .store
            .act_on_incident(&head.incident_id, Action::Ack, received_ms)
            .await
        {
            Ok(incident) => incident,
            // Closed meanwhile: nothing to acknowledge.
            Err(ApiError::InvalidParameter(_) | ApiError::ResourceNotFound(_)) => continue,
            Err(other) => return Err(other),
        };
        if acknowledged.is_none() && incident.status == IncidentStatus::Processing {
            acknowledged = Some((channel_id, head.alert_id, incident));
        }
    }
    let mut data = match acknowledged {
        Some((channel_id, alert_id, incident)) => json!({
            "alert_key": alert_key,
            "outcome": "acknowledged",
            "alert_id": alert_id,
            "incident_id": incident.incident_id,
            "channel_id": channel_id,
        }),
        None => json!({
            "alert_key": alert_key,
            "outcome": "ignored",
            "alert_id": null,
            "incident_id": null,
            "channel_id": null,
        }),
    };
    if let Reply::PagerDuty { v1 } = reply {
        data[if v1 { "incident_key" } else { "dedup_key" }] = json!(alert_key);
    }
    Ok(data)
}
