//! A channel's escalation rules (`PUT/GET /api/channels/{id}/escalation`)
//! and an incident's notifications (`GET /api/incidents/{id}/notifications`),
//! SPEC 14.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{incident_not_found, json_body, not_found, pages, path_id, MAX_PAGE};
use crate::app::App;
use crate::engine::escalation::EscalationRules;
use crate::error::{ApiError, ApiResult};
use crate::intake::http::Inbound;
use crate::intake::integrations::from_value;
use crate::store::escalations::is_notification_cursor;

pub async fn put_rules(app: &App, channel_id: &str, req: &Inbound) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    let rules: EscalationRules = from_value(json_body(req)?)?;
    rules.validate()?;
    check_targets_exist(app, &rules).await?;
    if !app.store.put_escalation_rules(channel_id, &rules).await? {
        // The channel, a member or a schedule went away since the checks.
        if app.store.get_channel(channel_id).await?.is_none() {
            return Err(not_found("channel_id", "channel"));
        }
        check_targets_exist(app, &rules).await?;
        return Err(ApiError::internal(
            "the rules' members or schedules kept changing concurrently; retry",
        ));
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

/// At most this many distinct members and schedules in one channel's rules:
/// they are referenced in the one transaction that writes the rules (100
/// items, two of them the channel check and the rules).
pub const MAX_DISTINCT_TARGETS: usize = 98;

/// Every member and schedule the rules name must exist; the error names
/// the first place that names nothing (the write checks again, race-safe).
async fn check_targets_exist(app: &App, rules: &EscalationRules) -> ApiResult<()> {
    let member_places = rules.member_places();
    let schedule_places = rules.schedule_places();
    let members: BTreeSet<String> = member_places.iter().map(|(_, id)| id.to_string()).collect();
    let schedules: BTreeSet<String> = schedule_places
        .iter()
        .map(|(_, id)| id.to_string())
        .collect();
    if members.len() + schedules.len() > MAX_DISTINCT_TARGETS {
        return Err(ApiError::invalid(format!(
            "rules: name at most {MAX_DISTINCT_TARGETS} distinct members and schedules in all"
        )));
    }
    let members: Vec<String> = members.into_iter().collect();
    let found = app.store.batch_get_members(&members).await?;
    if let Some((place, _)) = member_places
        .iter()
        .find(|(_, id)| !found.contains_key(*id))
    {
        return Err(ApiError::invalid(format!("{place}: no such member")));
    }
    let schedules: Vec<String> = schedules.into_iter().collect();
    let found: BTreeSet<String> = app
        .store
        .batch_get_schedules(&schedules)
        .await?
        .into_iter()
        .map(|s| s.schedule_id)
        .collect();
    if let Some((place, _)) = schedule_places.iter().find(|(_, id)| !found.contains(*id)) {
        return Err(ApiError::invalid(format!("{place}: no such schedule")));
    }
    Ok(())
}

/// Where a channel's escalation rules name the member, if anywhere.
pub async fn member_used_by_escalation(app: &App, member_id: &str) -> ApiResult<Option<String>> {
    used_by_escalation(app, |rules| rules.member_places(), member_id).await
}

/// Where a channel's escalation rules name the schedule, if anywhere.
pub async fn schedule_used_by_escalation(
    app: &App,
    schedule_id: &str,
) -> ApiResult<Option<String>> {
    used_by_escalation(app, |rules| rules.schedule_places(), schedule_id).await
}

async fn used_by_escalation(
    app: &App,
    places: impl for<'a> Fn(&'a EscalationRules) -> Vec<(String, &'a str)>,
    id: &str,
) -> ApiResult<Option<String>> {
    for (channel_id, rules) in app.store.all_escalation_rules().await? {
        if let Some((place, _)) = places(&rules).into_iter().find(|(_, named)| *named == id) {
            return Ok(Some(format!("channels/{channel_id}/escalation.{place}")));
        }
    }
    Ok(None)
}

/// `GET /api/incidents/{id}/notifications?limit=&cursor=`: oldest first,
/// at most 100 a page.
pub async fn notifications(app: &App, incident_id: &str, req: &Inbound) -> ApiResult<Value> {
    let incident_id = path_id("incident_id", incident_id)?;
    let (after, limit) = pages::cursor_and_limit(req, is_notification_cursor, MAX_PAGE)?;
    app.store
        .require_incident(incident_id)
        .await
        .map_err(incident_not_found)?;
    let (items, next) = app
        .store
        .notifications(incident_id, limit, after.as_deref())
        .await?;
    Ok(json!({ "items": items, "next_cursor": next.as_deref().map(pages::encode) }))
}
