//! Incident lifecycle routes (SPEC 11): timeline, comments, unack, reopen,
//! and the channel's storm and flapping settings.

use serde::Deserialize;
use serde_json::{json, Value};

use super::access::actor;
use super::pages;
use super::{incident_not_found, json_body, not_found, parse_limit, path_id};
use crate::app::App;
use crate::domain::time::now_ms;
use crate::engine::Action;
use crate::error::{ApiError, ApiResult};
use crate::intake::http::Inbound;
use crate::intake::integrations::from_value;
use crate::model::Flapping;
use crate::store::config::app_keys::Caller;
use crate::store::incidents::timeline::{check_comment, is_timeline_cursor};

pub const MAX_STORM_THRESHOLDS: usize = 5;

/// At most 5 thresholds, each 2 to 10,000; kept sorted, each once.
pub(super) fn check_storm_thresholds(mut thresholds: Vec<u32>) -> ApiResult<Vec<u32>> {
    if thresholds.len() > MAX_STORM_THRESHOLDS {
        return Err(ApiError::invalid(format!(
            "storm_thresholds: at most {MAX_STORM_THRESHOLDS} thresholds"
        )));
    }
    if let Some(i) = thresholds.iter().position(|t| !(2..=10_000).contains(t)) {
        return Err(ApiError::invalid(format!(
            "storm_thresholds[{i}]: must be 2 to 10000"
        )));
    }
    thresholds.sort_unstable();
    thresholds.dedup();
    Ok(thresholds)
}

pub(super) fn check_flapping(f: Flapping) -> ApiResult<Flapping> {
    let rules = [
        ("flapping.max_changes", f.max_changes, 2, 100),
        ("flapping.window_minutes", f.window_minutes, 1, 1440),
        ("flapping.mute_minutes", f.mute_minutes, 0, 1440),
    ];
    for (field, value, lo, hi) in rules {
        if !(lo..=hi).contains(&value) {
            return Err(ApiError::invalid(format!("{field}: must be {lo} to {hi}")));
        }
    }
    Ok(f)
}

/// `GET /api/incidents/{id}/timeline?limit=&cursor=`: oldest first.
pub(super) async fn timeline(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let limit = parse_limit(req.query.get("limit").map(String::as_str))?;
    let cursor = match req.query.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(pages::decode(c, is_timeline_cursor)?),
        None => None,
    };
    if app.store.get_incident(id).await?.is_none() {
        return Err(not_found("incident_id", "incident"));
    }
    let (items, next) = app.store.timeline(id, limit, cursor.as_deref()).await?;
    let next = next.as_deref().map(pages::encode);
    Ok(json!({ "items": items, "next_cursor": next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: Option<String>,
}

/// `POST /api/incidents/{id}/comments` `{"text"}`: adds `i_comm`.
pub(super) async fn comment(
    app: &App,
    id: &str,
    req: &Inbound,
    caller: &Caller,
) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let body: CommentBody = from_value(json_body(req)?)?;
    let text = body
        .text
        .ok_or_else(|| ApiError::invalid("text: required"))?;
    check_comment(&text)?;
    let entry = app
        .store
        .add_comment(id, &text, json!({ "actor": actor(caller) }), now_ms())
        .await?
        .ok_or_else(|| not_found("incident_id", "incident"))?;
    Ok(json!(entry))
}

/// `POST /api/incidents/{id}/unack`: `Processing` back to `Triggered`.
pub(super) async fn unack(app: &App, id: &str, caller: &Caller) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let incident = app
        .store
        .act_on_incident_with(
            id,
            Action::Unack,
            json!({ "actor": actor(caller) }),
            now_ms(),
        )
        .await
        .map_err(incident_not_found)?;
    Ok(json!(incident))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReopenBody {
    reason: Option<String>,
}

/// `POST /api/incidents/{id}/reopen` `{"reason"}` (optional, at most 1024
/// characters): `Closed` back to `Triggered`; its alerts stay closed.
pub(super) async fn reopen(
    app: &App,
    id: &str,
    req: &Inbound,
    caller: &Caller,
) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let reason = if req.body.is_empty() {
        None
    } else {
        let body: ReopenBody = from_value(json_body(req)?)?;
        body.reason
    };
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1024) {
        return Err(ApiError::invalid("reason: at most 1024 characters"));
    }
    let detail = match reason {
        Some(r) => json!({ "reason": r, "actor": actor(caller) }),
        None => json!({ "actor": actor(caller) }),
    };
    let incident = app
        .store
        .act_on_incident_with(id, Action::Reopen, detail, now_ms())
        .await
        .map_err(incident_not_found)?;
    Ok(json!(incident))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storm_and_flapping_limits() {
        assert_eq!(
            check_storm_thresholds(vec![100, 10, 10]).unwrap(),
            vec![10, 100]
        );
        assert!(check_storm_thresholds(vec![1]).is_err());
        assert!(check_storm_thresholds(vec![10_001]).is_err());
        assert!(check_storm_thresholds(vec![2, 3, 4, 5, 6, 7]).is_err());
        assert!(check_flapping(Flapping::default()).is_ok());
        let bad = Flapping {
            max_changes: 1,
            ..Default::default()
        };
        assert_eq!(
            check_flapping(bad).unwrap_err().message(),
            "flapping.max_changes: must be 2 to 100"
        );
        let bad = Flapping {
            window_minutes: 0,
            ..Default::default()
        };
        assert!(check_flapping(bad).is_err());
    }
}
