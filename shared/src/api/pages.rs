//! Bounded reads of an incident's alerts and an alert's events (SPEC 16):
//! `GET /api/incidents/{id}` carries at most 100 alerts and
//! `alerts_next_cursor`, `GET /api/incidents/{id}/alerts?cursor=&limit=`
//! pages the rest; `GET /api/alerts/{id}` at most 100 events and
//! `events_next_cursor`, `GET /api/alerts/{id}/events?cursor=&limit=`.
//! Each call makes a fixed number of DynamoDB requests, whatever the size.

use base64::Engine as _;
use serde_json::{json, Value};

use super::{not_found, path_id, MAX_PAGE};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::intake::http::Inbound;
use crate::store::incidents::reads::{PAGE_OF_ALERTS, PAGE_OF_EVENTS};

/// A cursor is the last sort key of the page, opaque to the caller. Every
/// sort-key cursor of the API (timeline, deliveries, mapping rows, alerts,
/// events) is made and read here.
pub(super) fn encode(sk: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

/// The sort key a cursor carries, if it is one this API issued for `kind`.
pub(super) fn decode(cursor: &str, issued: fn(&str) -> bool) -> ApiResult<String> {
    decode_within(cursor, 256, issued)
}

/// [`decode`] for sort keys up to `max_len` characters of cursor.
pub(super) fn decode_within(
    cursor: &str,
    max_len: usize,
    issued: fn(&str) -> bool,
) -> ApiResult<String> {
    let refused = || ApiError::invalid("cursor: not a cursor this API issued");
    if cursor.len() > max_len {
        return Err(refused());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| refused())?;
    let sk = String::from_utf8(bytes).map_err(|_| refused())?;
    if issued(&sk) {
        Ok(sk)
    } else {
        Err(refused())
    }
}

fn is_alert_cursor(sk: &str) -> bool {
    sk.strip_prefix("ALERT#")
        .is_some_and(crate::ids::is_valid_id)
}

/// `{event_time_ms:015}#{sequence:010}`.
fn is_event_cursor(sk: &str) -> bool {
    sk.len() == 26
        && sk.as_bytes()[15] == b'#'
        && sk
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 15 || b.is_ascii_digit())
}

pub(super) fn cursor_and_limit(
    req: &Inbound,
    issued: fn(&str) -> bool,
    default: usize,
) -> ApiResult<(Option<String>, usize)> {
    let after = match req.query.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode(c, issued)?),
        None => None,
    };
    let limit = match req.query.get("limit").filter(|l| !l.is_empty()) {
        None => default,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit: must be an integer from 1 to {MAX_PAGE}"))
            })?,
    };
    Ok((after, limit))
}

/// `GET /api/incidents/{id}`: the incident, its first 100 alerts.
pub(super) async fn get_incident(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let (incident, next) = app
        .store
        .get_incident_with_alerts(id)
        .await?
        .ok_or_else(|| not_found("incident_id", "incident"))?;
    let mut view = json!(incident);
    view["alerts_next_cursor"] = json!(next.as_deref().map(encode));
    Ok(view)
}

/// `GET /api/incidents/{id}/alerts?cursor=&limit=`.
pub(super) async fn incident_alerts(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("incident_id", id)?;
    let (after, limit) = cursor_and_limit(req, is_alert_cursor, PAGE_OF_ALERTS)?;
    if app.store.get_incident(id).await?.is_none() {
        return Err(not_found("incident_id", "incident"));
    }
    let (items, next) = app
        .store
        .incident_alerts(id, after.as_deref(), limit)
        .await?;
    Ok(json!({"items": items, "next_cursor": next.as_deref().map(encode)}))
}

/// `GET /api/alerts/{id}`: the alert, its first 100 events.
pub(super) async fn get_alert(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("alert_id", id)?;
    let (alert, next) = app
        .store
        .get_alert_with_events(id)
        .await?
        .ok_or_else(|| not_found("alert_id", "alert"))?;
    let mut view = json!(alert);
    view["events_next_cursor"] = json!(next.as_deref().map(encode));
    Ok(view)
}

/// `GET /api/alerts/{id}/events?cursor=&limit=`: oldest first.
pub(super) async fn alert_events(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("alert_id", id)?;
    let (after, limit) = cursor_and_limit(req, is_event_cursor, PAGE_OF_EVENTS)?;
    let (items, next) = app
        .store
        .alert_events(id, after.as_deref(), limit)
        .await?
        .ok_or_else(|| not_found("alert_id", "alert"))?;
    Ok(json!({"items": items, "next_cursor": next.as_deref().map(encode)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_was_not_issued() {
        let alert = "ALERT#0123456789abcdef0123456789abcdef";
        let event = "001763600000000#0000000007";
        assert!(is_alert_cursor(alert));
        assert!(is_event_cursor(event));
        assert_eq!(decode(&encode(event), is_event_cursor).unwrap(), event);
        assert!(decode(&encode(event), is_alert_cursor).is_err());
        assert!(decode(&encode("INCIDENT"), is_alert_cursor).is_err());
        assert!(decode("!!", is_event_cursor).is_err());
    }
}
