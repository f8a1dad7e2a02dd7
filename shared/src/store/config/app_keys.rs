//! App keys: two items per key, neither holding the key itself.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use crate::error::{ApiError, ApiResult};
use crate::hashing::sha256_hex;
use crate::model::Role;
use crate::store::items::*;
use crate::store::{build_error, Store, GSI1};

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
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

/// Who a request's app key is and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub app_key_id: String,
    pub role: Role,
    pub member_id: Option<String>,
}

/// A stored role; keys made before roles existed have none and are admin.
fn role_of(item: &Item) -> Role {
    get_opt_s(item, "role")
        .and_then(|r| Role::parse(&r))
        .unwrap_or(Role::Admin)
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

    /// An admin key (the bootstrap key, the tests' key): [`Store::put_app_key_as`].
    pub async fn put_app_key(&self, app_key: &str, name: &str, now_s: i64) -> ApiResult<String> {
        self.put_app_key_as(app_key, name, now_s, Role::Admin, None)
            .await
    }

    /// Stores only the hash of `app_key`, with its role and member, and
    /// returns its public id. Storing the same key again replaces them.
    pub async fn put_app_key_as(
        &self,
        app_key: &str,
        name: &str,
        now_s: i64,
        role: Role,
        member_id: Option<&str>,
    ) -> ApiResult<String> {
        let hash = sha256_hex(app_key);
        let id = app_key_id(&hash);
        let mut lookup = key(app_key_pk(&hash), APP_KEY_SK);
        lookup.extend([
            ("app_key_id".to_string(), s(&id)),
            ("name".to_string(), s(name)),
            ("created_at".to_string(), n(now_s)),
            ("role".to_string(), s(role.as_str())),
        ]);
        let mut record = key(app_key_id_pk(&id), APP_KEY_ID_SK);
        record.extend([
            ("app_key_id".to_string(), s(&id)),
            ("key_hash".to_string(), s(&hash)),
            ("name".to_string(), s(name)),
            ("created_at".to_string(), n(now_s)),
            ("role".to_string(), s(role.as_str())),
            ("gsi1pk".to_string(), s(APP_KEYS_SCOPE)),
            ("gsi1sk".to_string(), s(format!("{now_s:015}#{id}"))),
        ]);
        if let Some(member) = member_id {
            lookup.insert("member_id".to_string(), s(member));
            record.insert("member_id".to_string(), s(member));
        }
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
        Ok(self.find_app_key(app_key).await?.is_some())
    }

    /// The caller an app key stands for (one strongly consistent GetItem).
    pub async fn find_app_key(&self, app_key: &str) -> ApiResult<Option<Caller>> {
        let Some(item) = self
            .get(app_key_pk(&sha256_hex(app_key)), APP_KEY_SK)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Caller {
            app_key_id: get_s(&item, "app_key_id")?,
            role: role_of(&item),
            member_id: get_opt_s(&item, "member_id"),
        }))
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
                    role: role_of(item),
                    member_id: get_opt_s(item, "member_id"),
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
}
