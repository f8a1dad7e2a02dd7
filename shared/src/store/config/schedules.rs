//! Schedules (SPEC 14): one item each, `SCHED#{schedule}` / `SCHEDULE`,
//! listed through gsi1 (`SCHEDULES`, oldest first). The item holds the
//! schedule as the API took it (`spec`, JSON) and the SHA-256 of its
//! iCalendar feed token (`ical_hash`), never the token: the table alone
//! cannot be used to read a feed.
//!
//! A create or change is one transaction: the schedule's own write and, per
//! member it names, a `ref_version` bump conditioned on the member existing
//! (members.rs says why).

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};

use std::collections::HashMap;

use crate::engine::schedule::{CompiledSchedule, Schedule};
use crate::error::{ApiError, ApiResult};
use crate::store::config::members::member_reference;
use crate::store::db::{backoff, Cancelled};
use crate::store::items::*;
use crate::store::{build_error, storage_error, Store, GSI1};

pub const SCHEDULE_SK: &str = "SCHEDULE";
const SCHEDULES_SCOPE: &str = "SCHEDULES";
/// One transaction holds 100 items: the schedule and up to 99 members.
pub const MAX_SCHEDULE_MEMBERS: usize = 99;
/// Transactions lost to concurrent ones on the same members before giving up.
const WRITE_ATTEMPTS: u32 = 8;

pub fn schedule_pk(schedule_id: &str) -> String {
    format!("SCHED#{schedule_id}")
}

/// A schedule as stored: what the API took, and its feed token's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSchedule {
    pub schedule_id: String,
    pub schedule: Schedule,
    /// SHA-256 (hex) of the iCalendar feed token.
    pub ical_hash: String,
    /// When the current feed token was issued (unix seconds).
    pub ical_issued_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a schedule write that names members ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleWrite {
    Written,
    /// The schedule does not exist (a change) or its id is taken (a create).
    NoSchedule,
    /// This member id names no member (deleted meanwhile, or never made).
    NoSuchMember(String),
}

fn spec_json(schedule: &Schedule) -> ApiResult<String> {
    serde_json::to_string(schedule)
        .map_err(|e| ApiError::internal(format!("could not encode a schedule: {e}")))
}

fn schedule_to_item(st: &StoredSchedule) -> ApiResult<Item> {
    let mut item = key(schedule_pk(&st.schedule_id), SCHEDULE_SK);
    item.extend([
        ("schedule_id".to_string(), s(&st.schedule_id)),
        ("name".to_string(), s(&st.schedule.name)),
        ("spec".to_string(), s(spec_json(&st.schedule)?)),
        ("ical_hash".to_string(), s(&st.ical_hash)),
        ("ical_issued_at".to_string(), n(st.ical_issued_at)),
        ("created_at".to_string(), n(st.created_at)),
        ("updated_at".to_string(), n(st.updated_at)),
        ("gsi1pk".to_string(), s(SCHEDULES_SCOPE)),
        (
            "gsi1sk".to_string(),
            s(format!("{:015}#{}", st.created_at, st.schedule_id)),
        ),
    ]);
    Ok(item)
}

fn item_to_schedule(item: &Item) -> ApiResult<StoredSchedule> {
    let schedule: Schedule = serde_json::from_str(&get_s(item, "spec")?)
        .map_err(|_| ApiError::internal("stored item is missing or has a malformed `spec`"))?;
    Ok(StoredSchedule {
        schedule_id: get_s(item, "schedule_id")?,
        schedule,
        ical_hash: get_s(item, "ical_hash")?,
        ical_issued_at: get_n(item, "ical_issued_at")?,
        created_at: get_n(item, "created_at")?,
        updated_at: get_n(item, "updated_at")?,
    })
}

/// Each distinct member id a schedule names, in first-named order.
pub fn distinct_members(schedule: &Schedule) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (_, id) in schedule.member_places() {
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }
    ids
}

impl Store {
    /// Write the schedule's own item part and one reference per member, in
    /// one transaction; which part failed decides the answer.
    async fn write_with_members(
        &self,
        own: TransactWriteItem,
        members: &[String],
    ) -> ApiResult<ScheduleWrite> {
        if members.len() > MAX_SCHEDULE_MEMBERS {
            return Err(ApiError::invalid(format!(
                "layers: a schedule names at most {MAX_SCHEDULE_MEMBERS} different members"
            )));
        }
        let mut parts = vec![own];
        for id in members {
            parts.push(member_reference(&self.table, id)?);
        }
        for attempt in 0..WRITE_ATTEMPTS {
            match self.send_transaction(parts.clone()).await {
                Ok(()) => return Ok(ScheduleWrite::Written),
                Err(Cancelled::Fatal(e)) => return Err(e),
                Err(Cancelled::Reasons(reasons)) => {
                    let failed = |i: usize| {
                        reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                    };
                    if failed(0) {
                        return Ok(ScheduleWrite::NoSchedule);
                    }
                    if let Some(i) = (1..reasons.len()).find(|&i| failed(i)) {
                        return Ok(ScheduleWrite::NoSuchMember(members[i - 1].clone()));
                    }
                    // A conflict with a concurrent transaction on one of the
                    // same members (another schedule naming them): again.
                    backoff(attempt).await;
                }
            }
        }
        Err(ApiError::internal(
            "concurrent changes kept touching the same members; retry",
        ))
    }

    /// A new schedule, its members referenced (see members.rs).
    pub async fn create_schedule(&self, st: &StoredSchedule) -> ApiResult<ScheduleWrite> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(schedule_to_item(st)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        self.write_with_members(
            TransactWriteItem::builder().put(put).build(),
            &distinct_members(&st.schedule),
        )
        .await
    }

    /// Replace a schedule's content (not its feed token, which only
    /// [`Store::rotate_schedule_ical`] changes).
    pub async fn update_schedule(
        &self,
        schedule_id: &str,
        schedule: &Schedule,
        updated_at: i64,
    ) -> ApiResult<ScheduleWrite> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(schedule_pk(schedule_id), SCHEDULE_SK)))
            .update_expression("SET #name = :name, spec = :spec, updated_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(&schedule.name))
            .expression_attribute_values(":spec", s(spec_json(schedule)?))
            .expression_attribute_values(":at", n(updated_at))
            .build()
            .map_err(build_error)?;
        self.write_with_members(
            TransactWriteItem::builder().update(update).build(),
            &distinct_members(schedule),
        )
        .await
    }

    pub async fn get_schedule(&self, schedule_id: &str) -> ApiResult<Option<StoredSchedule>> {
        self.get(schedule_pk(schedule_id), SCHEDULE_SK)
            .await?
            .as_ref()
            .map(item_to_schedule)
            .transpose()
    }

    /// Every schedule, oldest first (gsi1, then one BatchGetItem per 100).
    pub async fn list_schedules(&self) -> ApiResult<Vec<StoredSchedule>> {
        self.query_all(Some(GSI1), "gsi1pk", SCHEDULES_SCOPE.into())
            .await?
            .iter()
            .map(item_to_schedule)
            .collect()
    }

    /// The schedules of `ids` that exist: one strongly consistent
    /// BatchGetItem per 100 distinct ids.
    pub async fn batch_get_schedules(&self, ids: &[String]) -> ApiResult<Vec<StoredSchedule>> {
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<Item> = ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| key(schedule_pk(id), SCHEDULE_SK))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.batch_get(keys)
            .await?
            .iter()
            .map(item_to_schedule)
            .collect()
    }

    /// The schedules of `ids` that exist, compiled, by id: one BatchGetItem
    /// per 100 distinct ids. A stored schedule that no longer compiles (a
    /// time zone the tz database dropped, say) is left out and logged: it
    /// has nobody on call.
    pub async fn load_compiled_schedules(
        &self,
        ids: &[String],
    ) -> ApiResult<HashMap<String, CompiledSchedule>> {
        let mut out = HashMap::new();
        for st in self.batch_get_schedules(ids).await? {
            match st.schedule.compile() {
                Ok(compiled) => {
                    out.insert(st.schedule_id, compiled);
                }
                Err(e) => tracing::error!(
                    schedule_id = %st.schedule_id,
                    error = e.message(),
                    "stored schedule does not compile"
                ),
            }
        }
        Ok(out)
    }

    /// `Ok(false)` when no schedule has this id.
    pub async fn delete_schedule(&self, schedule_id: &str) -> ApiResult<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(schedule_pk(schedule_id), SCHEDULE_SK)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(storage_error("DeleteItem", err)),
            },
        }
    }

    /// A new feed token's hash replaces the old one (which stops working at
    /// once); `Ok(None)` when no schedule has this id. One UpdateItem.
    pub async fn rotate_schedule_ical(
        &self,
        schedule_id: &str,
        ical_hash: &str,
        now_s: i64,
    ) -> ApiResult<Option<StoredSchedule>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(schedule_pk(schedule_id), SCHEDULE_SK)))
            .update_expression("SET ical_hash = :h, ical_issued_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":h", s(ical_hash))
            .expression_attribute_values(":at", n(now_s))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes().map(item_to_schedule).transpose(),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(storage_error("UpdateItem", err)),
            },
        }
    }
}
