//! `/api/integrations`: create one (private to a channel, or shared with
//! routes), read them without their secrets, rotate a push key. Their rule
//! lists are `rules`.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, not_found, path_id, required_name};
use crate::app::App;
use crate::domain::time::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::ids::check_id;
use crate::intake::http::Inbound;
use crate::intake::integrations::{from_value, IntegrationKind};
use crate::model::Integration;
use crate::rules::conditions::check_regex_budget;
use crate::rules::ratelimit::RateLimit;
use crate::rules::routing::{CompiledRoutes, Routes};

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

pub(super) async fn create(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: IntegrationBody = from_value(json_body(req)?)?;
    let name = required_name(body.name.as_deref())?;
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
pub(super) async fn list(app: &App) -> ApiResult<Value> {
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

pub(super) async fn get(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("integration_id", id)?;
    let integration = app
        .store
        .get_integration(id)
        .await?
        .ok_or_else(|| not_found("integration_id", "integration"))?;
    Ok(integration_view(&integration))
}

pub(super) async fn rotate_key(app: &App, id: &str) -> ApiResult<Value> {
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
