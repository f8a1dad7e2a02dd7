//! The one thin layer over DynamoDB that every use case of the store shares:
//! metering (what the cost benchmarks count), metered reads, paging,
//! conditional puts, transactions and their cancellation reasons, backoff.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use super::items::*;
use super::Store;
use crate::error::{ApiError, ApiResult};

/// Counts what the store asks of DynamoDB, for the cost benchmarks.
#[derive(Debug, Default)]
pub struct Meter {
    pub requests: AtomicU64,
    /// Capacity units × 1000, summed over reads and writes as DynamoDB reports them.
    pub capacity_milli: AtomicU64,
    /// The write units among them (index writes included), × 1000.
    pub write_milli: AtomicU64,
    /// The units spent on secondary indexes, × 1000 (writes ask for `INDEXES`).
    pub index_milli: AtomicU64,
    /// Requests of the rate limiter among `requests` (one per leased block).
    pub limiter_requests: AtomicU64,
    /// Write units as AWS bills them, × 1000: DynamoDB Local under-reports a
    /// transaction's table writes (it counts each distinct item size once:
    /// three 900-byte puts report 2 units, AWS bills 6), so for a transaction
    /// this counts 2 units per started KB of every item, as AWS does.
    pub billed_write_milli: AtomicU64,
}

/// Which kind of capacity a request consumed: they are priced differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    Read,
    Write,
}

impl Meter {
    pub fn snapshot(&self) -> (u64, f64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.capacity_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    /// Write units so far as AWS bills them (index writes included).
    pub fn billed_writes(&self) -> f64 {
        self.billed_write_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Write units so far (index writes included), and the index share of all units.
    pub fn writes(&self) -> (f64, f64) {
        (
            self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            self.index_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }

    fn add(&self, kind: Units, capacity: &ConsumedCapacity) {
        self.add_billed(kind, capacity, None);
    }

    /// Adds a request's reported units; `table_units`, when given, replaces
    /// the reported table share in the billed write units.
    fn add_billed(&self, kind: Units, capacity: &ConsumedCapacity, table_units: Option<f64>) {
        let milli = |units: f64| (units * 1000.0).round() as u64;
        let units = capacity.capacity_units().unwrap_or(0.0);
        self.capacity_milli
            .fetch_add(milli(units), Ordering::Relaxed);
        let on_indexes: f64 = capacity
            .global_secondary_indexes()
            .map(|indexes| indexes.values().filter_map(|c| c.capacity_units()).sum())
            .unwrap_or(0.0);
        if kind == Units::Write {
            self.write_milli.fetch_add(milli(units), Ordering::Relaxed);
            let billed = table_units.map_or(units, |table| table + on_indexes);
            self.billed_write_milli
                .fetch_add(milli(billed), Ordering::Relaxed);
        }
        self.index_milli
            .fetch_add(milli(on_indexes), Ordering::Relaxed);
    }
}

impl Store {
    pub(crate) fn count(&self, kind: Units, capacity: Option<&ConsumedCapacity>) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(capacity) = capacity {
            self.meter.add(kind, capacity);
        }
    }

    /// A single write refused by its condition. DynamoDB reports no capacity
    /// on an error, but AWS bills it: a unit per started KB of the item as it
    /// is (`existing`, when the refusal returned it), at least one.
    pub(crate) fn count_refused_write(&self, existing: Option<&Item>) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        let units = existing.map_or(1, |item| item_bytes(item).div_ceil(1024).max(1));
        self.meter
            .billed_write_milli
            .fetch_add(units as u64 * 1000, Ordering::Relaxed);
    }

    /// A transaction's reported units, billed at `table_units` for its table writes.
    pub(crate) fn count_transaction(&self, capacity: &[ConsumedCapacity], table_units: f64) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        for (i, c) in capacity.iter().enumerate() {
            self.meter.add_billed(
                Units::Write,
                c,
                Some(if i == 0 { table_units } else { 0.0 }),
            );
        }
    }

    pub(crate) fn count_many(&self, kind: Units, capacity: &[ConsumedCapacity]) {
        self.meter.requests.fetch_add(1, Ordering::Relaxed);
        for c in capacity {
            self.meter.add(kind, c);
        }
    }
    /// One strongly consistent, metered GetItem.
    pub(crate) async fn get(&self, pk: String, sk: &str) -> ApiResult<Option<Item>> {
        let out = self.get_request(pk, sk, true).send().await;
        self.got(out)
    }

    /// One eventually consistent GetItem (half the read units of [`Store::get`]):
    /// only for a guess that a conditional write, or a confirming strong
    /// read, checks before anything depends on it.
    pub(crate) async fn peek(&self, pk: String, sk: &str) -> ApiResult<Option<Item>> {
        let out = self.get_request(pk, sk, false).send().await;
        self.got(out)
    }

    // Not an async fn of its own: every read of the push path would nest one
    // more future, and the handler's future is deep already.
    fn get_request(&self, pk: String, sk: &str, consistent: bool) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
    }

    fn got(&self, out: Result<GetItemOutput, SdkError<GetItemError>>) -> ApiResult<Option<Item>> {
        let out = out.map_err(|e| storage_error("GetItem", e))?;
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

    /// One page of a partition (its sort keys starting with `prefix`, when
    /// given), in sort-key order, after the sort key `after`: strongly
    /// consistent, at most `limit` items, and the sort key to continue after
    /// when there may be more.
    pub(crate) async fn partition_page(
        &self,
        pk: String,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> ApiResult<(Vec<Item>, Option<String>)> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(&pk))
            .set_exclusive_start_key(after.map(|a| key(pk.clone(), a)))
            .consistent_read(true)
            .limit(limit as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        query = match prefix {
            Some(p) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(p)),
            None => query.key_condition_expression("pk = :pk"),
        };
        let page = query.send().await.map_err(|e| storage_error("Query", e))?;
        self.count(Units::Read, page.consumed_capacity());
        let next = page.last_evaluated_key().and_then(|k| get_opt_s(k, "sk"));
        Ok((page.items().to_vec(), next))
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

    pub(crate) async fn transact_plain(&self, items: Vec<TransactWriteItem>) -> ApiResult<bool> {
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

    /// The items a keys-only index listed, in its order, read strongly (an
    /// item deleted since the index answered is left out).
    pub(crate) async fn items_listed(&self, listed: &[Item]) -> ApiResult<Vec<Item>> {
        let table_key = |item: &Item| -> ApiResult<(String, String)> {
            Ok((get_s(item, "pk")?, get_s(item, "sk")?))
        };
        // An item can be listed twice (an incident whose status changed
        // between the queries of two statuses); BatchGetItem refuses a
        // repeated key, and the answer lists each item once.
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        for item in listed {
            let (pk, sk) = table_key(item)?;
            if seen.insert((pk.clone(), sk.clone())) {
                keys.push(key(pk, sk));
            }
        }
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

impl Store {
    /// One TransactWriteItems request, metered; a cancellation answers why,
    /// item by item.
    pub(crate) async fn send_transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), Cancelled> {
        let billed = transaction_table_units(&items);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count_transaction(out.consumed_capacity(), billed);
                Ok(())
            }
            Err(err) => {
                self.meter
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                        Err(Cancelled::Reasons(e.cancellation_reasons().to_vec()))
                    }
                    _ => Err(Cancelled::Fatal(storage_error("TransactWriteItems", err))),
                }
            }
        }
    }
}

/// A transaction's table write units as AWS bills them: 2 per started KB of
/// every item it names. The size of an item an update, delete or condition
/// check touches is not known here; ours are under 1 KB on the paths the
/// benchmark measures, so each counts 2.
fn transaction_table_units(items: &[TransactWriteItem]) -> f64 {
    items
        .iter()
        .map(|i| match i.put() {
            Some(put) => 2.0 * item_bytes(put.item()).div_ceil(1024).max(1) as f64,
            None => 2.0,
        })
        .sum()
}

/// Why a transaction did not commit.
pub(crate) enum Cancelled {
    /// DynamoDB cancelled it; one reason per item, in order.
    Reasons(Vec<CancellationReason>),
    Fatal(ApiError),
}

/// Jittered exponential backoff: 5 ms doubling to at most ~160 ms, then
/// steady, so that a long storm does not starve the unlucky.
pub(crate) async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(5);
    let mut byte = [0u8; 1];
    let jitter = if getrandom::getrandom(&mut byte).is_ok() {
        u64::from(byte[0]) % base
    } else {
        0
    };
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Build the DynamoDB client once per cold start (crate::aws: the one TLS
/// stack); `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local. Timeouts are tight
/// so that an unreachable database turns into a prompt 500, never a hang.
pub async fn client_from_env() -> Client {
    let secs = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(default), Duration::from_secs)
    };
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(secs("DYNAMODB_ATTEMPT_TIMEOUT_SECS", 3))
        .operation_timeout(secs("DYNAMODB_OPERATION_TIMEOUT_SECS", 8))
        .build();
    Client::new(&crate::aws::sdk_config(timeouts).await)
}

/// Turn an SDK failure into the caller-visible error, logging the detail.
pub(crate) fn storage_error<E: std::fmt::Debug>(operation: &str, err: E) -> ApiError {
    tracing::error!(operation, error = ?err, "dynamodb request failed");
    ApiError::internal(format!("storage request {operation} failed; retry later"))
}

pub(crate) fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> ApiError {
    ApiError::internal(format!("could not build a storage request: {err}"))
}
