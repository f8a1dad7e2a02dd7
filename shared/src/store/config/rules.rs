//! A channel's rules, stored beside the channel item in its partition: the
//! push path reads the channel and all its rules with one Query (the same
//! read units as the GetItem it replaces while a channel has no rules).

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use crate::engine::escalation::EscalationRules;
use crate::error::{ApiError, ApiResult};
use crate::model::Channel;
use crate::rules::channel::{RuleBody, RuleKind, StoredRule};
use crate::store::escalations::{escalation_from_item, ESCALATION_SK};
use crate::store::items::*;
use crate::store::{storage_error, Store};

fn rule_sk(kind: RuleKind, rule_id: &str) -> String {
    format!("RULE#{}#{rule_id}", kind.slug())
}

fn rule_item(channel_id: &str, rule: &StoredRule, expires_at: Option<i64>) -> ApiResult<Item> {
    let json = serde_json::to_string(&rule.body.to_json())
        .map_err(|e| ApiError::internal(format!("could not encode a rule: {e}")))?;
    let mut item = key(
        channel_pk(channel_id),
        rule_sk(rule.body.kind(), &rule.rule_id),
    );
    item.extend([
        ("rule_id".to_string(), s(&rule.rule_id)),
        ("kind".to_string(), s(rule.body.kind().slug())),
        ("position".to_string(), n(rule.position)),
        ("rule".to_string(), s(json)),
    ]);
    if let Some(at) = expires_at {
        item.insert("expires_at".into(), n(at));
    }
    Ok(item)
}

fn item_to_rule(item: &Item, now_s: i64) -> ApiResult<Option<StoredRule>> {
    // DynamoDB's TTL deletes late (up to days): an expired quick silence is gone now.
    if get_opt_n(item, "expires_at").is_some_and(|at| at <= now_s) {
        return Ok(None);
    }
    let kind = match get_s(item, "kind")?.as_str() {
        "drop" => RuleKind::Drop,
        "silence" => RuleKind::Silence,
        "inhibit" => RuleKind::Inhibit,
        _ => return Err(ApiError::internal("stored rule of an unknown kind")),
    };
    let json: serde_json::Value = serde_json::from_str(&get_s(item, "rule")?)
        .map_err(|_| ApiError::internal("stored rule is not JSON"))?;
    let body = RuleBody::from_json(kind, json)
        .map_err(|_| ApiError::internal("stored rule does not parse"))?;
    Ok(Some(StoredRule {
        rule_id: get_s(item, "rule_id")?,
        position: get_n(item, "position")?,
        body,
    }))
}

impl Store {
    /// The channel, every live rule of it and its escalation rules, strongly
    /// consistent.
    pub async fn channel_with_rules(
        &self,
        channel_id: &str,
        now_s: i64,
    ) -> ApiResult<Option<(Channel, Vec<StoredRule>, Option<EscalationRules>)>> {
        let items = self.query_all(None, "pk", channel_pk(channel_id)).await?;
        let Some(channel) = items
            .iter()
            .find(|i| get_opt_s(i, "sk").as_deref() == Some("CHANNEL"))
        else {
            return Ok(None);
        };
        let mut rules = Vec::new();
        for item in items
            .iter()
            .filter(|i| get_opt_s(i, "sk").is_some_and(|sk| sk.starts_with("RULE#")))
        {
            if let Some(rule) = item_to_rule(item, now_s)? {
                rules.push(rule);
            }
        }
        rules.sort_by_key(|r| r.position);
        let escalation = items
            .iter()
            .find(|i| get_opt_s(i, "sk").as_deref() == Some(ESCALATION_SK))
            .map(escalation_from_item)
            .transpose()?;
        Ok(Some((item_to_channel(channel)?, rules, escalation)))
    }

    /// One kind of a channel's rules, in position order.
    pub async fn list_rules(
        &self,
        channel_id: &str,
        kind: RuleKind,
        now_s: i64,
    ) -> ApiResult<Vec<StoredRule>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :kind)")
            .expression_attribute_values(":pk", s(channel_pk(channel_id)))
            .expression_attribute_values(":kind", s(format!("RULE#{}#", kind.slug())))
            .consistent_read(true);
        let mut rules = Vec::new();
        for item in self.all_pages(query).await? {
            if let Some(rule) = item_to_rule(&item, now_s)? {
                rules.push(rule);
            }
        }
        rules.sort_by_key(|r| r.position);
        Ok(rules)
    }

    /// Write a rule (create or replace). `expires_at` makes it delete itself.
    pub async fn put_rule(
        &self,
        channel_id: &str,
        rule: &StoredRule,
        expires_at: Option<i64>,
    ) -> ApiResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(rule_item(channel_id, rule, expires_at)?))
            .send()
            .await
            .map_err(|e| storage_error("PutItem", e))?;
        Ok(())
    }

    /// Move rules to new positions (after a `PATCH` with `position`).
    pub async fn set_rule_positions(
        &self,
        channel_id: &str,
        kind: RuleKind,
        positions: &[(String, i64)],
    ) -> ApiResult<()> {
        for (rule_id, position) in positions {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(channel_pk(channel_id), rule_sk(kind, rule_id))))
                .update_expression("SET #pos = :pos")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#pos", "position")
                .expression_attribute_values(":pos", n(*position))
                .send()
                .await;
            if let Err(err) = result {
                // A rule deleted meanwhile has no position to keep.
                if !matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) {
                    return Err(storage_error("UpdateItem", err));
                }
            }
        }
        Ok(())
    }

    /// `Ok(false)` when there was no such rule.
    pub async fn delete_rule(
        &self,
        channel_id: &str,
        kind: RuleKind,
        rule_id: &str,
    ) -> ApiResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(channel_pk(channel_id), rule_sk(kind, rule_id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| storage_error("DeleteItem", e))?;
        Ok(out.attributes().is_some())
    }
}
