//! The management API (SPEC section 8): one function, routed here by path,
//! which also serves the console (`console`) and the OpenAPI document
//! (`openapi`) of SPEC section 12.
//!
//! Everything a caller sends is checked before a storage request is built
//! from it (ids, the cursor, the query), and no message repeats what was sent:
//! messages name the field and the rule.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::app::App;
use crate::domain::event::is_valid_label_key;
use crate::engine::Action;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::ids::{check_id, is_valid_id};
use crate::intake::http::{media_type, new_request_id, respond, Inbound, Outbound};
use crate::intake::integrations::{from_value, syntax_error, IntegrationKind};
use crate::model::{Channel, Grouping, GroupingMethod, IncidentStatus, Integration, Role};
use crate::rules::channel::RuleKind;
use crate::rules::conditions::check_regex_budget;
use crate::rules::integration::RuleList;
use crate::rules::ratelimit::RateLimit;
use crate::rules::routing::{CompiledRoutes, Routes};
use crate::store::config::app_keys::Caller;

mod rules;
use crate::domain::time::now_ms;

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
pub mod console;
mod escalation;
pub mod ical;
mod lifecycle;
pub mod oncall;
pub mod openapi;
mod pages;
mod webhooks;

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
        (["api", "channels"], "POST") => create_channel(app, req).await,
        (["api", "channels"], "GET") => list_channels(app).await,
        (["api", "channels", id], "GET") => get_channel(app, id).await,
        (["api", "channels", id], "PATCH") => patch_channel(app, id, req).await,
        (["api", "channels", id], "DELETE") => delete_channel(app, id).await,
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
        (["api", "integrations"], "POST") => create_integration(app, req).await,
        (["api", "integrations"], "GET") => list_integrations(app).await,
        (["api", "integrations", id], "GET") => get_integration(app, id).await,
        (["api", "integrations", id, "rotate-key"], "POST") => rotate_key(app, id).await,
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
        (["api", "incidents"], "GET") => list_incidents(app, req).await,
        (["api", "incidents", id], "GET") => pages::get_incident(app, id).await,
        (["api", "incidents", id, "alerts"], "GET") => pages::incident_alerts(app, id, req).await,
        (["api", "incidents", id, "ack"], "POST") => {
            act_on_incident(app, id, Action::Ack, caller).await
        }
        (["api", "incidents", id, "resolve"], "POST") => {
            act_on_incident(app, id, Action::Resolve, caller).await
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
        (["api", "app-keys"], "GET") => list_app_keys(app).await,
        (["api", "app-keys"], "POST") => create_app_key(app, req).await,
        (["api", "app-keys", id], "DELETE") => revoke_app_key(app, id).await,
        (["api", "whoami"], "GET") => Ok(whoami(caller)),
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

pub fn validate_grouping(g: &Grouping) -> ApiResult<()> {
    if g.window_minutes > MAX_WINDOW_MINUTES {
        return Err(ApiError::invalid(format!(
            "grouping.window_minutes: must be 0 to {MAX_WINDOW_MINUTES}"
        )));
    }
    if g.method == GroupingMethod::Rules && g.equals.is_empty() {
        return Err(ApiError::invalid(
            "grouping.equals: rules grouping needs at least one key group",
        ));
    }
    for (i, group) in g.equals.iter().enumerate() {
        if group.is_empty() || group.len() > MAX_KEYS_PER_GROUP {
            return Err(ApiError::invalid(format!(
                "grouping.equals[{i}]: a key group has 1 to {MAX_KEYS_PER_GROUP} keys, got {}",
                group.len()
            )));
        }
        for (j, k) in group.iter().enumerate() {
            let ok = k == "title"
                || k == "severity"
                || k.strip_prefix("labels.").is_some_and(is_valid_label_key);
            if !ok {
                return Err(ApiError::invalid(format!(
                    "grouping.equals[{i}][{j}]: must be title, severity or labels.NAME"
                )));
            }
        }
    }
    Ok(())
}

/// `POST /api/channels` and `PATCH /api/channels/{id}`. Unknown fields are
/// refused: a misspelt setting (`autoClose`) must not be silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    name: Option<String>,
    grouping: Option<Grouping>,
    auto_close: Option<bool>,
    storm_thresholds: Option<Vec<u32>>,
    flapping: Option<crate::model::Flapping>,
}

async fn create_channel(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: ChannelBody = from_value(json_body(req)?)?;
    let name = check_name(
        "name",
        body.name
            .as_deref()
            .ok_or_else(|| ApiError::invalid("name: required"))?,
    )?;
    let grouping = body.grouping.unwrap_or_default();
    validate_grouping(&grouping)?;
    let channel = Channel {
        channel_id: random_hex(8)?,
        name,
        grouping,
        auto_close: body.auto_close.unwrap_or(true),
        created_at: now_ms() / 1000,
        storm_thresholds: lifecycle::check_storm_thresholds(
            body.storm_thresholds.unwrap_or_default(),
        )?,
        flapping: lifecycle::check_flapping(body.flapping.unwrap_or_default())?,
    };
    app.store.create_channel(&channel).await?;
    Ok(json!(channel))
}

async fn list_channels(app: &App) -> ApiResult<Value> {
    Ok(json!({ "items": app.store.list_channels().await?, "next_cursor": null }))
}

async fn find_channel(app: &App, id: &str) -> ApiResult<Channel> {
    app.store
        .get_channel(id)
        .await?
        .ok_or_else(|| not_found("channel_id", "channel"))
}

async fn get_channel(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("channel_id", id)?;
    Ok(json!(find_channel(app, id).await?))
}

async fn patch_channel(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("channel_id", id)?;
    let body: ChannelBody = from_value(json_body(req)?)?;
    let mut channel = find_channel(app, id).await?;
    if let Some(name) = body.name {
        channel.name = check_name("name", &name)?;
    }
    if let Some(grouping) = body.grouping {
        validate_grouping(&grouping)?;
        channel.grouping = grouping;
    }
    if let Some(auto_close) = body.auto_close {
        channel.auto_close = auto_close;
    }
    if let Some(thresholds) = body.storm_thresholds {
        channel.storm_thresholds = lifecycle::check_storm_thresholds(thresholds)?;
    }
    if let Some(flapping) = body.flapping {
        channel.flapping = lifecycle::check_flapping(flapping)?;
    }
    if !app.store.update_channel(&channel).await? {
        return Err(not_found("channel_id", "channel"));
    }
    Ok(json!(channel))
}

async fn delete_channel(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("channel_id", id)?;
    if app.store.delete_channel(id).await? {
        Ok(json!({ "channel_id": id, "deleted": true }))
    } else {
        Err(not_found("channel_id", "channel"))
    }
}

/// `POST /api/integrations`; unknown fields are refused, here and in
/// everything it nests (routes, cases, conditions, rate_limit).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntegrationBody {
    name: Option<String>,
    kind: Option<String>,
    channel_id: Option<String>,
    routes: Option<Routes>,
    rate_limit: Option<RateLimit>,
    callback_token: Option<String>,
    client_secret: Option<String>,
    verify_signature: Option<bool>,
    sns_topic_arns: Option<Vec<String>>,
}

fn push_path(kind: &str, key: &str) -> String {
    format!(
        "{}{kind}?integration_key={key}",
        crate::intake::push::PUSH_PATH_PREFIX
    )
}

/// 128 random bits, hex: shown once, stored only as a hash.
pub fn new_integration_key() -> ApiResult<String> {
    random_hex(16)
}

/// Where each channel id of the routes sits (`routes.cases[0].channel_ids[1]`).
fn route_channel_places(routes: &Routes) -> Vec<(String, &str)> {
    let mut places = Vec::new();
    for (i, case) in routes.cases.iter().enumerate() {
        for (j, id) in case.channel_ids.iter().enumerate() {
            places.push((format!("routes.cases[{i}].channel_ids[{j}]"), id.as_str()));
        }
    }
    for (j, id) in routes
        .default
        .iter()
        .flat_map(|d| d.channel_ids.iter())
        .enumerate()
    {
        places.push((format!("routes.default.channel_ids[{j}]"), id.as_str()));
    }
    places
}

async fn create_integration(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: IntegrationBody = from_value(json_body(req)?)?;
    let name = check_name(
        "name",
        body.name
            .as_deref()
            .ok_or_else(|| ApiError::invalid("name: required"))?,
    )?;
    let kind_slug = body
        .kind
        .ok_or_else(|| ApiError::invalid("kind: required"))?;
    let kind = IntegrationKind::from_slug(&kind_slug).ok_or_else(|| {
        let known: Vec<&str> = IntegrationKind::ALL.iter().map(|k| k.slug()).collect();
        ApiError::invalid(format!("kind: must be one of {}", known.join(", ")))
    })?;
    let (channel_id, routes) = match (body.channel_id, body.routes) {
        (Some(_), Some(_)) => return Err(ApiError::invalid(
            "routes: give channel_id (a private integration) or routes (a shared one), not both",
        )),
        (None, None) => {
            return Err(ApiError::invalid(
                "channel_id: required, or routes for a shared integration",
            ))
        }
        (Some(channel_id), None) => {
            check_id("channel_id", &channel_id)?;
            if app.store.get_channel(&channel_id).await?.is_none() {
                return Err(ApiError::invalid("channel_id: no channel has this id"));
            }
            (Some(channel_id), None)
        }
        (None, Some(routes)) => {
            let compiled = CompiledRoutes::compile(&routes)?;
            check_regex_budget(
                "routes",
                compiled.compiled_bytes(),
                0,
                "integration's routes and rules",
            )?;
            let mut existing: HashSet<&str> = HashSet::new();
            for (place, id) in route_channel_places(&routes) {
                if existing.contains(id) {
                    continue;
                }
                if app.store.get_channel(id).await?.is_none() {
                    return Err(ApiError::invalid(format!(
                        "{place}: no channel has this id"
                    )));
                }
                existing.insert(id);
            }
            (None, Some(routes))
        }
    };
    let rate_limit = body.rate_limit.unwrap_or_default();
    rate_limit.validate()?;
    if body.callback_token.is_some() && kind != IntegrationKind::Jiankongbao {
        return Err(ApiError::invalid(
            "callback_token: only jiankongbao integrations take a callback token",
        ));
    }
    if body.client_secret.is_some() && kind != IntegrationKind::Sentry {
        return Err(ApiError::invalid(
            "client_secret: only sentry integrations take a client secret",
        ));
    }
    if body.verify_signature.is_some() && kind != IntegrationKind::AwsCloudwatch {
        return Err(ApiError::invalid(
            "verify_signature: only aws-cloudwatch integrations take verify_signature",
        ));
    }
    let sns_topic_arns = body.sns_topic_arns.unwrap_or_default();
    if !sns_topic_arns.is_empty() && kind != IntegrationKind::AwsCloudwatch {
        return Err(ApiError::invalid(
            "sns_topic_arns: only aws-cloudwatch integrations take sns_topic_arns",
        ));
    }
    crate::intake::integrations::aws_cloudwatch::check_topic_arns(&sns_topic_arns)?;
    let integration = Integration {
        integration_id: random_hex(8)?,
        name,
        kind: kind.slug().to_string(),
        channel_id,
        routes,
        routes_version: None,
        rate_limit,
        created_at: now_ms() / 1000,
        callback_token: body.callback_token.filter(|t| !t.is_empty()),
        client_secret: body.client_secret.filter(|t| !t.is_empty()),
        verify_signature: body.verify_signature,
        sns_topic_arns,
        enrichment: Vec::new(),
        pipeline: Vec::new(),
        rules_version: None,
    };
    let key = new_integration_key()?;
    app.store.create_integration(&integration, &key).await?;
    Ok(json!({
        "integration_id": integration.integration_id,
        "integration_key": key,
        "push_path": push_path(&integration.kind, &key),
        "name": integration.name,
        "kind": integration.kind,
        "channel_id": integration.channel_id,
        "routes": integration.routes,
        "rate_limit": integration.rate_limit,
    }))
}

/// `GET /api/integrations`: every integration, oldest first, without keys
/// or secrets (the console's list).
async fn list_integrations(app: &App) -> ApiResult<Value> {
    let items: Vec<Value> = app
        .store
        .list_integrations()
        .await?
        .iter()
        .map(integration_view)
        .collect();
    Ok(json!({ "items": items, "next_cursor": null }))
}

/// An integration as the API shows it: never its key, token or secret, only
/// whether it has them.
fn integration_view(integration: &Integration) -> Value {
    let mut value = json!(integration);
    value["has_callback_token"] = json!(integration.callback_token.is_some());
    value["has_client_secret"] = json!(integration.client_secret.is_some());
    value
}

async fn get_integration(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("integration_id", id)?;
    let integration = app
        .store
        .get_integration(id)
        .await?
        .ok_or_else(|| not_found("integration_id", "integration"))?;
    Ok(integration_view(&integration))
}

async fn rotate_key(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("integration_id", id)?;
    let key = new_integration_key()?;
    let integration = app
        .store
        .rotate_integration_key(id, &key)
        .await?
        .ok_or_else(|| not_found("integration_id", "integration"))?;
    Ok(json!({
        "integration_id": integration.integration_id,
        "integration_key": key,
        "push_path": push_path(&integration.kind, &key),
    }))
}

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

fn parse_limit(limit: Option<&str>) -> ApiResult<usize> {
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

async fn list_incidents(app: &App, req: &Inbound) -> ApiResult<Value> {
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
fn incident_not_found(err: ApiError) -> ApiError {
    match err {
        ApiError::ResourceNotFound(_) => not_found("incident_id", "incident"),
        other => other,
    }
}

/// Ack or resolve by a person: the timeline entry names who (SPEC 15).
async fn act_on_incident(app: &App, id: &str, action: Action, caller: &Caller) -> ApiResult<Value> {
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

// ---- app keys ----

/// 192 random bits, hex: shown once, stored only as a hash.
pub fn new_app_key() -> ApiResult<String> {
    random_hex(24)
}

/// The rule for an app key an operator supplies (`alertctl create-app-key
/// --key`): at least 32 characters from `[A-Za-z0-9_-]`, at least 8 different
/// ones, and no character more than a third of the key. 32 random characters
/// of that alphabet carry 192 bits, 32 random hex digits 128; the rule cannot
/// tell a random key from a made-up one, but it turns away short keys, words
/// with padding and repeated patterns. A random key passes it (a 32-digit hex
/// key fails with odds of about 1 in 20,000). Generated keys need no rule.
pub fn check_app_key_strength(key: &str) -> ApiResult<()> {
    let refused = || {
        ApiError::invalid(format!(
            "app key: must be at least {MIN_APP_KEY_CHARS} characters from [A-Za-z0-9_-], with at least {MIN_APP_KEY_DISTINCT_CHARS} different characters and none making up more than a third of it"
        ))
    };
    let alphabet_ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if key.len() < MIN_APP_KEY_CHARS || !alphabet_ok {
        return Err(refused());
    }
    let mut counts = [0usize; 128];
    for b in key.bytes() {
        counts[usize::from(b & 0x7f)] += 1;
    }
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    let most_frequent = counts.iter().copied().max().unwrap_or(0);
    if distinct < MIN_APP_KEY_DISTINCT_CHARS || most_frequent * 3 > key.len() {
        return Err(refused());
    }
    Ok(())
}

/// `POST /api/app-keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppKeyBody {
    name: Option<String>,
    role: Option<String>,
    member_id: Option<String>,
}

async fn create_app_key(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: AppKeyBody = from_value(json_body(req)?)?;
    let name = check_name(
        "name",
        body.name
            .as_deref()
            .ok_or_else(|| ApiError::invalid("name: required"))?,
    )?;
    let role = body
        .role
        .as_deref()
        .ok_or_else(|| ApiError::invalid("role: required (admin, responder or viewer)"))
        .and_then(|r| {
            Role::parse(r)
                .ok_or_else(|| ApiError::invalid("role: must be admin, responder or viewer"))
        })?;
    // Members come with on-call (SPEC 14): until then the id is stored as
    // given, checked for shape only.
    if let Some(member) = &body.member_id {
        check_id("member_id", member)?;
    }
    let key = new_app_key()?;
    let created_at = now_ms() / 1000;
    let app_key_id = app
        .store
        .put_app_key_as(&key, &name, created_at, role, body.member_id.as_deref())
        .await?;
    let mut answer = json!({
        "app_key_id": app_key_id,
        "name": name,
        "app_key": key,
        "created_at": created_at,
        "role": role,
    });
    if let Some(member) = body.member_id {
        answer["member_id"] = json!(member);
    }
    Ok(answer)
}

/// `GET /api/whoami`: the calling key's id, role and member, so a client
/// (the console) can offer only what the role may do.
fn whoami(caller: &Caller) -> Value {
    let mut answer = json!({ "app_key_id": caller.app_key_id, "role": caller.role });
    if let Some(member) = &caller.member_id {
        answer["member_id"] = json!(member);
    }
    answer
}

async fn list_app_keys(app: &App) -> ApiResult<Value> {
    Ok(json!({ "items": app.store.list_app_keys().await?, "next_cursor": null }))
}

async fn revoke_app_key(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("app_key_id", id)?;
    if app.store.revoke_app_key(id).await? {
        Ok(json!({ "app_key_id": id, "revoked": true }))
    } else {
        Err(not_found("app_key_id", "app key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_limits() {
        let mut g = Grouping {
            method: GroupingMethod::Rules,
            equals: vec![vec!["title".into()]],
            ..Default::default()
        };
        assert!(validate_grouping(&g).is_ok());
        g.window_minutes = MAX_WINDOW_MINUTES;
        assert!(validate_grouping(&g).is_ok());
        g.window_minutes = MAX_WINDOW_MINUTES + 1;
        assert!(validate_grouping(&g)
            .unwrap_err()
            .message()
            .contains("43200"));
        g.window_minutes = 0;
        g.equals = vec![vec!["title".into(); 6]];
        assert!(validate_grouping(&g).is_err());
        g.equals = vec![vec!["labels.bad-name".into()]];
        assert!(validate_grouping(&g).is_err());
        g.equals = vec![];
        assert!(validate_grouping(&g).is_err());
    }

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
