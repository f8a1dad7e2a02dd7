//! The standard event (SPEC section 3): what every integration normalises into,
//! with the field limits enforced in one place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::template::{render_title, TemplateContext};
use crate::error::{ApiError, ApiResult};
use crate::hashing::stable_key;

pub const TITLE_MAX_CHARS: usize = 512;
pub const DESCRIPTION_MAX_CHARS: usize = 2048;
pub const ALERT_KEY_MAX_CHARS: usize = 255;
pub const LABELS_MAX: usize = 50;
pub const LABEL_KEY_MAX_CHARS: usize = 128;
pub const LABEL_VALUE_MAX_CHARS: usize = 2048;
/// Event times further ahead than this are taken as sender clock errors and
/// replaced by the time of receipt (SPEC section 3), so one bad clock cannot
/// make a key's real events look stale.
pub const MAX_FUTURE_SKEW_MS: i64 = 60 * 1000;
/// The most label text (keys and values, UTF-8 bytes) an event or an alert
/// carries. Fifty labels of 2,048 four-byte characters would be 400 KiB, past
/// DynamoDB's item limit; labels past this budget are left off.
pub const LABELS_MAX_BYTES: usize = 64 * 1024;
/// Numbers at or above this are milliseconds; below, seconds (1e11 s is the year 5138).
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventStatus {
    Critical,
    Warning,
    Info,
    Ok,
}

impl EventStatus {
    /// Case-sensitive, as the spec demands.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Critical" => Some(Self::Critical),
            "Warning" => Some(Self::Warning),
            "Info" => Some(Self::Info),
            "Ok" => Some(Self::Ok),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "Critical",
            Self::Warning => "Warning",
            Self::Info => "Info",
            Self::Ok => "Ok",
        }
    }

    /// Higher is more severe; `Ok` is the lowest.
    pub fn rank(self) -> u8 {
        match self {
            Self::Critical => 3,
            Self::Warning => 2,
            Self::Info => 1,
            Self::Ok => 0,
        }
    }

    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }
}

/// Where the title comes from: a `title_rule` the sender wrote (templates apply),
/// or a title a vendor parser built (taken literally, even if it contains `::`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TitleSource {
    Rule(String),
    Plain(String),
}

/// Who produced the event. Standard events are the sender's own words, so
/// limits are enforced strictly; vendor events are our translation, so label
/// keys are normalised and surplus labels dropped instead of refusing the push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Standard,
    Vendor,
}

/// An event as a parser produced it, before limits and defaults are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingEvent {
    pub origin: Origin,
    pub title: TitleSource,
    pub event_status: EventStatus,
    pub alert_key: Option<String>,
    pub description: Option<String>,
    /// In payload order, so that the first offending label is the one reported.
    pub labels: Vec<(String, String)>,
    /// Unix milliseconds, when the payload said.
    pub event_time_ms: Option<i64>,
}

impl IncomingEvent {
    pub fn vendor(title: String, event_status: EventStatus) -> Self {
        IncomingEvent {
            origin: Origin::Vendor,
            title: TitleSource::Plain(title),
            event_status,
            alert_key: None,
            description: None,
            labels: Vec::new(),
            event_time_ms: None,
        }
    }
}

/// What a parser makes of one alert in a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedEvent {
    Apply(IncomingEvent),
    /// Accepted and answered, but no state changes (BlueKing `manual` notices, ...).
    Ignore {
        alert_key: Option<String>,
        reason: String,
    },
}

/// A validated event, ready for the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardEvent {
    pub title: String,
    pub event_status: EventStatus,
    pub alert_key: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub event_time_ms: i64,
}

pub struct NormaliseContext<'a> {
    pub integration_name: &'a str,
    pub now_ms: i64,
}

/// Convert a unix time in seconds or milliseconds (told apart by size) to milliseconds.
pub fn event_time_to_ms(value: i64) -> ApiResult<i64> {
    if value <= 0 {
        return Err(ApiError::invalid(
            "event_time: must be a positive unix time in seconds or milliseconds",
        ));
    }
    if value >= MILLIS_THRESHOLD {
        Ok(value)
    } else {
        value
            .checked_mul(1000)
            .ok_or_else(|| ApiError::invalid("event_time: out of range"))
    }
}

pub fn is_valid_label_key(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Turn any string into a valid label key: invalid characters become `_`, a
/// leading digit gets a `_` prefix, and the result is cut to the key limit.
pub fn normalise_label_key(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    truncate_chars(&out, LABEL_KEY_MAX_CHARS)
}

/// Cut to at most `max` characters (not bytes), never splitting a character.
pub fn truncate_chars(s: &str, max: usize) -> String {
    truncate_owned(s.to_string(), max)
}

/// [`truncate_chars`] in place, for strings we already own.
pub fn truncate_owned(mut s: String, max: usize) -> String {
    // A string of at most `max` bytes has at most `max` characters.
    if s.len() > max {
        if let Some((byte_index, _)) = s.char_indices().nth(max) {
            s.truncate(byte_index);
        }
    }
    s
}

/// The key the service makes for an event that came without one: the same
/// rendered title and labels always give the same key, whatever the status or
/// description, so a sender that never sends keys still gets dedup.
pub fn generated_alert_key(title: &str, labels: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(1 + labels.len() * 2);
    parts.push(title);
    for (k, v) in labels {
        parts.push(k);
        parts.push(v);
    }
    stable_key(&parts)
}

fn normalise_labels(
    origin: Origin,
    raw: Vec<(String, String)>,
) -> ApiResult<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    // Keys are named by position (from 0, in payload order), never quoted:
    // a sender that put a secret where a key belongs must not see it echoed.
    for (position, (key, value)) in raw.into_iter().enumerate() {
        let key = match origin {
            Origin::Standard => {
                if key.chars().count() > LABEL_KEY_MAX_CHARS {
                    return Err(ApiError::invalid(format!(
                        "labels: key {position} is longer than {LABEL_KEY_MAX_CHARS} characters"
                    )));
                }
                if !is_valid_label_key(&key) {
                    return Err(ApiError::invalid(format!(
                        "labels: key {position} must match ^[a-zA-Z_][a-zA-Z0-9_]*$"
                    )));
                }
                key
            }
            Origin::Vendor => {
                if is_valid_label_key(&key) && key.chars().count() <= LABEL_KEY_MAX_CHARS {
                    key
                } else {
                    normalise_label_key(&key)
                }
            }
        };
        labels.insert(key, truncate_owned(value, LABEL_VALUE_MAX_CHARS));
    }
    if labels.len() > LABELS_MAX {
        match origin {
            Origin::Standard => {
                return Err(ApiError::invalid(format!(
                    "labels: at most {LABELS_MAX} labels are allowed, got {}",
                    labels.len()
                )))
            }
            // Deterministic: keep the first 50 by name.
            Origin::Vendor => {
                while labels.len() > LABELS_MAX {
                    labels.pop_last();
                }
            }
        }
    }
    Ok(labels)
}

/// The bytes a label costs against [`LABELS_MAX_BYTES`].
pub fn label_bytes(key: &str, value: &str) -> usize {
    key.len() + value.len()
}

/// Keep labels in name order while they fit the byte budget; the first one
/// that does not fit and every one after it are left off.
pub fn keep_within_label_budget(labels: &mut BTreeMap<String, String>) {
    let mut used = 0;
    let mut cut: Option<String> = None;
    for (k, v) in labels.iter() {
        used += label_bytes(k, v);
        if used > LABELS_MAX_BYTES {
            cut = Some(k.clone());
            break;
        }
    }
    if let Some(first_left_off) = cut {
        let dropped = labels.split_off(&first_left_off).len();
        tracing::info!(dropped, "labels past the byte budget were left off");
    }
}

/// Apply the limits and defaults of SPEC section 3. Truncates where the spec
/// says truncate and refuses (naming the field and the limit) where it says refuse.
pub fn normalise(event: IncomingEvent, ctx: &NormaliseContext<'_>) -> ApiResult<StandardEvent> {
    let mut labels = normalise_labels(event.origin, event.labels)?;
    keep_within_label_budget(&mut labels);

    let alert_key = match event.alert_key {
        Some(k) if k.chars().count() > ALERT_KEY_MAX_CHARS => {
            return Err(ApiError::invalid(format!(
                "alert_key: at most {ALERT_KEY_MAX_CHARS} characters are allowed, got {}",
                k.chars().count()
            )))
        }
        Some(k) if k.is_empty() => None,
        other => other,
    };
    if event.event_status.is_ok() && alert_key.is_none() {
        return Err(ApiError::invalid(
            "alert_key: required when event_status is Ok",
        ));
    }

    let description = truncate_owned(event.description.unwrap_or_default(), DESCRIPTION_MAX_CHARS);

    let title = match &event.title {
        TitleSource::Plain(t) => t.clone(),
        TitleSource::Rule(rule) => {
            if rule.trim().is_empty() {
                return Err(ApiError::invalid("title_rule: must not be empty"));
            }
            render_title(
                rule,
                &TemplateContext {
                    labels: &labels,
                    description: &description,
                    event_status: event.event_status.as_str(),
                    alert_key: alert_key.as_deref().unwrap_or(""),
                    integration_name: ctx.integration_name,
                },
            )
        }
    };
    let title = truncate_owned(title, TITLE_MAX_CHARS);

    let event_time_ms = match event.event_time_ms {
        Some(t) if t > ctx.now_ms + MAX_FUTURE_SKEW_MS => ctx.now_ms,
        Some(t) => t,
        None => ctx.now_ms,
    };

    let alert_key = match alert_key {
        Some(k) => k,
        None => generated_alert_key(&title, &labels),
    };

    Ok(StandardEvent {
        title,
        event_status: event.event_status,
        alert_key,
        description,
        labels,
        event_time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_626_800_000;

    fn ctx() -> NormaliseContext<'static> {
        NormaliseContext {
            integration_name: "demo",
            now_ms: NOW,
        }
    }

    fn standard(title: &str, status: EventStatus) -> IncomingEvent {
        IncomingEvent {
            origin: Origin::Standard,
            title: TitleSource::Rule(title.to_string()),
            event_status: status,
            alert_key: Some("k".into()),
            description: None,
            labels: vec![],
            event_time_ms: None,
        }
    }

    fn labels(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("l{i}"), "v".to_string())).collect()
    }

    #[test]
    fn title_is_truncated_at_512_characters_not_bytes() {
        let at = "é".repeat(TITLE_MAX_CHARS);
        let out = normalise(standard(&at, EventStatus::Info), &ctx()).unwrap();
        assert_eq!(out.title, at);
        let over = "é".repeat(TITLE_MAX_CHARS + 1);
        let out = normalise(standard(&over, EventStatus::Info), &ctx()).unwrap();
        assert_eq!(out.title.chars().count(), TITLE_MAX_CHARS);
    }

    #[test]
    fn description_is_truncated_at_2048_characters() {
        let mut ev = standard("t", EventStatus::Info);
        ev.description = Some("д".repeat(DESCRIPTION_MAX_CHARS));
        assert_eq!(
            normalise(ev.clone(), &ctx())
                .unwrap()
                .description
                .chars()
                .count(),
            2048
        );
        ev.description = Some("д".repeat(DESCRIPTION_MAX_CHARS + 1));
        assert_eq!(
            normalise(ev, &ctx()).unwrap().description.chars().count(),
            2048
        );
    }

    #[test]
    fn alert_key_of_255_passes_and_256_is_refused() {
        let mut ev = standard("t", EventStatus::Info);
        ev.alert_key = Some("k".repeat(ALERT_KEY_MAX_CHARS));
        assert!(normalise(ev.clone(), &ctx()).is_ok());
        ev.alert_key = Some("ü".repeat(ALERT_KEY_MAX_CHARS + 1));
        let err = normalise(ev, &ctx()).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        assert!(err.message().contains("alert_key") && err.message().contains("255"));
    }

    #[test]
    fn fifty_labels_pass_and_fifty_one_are_refused() {
        let mut ev = standard("t", EventStatus::Info);
        ev.labels = labels(LABELS_MAX);
        assert_eq!(normalise(ev.clone(), &ctx()).unwrap().labels.len(), 50);
        ev.labels = labels(LABELS_MAX + 1);
        let err = normalise(ev, &ctx()).unwrap_err();
        assert!(err.message().contains("labels") && err.message().contains("50"));
    }

    #[test]
    fn vendor_events_keep_fifty_labels_instead_of_failing() {
        let mut ev = IncomingEvent::vendor("t".into(), EventStatus::Info);
        ev.labels = labels(70);
        ev.labels.push(("bad-key.x".into(), "v".into()));
        let out = normalise(ev, &ctx()).unwrap();
        assert_eq!(out.labels.len(), 50);
        assert!(out.labels.keys().all(|k| is_valid_label_key(k)));
    }

    #[test]
    fn label_key_length_and_pattern() {
        let mut ev = standard("t", EventStatus::Info);
        ev.labels = vec![("a".repeat(LABEL_KEY_MAX_CHARS), "v".into())];
        assert!(normalise(ev.clone(), &ctx()).is_ok());
        ev.labels = vec![("a".repeat(LABEL_KEY_MAX_CHARS + 1), "v".into())];
        assert!(normalise(ev.clone(), &ctx())
            .unwrap_err()
            .message()
            .contains("128"));
        for bad in ["1abc", "a-b", "", "ключ", "a b"] {
            ev.labels = vec![(bad.to_string(), "v".into())];
            assert_eq!(
                normalise(ev.clone(), &ctx()).unwrap_err().code(),
                "InvalidParameter",
                "{bad}"
            );
        }
        for good in ["_", "_a1", "Abc_9"] {
            ev.labels = vec![(good.to_string(), "v".into())];
            assert!(normalise(ev.clone(), &ctx()).is_ok(), "{good}");
        }
    }

    #[test]
    fn label_values_are_truncated_at_2048() {
        let mut ev = standard("t", EventStatus::Info);
        ev.labels = vec![("a".into(), "x".repeat(LABEL_VALUE_MAX_CHARS + 1))];
        assert_eq!(normalise(ev, &ctx()).unwrap().labels["a"].len(), 2048);
    }

    #[test]
    fn ok_requires_an_alert_key() {
        let mut ev = standard("t", EventStatus::Ok);
        ev.alert_key = None;
        assert!(normalise(ev.clone(), &ctx())
            .unwrap_err()
            .message()
            .contains("alert_key"));
        ev.alert_key = Some("k".into());
        assert!(normalise(ev, &ctx()).is_ok());
    }

    #[test]
    fn generated_key_is_stable_and_ignores_status_and_description() {
        let mut a = standard("$host::down", EventStatus::Warning);
        a.alert_key = None;
        a.labels = vec![("host".into(), "db1".into()), ("dc".into(), "x".into())];
        let mut b = a.clone();
        b.event_status = EventStatus::Critical;
        b.description = Some("other".into());
        b.labels.reverse();
        let ka = normalise(a.clone(), &ctx()).unwrap().alert_key;
        assert_eq!(ka, normalise(b, &ctx()).unwrap().alert_key);
        let mut c = a;
        c.labels[0].1 = "db2".into();
        assert_ne!(ka, normalise(c, &ctx()).unwrap().alert_key);
    }

    #[test]
    fn event_time_seconds_and_milliseconds_are_told_apart() {
        assert_eq!(event_time_to_ms(1_763_626_800).unwrap(), 1_763_626_800_000);
        assert_eq!(
            event_time_to_ms(1_763_626_800_123).unwrap(),
            1_763_626_800_123
        );
        assert!(event_time_to_ms(0).is_err());
        assert!(event_time_to_ms(-5).is_err());
    }

    #[test]
    fn far_future_event_time_is_clamped_to_receipt() {
        let mut ev = standard("t", EventStatus::Info);
        ev.event_time_ms = Some(NOW + MAX_FUTURE_SKEW_MS + 1);
        assert_eq!(normalise(ev.clone(), &ctx()).unwrap().event_time_ms, NOW);
        ev.event_time_ms = Some(NOW + 1000);
        assert_eq!(normalise(ev, &ctx()).unwrap().event_time_ms, NOW + 1000);
    }

    #[test]
    fn status_is_case_sensitive() {
        assert_eq!(EventStatus::parse("Critical"), Some(EventStatus::Critical));
        assert_eq!(EventStatus::parse("critical"), None);
        assert_eq!(EventStatus::parse("OK"), None);
    }

    #[test]
    fn label_key_normalisation() {
        assert_eq!(
            normalise_label_key("kubernetes.io/name"),
            "kubernetes_io_name"
        );
        assert_eq!(normalise_label_key("9lives"), "_9lives");
        assert_eq!(normalise_label_key(""), "_");
    }
}
