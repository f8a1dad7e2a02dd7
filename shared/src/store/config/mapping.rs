//! Mapping tables for `map` enrichment (SPEC 7.1): a small record per table
//! and one item per row. An upload writes its rows under a new version, then
//! points the table at it (so a bad or interrupted upload keeps the old
//! rows), then deletes the old version's rows.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    DeleteRequest, PutRequest, ReturnConsumedCapacity, ReturnValue, WriteRequest,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::hashing::sha256_hex;
use crate::store::db::backoff;
use crate::store::items::*;
use crate::store::{build_error, storage_error, Store, Units};

/// Rows written (and deleted) at once by an upload.
const WRITE_CONCURRENCY: usize = 16;
const TABLE_SK: &str = "TABLE";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingTable {
    pub table_id: String,
    pub name: String,
    pub source_labels: Vec<String>,
    pub result_labels: Vec<String>,
    pub row_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Names the current rows; changes with every upload.
    #[serde(skip)]
    pub rows_version: String,
}

/// One row: the source values (in the table's order) and the result labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingRow {
    pub source: BTreeMap<String, String>,
    pub result: BTreeMap<String, String>,
}

fn table_pk(table_id: &str) -> String {
    format!("MAPT#{table_id}")
}

fn rows_pk(table_id: &str, version: &str) -> String {
    format!("MAPR#{table_id}#{version}")
}

/// The row's sort key: its source values, or their digest when long (a sort
/// key holds at most 1,024 bytes).
pub fn row_sk(values: &[&str]) -> String {
    let joined = values.join("\u{1f}");
    if joined.len() <= 512 {
        format!("V#{joined}")
    } else {
        format!("H#{}", sha256_hex(&joined))
    }
}

fn table_item(t: &MappingTable) -> Item {
    let mut item = key(table_pk(&t.table_id), TABLE_SK);
    item.extend([
        ("table_id".to_string(), s(&t.table_id)),
        ("name".to_string(), s(&t.name)),
        ("source_labels".to_string(), string_list(&t.source_labels)),
        ("result_labels".to_string(), string_list(&t.result_labels)),
        ("row_count".to_string(), n(t.row_count)),
        ("created_at".to_string(), n(t.created_at)),
        ("updated_at".to_string(), n(t.updated_at)),
        ("rows_version".to_string(), s(&t.rows_version)),
    ]);
    item
}

fn item_to_table(item: &Item) -> ApiResult<MappingTable> {
    Ok(MappingTable {
        table_id: get_s(item, "table_id")?,
        name: get_s(item, "name")?,
        source_labels: get_list(item, "source_labels"),
        result_labels: get_list(item, "result_labels"),
        row_count: get_n(item, "row_count")?,
        created_at: get_n(item, "created_at")?,
        updated_at: get_n(item, "updated_at")?,
        rows_version: get_s(item, "rows_version")?,
    })
}

fn item_to_row(item: &Item) -> MappingRow {
    MappingRow {
        source: get_map(item, "source"),
        result: get_map(item, "result"),
    }
}

impl Store {
    pub async fn create_mapping_table(&self, table: &MappingTable) -> ApiResult<()> {
        if self.put_new(table_item(table)).await? {
            Ok(())
        } else {
            Err(ApiError::internal("mapping table id collision; retry"))
        }
    }

    pub async fn get_mapping_table(&self, table_id: &str) -> ApiResult<Option<MappingTable>> {
        self.get(table_pk(table_id), TABLE_SK)
            .await?
            .as_ref()
            .map(item_to_table)
            .transpose()
    }

    /// The result labels of one row: the push path's one read per `map` rule
    /// (eventually consistent: rows of a version never change).
    pub async fn mapping_lookup(
        &self,
        table_id: &str,
        version: &str,
        values: &[&str],
    ) -> ApiResult<Option<BTreeMap<String, String>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(rows_pk(table_id, version), row_sk(values))))
            .projection_expression("#r")
            .expression_attribute_names("#r", "result")
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("GetItem", e))?;
        self.count(Units::Read, out.consumed_capacity());
        Ok(out.item().map(|i| get_map(i, "result")))
    }

    /// Replace every row: write the new version, switch the table to it
    /// (conditional on the version read), then delete the old rows.
    pub async fn replace_mapping_rows(
        &self,
        table: &MappingTable,
        rows: &[MappingRow],
        now_s: i64,
    ) -> ApiResult<MappingTable> {
        let version = crate::hashing::random_hex(8)?;
        let pk = rows_pk(&table.table_id, &version);
        let puts: Vec<WriteRequest> = rows
            .iter()
            .map(|row| {
                let values: Vec<&str> = table
                    .source_labels
                    .iter()
                    .map(|l| row.source.get(l).map_or("", String::as_str))
                    .collect();
                let mut item = key(pk.clone(), row_sk(&values));
                item.insert("source".into(), string_map(&row.source));
                item.insert("result".into(), string_map(&row.result));
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(build_error)
            })
            .collect::<ApiResult<_>>()?;
        self.batch_write(puts).await?;
        let switched = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(table_pk(&table.table_id), TABLE_SK)))
            .update_expression("SET rows_version = :new, row_count = :count, updated_at = :now")
            .condition_expression("rows_version = :old")
            .expression_attribute_values(":new", s(&version))
            .expression_attribute_values(":old", s(&table.rows_version))
            .expression_attribute_values(":count", n(rows.len() as i64))
            .expression_attribute_values(":now", n(now_s))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let updated = match switched {
            Ok(out) => item_to_table(
                out.attributes()
                    .ok_or_else(|| ApiError::internal("update returned no item"))?,
            )?,
            Err(err) => {
                // Another upload (or a delete) won: our rows are not used.
                self.delete_partition(&pk).await?;
                return Err(match err.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_)) => {
                        ApiError::invalid("table_id: the table changed during the upload (another upload or a delete); nothing was replaced")
                    }
                    _ => storage_error("UpdateItem", err),
                });
            }
        };
        self.delete_partition(&rows_pk(&table.table_id, &table.rows_version))
            .await?;
        Ok(updated)
    }

    /// One page of rows, in key order, and where the next starts.
    pub async fn mapping_rows_page(
        &self,
        table: &MappingTable,
        limit: usize,
        after: Option<String>,
    ) -> ApiResult<(Vec<MappingRow>, Option<String>)> {
        let pk = rows_pk(&table.table_id, &table.rows_version);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk.clone()))
            .limit(limit as i32);
        if let Some(sk) = after {
            query = query.set_exclusive_start_key(Some(key(pk, sk)));
        }
        let page = query.send().await.map_err(|e| storage_error("Query", e))?;
        let rows = page.items().iter().map(item_to_row).collect();
        let next = page.last_evaluated_key().and_then(|k| get_opt_s(k, "sk"));
        Ok((rows, next))
    }

    /// `Ok(false)` when there was no such table.
    pub async fn delete_mapping_table(&self, table_id: &str) -> ApiResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(table_pk(table_id), TABLE_SK)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| storage_error("DeleteItem", e))?;
        let Some(old) = out.attributes() else {
            return Ok(false);
        };
        let old = item_to_table(old)?;
        self.delete_partition(&rows_pk(table_id, &old.rows_version))
            .await?;
        Ok(true)
    }

    /// Delete every item of a partition.
    pub(crate) async fn delete_partition(&self, pk: &str) -> ApiResult<()> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .projection_expression("pk, sk");
        let deletes = self
            .all_pages(query)
            .await?
            .into_iter()
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(k))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(build_error)
            })
            .collect::<ApiResult<Vec<_>>>()?;
        self.batch_write(deletes).await
    }

    /// BatchWriteItem in batches of 25, several at once, retrying what
    /// DynamoDB leaves unprocessed.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> ApiResult<()> {
        let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
        let results: Vec<ApiResult<()>> = futures_util::stream::iter(batches)
            .map(|batch| async move {
                let mut pending = HashMap::from([(self.table.clone(), batch)]);
                let mut attempt = 0;
                while !pending.is_empty() {
                    if attempt > 0 {
                        backoff(attempt).await;
                    }
                    attempt += 1;
                    if attempt > 12 {
                        return Err(ApiError::internal(
                            "DynamoDB kept throttling the upload; retry",
                        ));
                    }
                    let out = self
                        .client
                        .batch_write_item()
                        .set_request_items(Some(pending))
                        .send()
                        .await
                        .map_err(|e| storage_error("BatchWriteItem", e))?;
                    pending = out.unprocessed_items().cloned().unwrap_or_default();
                    pending.retain(|_, v| !v.is_empty());
                }
                Ok(())
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }
}
