//! Webhook routes (SPEC 11): CRUD, delivery history, resend.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::pages;
use super::{check_name, json_body, not_found, parse_limit, path_id};
use crate::app::App;
use crate::domain::time::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::ids::check_id;
use crate::intake::http::Inbound;
use crate::intake::integrations::from_value;
use crate::outbound::config::{
    check_event_types, check_headers, check_secret, check_url, default_event_types, mask_url,
    Webhook, WebhookKind, MASK,
};

pub const MAX_CHANNEL_FILTERS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    name: Option<String>,
    url: Option<String>,
    kind: Option<WebhookKind>,
    channel_ids: Option<Vec<String>>,
    event_types: Option<Vec<String>>,
    headers: Option<BTreeMap<String, String>>,
    /// `null` in a PATCH removes the secret; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    secret: Option<Option<String>>,
    enabled: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_channels(ids: &[String]) -> ApiResult<()> {
    if ids.len() > MAX_CHANNEL_FILTERS {
        return Err(ApiError::invalid(format!(
            "channel_ids: at most {MAX_CHANNEL_FILTERS} channels"
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        check_id(&format!("channel_ids[{i}]"), id)?;
    }
    Ok(())
}

/// Apply a body's fields to `w`, each checked. What the views mask comes
/// back unchanged when sent back as shown (a console or script that GETs a
/// webhook and PATCHes it whole keeps its token and header values).
fn apply(app: &App, w: &mut Webhook, body: WebhookBody) -> ApiResult<()> {
    if let Some(name) = body.name {
        w.name = check_name("name", &name)?;
    }
    if let Some(url) = body.url.filter(|u| *u != mask_url(&w.url, w.kind)) {
        check_url(&url, app.webhook_targets)?;
        w.url = url;
    }
    if let Some(kind) = body.kind {
        w.kind = kind;
    }
    if let Some(ids) = body.channel_ids {
        check_channels(&ids)?;
        w.channel_ids = ids;
    }
    if let Some(types) = body.event_types {
        check_event_types(&types)?;
        w.event_types = types;
    }
    if let Some(mut headers) = body.headers {
        for (name, value) in headers.iter_mut() {
            if let Some(kept) = w.headers.get(name).filter(|_| value == MASK) {
                value.clone_from(kept);
            }
        }
        check_headers(&headers)?;
        w.headers = headers;
    }
    if let Some(secret) = body.secret {
        if let Some(s) = &secret {
            check_secret(s)?;
        }
        w.secret = secret;
    }
    if let Some(enabled) = body.enabled {
        w.enabled = enabled;
    }
    Ok(())
}

/// `POST /api/webhooks`.
pub(super) async fn create(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: WebhookBody = from_value(json_body(req)?)?;
    if body.name.is_none() {
        return Err(ApiError::invalid("name: required"));
    }
    if body.url.is_none() {
        return Err(ApiError::invalid("url: required"));
    }
    let mut w = Webhook {
        webhook_id: random_hex(8)?,
        name: String::new(),
        url: String::new(),
        kind: WebhookKind::Generic,
        channel_ids: Vec::new(),
        event_types: default_event_types(),
        headers: BTreeMap::new(),
        secret: None,
        enabled: true,
        created_at: now_ms() / 1000,
    };
    apply(app, &mut w, body)?;
    if !app.store.put_webhook(&w, false).await? {
        return Err(ApiError::internal("webhook id collision; retry"));
    }
    Ok(w.view())
}

pub(super) async fn list(app: &App) -> ApiResult<Value> {
    let items: Vec<Value> = app
        .store
        .list_webhooks()
        .await?
        .iter()
        .map(Webhook::view)
        .collect();
    Ok(json!({ "items": items, "next_cursor": null }))
}

async fn find(app: &App, id: &str) -> ApiResult<Webhook> {
    app.store
        .get_webhook(id)
        .await?
        .ok_or_else(|| not_found("webhook_id", "webhook"))
}

pub(super) async fn get(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("webhook_id", id)?;
    Ok(find(app, id).await?.view())
}

pub(super) async fn patch(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("webhook_id", id)?;
    let body: WebhookBody = from_value(json_body(req)?)?;
    let mut w = find(app, id).await?;
    apply(app, &mut w, body)?;
    if !app.store.put_webhook(&w, true).await? {
        return Err(not_found("webhook_id", "webhook"));
    }
    Ok(w.view())
}

pub(super) async fn delete(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("webhook_id", id)?;
    if app.store.delete_webhook(id).await? {
        Ok(json!({ "webhook_id": id, "deleted": true }))
    } else {
        Err(not_found("webhook_id", "webhook"))
    }
}

/// A delivery listing's sort key, `{at_ms:015}#{delivery_id}`.
fn is_delivery_cursor(bound: &str) -> bool {
    bound.split_once('#').is_some_and(|(ms, id)| {
        ms.len() == 15
            && ms.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 32
            && id.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// `GET /api/webhooks/{id}/deliveries?status=&limit=&cursor=`: newest first.
pub(super) async fn deliveries(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("webhook_id", id)?;
    let status = match req.query.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(s @ ("succeeded" | "pending" | "failed")) => Some(s),
        Some(_) => {
            return Err(ApiError::invalid(
                "status: must be succeeded, pending or failed",
            ))
        }
    };
    let limit = parse_limit(req.query.get("limit").map(String::as_str))?;
    let bound = match req.query.get("cursor").filter(|c| !c.is_empty()) {
        Some(c) => Some(pages::decode(c, is_delivery_cursor)?),
        None => None,
    };
    find(app, id).await?;
    let (items, next) = app
        .store
        .list_deliveries(id, status, limit, bound.as_deref())
        .await?;
    let next = next.as_deref().map(pages::encode);
    Ok(json!({ "items": items, "next_cursor": next }))
}

/// `POST /api/webhooks/{id}/deliveries/{delivery_id}/resend`: the same
/// event (same `event_id`) is delivered again by the notify function, as a
/// new delivery whose id is answered.
pub(super) async fn resend(
    app: &App,
    id: &str,
    delivery_id: &str,
    req: &Inbound,
) -> ApiResult<Value> {
    let id = path_id("webhook_id", id)?;
    let delivery_id = path_id("delivery_id", delivery_id)?;
    if !req.body.is_empty() {
        let body = json_body(req)?;
        if let Some(field) = body.as_object().and_then(|o| o.keys().next()) {
            let _ = field;
            return Err(ApiError::invalid("body: resend takes no fields"));
        }
    }
    find(app, id).await?;
    let new_id = app
        .store
        .queue_resend(id, delivery_id, now_ms())
        .await?
        .ok_or_else(|| not_found("delivery_id", "delivery"))?;
    Ok(
        json!({ "webhook_id": id, "delivery_id": new_id, "resent_from": delivery_id, "status": "queued" }),
    )
}
