//! Zabbix 5.0–7.x (SPEC section 10), through the webhook media type the
//! repository ships (`infra/zabbix/`). Its script posts one JSON object built
//! from Zabbix macros; every value arrives as text (a macro Zabbix could not
//! resolve is left out by the script, so it never reaches a label).
//!
//! | field | macro |
//! | --- | --- |
//! | `event_id` | `{EVENT.ID}` (a recovery carries its problem's id) |
//! | `event_value` | `{EVENT.VALUE}`: 1 problem, 0 recovery |
//! | `event_update_status` | `{EVENT.UPDATE.STATUS}`: 1 for an update operation |
//! | `event_nseverity` | `{EVENT.NSEVERITY}`, 0–5 |
//! | `event_severity` | `{EVENT.SEVERITY}`, the severity's name |
//! | `event_name` | `{EVENT.NAME}` |
//! | `event_timestamp` | unix seconds of `{EVENT.DATE} {EVENT.TIME}` (or the recovery's) |
//! | `event_tags` | `{EVENT.TAGSJSON}`: `[{"tag", "value"}]` |
//! | `host_name`, `host_ip`, `trigger_id`, `item_value`, `zabbix_url` | `{HOST.NAME}`, `{HOST.IP}`, `{TRIGGER.ID}`, `{ITEM.LASTVALUE}`, `{$ZABBIX.URL}` |
//! | `message` | `{ALERT.MESSAGE}` |
//!
//! - **Status.** `event_update_status` 1 (an update operation: acknowledged,
//!   commented, severity changed) → accepted, no state change. Else
//!   `event_value` 0 → Ok; 1 → `event_nseverity` 5 Disaster, 4 High →
//!   Critical; 3 Average, 2 Warning → Warning; 1 Information, 0 Not
//!   classified → Info.
//! - **alert_key.** `zabbix:<event_id>`.
//! - **Title** `event_name` (else the subject); **description** `message`;
//!   **labels** host, ip, trigger id, severity name, item value, the event's
//!   tags (tag → value; a tag given twice keeps its first value).
//! - **Event time** `event_timestamp` when given, else the time of receipt.

use serde::Deserialize;
use serde_json::Value;

use super::common::LabelBuilder;
use super::{decode, flex, ParseSettings, Parsed, Source, SourceRequest};
use crate::domain::event::{
    event_time_to_ms, EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS,
};
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
struct Payload {
    #[serde(default, deserialize_with = "flex::opt_string")]
    event_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    event_value: Option<i64>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    event_update_status: Option<i64>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    event_nseverity: Option<i64>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    event_severity: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    event_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    event_timestamp: Option<i64>,
    #[serde(default)]
    event_tags: Option<Value>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    host_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    host_ip: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    trigger_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    item_value: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    zabbix_url: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    subject: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    message: Option<String>,
}

pub struct Zabbix;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Zabbix,
    source: &Zabbix,
};

impl Source for Zabbix {
    fn parse(&self, req: &SourceRequest<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        let p: Payload = decode(&req.body)?;
        let event_id = p
            .event_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid("event_id: required ({EVENT.ID})"))?;
        if event_id.chars().count() > ALERT_KEY_MAX_CHARS - 7 {
            return Err(ApiError::invalid(
                "event_id: longer than an alert key may be",
            ));
        }
        let alert_key = format!("zabbix:{event_id}");
        if p.event_update_status == Some(1) {
            return Ok(Parsed::single(vec![ParsedEvent::Ignore {
                alert_key: Some(alert_key),
                reason: "zabbix update operation carries no alert state".into(),
            }]));
        }
        let event_status = match p.event_value {
            Some(0) => EventStatus::Ok,
            Some(1) => match p.event_nseverity {
                Some(4 | 5) => EventStatus::Critical,
                Some(2 | 3) => EventStatus::Warning,
                Some(0 | 1) => EventStatus::Info,
                _ => {
                    return Err(ApiError::invalid(
                        "event_nseverity: must be 0 to 5 ({EVENT.NSEVERITY})",
                    ))
                }
            },
            _ => {
                return Err(ApiError::invalid(
                    "event_value: must be 1 (problem) or 0 (recovery) ({EVENT.VALUE})",
                ))
            }
        };
        let title = p
            .event_name
            .or(p.subject)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| format!("Zabbix event {event_id}"));
        let mut labels = LabelBuilder::default();
        for (name, value) in [
            ("host", p.host_name),
            ("host_ip", p.host_ip),
            ("trigger_id", p.trigger_id),
            ("severity", p.event_severity),
            ("item_value", p.item_value),
            ("zabbix_url", p.zabbix_url),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                labels.insert(name, v);
            }
        }
        for (tag, value) in tags(p.event_tags)? {
            labels.insert(&tag, value);
        }
        let event_time_ms = match p.event_timestamp {
            Some(t) if t > 0 => Some(event_time_to_ms(t)?),
            _ => None,
        };
        let mut event = IncomingEvent::vendor(title, event_status);
        event.alert_key = Some(alert_key);
        event.description = p.message;
        event.labels = labels.into_vec();
        event.event_time_ms = event_time_ms;
        Ok(Parsed::single(vec![ParsedEvent::Apply(event)]))
    }
}

/// `{EVENT.TAGSJSON}` as sent (a list of `{tag, value}`), or already an
/// object, or `{EVENT.TAGS}` text (`a:b, c:d`).
fn tags(raw: Option<Value>) -> ApiResult<Vec<(String, String)>> {
    let raw = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        // The script sends the macro's JSON text when it could not parse it.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(v @ (Value::Array(_) | Value::Object(_))) => v,
            _ => {
                return Ok(text
                    .split(',')
                    .filter_map(|pair| {
                        let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
                        let k = k.trim();
                        (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
                    })
                    .collect())
            }
        },
        Some(other) => other,
    };
    match raw {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let tag = item.get("tag").and_then(flex::scalar_to_string);
                let value = item
                    .get("value")
                    .and_then(flex::scalar_to_string)
                    .unwrap_or_default();
                match (item, tag) {
                    (Value::Object(_), Some(tag)) => Ok((tag, value)),
                    _ => Err(ApiError::invalid(format!(
                        "event_tags[{i}]: expected an object with a tag and a value"
                    ))),
                }
            })
            .collect(),
        Value::Object(map) => Ok(map
            .iter()
            .filter_map(|(k, v)| flex::scalar_to_string(v).map(|v| (k.clone(), v)))
            .collect()),
        _ => Err(ApiError::invalid(
            "event_tags: expected {EVENT.TAGSJSON}, a list of {tag, value}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::{BodyFormat, PushBody};
    use serde_json::json;

    fn parse(v: &Value) -> ApiResult<Vec<ParsedEvent>> {
        let text = v.to_string();
        let empty = Default::default();
        Zabbix
            .parse(
                &SourceRequest {
                    method: "POST",
                    headers: &empty,
                    query: &empty,
                    body: PushBody {
                        bytes: text.as_bytes(),
                        format: BodyFormat::Json,
                    },
                },
                &ParseSettings::default(),
            )
            .map(|p| p.events)
    }

    fn problem() -> Value {
        let path = format!(
            "{}/fixtures/zabbix/problem.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn severity_table_and_recovery() {
        for (n, want) in [
            (5, EventStatus::Critical),
            (4, EventStatus::Critical),
            (3, EventStatus::Warning),
            (2, EventStatus::Warning),
            (1, EventStatus::Info),
            (0, EventStatus::Info),
        ] {
            let mut doc = problem();
            doc["event_nseverity"] = json!(n.to_string());
            match parse(&doc).unwrap().remove(0) {
                ParsedEvent::Apply(e) => assert_eq!(e.event_status, want, "{n}"),
                other => panic!("{other:?}"),
            }
        }
        let mut doc = problem();
        doc["event_nseverity"] = json!("9");
        assert!(parse(&doc)
            .unwrap_err()
            .message()
            .starts_with("event_nseverity"));
        doc["event_value"] = json!("0");
        match parse(&doc).unwrap().remove(0) {
            ParsedEvent::Apply(e) => assert_eq!(e.event_status, EventStatus::Ok),
            other => panic!("{other:?}"),
        }
        doc["event_update_status"] = json!("1");
        assert!(matches!(
            parse(&doc).unwrap()[0],
            ParsedEvent::Ignore { .. }
        ));
    }

    #[test]
    fn tags_become_labels_in_every_form() {
        let mut doc = problem();
        for tags in [
            json!([{"tag": "service", "value": "web"}]),
            json!("[{\"tag\":\"service\",\"value\":\"web\"}]"),
            json!("service:web"),
            json!({"service": "web"}),
        ] {
            doc["event_tags"] = tags.clone();
            match parse(&doc).unwrap().remove(0) {
                ParsedEvent::Apply(e) => assert!(
                    e.labels.iter().any(|(k, v)| k == "service" && v == "web"),
                    "{tags}"
                ),
                other => panic!("{other:?}"),
            }
        }
        doc["event_tags"] = json!([1]);
        assert!(parse(&doc)
            .unwrap_err()
            .message()
            .starts_with("event_tags[0]"));
    }
}
