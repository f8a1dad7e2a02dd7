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

/// Characters of a new incident's id: 64 random bits, few enough that the
/// id of an alert opened into it can carry it whole.
pub const INCIDENT_ID_CHARS: usize = 16;
const ALERT_ID_CHARS: usize = 32;
/// Hex digits of milliseconds in an alert id (enough until the year 2527).
const TIME_DIGITS: usize = 11;

/// A new incident's id.
pub fn new_incident_id() -> ApiResult<String> {
    crate::hashing::random_hex(INCIDENT_ID_CHARS / 2)
}

/// The id of an alert opened into `incident_id` at `at_ms`: the incident's
/// id, the time and 20 random bits, 32 hex characters like every alert id.
/// It names the partition its record is in (no index entry to find it) and
/// sorts by opening time there (its record can carry its timeline entry).
/// A random id when the incident's id is too long to carry (incidents made
/// before 2026-12-05) or there is no incident.
pub fn new_alert_id(incident_id: &str, at_ms: i64) -> ApiResult<String> {
    let random = crate::hashing::random_hex(ALERT_ID_CHARS / 2)?;
    if incident_id.len() != INCIDENT_ID_CHARS || !(0..1 << (4 * TIME_DIGITS)).contains(&at_ms) {
        return Ok(random);
    }
    let mut id = format!("{incident_id}{at_ms:0w$x}", w = TIME_DIGITS);
    id.push_str(&random[..ALERT_ID_CHARS - id.len()]);
    Ok(id)
}

/// The incident an alert id names when [`new_alert_id`] made it with one
/// (or when a random id happens to look so: callers check what they find).
pub fn incident_named_by(alert_id: &str) -> Option<&str> {
    (alert_id.len() == ALERT_ID_CHARS && alert_id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| &alert_id[..INCIDENT_ID_CHARS])
}

/// Whether `alert_id` was made by [`new_alert_id`] for `incident_id`.
pub fn is_alert_of(alert_id: &str, incident_id: &str) -> bool {
    incident_id.len() == INCIDENT_ID_CHARS && incident_named_by(alert_id) == Some(incident_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_id_names_its_incident_and_sorts_by_time() {
        let incident = new_incident_id().unwrap();
        assert_eq!(incident.len(), 16);
        let a = new_alert_id(&incident, 1_780_000_000_000).unwrap();
        let b = new_alert_id(&incident, 1_780_000_000_001).unwrap();
        assert_eq!((a.len(), b.len()), (32, 32));
        assert!(a < b, "later openings sort after earlier ones");
        assert!(is_alert_of(&a, &incident) && is_valid_id(&a));
        assert_eq!(incident_named_by(&a), Some(incident.as_str()));
        // An incident of the old 32-character kind, or none: a random id.
        let old = crate::hashing::random_hex(16).unwrap();
        let c = new_alert_id(&old, 1_780_000_000_000).unwrap();
        assert_eq!(c.len(), 32);
        assert!(!is_alert_of(&c, &old) && !c.starts_with(&old[..16]));
        assert!(!is_alert_of(&new_alert_id("", 5).unwrap(), ""));
    }

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
