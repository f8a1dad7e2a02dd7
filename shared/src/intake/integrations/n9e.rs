//! Nightingale (SPEC section 10): the v6/v7 webhook posts one alert event
//! object (`AlertCurEvent`); v8's Flashduty notifier posts a JSON array of
//! them, with a `channel_id` query parameter that is ignored here.
//!
//! - **Status.** `is_recovered` true → Ok; else `severity` 1 → Critical,
//!   2 → Warning, 3 → Info (anything else is refused naming `severity`).
//! - **alert_key.** `hash` (Nightingale's rule id + series key); without one,
//!   a stable hash of `rule_id` and the sorted tags.
//! - **Title** `rule_name`; **description** `rule_note`, else the
//!   `trigger_value`. **Labels**: the tags (`tags_map`, else the `k=v` strings
//!   of `tags`), then `target_ident`, `rule_id`, `group_name`, `cluster`,
//!   `datasource_id`, `trigger_value`, `runbook_url`, then the annotations
//!   (`annotation_<name>` when a tag took the name).
//! - **Event time** `trigger_time` (unix seconds); a recovery's
//!   `last_eval_time` (Nightingale's recovery time), else receipt.
//! - An array answers `alert_keys` in order, like Alertmanager payloads; an
//!   object answers `alert_key`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::LabelBuilder;
use super::source::json_value;
use super::{flex, from_value, ParseSettings, Parsed, Source, SourceRequest};
use crate::domain::event::{
    event_time_to_ms, EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS,
};
use crate::error::{ApiError, ApiResult};
use crate::hashing::stable_key;

#[derive(Deserialize)]
struct Event {
    #[serde(default, deserialize_with = "flex::opt_string")]
    hash: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    rule_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    rule_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    rule_note: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    severity: Option<i64>,
    #[serde(default)]
    is_recovered: Option<Value>,
    #[serde(default)]
    tags: Option<Vec<Value>>,
    #[serde(default)]
    tags_map: Option<Map<String, Value>>,
    #[serde(default)]
    annotations: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    target_ident: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    group_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    cluster: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    datasource_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    trigger_value: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    runbook_url: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    trigger_time: Option<i64>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    last_eval_time: Option<i64>,
}

pub struct N9e;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::N9e,
    source: &N9e,
};

impl Source for N9e {
    fn parse(&self, req: &SourceRequest<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        match json_value(&req.body)? {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(ApiError::invalid("body: the event list is empty"));
                }
                let events = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        convert(
                            from_value(item)
                                .map_err(|e| ApiError::invalid(format!("[{i}].{}", e.message())))?,
                        )
                        .map_err(|e| ApiError::invalid(format!("[{i}].{}", e.message())))
                    })
                    .collect::<ApiResult<Vec<_>>>()?;
                Ok(Parsed::many(events, 0))
            }
            value @ Value::Object(_) => Ok(Parsed::single(vec![convert(from_value(value)?)?])),
            _ => Err(ApiError::invalid(
                "body: expected an event object or a list of them",
            )),
        }
    }
}

fn convert(e: Event) -> ApiResult<ParsedEvent> {
    let recovered = match &e.is_recovered {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim(), "true" | "1"),
        Some(_) => return Err(ApiError::invalid("is_recovered: expected a boolean")),
    };
    let event_status = if recovered {
        EventStatus::Ok
    } else {
        match e.severity {
            Some(1) => EventStatus::Critical,
            Some(2) => EventStatus::Warning,
            Some(3) => EventStatus::Info,
            _ => return Err(ApiError::invalid("severity: must be 1, 2 or 3")),
        }
    };
    let mut tags: Vec<(String, String)> = match e.tags_map {
        Some(map) if !map.is_empty() => map
            .iter()
            .filter_map(|(k, v)| flex::scalar_to_string(v).map(|v| (k.clone(), v)))
            .collect(),
        _ => e
            .tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str())
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            .filter(|(k, _)| !k.is_empty())
            .collect(),
    };
    tags.sort();
    let alert_key = match e
        .hash
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
    {
        Some(h) if h.chars().count() > ALERT_KEY_MAX_CHARS => {
            return Err(ApiError::invalid(format!(
                "hash: at most {ALERT_KEY_MAX_CHARS} characters are allowed"
            )))
        }
        Some(h) => h,
        None => {
            let mut parts = vec!["n9e".to_string(), e.rule_id.clone().unwrap_or_default()];
            for (k, v) in &tags {
                parts.push(k.clone());
                parts.push(v.clone());
            }
            stable_key(&parts)
        }
    };
    let title = e
        .rule_name
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "Nightingale alert".to_string());
    let description = e
        .rule_note
        .filter(|t| !t.trim().is_empty())
        .or_else(|| e.trigger_value.clone());
    let mut labels = LabelBuilder::default();
    for (k, v) in tags {
        labels.insert(&k, v);
    }
    for (name, value) in [
        ("target_ident", e.target_ident),
        ("rule_id", e.rule_id),
        ("group_name", e.group_name),
        ("cluster", e.cluster),
        ("datasource_id", e.datasource_id),
        ("trigger_value", e.trigger_value),
        ("runbook_url", e.runbook_url),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            labels.insert_or_prefixed(name, v, "n9e_");
        }
    }
    for (name, value) in e.annotations.unwrap_or_default() {
        if let Some(text) = flex::scalar_to_string(&value) {
            labels.insert_or_prefixed(&name, text, "annotation_");
        }
    }
    let time = if recovered {
        e.last_eval_time.filter(|t| *t > 0).or(e.trigger_time)
    } else {
        e.trigger_time
    };
    let event_time_ms = match time {
        Some(t) if t > 0 => Some(event_time_to_ms(t)?),
        _ => None,
    };
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = description;
    event.labels = labels.into_vec();
    event.event_time_ms = event_time_ms;
    Ok(ParsedEvent::Apply(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::{BodyFormat, PushBody, Reply};
    use serde_json::json;

    fn parse(v: &Value) -> ApiResult<Parsed> {
        let text = v.to_string();
        let empty = Default::default();
        N9e.parse(
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
    }

    fn alerting() -> Value {
        let path = format!("{}/fixtures/n9e/alerting.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn only(p: Parsed) -> IncomingEvent {
        match p.events.into_iter().next() {
            Some(ParsedEvent::Apply(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn object_and_array_bodies() {
        let ev = only(parse(&alerting()).unwrap());
        assert_eq!(ev.event_status, EventStatus::Critical);
        assert_eq!(
            ev.alert_key.as_deref(),
            Some("4f7c9d2b8e1a3f56c0d9e8b7a6f5e4d3")
        );
        assert!(ev.labels.iter().any(|(k, v)| k == "ident" && v == "web-01"));
        let list = parse(&json!([alerting(), alerting()])).unwrap();
        assert_eq!(
            list.reply,
            Reply::Many {
                truncated_alerts: 0
            }
        );
        assert_eq!(list.events.len(), 2);
        let mut bad = alerting();
        bad["severity"] = json!(7);
        let err = parse(&json!([alerting(), bad])).unwrap_err();
        assert!(
            err.message().starts_with("[1].severity"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn severity_and_recovery() {
        for (n, want) in [
            (1, EventStatus::Critical),
            (2, EventStatus::Warning),
            (3, EventStatus::Info),
        ] {
            let mut doc = alerting();
            doc["severity"] = json!(n);
            assert_eq!(only(parse(&doc).unwrap()).event_status, want);
        }
        let mut doc = alerting();
        doc["is_recovered"] = json!(true);
        doc["last_eval_time"] = json!(1763627400);
        let ev = only(parse(&doc).unwrap());
        assert_eq!(ev.event_status, EventStatus::Ok);
        assert_eq!(ev.event_time_ms, Some(1_763_627_400_000));
    }

    #[test]
    fn tags_strings_when_no_map() {
        let mut doc = alerting();
        doc.as_object_mut().unwrap().remove("tags_map");
        doc["tags"] = json!(["ident=web-02", "broken", "=x"]);
        let ev = only(parse(&doc).unwrap());
        assert!(ev.labels.iter().any(|(k, v)| k == "ident" && v == "web-02"));
    }
}
