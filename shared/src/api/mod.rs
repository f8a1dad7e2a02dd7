//! The management API (SPEC section 8): one function, routed here by path,
//! which also serves the console (`console`) and the OpenAPI document
//! (`openapi`) of SPEC section 12.
//!
//! Everything a caller sends is checked before a storage request is built
//! from it (ids, the cursor, the query), and no message repeats what was sent:
//! messages name the field and the rule.

use serde_json::Value;
use tracing::Instrument;

use crate::app::App;
use crate::engine::Action;
use crate::error::{ApiError, ApiResult};
use crate::ids::check_id;
use crate::intake::http::{media_type, new_request_id, respond, Inbound, Outbound};
use crate::intake::integrations::syntax_error;
use crate::rules::channel::RuleKind;
use crate::rules::integration::RuleList;
use crate::store::config::app_keys::Caller;

pub const MAX_WINDOW_MINUTES: u32 = 43_200;
pub const MAX_KEYS_PER_GROUP: usize = 5;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// Far longer than any cursor this API issues (a bound for each of three
/// statuses), so that garbage is refused before it is decoded.
const MAX_CURSOR_CHARS: usize = 1024;
/// The shortest app key an operator may supply (see [`check_app_key_strength`]).
pub const MIN_APP_KEY_CHARS: usize = 32;
/// Fewer different characters than this is a pattern, not a random key.
const MIN_APP_KEY_DISTINCT_CHARS: usize = 8;

pub mod access;
pub mod ack;
mod app_keys;
mod channels;
pub mod console;
mod escalation;
pub mod ical;
mod incidents;
mod integrations;
mod lifecycle;
pub mod oncall;
pub mod openapi;
mod pages;
mod rules;
mod webhooks;

pub use app_keys::{check_app_key_strength, new_app_key};
pub use channels::validate_grouping;
use incidents::{incident_not_found, parse_limit};
pub use integrations::new_integration_key;

pub async fn handle_api(app: &App, req: Inbound) -> Outbound {
    let request_id = new_request_id();
    // The raw path is not logged: it holds whatever the caller typed. The
    // matched route is recorded once known, and the id once it named something.
    let span = tracing::info_span!(
        "api",
        request_id = %request_id,
        method = loggable_method(&req.method),
        route = tracing::field::Empty,
        id = tracing::field::Empty,
        // Who called: on every log line of the request, changes included.
        app_key_id = tracing::field::Empty,
        member_id = tracing::field::Empty,
    );
    async {
        // Before `serve_public`: its table names `/ack/{token}` too. Boxed:
        // the lifecycle's future is deep, and would sit in every request's.
        if ack::is_ack_path(&req.path) {
            return Box::pin(ack::serve(app, &req, &request_id)).await;
        }
        if let Some(page) = serve_public(app, &req, &request_id).await {
            return page;
        }
        let result = match authenticate(app, &req).await {
            Ok(caller) => {
                let span = tracing::Span::current();
                span.record("app_key_id", caller.app_key_id.as_str());
                if let Some(member) = &caller.member_id {
                    span.record("member_id", member.as_str());
                }
                route(app, &req, &caller).await
            }
            Err(e) => Err(e),
        };
        respond(&request_id, result)
    }
    .instrument(span)
    .await
}

/// The console, the OpenAPI document and schedules' iCalendar feeds, before
/// any app key is asked for; `None` for every other path. A method they do
/// not take is refused here too, so that the answer does not depend on
/// whether a key was sent.
async fn serve_public(app: &App, req: &Inbound, request_id: &str) -> Option<Outbound> {
    let path = req.path.trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (pattern, methods) = PUBLIC_ROUTES
        .iter()
        .find(|(pattern, _)| pattern_matches(pattern, &segments))
        .copied()?;
    tracing::Span::current().record("route", pattern);
    let method = req.method.to_ascii_uppercase();
    if !methods.contains(&method.as_str()) {
        let refused =
            ApiError::MethodNotAllowed(format!("method: {pattern} takes {}", methods.join(", ")));
        return Some(respond(request_id, Err(refused)));
    }
    let page = match pattern {
        // Boxed, like the on-call routes below: keeps this future shallow.
        oncall::ICAL_PATH => {
            return Some(Box::pin(oncall::serve_ical(app, &segments, request_id)).await)
        }
        CONSOLE_PATH => console::page(),
        OPENAPI_PATH => openapi::document(),
        // `/ack/{token}` is served before this table is read (`ack`).
        _ => return None,
    };
    tracing::info!(status = 200, "request served");
    Some(page)
}

/// The method for the logs: a known one, or `other` (a method is free text).
fn loggable_method(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .unwrap_or("other")
}

async fn authenticate(app: &App, req: &Inbound) -> ApiResult<Caller> {
    let header = req.get_header("authorization").ok_or_else(|| {
        ApiError::Unauthorized("Authorization: missing; send `Bearer APP_KEY`".into())
    })?;
    let key = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("Authorization: expected `Bearer APP_KEY`".into()))?;
    app.store
        .find_app_key(key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Authorization: unknown app key".into()))
}

/// Every management route that needs an app key: its pattern (for logs,
/// messages and the OpenAPI document, whose paths must be exactly these) and
/// the methods it takes. `{name}` stands for one path segment.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/api/channels", &["GET", "POST"]),
    ("/api/channels/{channel_id}", &["GET", "PATCH", "DELETE"]),
    ("/api/channels/{channel_id}/drop-rules", &["GET", "POST"]),
    (
        "/api/channels/{channel_id}/drop-rules/{rule_id}",
        &["GET", "PATCH", "DELETE"],
    ),
    ("/api/channels/{channel_id}/silence-rules", &["GET", "POST"]),
    (
        "/api/channels/{channel_id}/silence-rules/{rule_id}",
        &["GET", "PATCH", "DELETE"],
    ),
    ("/api/channels/{channel_id}/inhibit-rules", &["GET", "POST"]),
    (
        "/api/channels/{channel_id}/inhibit-rules/{rule_id}",
        &["GET", "PATCH", "DELETE"],
    ),
    ("/api/channels/{channel_id}/escalation", &["GET", "PUT"]),
    ("/api/integrations", &["GET", "POST"]),
    ("/api/integrations/{integration_id}", &["GET"]),
    ("/api/integrations/{integration_id}/rotate-key", &["POST"]),
    (
        "/api/integrations/{integration_id}/enrichment",
        &["GET", "PUT"],
    ),
    (
        "/api/integrations/{integration_id}/pipeline",
        &["GET", "PUT"],
    ),
    ("/api/incidents", &["GET"]),
    ("/api/incidents/{incident_id}", &["GET"]),
    ("/api/incidents/{incident_id}/ack", &["POST"]),
    ("/api/incidents/{incident_id}/unack", &["POST"]),
    ("/api/incidents/{incident_id}/resolve", &["POST"]),
    ("/api/incidents/{incident_id}/reopen", &["POST"]),
    ("/api/incidents/{incident_id}/comments", &["POST"]),
    ("/api/incidents/{incident_id}/timeline", &["GET"]),
    ("/api/incidents/{incident_id}/silence", &["POST"]),
    ("/api/incidents/{incident_id}/alerts", &["GET"]),
    ("/api/incidents/{incident_id}/notifications", &["GET"]),
    ("/api/alerts/{alert_id}", &["GET"]),
    ("/api/alerts/{alert_id}/events", &["GET"]),
    ("/api/webhooks", &["GET", "POST"]),
    ("/api/webhooks/{webhook_id}", &["GET", "PATCH", "DELETE"]),
    ("/api/webhooks/{webhook_id}/deliveries", &["GET"]),
    (
        "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/resend",
        &["POST"],
    ),
    ("/api/mapping-tables", &["POST"]),
    ("/api/mapping-tables/{table_id}", &["GET", "DELETE"]),
    ("/api/mapping-tables/{table_id}/rows", &["GET", "PUT"]),
    ("/api/app-keys", &["GET", "POST"]),
    ("/api/app-keys/{app_key_id}", &["DELETE"]),
    ("/api/whoami", &["GET"]),
    ("/api/members", &["GET", "POST"]),
    ("/api/members/{member_id}", &["GET", "PATCH", "DELETE"]),
    ("/api/schedules", &["GET", "POST"]),
    ("/api/schedules/{schedule_id}", &["GET", "PATCH", "DELETE"]),
    ("/api/schedules/{schedule_id}/oncall", &["GET"]),
    ("/api/schedules/{schedule_id}/shifts", &["GET"]),
    ("/api/schedules/{schedule_id}/rotate-ical", &["POST"]),
];

/// Routes served without an app key: the console page (its API calls carry
/// the key), the OpenAPI document (it describes the API, holds no data) and
/// the acknowledgement links (their signed token is the authority; served
/// by `ack`) and a schedule's iCalendar feed (the secret token in its path
/// is the key; served by `oncall`).
pub const PUBLIC_ROUTES: &[(&str, &[&str])] = &[
    (CONSOLE_PATH, &["GET"]),
    (OPENAPI_PATH, &["GET"]),
    (ack::ACK_ROUTE, &["GET", "POST"]),
    (oncall::ICAL_PATH, &["GET"]),
];

pub const CONSOLE_PATH: &str = "/console";
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// Whether the path segments fit a route pattern (`{name}` takes any one segment).
pub fn pattern_matches(pattern: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| part.starts_with('{') || part == segment)
}

fn route_of(segments: &[&str]) -> Option<(&'static str, &'static [&'static str])> {
    ROUTES
        .iter()
        .find(|(pattern, _)| pattern_matches(pattern, segments))
        .copied()
}

async fn route(app: &App, req: &Inbound, caller: &Caller) -> ApiResult<Value> {
    let path = req.path.trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let Some((pattern, methods)) = route_of(&segments) else {
        return Err(ApiError::RouteNotFound(
            "path: no management route has this path; routes live under /api/channels, /api/integrations, /api/incidents, /api/alerts, /api/mapping-tables, /api/webhooks, /api/app-keys, /api/members, /api/schedules and /api/whoami".into(),
        ));
    };
    tracing::Span::current().record("route", pattern);
    let method = req.method.to_ascii_uppercase();
    if !methods.contains(&method.as_str()) {
        return Err(ApiError::MethodNotAllowed(format!(
            "method: {pattern} takes {}",
            methods.join(", ")
        )));
    }
    // The one place access is decided (SPEC 15): before any handler runs.
    access::authorize(caller, pattern, &method)?;
    // One boxed future per resource: a single match over every route made
    // one poll frame of about 700 KB in a debug build (each arm's future
    // its own slot), enough with the caller's to overflow a 2 MiB stack.
    let result = match segments.get(1).copied() {
        Some("channels") => Box::pin(channel_routes(app, req, &segments, &method)).await,
        Some("integrations") => Box::pin(integration_routes(app, req, &segments, &method)).await,
        Some("incidents") => Box::pin(incident_routes(app, req, caller, &segments, &method)).await,
        Some("webhooks") => Box::pin(webhook_routes(app, req, &segments, &method)).await,
        Some("members" | "schedules") => {
            Box::pin(oncall::route(app, req, &segments, method.as_str())).await
        }
        _ => Box::pin(other_routes(app, req, caller, &segments, &method)).await,
    };
    // Only an id that named something is logged (every handler checked it
    // with `path_id` before succeeding); a refused one is the caller's text.
    if result.is_ok() {
        if let Some(id) = segments.get(2) {
            tracing::Span::current().record("id", *id);
        }
    }
    result
}

/// `/api/channels/...`: channels, their rule lists and escalation rules.
async fn channel_routes(
    app: &App,
    req: &Inbound,
    segments: &[&str],
    method: &str,
) -> ApiResult<Value> {
    match (segments, method) {
        (["api", "channels"], "POST") => channels::create(app, req).await,
        (["api", "channels"], "GET") => channels::list(app).await,
        (["api", "channels", id], "GET") => channels::get(app, id).await,
        (["api", "channels", id], "PATCH") => channels::patch(app, id, req).await,
        (["api", "channels", id], "DELETE") => channels::delete(app, id).await,
        (["api", "channels", id, "escalation"], "PUT") => escalation::put_rules(app, id, req).await,
        (["api", "channels", id, "escalation"], "GET") => escalation::get_rules(app, id).await,
        (["api", "channels", id, list], method) if RuleKind::from_path(list).is_some() => {
            let kind = RuleKind::from_path(list).ok_or_else(|| ApiError::internal("rule kind"))?;
            match method {
                "POST" => rules::create_rule(app, id, kind, req).await,
                _ => rules::list_rules(app, id, kind).await,
            }
        }
        (["api", "channels", id, list, rule_id], method) if RuleKind::from_path(list).is_some() => {
            let kind = RuleKind::from_path(list).ok_or_else(|| ApiError::internal("rule kind"))?;
            match method {
                "GET" => rules::get_rule(app, id, kind, rule_id).await,
                "PATCH" => rules::patch_rule(app, id, kind, rule_id, req).await,
                _ => rules::delete_rule(app, id, kind, rule_id).await,
            }
        }
        _ => Err(unrouted()),
    }
}

/// `/api/integrations/...`.
async fn integration_routes(
    app: &App,
    req: &Inbound,
    segments: &[&str],
    method: &str,
) -> ApiResult<Value> {
    match (segments, method) {
        (["api", "integrations"], "POST") => integrations::create(app, req).await,
        (["api", "integrations"], "GET") => integrations::list(app).await,
        (["api", "integrations", id], "GET") => integrations::get(app, id).await,
        (["api", "integrations", id, "rotate-key"], "POST") => {
            integrations::rotate_key(app, id).await
        }
        (["api", "integrations", id, "enrichment"], "PUT") => {
            rules::put_integration_rules(app, id, RuleList::Enrichment, req).await
        }
        (["api", "integrations", id, "enrichment"], "GET") => {
            rules::get_integration_rules(app, id, RuleList::Enrichment).await
        }
        (["api", "integrations", id, "pipeline"], "PUT") => {
            rules::put_integration_rules(app, id, RuleList::Pipeline, req).await
        }
        (["api", "integrations", id, "pipeline"], "GET") => {
            rules::get_integration_rules(app, id, RuleList::Pipeline).await
        }
        _ => Err(unrouted()),
    }
}

/// `/api/incidents/...`: reads and every person's action.
async fn incident_routes(
    app: &App,
    req: &Inbound,
    caller: &Caller,
    segments: &[&str],
    method: &str,
) -> ApiResult<Value> {
    match (segments, method) {
        (["api", "incidents", id, "notifications"], "GET") => {
            escalation::notifications(app, id, req).await
        }
        (["api", "incidents"], "GET") => incidents::list(app, req).await,
        (["api", "incidents", id], "GET") => pages::get_incident(app, id).await,
        (["api", "incidents", id, "alerts"], "GET") => pages::incident_alerts(app, id, req).await,
        (["api", "incidents", id, "ack"], "POST") => {
            incidents::act_on_incident(app, id, Action::Ack, caller).await
        }
        (["api", "incidents", id, "resolve"], "POST") => {
            incidents::act_on_incident(app, id, Action::Resolve, caller).await
        }
        (["api", "incidents", id, "timeline"], "GET") => lifecycle::timeline(app, id, req).await,
        (["api", "incidents", id, "comments"], "POST") => {
            lifecycle::comment(app, id, req, caller).await
        }
        (["api", "incidents", id, "unack"], "POST") => lifecycle::unack(app, id, caller).await,
        (["api", "incidents", id, "reopen"], "POST") => {
            lifecycle::reopen(app, id, req, caller).await
        }
        (["api", "incidents", id, "silence"], "POST") => rules::quick_silence(app, id, req).await,
        _ => Err(unrouted()),
    }
}

/// `/api/webhooks/...`.
async fn webhook_routes(
    app: &App,
    req: &Inbound,
    segments: &[&str],
    method: &str,
) -> ApiResult<Value> {
    match (segments, method) {
        (["api", "webhooks"], "POST") => webhooks::create(app, req).await,
        (["api", "webhooks"], "GET") => webhooks::list(app).await,
        (["api", "webhooks", id], "GET") => webhooks::get(app, id).await,
        (["api", "webhooks", id], "PATCH") => webhooks::patch(app, id, req).await,
        (["api", "webhooks", id], "DELETE") => webhooks::delete(app, id).await,
        (["api", "webhooks", id, "deliveries"], "GET") => webhooks::deliveries(app, id, req).await,
        (["api", "webhooks", id, "deliveries", delivery, "resend"], "POST") => {
            webhooks::resend(app, id, delivery, req).await
        }
        _ => Err(unrouted()),
    }
}

/// Alerts, app keys, mapping tables, `whoami`.
async fn other_routes(
    app: &App,
    req: &Inbound,
    caller: &Caller,
    segments: &[&str],
    method: &str,
) -> ApiResult<Value> {
    match (segments, method) {
        (["api", "alerts", id], "GET") => pages::get_alert(app, id).await,
        (["api", "alerts", id, "events"], "GET") => pages::alert_events(app, id, req).await,
        (["api", "app-keys"], "GET") => app_keys::list(app).await,
        (["api", "app-keys"], "POST") => app_keys::create(app, req).await,
        (["api", "app-keys", id], "DELETE") => app_keys::revoke(app, id).await,
        (["api", "whoami"], "GET") => Ok(app_keys::whoami(caller)),
        (["api", "mapping-tables"], "POST") => rules::create_mapping_table(app, req).await,
        (["api", "mapping-tables", id], "GET") => rules::get_mapping_table(app, id).await,
        (["api", "mapping-tables", id], "DELETE") => rules::delete_mapping_table(app, id).await,
        (["api", "mapping-tables", id, "rows"], "PUT") => {
            rules::put_mapping_rows(app, id, req).await
        }
        (["api", "mapping-tables", id, "rows"], "GET") => {
            rules::get_mapping_rows(app, id, req).await
        }
        _ => Err(unrouted()),
    }
}

/// A route of the table that no handler serves: a bug, never the caller's.
pub(super) fn unrouted() -> ApiError {
    ApiError::internal("the route table and the handlers disagree")
}

/// A path parameter, checked before any storage request is built from it.
fn path_id<'a>(param: &str, id: &'a str) -> ApiResult<&'a str> {
    check_id(param, id)?;
    Ok(id)
}

/// A well-formed id that names nothing. The id is not repeated: the caller
/// has it, and the message names the parameter.
fn not_found(param: &str, what: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("{param}: no {what} has this id"))
}

fn json_body(req: &Inbound) -> ApiResult<Value> {
    if media_type(req.get_header("content-type")).as_deref() != Some("application/json") {
        return Err(ApiError::InvalidContentType(
            "Content-Type: send application/json (a charset parameter is allowed)".into(),
        ));
    }
    if req.body.len() > crate::intake::push::MAX_BODY_BYTES {
        return Err(ApiError::invalid("body: over the limit of 262144 bytes"));
    }
    let value: Value = serde_json::from_slice(&req.body).map_err(|e| syntax_error(&e))?;
    if !value.is_object() {
        return Err(ApiError::invalid("body: expected a JSON object"));
    }
    Ok(value)
}

fn check_name(field: &str, name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(format!(
            "{field}: must be 1 to 100 characters"
        )));
    }
    Ok(name.to_string())
}

/// The `name` a create call must send: present, then [`check_name`]'s rule.
fn required_name(name: Option<&str>) -> ApiResult<String> {
    check_name(
        "name",
        name.ok_or_else(|| ApiError::invalid("name: required"))?,
    )
}
