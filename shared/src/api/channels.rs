//! `/api/channels`: a channel's own settings (name, grouping, auto-close,
//! storm thresholds, flapping). Its rule lists are `rules`, its escalation
//! rules `escalation`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    check_name, json_body, lifecycle, not_found, path_id, required_name, MAX_KEYS_PER_GROUP,
    MAX_WINDOW_MINUTES,
};
use crate::app::App;
use crate::domain::event::is_valid_label_key;
use crate::domain::time::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::intake::http::Inbound;
use crate::intake::integrations::from_value;
use crate::model::{Channel, Grouping, GroupingMethod};

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

pub(super) async fn create(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: ChannelBody = from_value(json_body(req)?)?;
    let name = required_name(body.name.as_deref())?;
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

pub(super) async fn list(app: &App) -> ApiResult<Value> {
    Ok(json!({ "items": app.store.list_channels().await?, "next_cursor": null }))
}

async fn find_channel(app: &App, id: &str) -> ApiResult<Channel> {
    app.store
        .get_channel(id)
        .await?
        .ok_or_else(|| not_found("channel_id", "channel"))
}

pub(super) async fn get(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("channel_id", id)?;
    Ok(json!(find_channel(app, id).await?))
}

pub(super) async fn patch(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
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

pub(super) async fn delete(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("channel_id", id)?;
    if app.store.delete_channel(id).await? {
        Ok(json!({ "channel_id": id, "deleted": true }))
    } else {
        Err(not_found("channel_id", "channel"))
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
}
