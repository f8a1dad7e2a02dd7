//! `/api/app-keys` and `/api/whoami`: management keys, each with a role
//! (SPEC 15), shown once and stored only as a hash.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    json_body, not_found, path_id, required_name, MIN_APP_KEY_CHARS, MIN_APP_KEY_DISTINCT_CHARS,
};
use crate::app::App;
use crate::domain::time::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::ids::check_id;
use crate::intake::http::Inbound;
use crate::intake::integrations::from_value;
use crate::model::Role;
use crate::store::config::app_keys::Caller;

/// 192 random bits, hex: shown once, stored only as a hash.
pub fn new_app_key() -> ApiResult<String> {
    random_hex(24)
}

/// The rule for an app key an operator supplies (`alertctl create-app-key
/// --key`): at least 32 characters from `[A-Za-z0-9_-]`, at least 8 different
/// ones, and no character more than a third of the key. 32 random characters
/// of that alphabet carry 192 bits, 32 random hex digits 128; the rule cannot
/// tell a random key from a made-up one, but it turns away short keys, words
/// with padding and repeated patterns. A random key passes it (a 32-digit hex
/// key fails with odds of about 1 in 20,000). Generated keys need no rule.
pub fn check_app_key_strength(key: &str) -> ApiResult<()> {
    let refused = || {
        ApiError::invalid(format!(
            "app key: must be at least {MIN_APP_KEY_CHARS} characters from [A-Za-z0-9_-], with at least {MIN_APP_KEY_DISTINCT_CHARS} different characters and none making up more than a third of it"
        ))
    };
    let alphabet_ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if key.len() < MIN_APP_KEY_CHARS || !alphabet_ok {
        return Err(refused());
    }
    let mut counts = [0usize; 128];
    for b in key.bytes() {
        counts[usize::from(b & 0x7f)] += 1;
    }
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    let most_frequent = counts.iter().copied().max().unwrap_or(0);
    if distinct < MIN_APP_KEY_DISTINCT_CHARS || most_frequent * 3 > key.len() {
        return Err(refused());
    }
    Ok(())
}

/// `POST /api/app-keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppKeyBody {
    name: Option<String>,
    role: Option<String>,
    member_id: Option<String>,
}

pub(super) async fn create(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: AppKeyBody = from_value(json_body(req)?)?;
    let name = required_name(body.name.as_deref())?;
    let role = body
        .role
        .as_deref()
        .ok_or_else(|| ApiError::invalid("role: required (admin, responder or viewer)"))
        .and_then(|r| {
            Role::parse(r)
                .ok_or_else(|| ApiError::invalid("role: must be admin, responder or viewer"))
        })?;
    // Members come with on-call (SPEC 14): until then the id is stored as
    // given, checked for shape only.
    if let Some(member) = &body.member_id {
        check_id("member_id", member)?;
    }
    let key = new_app_key()?;
    let created_at = now_ms() / 1000;
    let app_key_id = app
        .store
        .put_app_key_as(&key, &name, created_at, role, body.member_id.as_deref())
        .await?;
    let mut answer = json!({
        "app_key_id": app_key_id,
        "name": name,
        "app_key": key,
        "created_at": created_at,
        "role": role,
    });
    if let Some(member) = body.member_id {
        answer["member_id"] = json!(member);
    }
    Ok(answer)
}

/// `GET /api/whoami`: the calling key's id, role and member, so a client
/// (the console) can offer only what the role may do.
pub(super) fn whoami(caller: &Caller) -> Value {
    let mut answer = json!({ "app_key_id": caller.app_key_id, "role": caller.role });
    if let Some(member) = &caller.member_id {
        answer["member_id"] = json!(member);
    }
    answer
}

pub(super) async fn list(app: &App) -> ApiResult<Value> {
    Ok(json!({ "items": app.store.list_app_keys().await?, "next_cursor": null }))
}

pub(super) async fn revoke(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("app_key_id", id)?;
    if app.store.revoke_app_key(id).await? {
        Ok(json!({ "app_key_id": id, "revoked": true }))
    } else {
        Err(not_found("app_key_id", "app key"))
    }
}
