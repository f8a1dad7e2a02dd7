//! `/api/incidents`: the listing (by status, newest first, with a cursor)
//! and a person's ack or resolve. One incident's pages are `pages`, its
//! other lifecycle routes `lifecycle`.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{access, not_found, path_id, DEFAULT_PAGE, MAX_CURSOR_CHARS, MAX_PAGE};
use crate::app::App;
use crate::domain::time::now_ms;
use crate::engine::Action;
use crate::error::{ApiError, ApiResult};
use crate::ids::{check_id, is_valid_id};
use crate::intake::http::Inbound;
use crate::model::IncidentStatus;
use crate::store::config::app_keys::Caller;

/// The listing's continuation: per status, the sort key to continue below.
/// Anything else is refused before it becomes a key condition, including a
/// well-encoded cursor this API could not have issued.
fn decode_cursor(cursor: &str) -> ApiResult<HashMap<String, String>> {
    let refused = || ApiError::invalid("cursor: not a cursor this API issued");
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(refused());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| refused())?;
    let bounds: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| refused())?;
    let issued_by_us = !bounds.is_empty()
        && bounds.iter().all(|(status, bound)| {
            IncidentStatus::parse(status).is_some() && is_listing_bound(bound)
        });
    if issued_by_us {
        Ok(bounds)
    } else {
        Err(refused())
    }
}

/// An incident's listing sort key, `{created_ms:015}#{incident_id}`
/// ([`crate::store::items::incident_order`]).
fn is_listing_bound(bound: &str) -> bool {
    bound.split_once('#').is_some_and(|(created_ms, id)| {
        created_ms.len() == 15 && created_ms.bytes().all(|b| b.is_ascii_digit()) && is_valid_id(id)
    })
}

fn encode_cursor(bounds: &HashMap<String, String>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!(bounds).to_string())
}

/// `status`: a comma list, each status once however often it is named.
fn parse_statuses(list: Option<&str>) -> ApiResult<Vec<IncidentStatus>> {
    let Some(list) = list.filter(|s| !s.is_empty()) else {
        return Ok(vec![
            IncidentStatus::Triggered,
            IncidentStatus::Processing,
            IncidentStatus::Closed,
        ]);
    };
    let mut statuses = Vec::new();
    for name in list.split(',') {
        let status = IncidentStatus::parse(name.trim()).ok_or_else(|| {
            ApiError::invalid(
                "status: each entry must be Triggered, Processing or Closed (comma-separated)",
            )
        })?;
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(statuses)
}

pub(super) fn parse_limit(limit: Option<&str>) -> ApiResult<usize> {
    match limit.filter(|l| !l.is_empty()) {
        None => Ok(DEFAULT_PAGE),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit: must be an integer from 1 to {MAX_PAGE}"))
            }),
    }
}

pub(super) async fn list(app: &App, req: &Inbound) -> ApiResult<Value> {
    let q = &req.query;
    let channel_id = match q.get("channel_id").filter(|c| !c.is_empty()) {
        Some(c) => {
            check_id("channel_id", c)?;
            Some(c.as_str())
        }
        None => None,
    };
    let statuses = parse_statuses(q.get("status").map(String::as_str))?;
    let limit = parse_limit(q.get("limit").map(String::as_str))?;
    let bounds = match q.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => decode_cursor(c)?,
        None => HashMap::new(),
    };
    let page = app
        .store
        .list_incidents(channel_id, &statuses, limit, &bounds)
        .await?;
    Ok(json!({ "items": page.items, "next_cursor": page.next.as_ref().map(encode_cursor) }))
}

/// The store names a missing incident by its id; the API names the parameter.
pub(super) fn incident_not_found(err: ApiError) -> ApiError {
    match err {
        ApiError::ResourceNotFound(_) => not_found("incident_id", "incident"),
        other => other,
    }
}

/// Ack or resolve by a person: the timeline entry names who (SPEC 15).
pub(super) async fn act_on_incident(
    app: &App,
    id: &str,
    action: Action,
    caller: &Caller,
) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let incident = app
        .store
        .act_on_incident_with(
            id,
            action,
            json!({ "actor": access::actor(caller) }),
            now_ms(),
        )
        .await
        .map_err(incident_not_found)?;
    Ok(json!(incident))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let bound = crate::store::items::incident_order(1_763_626_800_123, "0123456789abcdef");
        let bounds = HashMap::from([("Triggered".to_string(), bound)]);
        assert_eq!(decode_cursor(&encode_cursor(&bounds)).unwrap(), bounds);
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        for garbage in [
            "%%%".to_string(),
            "aGVsbG8".to_string(),
            "A".repeat(3000),
            encode("{}"),
            encode(r#"{"Open": "001763626800123#abc"}"#),
            encode(r#"{"Triggered": "x"}"#),
            encode(r#"{"Triggered": "001763626800123#a/b"}"#),
            encode(&format!(
                r#"{{"Closed": "001763626800123#{}"}}"#,
                "a".repeat(3000)
            )),
        ] {
            let err = decode_cursor(&garbage).unwrap_err();
            assert_eq!(err.message(), "cursor: not a cursor this API issued");
        }
    }
}
