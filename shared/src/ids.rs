//! Ids the service makes (lowercase hex) and takes back in paths, queries and
//! request bodies. Anything that could not be one of ours is refused before it
//! reaches a DynamoDB key: an over-long or odd key is a DynamoDB validation
//! error (a 500), and an id is never worth a storage request when it cannot exist.

use crate::error::{ApiError, ApiResult};

/// Longer than any id the service makes (they are 16 or 32 hex characters),
/// short enough that every key built from one stays far below DynamoDB's limits.
pub const MAX_ID_CHARS: usize = 64;

/// 1 to [`MAX_ID_CHARS`] characters from `[0-9a-zA-Z_-]`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Refuses an id that cannot be one of ours, naming where it came from
/// (`incident_id`, `routes.default.channel_ids[0]`) and never repeating it.
pub fn check_id(field: &str, id: &str) -> ApiResult<()> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field}: must be 1 to {MAX_ID_CHARS} characters from [0-9a-zA-Z_-]"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_we_make_pass_and_anything_else_is_refused() {
        let ours = crate::hashing::random_hex(8).unwrap();
        assert!(is_valid_id(&ours));
        assert!(is_valid_id(&"a".repeat(MAX_ID_CHARS)));
        assert!(is_valid_id("Abc_9-x"));
        for bad in [
            String::new(),
            "a".repeat(MAX_ID_CHARS + 1),
            "a".repeat(3000),
            "a/b".into(),
            "a#b".into(),
            "a b".into(),
            "é".into(),
            "%2F".into(),
        ] {
            assert!(!is_valid_id(&bad), "{bad:?}");
            let err = check_id("incident_id", &bad).unwrap_err();
            assert_eq!(err.code(), "InvalidParameter");
            assert!(err.message().starts_with("incident_id: "));
            assert!(bad.is_empty() || !err.message().contains(&bad));
        }
    }
}
