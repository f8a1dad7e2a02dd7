//! Members (SPEC 14): one item each, `MEM#{member}` / `MEMBER`, listed
//! through gsi1 (`MEMBERS`, oldest first).
//!
//! A member named by a schedule must not be deleted, and the check and the
//! delete are two requests. So every write that adds references to members
//! (a schedule's create or change; escalation rules when they land) bumps
//! `ref_version` on each member it names, in the same transaction as its own
//! write and conditioned on the member existing; a delete is conditioned on
//! the `ref_version` it read before looking for uses. Whichever commits
//! second sees the other: a schedule never names a deleted member.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};

use crate::domain::member::{Member, MemberIm};
use crate::error::ApiResult;
use crate::store::items::*;
use crate::store::{build_error, storage_error, Store, Units, GSI1};

pub const MEMBER_SK: &str = "MEMBER";
const MEMBERS_SCOPE: &str = "MEMBERS";

pub fn member_pk(member_id: &str) -> String {
    format!("MEM#{member_id}")
}

fn member_to_item(m: &Member) -> Item {
    let mut item = key(member_pk(&m.member_id), MEMBER_SK);
    item.extend([
        ("member_id".to_string(), s(&m.member_id)),
        ("name".to_string(), s(&m.name)),
        ("email".to_string(), s(&m.email)),
        ("time_zone".to_string(), s(&m.time_zone)),
        ("im".to_string(), im_value(&m.im)),
        ("created_at".to_string(), n(m.created_at)),
        ("ref_version".to_string(), n(0)),
        ("gsi1pk".to_string(), s(MEMBERS_SCOPE)),
        (
            "gsi1sk".to_string(),
            s(format!("{:015}#{}", m.created_at, m.member_id)),
        ),
    ]);
    if let Some(phone) = &m.phone {
        item.insert("phone".into(), s(phone));
    }
    item
}

fn im_value(im: &MemberIm) -> AttributeValue {
    AttributeValue::M(
        im.fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), s(v)))
            .collect(),
    )
}

fn item_to_member(item: &Item) -> ApiResult<Member> {
    Ok(Member {
        member_id: get_s(item, "member_id")?,
        name: get_s(item, "name")?,
        email: get_s(item, "email")?,
        phone: get_opt_s(item, "phone"),
        time_zone: get_s(item, "time_zone")?,
        im: MemberIm::from_fields(
            get_map(item, "im")
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone())),
        ),
        created_at: get_n(item, "created_at")?,
    })
}

/// How a conditional member delete ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberDelete {
    Deleted,
    /// No member has this id (any more).
    Gone,
    /// A reference was added since `ref_version` was read: look again.
    Referenced,
}

/// A transaction part that bumps a member's `ref_version`, failing when the
/// member does not exist. Writes that name members add one per member.
pub fn member_reference(table: &str, member_id: &str) -> ApiResult<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(member_pk(member_id), MEMBER_SK)))
        .update_expression("SET ref_version = if_not_exists(ref_version, :zero) + :one")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl Store {
    pub async fn create_member(&self, member: &Member) -> ApiResult<()> {
        if self.put_new(member_to_item(member)).await? {
            Ok(())
        } else {
            Err(crate::error::ApiError::internal(
                "member id collision; retry",
            ))
        }
    }

    /// One strongly consistent GetItem.
    pub async fn get_member(&self, member_id: &str) -> ApiResult<Option<Member>> {
        self.get(member_pk(member_id), MEMBER_SK)
            .await?
            .as_ref()
            .map(item_to_member)
            .transpose()
    }

    /// The member's `ref_version`, `None` when it does not exist (for
    /// [`Store::delete_member_if_unreferenced`]).
    pub async fn member_ref_version(&self, member_id: &str) -> ApiResult<Option<i64>> {
        Ok(self
            .get(member_pk(member_id), MEMBER_SK)
            .await?
            .map(|item| get_opt_n(&item, "ref_version").unwrap_or(0)))
    }

    /// Every member, oldest first (gsi1, then one BatchGetItem per 100).
    pub async fn list_members(&self) -> ApiResult<Vec<Member>> {
        self.query_all(Some(GSI1), "gsi1pk", MEMBERS_SCOPE.into())
            .await?
            .iter()
            .map(item_to_member)
            .collect()
    }

    /// The members of `ids` that exist, by id: one strongly consistent
    /// BatchGetItem per 100 distinct ids (repeats are asked once).
    pub async fn batch_get_members(&self, ids: &[String]) -> ApiResult<HashMap<String, Member>> {
        let mut seen = HashSet::new();
        let keys: Vec<Item> = ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .map(|id| key(member_pk(id), MEMBER_SK))
            .collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        self.batch_get(keys)
            .await?
            .iter()
            .map(|item| item_to_member(item).map(|m| (m.member_id.clone(), m)))
            .collect()
    }

    /// Replace a member's fields (not its id, creation time or
    /// `ref_version`); `Ok(false)` when it does not exist. One UpdateItem.
    pub async fn update_member(&self, m: &Member) -> ApiResult<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(member_pk(&m.member_id), MEMBER_SK)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(&m.name))
            .expression_attribute_values(":email", s(&m.email))
            .expression_attribute_values(":tz", s(&m.time_zone))
            .expression_attribute_values(":im", im_value(&m.im))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Indexes);
        let set = "SET #name = :name, email = :email, time_zone = :tz, im = :im";
        update = match &m.phone {
            Some(phone) => update
                .update_expression(format!("{set}, phone = :phone"))
                .expression_attribute_values(":phone", s(phone)),
            None => update.update_expression(format!("{set} REMOVE phone")),
        };
        match update.send().await {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(true)
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(storage_error("UpdateItem", err)),
            },
        }
    }

    /// Delete the member if nothing referenced it since `ref_version` was
    /// read. One DeleteItem (plus a GetItem to tell gone from referenced
    /// when the condition fails).
    pub async fn delete_member_if_unreferenced(
        &self,
        member_id: &str,
        ref_version: i64,
    ) -> ApiResult<MemberDelete> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(member_pk(member_id), MEMBER_SK)))
            .condition_expression(
                "attribute_exists(pk) AND (ref_version = :v OR attribute_not_exists(ref_version))",
            )
            .expression_attribute_values(":v", n(ref_version))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(MemberDelete::Deleted),
            Err(err) => match err.as_service_error() {
                // A schedule's transaction on the member is under way.
                Some(DeleteItemError::TransactionConflictException(_)) => {
                    Ok(MemberDelete::Referenced)
                }
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                    match self.member_ref_version(member_id).await? {
                        None => Ok(MemberDelete::Gone),
                        Some(_) => Ok(MemberDelete::Referenced),
                    }
                }
                _ => Err(storage_error("DeleteItem", err)),
            },
        }
    }
}
