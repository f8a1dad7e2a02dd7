//! Integrations: the record, and the key lookup item a push reads.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use crate::error::{ApiError, ApiResult};
use crate::hashing::sha256_hex;
use crate::model::Integration;
use crate::rules::integration::{rules_version, IntegrationRule, RuleList};
use crate::rules::ratelimit::RateLimit;
use crate::store::items::*;
use crate::store::{build_error, Store, GSI1};

const IKEY_SK: &str = "IKEY";
const INTEGRATION_SK: &str = "INTEGRATION";
/// `gsi1pk` of integration records: the listing.
const INTEGRATIONS_SCOPE: &str = "INTEGRATIONS";

/// A short digest of the routes' JSON: changes whenever they do.
fn routes_version(json: &str) -> String {
    sha256_hex(json)[..16].to_string()
}

fn ikey_pk(key_hash: &str) -> String {
    format!("IKEY#{key_hash}")
}

fn integration_item(i: &Integration, key_hash: &str, pk: String, sk: &str) -> ApiResult<Item> {
    let mut item = key(pk, sk);
    item.extend([
        ("integration_id".to_string(), s(&i.integration_id)),
        ("name".to_string(), s(&i.name)),
        ("kind".to_string(), s(&i.kind)),
        ("key_hash".to_string(), s(key_hash)),
        ("created_at".to_string(), n(i.created_at)),
        (
            "rate_per_second".to_string(),
            n(i64::from(i.rate_limit.per_second)),
        ),
        (
            "rate_per_minute".to_string(),
            n(i64::from(i.rate_limit.per_minute)),
        ),
    ]);
    if let Some(c) = &i.channel_id {
        item.insert("channel_id".into(), s(c));
    }
    if sk == INTEGRATION_SK {
        // The record (not the key lookup) is listed, oldest first.
        item.insert("gsi1pk".into(), s(INTEGRATIONS_SCOPE));
        item.insert(
            "gsi1sk".into(),
            s(format!("{:015}#{}", i.created_at, i.integration_id)),
        );
    }
    if let Some(r) = &i.routes {
        let json = serde_json::to_string(r)
            .map_err(|e| ApiError::internal(format!("could not encode routes: {e}")))?;
        // The key lookup item, read on every push, stays small: it names the
        // routes' version, and instances keep the compiled routes of that version.
        item.insert("routes_version".into(), s(routes_version(&json)));
        if sk != IKEY_SK {
            item.insert("routes".into(), s(json));
        }
    }
    if let Some(t) = &i.callback_token {
        item.insert("callback_token".into(), s(t));
    }
    if let Some(t) = &i.client_secret {
        item.insert("client_secret".into(), s(t));
    }
    if let Some(v) = i.verify_signature {
        item.insert("verify_signature".into(), AttributeValue::Bool(v));
    }
    if !i.sns_topic_arns.is_empty() {
        // On the key lookup item too: the push checks it before anything else.
        let arns = i.sns_topic_arns.iter().map(s).collect();
        item.insert("sns_topic_arns".into(), AttributeValue::L(arns));
    }
    if let Some(v) = rules_version(&i.enrichment, &i.pipeline) {
        // Like the routes: the key lookup item names the version only.
        item.insert("rules_version".into(), s(v));
        if sk != IKEY_SK {
            for (name, list) in [("enrichment", &i.enrichment), ("pipeline", &i.pipeline)] {
                let json = serde_json::to_string(list)
                    .map_err(|e| ApiError::internal(format!("could not encode {name}: {e}")))?;
                item.insert(name.into(), s(json));
            }
        }
    }
    Ok(item)
}

fn item_to_integration(item: &Item) -> ApiResult<Integration> {
    let routes = get_opt_s(item, "routes")
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|_| ApiError::internal("stored item has malformed `routes`"))?;
    let routes_version = get_opt_s(item, "routes_version");
    let default = RateLimit::default();
    let rate = |name: &str, fallback: u32| {
        get_opt_n(item, name)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(fallback)
    };
    Ok(Integration {
        integration_id: get_s(item, "integration_id")?,
        name: get_s(item, "name")?,
        kind: get_s(item, "kind")?,
        channel_id: get_opt_s(item, "channel_id"),
        routes,
        routes_version,
        rate_limit: RateLimit {
            per_second: rate("rate_per_second", default.per_second),
            per_minute: rate("rate_per_minute", default.per_minute),
        },
        created_at: get_n(item, "created_at")?,
        callback_token: get_opt_s(item, "callback_token"),
        client_secret: get_opt_s(item, "client_secret"),
        verify_signature: item
            .get("verify_signature")
            .and_then(|v| v.as_bool().ok())
            .copied(),
        sns_topic_arns: item
            .get("sns_topic_arns")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|a| a.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        enrichment: rule_list(item, "enrichment")?,
        pipeline: rule_list(item, "pipeline")?,
        rules_version: get_opt_s(item, "rules_version"),
    })
}

fn rule_list(item: &Item, name: &str) -> ApiResult<Vec<IntegrationRule>> {
    get_opt_s(item, name)
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|_| ApiError::internal(format!("stored item has malformed `{name}`")))
}

impl Store {
    // ---- integrations ----

    /// Stores the integration and the hash of its key in one transaction.
    pub async fn create_integration(
        &self,
        integration: &Integration,
        integration_key: &str,
    ) -> ApiResult<()> {
        let hash = sha256_hex(integration_key);
        let record = integration_item(
            integration,
            &hash,
            format!("INT#{}", integration.integration_id),
            "INTEGRATION",
        )?;
        let lookup = integration_item(integration, &hash, ikey_pk(&hash), "IKEY")?;
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(build_error)
        };
        if self
            .transact_plain(vec![put(record)?, put(lookup)?])
            .await?
        {
            Ok(())
        } else {
            Err(ApiError::internal("integration id or key collision; retry"))
        }
    }

    /// Every integration, oldest first, from the index (eventually
    /// consistent: one created a moment ago may be missing for that moment).
    /// Integrations stored before the listing existed appear once their
    /// record is written again (a new enrichment or pipeline).
    pub async fn list_integrations(&self) -> ApiResult<Vec<Integration>> {
        self.query_all(Some(GSI1), "gsi1pk", INTEGRATIONS_SCOPE.into())
            .await?
            .iter()
            .map(item_to_integration)
            .collect()
    }

    pub async fn get_integration(&self, integration_id: &str) -> ApiResult<Option<Integration>> {
        self.get(format!("INT#{integration_id}"), "INTEGRATION")
            .await?
            .as_ref()
            .map(item_to_integration)
            .transpose()
    }

    /// The push path's one authentication read. Strongly consistent, so a
    /// rotated-out key is refused by every instance from the moment rotation returns.
    pub async fn find_integration_by_key(
        &self,
        integration_key: &str,
    ) -> ApiResult<Option<Integration>> {
        self.get(ikey_pk(&sha256_hex(integration_key)), IKEY_SK)
            .await?
            .as_ref()
            .map(item_to_integration)
            .transpose()
    }

    /// Swap the key: the old hash item is deleted and the new one written in
    /// the same transaction as the record, conditional on the old hash.
    pub async fn rotate_integration_key(
        &self,
        integration_id: &str,
        new_key: &str,
    ) -> ApiResult<Option<Integration>> {
        for _ in 0..5 {
            let Some(item) = self
                .get(format!("INT#{integration_id}"), "INTEGRATION")
                .await?
            else {
                return Ok(None);
            };
            let integration = item_to_integration(&item)?;
            let old_hash = get_s(&item, "key_hash")?;
            let new_hash = sha256_hex(new_key);
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("INT#{integration_id}"), "INTEGRATION")))
                .update_expression("SET key_hash = :new")
                .condition_expression("key_hash = :old")
                .expression_attribute_values(":new", s(&new_hash))
                .expression_attribute_values(":old", s(&old_hash))
                .build()
                .map_err(build_error)?;
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(ikey_pk(&old_hash), "IKEY")))
                .build()
                .map_err(build_error)?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(integration_item(
                    &integration,
                    &new_hash,
                    ikey_pk(&new_hash),
                    "IKEY",
                )?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_error)?;
            let items = vec![
                TransactWriteItem::builder().update(update).build(),
                TransactWriteItem::builder().delete(delete).build(),
                TransactWriteItem::builder().put(put).build(),
            ];
            if self.transact_plain(items).await? {
                return Ok(Some(integration));
            }
        }
        Err(ApiError::internal("the key changed concurrently; retry"))
    }

    /// Replace an integration's enrichment or pipeline list; the key lookup
    /// item gets the new version in the same transaction. `Ok(None)`: no
    /// such integration.
    pub async fn set_integration_rules(
        &self,
        integration_id: &str,
        list: RuleList,
        rules: Vec<IntegrationRule>,
    ) -> ApiResult<Option<Integration>> {
        for _ in 0..5 {
            let Some(item) = self
                .get(format!("INT#{integration_id}"), "INTEGRATION")
                .await?
            else {
                return Ok(None);
            };
            let mut integration = item_to_integration(&item)?;
            let hash = get_s(&item, "key_hash")?;
            match list {
                RuleList::Enrichment => integration.enrichment = rules.clone(),
                RuleList::Pipeline => integration.pipeline = rules.clone(),
            }
            let record = integration_item(
                &integration,
                &hash,
                format!("INT#{integration_id}"),
                "INTEGRATION",
            )?;
            let lookup = integration_item(&integration, &hash, ikey_pk(&hash), IKEY_SK)?;
            let put = |item: Item, condition: &str| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .expression_attribute_values(":hash", s(&hash))
                    .build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
                    .map_err(build_error)
            };
            // Both conditional on the key not having been rotated meanwhile.
            if self
                .transact_plain(vec![
                    put(record, "key_hash = :hash")?,
                    put(lookup, "key_hash = :hash")?,
                ])
                .await?
            {
                integration.rules_version =
                    rules_version(&integration.enrichment, &integration.pipeline);
                return Ok(Some(integration));
            }
        }
        Err(ApiError::internal(
            "the integration changed concurrently; retry",
        ))
    }
}
