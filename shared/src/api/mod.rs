//! The management API (SPEC section 8): one function, routed here by path.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::app::App;
use crate::engine::Action;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::intake::event::is_valid_label_key;
use crate::intake::http::{media_type, new_request_id, respond, Inbound, Outbound};
use crate::intake::integrations::{from_value, IntegrationKind};
use crate::intake::ratelimit::RateLimit;
use crate::model::{Channel, Grouping, GroupingMethod, IncidentStatus, Integration};
use crate::rules::routing::{CompiledRoutes, Routes};
use crate::store::now_ms;

pub const MAX_WINDOW_MINUTES: u32 = 43_200;
pub const MAX_KEYS_PER_GROUP: usize = 5;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

pub async fn handle_api(app: &App, req: Inbound) -> Outbound {
    let request_id = new_request_id();
    let span = tracing::info_span!("api", request_id = %request_id, method = %req.method, path = %req.path);
    async {
        let result = match authenticate(app, &req).await {
            Ok(()) => route(app, &req).await,
            Err(e) => Err(e),
        };
        respond(&request_id, result)
    }
    .instrument(span)
    .await
}

async fn authenticate(app: &App, req: &Inbound) -> ApiResult<()> {
    let header = req.get_header("authorization").ok_or_else(|| {
        ApiError::Unauthorized("Authorization: missing; send `Bearer APP_KEY`".into())
    })?;
    let key = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("Authorization: expected `Bearer APP_KEY`".into()))?;
    if app.store.app_key_is_valid(key).await? {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "Authorization: unknown app key".into(),
        ))
    }
}

async fn route(app: &App, req: &Inbound) -> ApiResult<Value> {
    let path = req.path.trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method.to_ascii_uppercase();
    match (segments.as_slice(), method.as_str()) {
        (["api", "channels"], "POST") => create_channel(app, req).await,
        (["api", "channels"], "GET") => list_channels(app).await,
        (["api", "channels", id], "GET") => get_channel(app, id).await,
        (["api", "channels", id], "PATCH") => patch_channel(app, id, req).await,
        (["api", "channels", id], "DELETE") => delete_channel(app, id).await,
        (["api", "integrations"], "POST") => create_integration(app, req).await,
        (["api", "integrations", id], "GET") => get_integration(app, id).await,
        (["api", "integrations", id, "rotate-key"], "POST") => rotate_key(app, id).await,
        (["api", "incidents"], "GET") => list_incidents(app, req).await,
        (["api", "incidents", id], "GET") => get_incident(app, id).await,
        (["api", "incidents", id, "ack"], "POST") => Ok(json!(
            app.store.act_on_incident(id, Action::Ack, now_ms()).await?
        )),
        (["api", "incidents", id, "resolve"], "POST") => Ok(json!(
            app.store
                .act_on_incident(id, Action::Resolve, now_ms())
                .await?
        )),
        (["api", "alerts", id], "GET") => get_alert(app, id).await,
        (
            ["api", "channels"]
            | ["api", "channels", _]
            | ["api", "integrations"]
            | ["api", "integrations", _]
            | ["api", "integrations", _, "rotate-key"]
            | ["api", "incidents"]
            | ["api", "incidents", _]
            | ["api", "incidents", _, "ack" | "resolve"]
            | ["api", "alerts", _],
            _,
        ) => Err(ApiError::MethodNotAllowed(format!(
            "method {method} is not allowed on {path}"
        ))),
        _ => Err(ApiError::RouteNotFound(format!(
            "no route for {method} {path}"
        ))),
    }
}

fn json_body(req: &Inbound) -> ApiResult<Value> {
    if media_type(req.get_header("content-type")).as_deref() != Some("application/json") {
        return Err(ApiError::InvalidContentType(
            "Content-Type must be application/json".into(),
        ));
    }
    if req.body.len() > crate::intake::push::MAX_BODY_BYTES {
        return Err(ApiError::invalid("body: over the limit of 262144 bytes"));
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::invalid(format!("body: not valid JSON ({e})")))?;
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
            "grouping.window_minutes: at most {MAX_WINDOW_MINUTES}, got {}",
            g.window_minutes
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
        for k in group {
            let ok = k == "title"
                || k == "severity"
                || k.strip_prefix("labels.").is_some_and(is_valid_label_key);
            if !ok {
                return Err(ApiError::invalid(format!(
                    "grouping.equals[{i}]: key {k:?} must be title, severity or labels.NAME"
                )));
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct ChannelBody {
    name: Option<String>,
    grouping: Option<Grouping>,
    auto_close: Option<bool>,
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
        .ok_or_else(|| ApiError::ResourceNotFound(format!("channel {id} does not exist")))
}

async fn get_channel(app: &App, id: &str) -> ApiResult<Value> {
    Ok(json!(find_channel(app, id).await?))
}

async fn patch_channel(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
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
    if !app.store.update_channel(&channel).await? {
        return Err(ApiError::ResourceNotFound(format!(
            "channel {id} does not exist"
        )));
    }
    Ok(json!(channel))
}

async fn delete_channel(app: &App, id: &str) -> ApiResult<Value> {
    if app.store.delete_channel(id).await? {
        Ok(json!({ "channel_id": id, "deleted": true }))
    } else {
        Err(ApiError::ResourceNotFound(format!(
            "channel {id} does not exist"
        )))
    }
}

#[derive(Deserialize)]
struct IntegrationBody {
    name: Option<String>,
    kind: Option<String>,
    channel_id: Option<String>,
    routes: Option<Routes>,
    rate_limit: Option<RateLimit>,
    callback_token: Option<String>,
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
        ApiError::invalid(format!(
            "kind: {kind_slug:?} is not one of {}",
            known.join(", ")
        ))
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
            find_channel(app, &channel_id).await.map_err(|_| {
                ApiError::invalid(format!("channel_id: channel {channel_id} does not exist"))
            })?;
            (Some(channel_id), None)
        }
        (None, Some(routes)) => {
            CompiledRoutes::compile(&routes)?;
            for id in routes.channel_ids() {
                if app.store.get_channel(id).await?.is_none() {
                    return Err(ApiError::invalid(format!(
                        "routes: channel {id} does not exist"
                    )));
                }
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

async fn get_integration(app: &App, id: &str) -> ApiResult<Value> {
    let integration =
        app.store.get_integration(id).await?.ok_or_else(|| {
            ApiError::ResourceNotFound(format!("integration {id} does not exist"))
        })?;
    let has_token = integration.callback_token.is_some();
    let mut value = json!(integration);
    value["has_callback_token"] = json!(has_token);
    Ok(value)
}

async fn rotate_key(app: &App, id: &str) -> ApiResult<Value> {
    let key = new_integration_key()?;
    let integration = app
        .store
        .rotate_integration_key(id, &key)
        .await?
        .ok_or_else(|| ApiError::ResourceNotFound(format!("integration {id} does not exist")))?;
    Ok(json!({
        "integration_id": integration.integration_id,
        "integration_key": key,
        "push_path": push_path(&integration.kind, &key),
    }))
}

fn decode_cursor(cursor: &str) -> ApiResult<HashMap<String, String>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ApiError::invalid("cursor: not a cursor this API returned"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::invalid("cursor: not a cursor this API returned"))
}

fn encode_cursor(bounds: &HashMap<String, String>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!(bounds).to_string())
}

async fn list_incidents(app: &App, req: &Inbound) -> ApiResult<Value> {
    let q = &req.query;
    let channel_id = q
        .get("channel_id")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    let statuses = match q
        .get("status")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
    {
        None => vec![
            IncidentStatus::Triggered,
            IncidentStatus::Processing,
            IncidentStatus::Closed,
        ],
        Some(list) => list
            .split(',')
            .map(|s| {
                IncidentStatus::parse(s.trim()).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "status: {s:?} is not one of Triggered, Processing, Closed"
                    ))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
    };
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => DEFAULT_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(format!(
                    "limit: must be 1 to {MAX_PAGE}, got {l:?}"
                )))
            }
        },
    };
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

async fn get_incident(app: &App, id: &str) -> ApiResult<Value> {
    let incident = app
        .store
        .get_incident_with_alerts(id)
        .await?
        .ok_or_else(|| ApiError::ResourceNotFound(format!("incident {id} does not exist")))?;
    Ok(json!(incident))
}

async fn get_alert(app: &App, id: &str) -> ApiResult<Value> {
    let alert = app
        .store
        .get_alert_with_events(id)
        .await?
        .ok_or_else(|| ApiError::ResourceNotFound(format!("alert {id} does not exist")))?;
    Ok(json!(alert))
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
        let bounds = HashMap::from([("Triggered".to_string(), "000#x".to_string())]);
        assert_eq!(decode_cursor(&encode_cursor(&bounds)).unwrap(), bounds);
        assert!(decode_cursor("%%%").is_err());
        assert!(decode_cursor("aGVsbG8").is_err());
    }
}
