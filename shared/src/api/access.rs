//! Who may call which management route (SPEC 15), decided in one place: a
//! table with one row per route and method of [`super::ROUTES`]. A route
//! added there without a row here is refused to every key (and fails the
//! table test), never open to all by accident.

use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::store::config::app_keys::Caller;

use Role::{Admin, Responder, Viewer};

/// (route pattern, method, the least role that may call it).
pub const ACCESS: &[(&str, &str, Role)] = &[
    ("/api/channels", "GET", Viewer),
    ("/api/channels", "POST", Admin),
    ("/api/channels/{channel_id}", "GET", Viewer),
    ("/api/channels/{channel_id}", "PATCH", Admin),
    ("/api/channels/{channel_id}", "DELETE", Admin),
    ("/api/channels/{channel_id}/drop-rules", "GET", Viewer),
    ("/api/channels/{channel_id}/drop-rules", "POST", Admin),
    (
        "/api/channels/{channel_id}/drop-rules/{rule_id}",
        "GET",
        Viewer,
    ),
    (
        "/api/channels/{channel_id}/drop-rules/{rule_id}",
        "PATCH",
        Admin,
    ),
    (
        "/api/channels/{channel_id}/drop-rules/{rule_id}",
        "DELETE",
        Admin,
    ),
    ("/api/channels/{channel_id}/silence-rules", "GET", Viewer),
    ("/api/channels/{channel_id}/silence-rules", "POST", Admin),
    (
        "/api/channels/{channel_id}/silence-rules/{rule_id}",
        "GET",
        Viewer,
    ),
    (
        "/api/channels/{channel_id}/silence-rules/{rule_id}",
        "PATCH",
        Admin,
    ),
    (
        "/api/channels/{channel_id}/silence-rules/{rule_id}",
        "DELETE",
        Admin,
    ),
    ("/api/channels/{channel_id}/escalation", "GET", Viewer),
    ("/api/channels/{channel_id}/escalation", "PUT", Admin),
    ("/api/incidents/{incident_id}/notifications", "GET", Viewer),
    ("/api/channels/{channel_id}/inhibit-rules", "GET", Viewer),
    ("/api/channels/{channel_id}/inhibit-rules", "POST", Admin),
    (
        "/api/channels/{channel_id}/inhibit-rules/{rule_id}",
        "GET",
        Viewer,
    ),
    (
        "/api/channels/{channel_id}/inhibit-rules/{rule_id}",
        "PATCH",
        Admin,
    ),
    (
        "/api/channels/{channel_id}/inhibit-rules/{rule_id}",
        "DELETE",
        Admin,
    ),
    ("/api/integrations", "GET", Viewer),
    ("/api/integrations", "POST", Admin),
    ("/api/integrations/{integration_id}", "GET", Viewer),
    (
        "/api/integrations/{integration_id}/rotate-key",
        "POST",
        Admin,
    ),
    (
        "/api/integrations/{integration_id}/enrichment",
        "GET",
        Viewer,
    ),
    (
        "/api/integrations/{integration_id}/enrichment",
        "PUT",
        Admin,
    ),
    ("/api/integrations/{integration_id}/pipeline", "GET", Viewer),
    ("/api/integrations/{integration_id}/pipeline", "PUT", Admin),
    ("/api/incidents", "GET", Viewer),
    ("/api/incidents/{incident_id}", "GET", Viewer),
    ("/api/incidents/{incident_id}/alerts", "GET", Viewer),
    ("/api/incidents/{incident_id}/ack", "POST", Responder),
    ("/api/incidents/{incident_id}/unack", "POST", Responder),
    ("/api/incidents/{incident_id}/resolve", "POST", Responder),
    ("/api/incidents/{incident_id}/reopen", "POST", Responder),
    ("/api/incidents/{incident_id}/comments", "POST", Responder),
    ("/api/incidents/{incident_id}/timeline", "GET", Viewer),
    ("/api/incidents/{incident_id}/silence", "POST", Responder),
    ("/api/alerts/{alert_id}", "GET", Viewer),
    ("/api/alerts/{alert_id}/events", "GET", Viewer),
    ("/api/webhooks", "GET", Viewer),
    ("/api/webhooks", "POST", Admin),
    ("/api/webhooks/{webhook_id}", "GET", Viewer),
    ("/api/webhooks/{webhook_id}", "PATCH", Admin),
    ("/api/webhooks/{webhook_id}", "DELETE", Admin),
    ("/api/webhooks/{webhook_id}/deliveries", "GET", Viewer),
    (
        "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/resend",
        "POST",
        Admin,
    ),
    ("/api/mapping-tables", "POST", Admin),
    ("/api/mapping-tables/{table_id}", "GET", Viewer),
    ("/api/mapping-tables/{table_id}", "DELETE", Admin),
    ("/api/mapping-tables/{table_id}/rows", "GET", Viewer),
    ("/api/mapping-tables/{table_id}/rows", "PUT", Admin),
    // Managing keys is managing access: admin only, listing included.
    ("/api/app-keys", "GET", Admin),
    ("/api/app-keys", "POST", Admin),
    ("/api/app-keys/{app_key_id}", "DELETE", Admin),
    // Every key may ask what it is.
    ("/api/whoami", "GET", Viewer),
    // On-call configuration is admin's, like channels (SPEC 15).
    ("/api/members", "GET", Viewer),
    ("/api/members", "POST", Admin),
    ("/api/members/{member_id}", "GET", Viewer),
    ("/api/members/{member_id}", "PATCH", Admin),
    ("/api/members/{member_id}", "DELETE", Admin),
    ("/api/schedules", "GET", Viewer),
    ("/api/schedules", "POST", Admin),
    ("/api/schedules/{schedule_id}", "GET", Viewer),
    ("/api/schedules/{schedule_id}", "PATCH", Admin),
    ("/api/schedules/{schedule_id}", "DELETE", Admin),
    ("/api/schedules/{schedule_id}/oncall", "GET", Viewer),
    ("/api/schedules/{schedule_id}/shifts", "GET", Viewer),
    ("/api/schedules/{schedule_id}/rotate-ical", "POST", Admin),
];

/// The least role for a route and method; `None`: no decision (refused).
pub fn required_role(pattern: &str, method: &str) -> Option<Role> {
    ACCESS
        .iter()
        .find(|(p, m, _)| *p == pattern && *m == method)
        .map(|(_, _, role)| *role)
}

/// Refuse a caller outside the route's role: 403 `AccessDenied`, before the
/// handler runs, so nothing is written.
pub fn authorize(caller: &Caller, pattern: &str, method: &str) -> ApiResult<()> {
    match required_role(pattern, method) {
        Some(needed) if caller.role >= needed => Ok(()),
        Some(needed) => Err(ApiError::AccessDenied(format!(
            "role: {method} {pattern} needs the {} role; this key is {}",
            needed.as_str(),
            caller.role.as_str()
        ))),
        None => Err(ApiError::AccessDenied(format!(
            "role: {method} {pattern} has no access decision"
        ))),
    }
}

/// Who acted, as the timeline records it: the member a key names, else the key.
pub fn actor(caller: &Caller) -> serde_json::Value {
    match &caller.member_id {
        Some(member) => serde_json::json!({ "member_id": member }),
        None => serde_json::json!({ "app_key_id": caller.app_key_id }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route and method of the route table has exactly one decision,
    /// and no decision names a route that is not there.
    #[test]
    fn every_route_has_one_decision() {
        let mut served = Vec::new();
        for (pattern, methods) in super::super::ROUTES {
            for method in *methods {
                let rows = ACCESS
                    .iter()
                    .filter(|(p, m, _)| p == pattern && m == method)
                    .count();
                assert_eq!(rows, 1, "{method} {pattern}: {rows} access decisions");
                served.push((*pattern, *method));
            }
        }
        for (p, m, _) in ACCESS {
            assert!(served.contains(&(*p, *m)), "{m} {p} is not a route");
        }
    }

    #[test]
    fn reads_are_open_to_viewers_and_changes_are_not() {
        for (pattern, method, role) in ACCESS {
            if *method == "GET" && !pattern.starts_with("/api/app-keys") {
                assert_eq!(*role, Viewer, "{method} {pattern}");
            } else {
                assert_ne!(*role, Viewer, "{method} {pattern}");
            }
        }
        let viewer = Caller {
            app_key_id: "k".into(),
            role: Viewer,
            member_id: None,
        };
        let err = authorize(&viewer, "/api/channels", "POST").unwrap_err();
        assert_eq!(err.code(), "AccessDenied");
        assert!(authorize(&viewer, "/api/nowhere", "GET").is_err());
    }
}
