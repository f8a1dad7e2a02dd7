//! Management reads and writes: channels, integrations, keys, incidents, alerts.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnConsumedCapacity, TransactWriteItem,
    Update,
};

use super::items::*;
use super::{build_error, storage_error, Store, Units, GSI1, GSI2};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use futures_util::StreamExt;

use crate::engine::{self, Action, Change, ClosedBy, Refusal, Transition};
use crate::error::{ApiError, ApiResult};
use crate::hashing::sha256_hex;
use crate::intake::ratelimit::RateLimit;
use crate::model::{Alert, Channel, Incident, IncidentStatus, Integration};
use crate::rules::integration::{rules_version, IntegrationRule, RuleList};

/// Alerts closed at once by a manual resolve.
const SWEEP_CONCURRENCY: usize = 32;

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

/// One page of incidents and where the next one starts.
pub struct IncidentPage {
    pub items: Vec<Incident>,
    /// Per status, the sort key to continue below; `None` when there is no more.
    pub next: Option<HashMap<String, String>>,
}

impl Store {
    /// One strongly consistent, metered GetItem.
    pub(crate) async fn get(&self, pk: String, sk: &str) -> ApiResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("GetItem", e))?;
        self.count(Units::Read, out.consumed_capacity());
        Ok(out.item().cloned())
    }

    /// Every item of one partition (of the table, or of `index`), page by page.
    pub(crate) async fn query_all(
        &self,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
    ) -> ApiResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .key_condition_expression(format!("{pk_name} = :pk"))
            .expression_attribute_values(":pk", s(pk))
            // Indexes are only eventually consistent; the table is read strongly.
            .consistent_read(index.is_none());
        let found = self.all_pages(query).await?;
        match index {
            // gsi1 and gsi2 hold keys only.
            Some(_) => self.items_listed(&found).await,
            None => Ok(found),
        }
    }

    /// Every item a query answers, following its pages.
    pub(crate) async fn all_pages(&self, query: QueryFluentBuilder) -> ApiResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await
                .map_err(|e| storage_error("Query", e))?;
            self.count(Units::Read, page.consumed_capacity());
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(out),
            }
        }
    }

    pub(crate) async fn put_new(&self, item: Item) -> ApiResult<bool> {
        self.put_if(item, "attribute_not_exists(pk)").await
    }

    /// One PutItem under `condition`; `Ok(false)` when the condition fails.
    pub(crate) async fn put_if(&self, item: Item, condition: &str) -> ApiResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(storage_error("PutItem", err)),
            },
        }
    }

    async fn transact_plain(&self, items: Vec<TransactWriteItem>) -> ApiResult<bool> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => Ok(false),
                _ => Err(storage_error("TransactWriteItems", err)),
            },
        }
    }
}

// ---- app keys: free items (the Store methods follow) ----

const APP_KEY_SK: &str = "APPKEY";
const APP_KEY_ID_SK: &str = "APPKEYID";
const APP_KEYS_SCOPE: &str = "APPKEYS";

fn app_key_pk(key_hash: &str) -> String {
    format!("APPKEY#{key_hash}")
}

fn app_key_id_pk(app_key_id: &str) -> String {
    format!("APPKEYID#{app_key_id}")
}

/// The public id of an app key: the first 16 hex characters of its hash.
pub fn app_key_id(key_hash: &str) -> String {
    key_hash.chars().take(16).collect()
}

/// What may be shown of an app key: never the key, never its hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AppKeyInfo {
    pub app_key_id: String,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    // ---- app keys ----
    //
    // Two items per key, written and deleted together, neither holding the key:
    // `APPKEY#{sha256(key)}` / `APPKEY` is what authentication reads (one
    // strongly consistent GetItem, so a revoked key is refused by every
    // instance from the moment revocation returns); `APPKEYID#{id}` /
    // `APPKEYID` finds the hash from the key's public id, for revocation, and
    // lists the keys through gsi1 (`APPKEYS`, oldest first). The id is the
    // first 16 hex characters of the hash: enough to tell keys apart, and of no
    // help in guessing a key of 128 bits or more.

    /// Stores only the hash of `app_key` and returns its public id. Storing
    /// the same key again replaces its name and creation time.
    pub async fn put_app_key(&self, app_key: &str, name: &str, now_s: i64) -> ApiResult<String> {
        let hash = sha256_hex(app_key);
        let id = app_key_id(&hash);
        let mut lookup = key(app_key_pk(&hash), APP_KEY_SK);
        lookup.extend([
            ("app_key_id".to_string(), s(&id)),
            ("name".to_string(), s(name)),
            ("created_at".to_string(), n(now_s)),
        ]);
        let mut record = key(app_key_id_pk(&id), APP_KEY_ID_SK);
        record.extend([
            ("app_key_id".to_string(), s(&id)),
            ("key_hash".to_string(), s(&hash)),
            ("name".to_string(), s(name)),
            ("created_at".to_string(), n(now_s)),
            ("gsi1pk".to_string(), s(APP_KEYS_SCOPE)),
            ("gsi1sk".to_string(), s(format!("{now_s:015}#{id}"))),
        ]);
        let lookup = Put::builder()
            .table_name(&self.table)
            .set_item(Some(lookup))
            .build()
            .map_err(build_error)?;
        // Another key with the same 64-bit id prefix must not be overwritten.
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(pk) OR key_hash = :hash")
            .expression_attribute_values(":hash", s(&hash))
            .build()
            .map_err(build_error)?;
        let written = self
            .transact_plain(vec![
                TransactWriteItem::builder().put(lookup).build(),
                TransactWriteItem::builder().put(record).build(),
            ])
            .await?;
        if written {
            Ok(id)
        } else {
            Err(ApiError::internal(
                "another app key has the same id; make a new key",
            ))
        }
    }

    pub async fn app_key_is_valid(&self, app_key: &str) -> ApiResult<bool> {
        Ok(self
            .get(app_key_pk(&sha256_hex(app_key)), APP_KEY_SK)
            .await?
            .is_some())
    }

    /// Every app key's id, name and creation time, oldest first. Read from an
    /// index, so a key made a moment ago may be missing for that moment.
    pub async fn list_app_keys(&self) -> ApiResult<Vec<AppKeyInfo>> {
        self.query_all(Some(GSI1), "gsi1pk", APP_KEYS_SCOPE.into())
            .await?
            .iter()
            .map(|item| {
                Ok(AppKeyInfo {
                    app_key_id: get_s(item, "app_key_id")?,
                    name: get_s(item, "name")?,
                    created_at: get_n(item, "created_at")?,
                })
            })
            .collect()
    }

    /// Deletes the key's items; `Ok(false)` when no key has this id (or a
    /// concurrent revocation got there first).
    pub async fn revoke_app_key(&self, app_key_id: &str) -> ApiResult<bool> {
        let Some(record) = self.get(app_key_id_pk(app_key_id), APP_KEY_ID_SK).await? else {
            return Ok(false);
        };
        let hash = get_s(&record, "key_hash")?;
        let lookup = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(app_key_pk(&hash), APP_KEY_SK)))
            .build()
            .map_err(build_error)?;
        let record = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(app_key_id_pk(app_key_id), APP_KEY_ID_SK)))
            .condition_expression("key_hash = :hash")
            .expression_attribute_values(":hash", s(&hash))
            .build()
            .map_err(build_error)?;
        self.transact_plain(vec![
            TransactWriteItem::builder().delete(lookup).build(),
            TransactWriteItem::builder().delete(record).build(),
        ])
        .await
    }

    // ---- channels ----

    pub async fn create_channel(&self, channel: &Channel) -> ApiResult<()> {
        if self.put_new(channel_to_item(channel)?).await? {
            Ok(())
        } else {
            Err(ApiError::internal("channel id collision; retry"))
        }
    }

    pub async fn get_channel(&self, channel_id: &str) -> ApiResult<Option<Channel>> {
        self.get(channel_pk(channel_id), "CHANNEL")
            .await?
            .as_ref()
            .map(item_to_channel)
            .transpose()
    }

    pub async fn list_channels(&self) -> ApiResult<Vec<Channel>> {
        self.query_all(Some(GSI1), "gsi1pk", "CHANNELS".into())
            .await?
            .iter()
            .map(item_to_channel)
            .collect()
    }

    /// Replace a channel's settings; `Ok(false)` when it does not exist.
    pub async fn update_channel(&self, channel: &Channel) -> ApiResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(channel_to_item(channel)?))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(storage_error("PutItem", err)),
            },
        }
    }

    pub async fn delete_channel(&self, channel_id: &str) -> ApiResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(channel_pk(channel_id), "CHANNEL")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| storage_error("DeleteItem", e))?;
        // Its rules go with it.
        self.delete_partition(&channel_pk(channel_id)).await?;
        Ok(out.attributes().is_some())
    }

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

    // ---- incidents and alerts ----

    pub async fn get_incident_item(&self, incident_id: &str) -> ApiResult<Option<Item>> {
        self.get(incident_pk(incident_id), INCIDENT_SK).await
    }

    pub async fn get_incident(&self, incident_id: &str) -> ApiResult<Option<Incident>> {
        self.get_incident_item(incident_id)
            .await?
            .as_ref()
            .map(item_to_incident)
            .transpose()
    }

    /// The incident with all its alerts, from its partition (strongly consistent).
    pub async fn get_incident_with_alerts(&self, incident_id: &str) -> ApiResult<Option<Incident>> {
        let records = self.incident_partition(incident_id).await?;
        let Some(incident_item) = records
            .iter()
            .find(|i| get_opt_s(i, "sk").as_deref() == Some(INCIDENT_SK))
        else {
            return Ok(None);
        };
        let mut incident = item_to_incident(incident_item)?;
        let mut alerts = Vec::new();
        for record in records
            .iter()
            .filter(|i| get_opt_s(i, "sk").is_some_and(|sk| sk.starts_with("ALERT#")))
        {
            alerts.push(self.alert_from_record(record).await?);
        }
        alerts.sort_by(|a, b| (a.created_at, &a.alert_id).cmp(&(b.created_at, &b.alert_id)));
        incident.alerts = Some(alerts);
        Ok(Some(incident))
    }

    async fn incident_partition(&self, incident_id: &str) -> ApiResult<Vec<Item>> {
        self.query_all(None, "pk", incident_pk(incident_id)).await
    }

    /// The alert a record stands for: its snapshot once archived, else the live head.
    async fn alert_from_record(&self, record: &Item) -> ApiResult<Alert> {
        if get_bool(record, "archived").unwrap_or(false) {
            return alert_from_record(record);
        }
        let alert_id = get_s(record, "alert_id")?;
        let head = self
            .get_head(&get_s(record, "channel_id")?, &get_s(record, "alert_key")?)
            .await?;
        match head {
            Some(h) if h.alert_id == alert_id => Ok(h.to_alert()),
            // The head moved on after we read the record: the record is archived now.
            _ => {
                let fresh = self
                    .get(get_s(record, "pk")?, &get_s(record, "sk")?)
                    .await?
                    .ok_or_else(|| ApiError::internal("alert record vanished"))?;
                alert_from_record(&fresh)
            }
        }
    }

    pub async fn get_alert_with_events(&self, alert_id: &str) -> ApiResult<Option<Alert>> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(format!("ALERT#{alert_id}")))
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        let Some(listed) = found.items().first() else {
            return Ok(None);
        };
        let Some(record) = self
            .get(get_s(listed, "pk")?, &get_s(listed, "sk")?)
            .await?
        else {
            return Ok(None);
        };
        let mut alert = self.alert_from_record(&record).await?;
        let events = self
            .query_all(None, "pk", events_pk(alert_id))
            .await?
            .iter()
            .map(item_to_event)
            .collect::<ApiResult<Vec<_>>>()?;
        alert.events = Some(events);
        Ok(Some(alert))
    }

    /// Newest first, across the given statuses, `limit` at most. `bounds`
    /// (from the previous page) says where each status continues.
    pub async fn list_incidents(
        &self,
        channel_id: Option<&str>,
        statuses: &[IncidentStatus],
        limit: usize,
        bounds: &HashMap<String, String>,
    ) -> ApiResult<IncidentPage> {
        let mut fetched: Vec<(IncidentStatus, String, Item)> = Vec::new();
        let mut more_in: Vec<IncidentStatus> = Vec::new();
        for &status in statuses {
            let (index, pk_name, sk_name, scope) = match channel_id {
                Some(c) => (GSI1, "gsi1pk", "gsi1sk", incident_scope(c, status)),
                None => (GSI2, "gsi2pk", "gsi2sk", incident_scope_all(status)),
            };
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .scan_index_forward(false)
                .limit(limit as i32 + 1)
                .expression_attribute_values(":pk", s(scope));
            query = match bounds.get(status.as_str()) {
                Some(bound) => query
                    .key_condition_expression(format!("{pk_name} = :pk AND {sk_name} < :bound"))
                    .expression_attribute_values(":bound", s(bound)),
                None => query.key_condition_expression(format!("{pk_name} = :pk")),
            };
            let page = query.send().await.map_err(|e| storage_error("Query", e))?;
            let items = page.items();
            if items.len() > limit || page.last_evaluated_key().is_some() {
                more_in.push(status);
            }
            for item in items.iter().take(limit) {
                let sk = get_s(item, sk_name)?;
                fetched.push((status, sk, item.clone()));
            }
        }
        fetched.sort_by(|a, b| b.1.cmp(&a.1));
        let leftover = fetched.len() > limit;
        fetched.truncate(limit);
        let mut next = bounds.clone();
        for (status, sk, _) in &fetched {
            next.insert(status.as_str().to_string(), sk.clone());
        }
        let listed: Vec<Item> = fetched.iter().map(|(_, _, item)| item.clone()).collect();
        let items = self
            .items_listed(&listed)
            .await?
            .iter()
            .map(item_to_incident)
            // The index lags a status change by a moment: list what is still asked for.
            .filter(|i| i.as_ref().map_or(true, |i| statuses.contains(&i.status)))
            .collect::<ApiResult<Vec<_>>>()?;
        let has_more = leftover || !more_in.is_empty();
        Ok(IncidentPage {
            items,
            next: has_more.then_some(next),
        })
    }

    async fn require_incident(&self, incident_id: &str) -> ApiResult<Incident> {
        self.get_incident(incident_id).await?.ok_or_else(|| {
            ApiError::ResourceNotFound(format!("incident {incident_id} does not exist"))
        })
    }

    /// Apply a person's action to an incident: the engine decides the
    /// change from the status read, and it is written only if the status is
    /// still that one (else read again and decide again).
    pub async fn act_on_incident(
        &self,
        incident_id: &str,
        action: Action,
        now_ms: i64,
    ) -> ApiResult<Incident> {
        self.act_on_incident_with(incident_id, action, serde_json::json!({}), now_ms)
            .await
    }

    /// [`Store::act_on_incident`] with more for the timeline entry's detail
    /// (a reopen's `reason`).
    pub async fn act_on_incident_with(
        &self,
        incident_id: &str,
        action: Action,
        detail: serde_json::Value,
        now_ms: i64,
    ) -> ApiResult<Incident> {
        for _ in 0..5 {
            let incident = self.require_incident(incident_id).await?;
            let change = match engine::decide_action(incident.status, action) {
                Ok(Some(change)) => change,
                Ok(None) if action == Action::Resolve => {
                    // Already closed: still close any alert left open in it
                    // (a sweep cut short by an older version), then answer.
                    self.seal_and_sweep(&incident, now_ms).await?;
                    return Ok(incident);
                }
                Ok(None) => return Ok(incident),
                Err(Refusal(why)) => return Err(ApiError::invalid(format!("incident_id: {why}"))),
            };
            if let Transition::Resolve(_) = change.transition {
                self.seal_and_sweep(&incident, now_ms).await?;
            }
            let entry = super::timeline::Entry::new(change.transition, detail.clone(), now_ms, 0)?;
            if self
                .write_incident_change(&incident, change, now_ms / 1000, &[entry])
                .await?
            {
                return self.require_incident(incident_id).await;
            }
        }
        Err(ApiError::internal(
            "the incident kept changing concurrently; retry",
        ))
    }

    /// Write a decided change: status, its index keys (the listing reads
    /// them), the transition's timestamps, if the status is still `from`.
    /// `Ok(false)`: it was not.
    async fn write_incident_change(
        &self,
        incident: &Incident,
        change: Change,
        now_s: i64,
        entries: &[super::timeline::Entry],
    ) -> ApiResult<bool> {
        let extra = match change.transition {
            Transition::Ack => "SET acknowledged_at = :now",
            Transition::Unack => "REMOVE acknowledged_at",
            Transition::Resolve(ClosedBy::Manual) => {
                "SET closed_at = :now, active_alert_count = :zero, closed_by = :manual"
            }
            Transition::Reopen => "REMOVE closed_at, sealed, closed_by",
            // Opening, merging and auto-closing are written by the push path,
            // comments and storms by store/timeline.rs.
            Transition::Open
            | Transition::Merge
            | Transition::Resolve(ClosedBy::Auto)
            | Transition::Comment
            | Transition::Storm(_)
            | Transition::Flapping => {
                return Err(ApiError::internal("not a management transition"))
            }
        };
        let (set_extra, remove) = match extra.strip_prefix("SET ") {
            Some(set) => (format!(", {set}"), String::new()),
            None => (String::new(), format!(" {extra}")),
        };
        let to = change.to;
        // One transaction: the change, and its timeline entries (SPEC 11),
        // which the incident's `changes` names for the stream.
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(incident_pk(&incident.incident_id), INCIDENT_SK)))
            .update_expression(format!(
                "SET #st = :to, updated_at = :now, gsi1pk = :scope, gsi2pk = :scope_all, changes = :changes{set_extra}{remove}"
            ))
            .condition_expression("#st = :from")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values({
                let mut values = HashMap::from([
                    (":from".to_string(), s(change.from.as_str())),
                    (":to".to_string(), s(to.as_str())),
                    (":now".to_string(), n(now_s)),
                    (":scope".to_string(), s(incident_scope(&incident.channel_id, to))),
                    (":scope_all".to_string(), s(incident_scope_all(to))),
                ]);
                if set_extra.contains(":zero") {
                    values.insert(":zero".to_string(), n(0));
                }
                if set_extra.contains(":manual") {
                    values.insert(":manual".to_string(), s("manual"));
                }
                values.insert(
                    ":changes".to_string(),
                    super::timeline::changes_value(entries),
                );
                Some(values)
            })
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.timeline_puts(&incident.incident_id, &incident.channel_id, entries)?);
        self.transact_plain(items).await
    }

    /// Before a manual close: seal the incident (it takes no new alert from
    /// here on), then close every open alert of it. Only then is the incident
    /// marked closed, so no event can land on an alert of a closed incident;
    /// a resolve cut short leaves an open, sealed incident that resolving
    /// again finishes.
    async fn seal_and_sweep(&self, incident: &Incident, now_ms: i64) -> ApiResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(incident_pk(&incident.incident_id), INCIDENT_SK)))
            .update_expression("SET sealed = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| storage_error("UpdateItem", e))?;
        let open: Vec<(String, String, String)> = self
            .alert_records_of(&incident.incident_id)
            .await?
            .iter()
            .filter(|r| !get_bool(r, "archived").unwrap_or(false))
            .map(|r| {
                Ok((
                    get_s(r, "channel_id")?,
                    get_s(r, "alert_key")?,
                    get_s(r, "alert_id")?,
                ))
            })
            .collect::<ApiResult<_>>()?;
        let now_s = now_ms / 1000;
        let closes = open.into_iter().map(|(channel_id, alert_key, alert_id)| {
            let store = self.clone();
            async move {
                store
                    .close_alert(&channel_id, &alert_key, &alert_id, now_s)
                    .await
            }
        });
        let results: Vec<ApiResult<()>> = futures_util::stream::iter(closes)
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Close the alert of `(channel, key)` if it is still `alert_id` and open.
    async fn close_alert(
        &self,
        channel_id: &str,
        alert_key: &str,
        alert_id: &str,
        now_s: i64,
    ) -> ApiResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(head_pk(channel_id, alert_key), HEAD_SK)))
            // Out of the index of inhibition sources too: it is no longer open.
            .update_expression(
                "SET active = :false, closed_at = :now REMOVE gsi3pk, gsi3sk ADD version :one",
            )
            .condition_expression("alert_id = :alert AND active = :true")
            .expression_attribute_values(":alert", s(alert_id))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(storage_error("UpdateItem", err)),
        }
    }

    /// The alert records of an incident, only the fields a sweep needs.
    async fn alert_records_of(&self, incident_id: &str) -> ApiResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :alert)")
            .expression_attribute_values(":pk", s(incident_pk(incident_id)))
            .expression_attribute_values(":alert", s("ALERT#"))
            .projection_expression("channel_id, alert_key, alert_id, archived")
            .consistent_read(true);
        self.all_pages(query).await
    }

    /// The items a keys-only index listed, in its order, read strongly (an
    /// item deleted since the index answered is left out).
    pub(crate) async fn items_listed(&self, listed: &[Item]) -> ApiResult<Vec<Item>> {
        let table_key = |item: &Item| -> ApiResult<(String, String)> {
            Ok((get_s(item, "pk")?, get_s(item, "sk")?))
        };
        let keys = listed
            .iter()
            .map(|i| table_key(i).map(|(pk, sk)| key(pk, sk)))
            .collect::<ApiResult<Vec<_>>>()?;
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for item in self.batch_get(keys).await? {
            found.insert(table_key(&item)?, item);
        }
        listed
            .iter()
            .filter_map(|i| table_key(i).map(|k| found.remove(&k)).transpose())
            .collect()
    }

    /// Heads in bulk (for tests and recounts).
    pub async fn batch_get(&self, keys: Vec<Item>) -> ApiResult<Vec<Item>> {
        self.batch_get_projected(keys, "", &[]).await
    }

    /// Items in bulk, strongly consistent, metered; `projection` (with its
    /// `#name` placeholders) limits the attributes returned, empty for all.
    pub(crate) async fn batch_get_projected(
        &self,
        keys: Vec<Item>,
        projection: &str,
        names: &[(&str, &str)],
    ) -> ApiResult<Vec<Item>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let mut wanted = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true);
            if !projection.is_empty() {
                wanted = wanted.projection_expression(projection);
            }
            for (placeholder, name) in names {
                wanted = wanted.expression_attribute_names(*placeholder, *name);
            }
            let mut pending: HashMap<String, KeysAndAttributes> =
                HashMap::from([(self.table.clone(), wanted.build().map_err(build_error)?)]);
            while !pending.is_empty() {
                let page = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(pending))
                    .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                    .send()
                    .await
                    .map_err(|e| storage_error("BatchGetItem", e))?;
                self.count_many(Units::Read, page.consumed_capacity());
                if let Some(items) = page.responses().and_then(|r| r.get(&self.table)) {
                    out.extend(items.iter().cloned());
                }
                pending = page.unprocessed_keys().cloned().unwrap_or_default();
            }
        }
        Ok(out)
    }
}
