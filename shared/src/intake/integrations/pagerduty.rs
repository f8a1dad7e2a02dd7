//! PagerDuty Events API (SPEC section 10): any v2 client (`routing_key` in
//! the body stands for `integration_key`; Alertmanager's `pagerduty_configs`
//! with `url` pointed here; Grafana's PagerDuty contact point) and v1
//! (`service_key`, `event_type`, `incident_key`). Answers are PagerDuty's own.
//!
//! - **Key.** `integration_key` in the query when given, else the body's
//!   `routing_key` (v2) or `service_key` (v1).
//! - **v2.** `event_action` `trigger` → `payload.severity` (case-insensitive)
//!   `critical`, `error` → Critical; `warning` → Warning; `info` → Info;
//!   `resolve` → Ok; `acknowledge` → the open alert's incident is
//!   acknowledged (`Processing`). alert_key `dedup_key`; a trigger without
//!   one gets a key made from its content (the same content, the same key),
//!   returned as `dedup_key`. Title `payload.summary`; labels `source`,
//!   `component`, `group`, `class`, `client`, `severity` and the scalar
//!   `custom_details`; description: `custom_details` as JSON text; event
//!   time `payload.timestamp`.
//! - **v1.** `event_type` `trigger` (Warning: v1 has no severity), `resolve`,
//!   `acknowledge`; alert_key `incident_key`; title `description`; labels
//!   `client` and the scalar `details`.
//! - **Answers.** v2: 202 `{"status": "success", "message": "Event
//!   processed", "dedup_key"}`; v1: 200 `{"status": "success", "message":
//!   "Event processed", "incident_key"}`; both with `request_id` and this
//!   service's `data`. Errors: `{"status": "invalid event", "message",
//!   "errors": [...]}` (429: `"throttle event"`, with `Retry-After`), at the
//!   status of the error, with `request_id` and the error's `code`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::common::{parse_rfc3339, LabelBuilder};
use super::source::{json_value, query_key};
use super::{flex, from_value, ParseSettings, Parsed, Reply, Source, SourceAction, SourceRequest};
use crate::domain::event::{EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS};
use crate::error::{ApiError, ApiResult};
use crate::intake::http::Outbound;

#[derive(Deserialize)]
struct V2 {
    #[serde(default, deserialize_with = "flex::opt_string")]
    event_action: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    dedup_key: Option<String>,
    #[serde(default)]
    payload: Option<V2Payload>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    client: Option<String>,
}

#[derive(Deserialize)]
struct V2Payload {
    #[serde(default, deserialize_with = "flex::opt_string")]
    summary: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    source: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    severity: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    timestamp: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    component: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    group: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    class: Option<String>,
    #[serde(default)]
    custom_details: Option<Value>,
}

#[derive(Deserialize)]
struct V1 {
    #[serde(default, deserialize_with = "flex::opt_string")]
    event_type: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    incident_key: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    description: Option<String>,
    #[serde(default)]
    details: Option<Value>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    client: Option<String>,
}

pub struct PagerDuty;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::PagerDuty,
    source: &PagerDuty,
};

/// v1 bodies name `service_key` or `event_type`; everything else is v2.
fn is_v1(body: &Map<String, Value>) -> bool {
    !body.contains_key("routing_key")
        && (body.contains_key("service_key") || body.contains_key("event_type"))
}

impl Source for PagerDuty {
    fn integration_key(&self, req: &SourceRequest<'_>) -> Option<String> {
        query_key(req).or_else(|| {
            let value = json_value(&req.body).ok()?;
            ["routing_key", "service_key"]
                .iter()
                .find_map(|k| value.get(k).and_then(Value::as_str).map(str::to_string))
                .filter(|k| !k.is_empty())
        })
    }

    fn missing_key(&self) -> &'static str {
        "routing_key: missing; send it in the body (routing_key, or service_key for Events API v1) or as integration_key in the query string"
    }

    fn parse(&self, req: &SourceRequest<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        let value = json_value(&req.body)?;
        let Value::Object(map) = &value else {
            return Err(ApiError::invalid("body: expected a JSON object"));
        };
        if is_v1(map) {
            v1(from_value(value)?)
        } else {
            v2(from_value(value)?)
        }
    }

    fn reply(&self, request_id: &str, result: Result<Value, ApiError>) -> Outbound {
        match result {
            Ok(data) => {
                tracing::info!(status = 202, "request served");
                let v1 = data.get("incident_key").is_some();
                let key = data.get("alert_key").cloned().unwrap_or(Value::Null);
                let (status, body) = if v1 {
                    (
                        200,
                        json!({"status": "success", "message": "Event processed", "incident_key": key, "request_id": request_id, "data": data}),
                    )
                } else {
                    (
                        202,
                        json!({"status": "success", "message": "Event processed", "dedup_key": key, "request_id": request_id, "data": data}),
                    )
                };
                Outbound {
                    status,
                    headers: Vec::new(),
                    body: body.to_string(),
                }
            }
            Err(err) => {
                tracing::warn!(
                    status = err.status(),
                    code = err.code(),
                    message = err.message(),
                    "request refused"
                );
                let mut headers = Vec::new();
                let (status_word, message) = match &err {
                    ApiError::RequestTooFrequently {
                        retry_after_secs, ..
                    } => {
                        headers.push(("retry-after".to_string(), retry_after_secs.to_string()));
                        (
                            "throttle event",
                            "Requests for this service are arriving too quickly.  Please retry later.",
                        )
                    }
                    ApiError::Internal(_) => ("error", "Internal error"),
                    _ => ("invalid event", "Event object is invalid"),
                };
                Outbound {
                    status: err.status(),
                    headers,
                    body: json!({
                        "status": status_word,
                        "message": message,
                        "errors": [err.message()],
                        "code": err.code(),
                        "request_id": request_id,
                    })
                    .to_string(),
                }
            }
        }
    }
}

fn checked_key(raw: Option<String>, field: &str) -> ApiResult<Option<String>> {
    match raw.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()) {
        Some(k) if k.chars().count() > ALERT_KEY_MAX_CHARS => Err(ApiError::invalid(format!(
            "{field}: at most {ALERT_KEY_MAX_CHARS} characters are allowed"
        ))),
        other => Ok(other),
    }
}

fn acknowledge(key: Option<String>, field: &str, v1: bool) -> ApiResult<Parsed> {
    let alert_key =
        key.ok_or_else(|| ApiError::invalid(format!("{field}: required to acknowledge")))?;
    Ok(Parsed {
        events: Vec::new(),
        reply: Reply::PagerDuty { v1 },
        action: Some(SourceAction::Acknowledge { alert_key }),
    })
}

fn v2(body: V2) -> ApiResult<Parsed> {
    let dedup_key = checked_key(body.dedup_key, "dedup_key")?;
    let action = body
        .event_action
        .ok_or_else(|| ApiError::invalid("event_action: required"))?;
    let reply = Reply::PagerDuty { v1: false };
    match action.trim() {
        "acknowledge" => acknowledge(dedup_key, "dedup_key", false),
        "resolve" => {
            let key =
                dedup_key.ok_or_else(|| ApiError::invalid("dedup_key: required to resolve"))?;
            let mut event = IncomingEvent::vendor(
                body.payload
                    .as_ref()
                    .and_then(|p| p.summary.clone())
                    .unwrap_or_else(|| "PagerDuty event".into()),
                EventStatus::Ok,
            );
            event.alert_key = Some(key);
            Ok(Parsed {
                events: vec![ParsedEvent::Apply(event)],
                reply,
                action: None,
            })
        }
        "trigger" => {
            let p = body
                .payload
                .ok_or_else(|| ApiError::invalid("payload: required to trigger"))?;
            let summary = p
                .summary
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| ApiError::invalid("payload.summary: required"))?;
            let severity = p
                .severity
                .ok_or_else(|| ApiError::invalid("payload.severity: required"))?;
            let event_status = match severity.trim().to_ascii_lowercase().as_str() {
                "critical" | "error" => EventStatus::Critical,
                "warning" => EventStatus::Warning,
                "info" => EventStatus::Info,
                _ => {
                    return Err(ApiError::invalid(
                        "payload.severity: must be critical, error, warning or info",
                    ))
                }
            };
            let event_time_ms = match p.timestamp.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => Some(parse_rfc3339(t).ok_or_else(|| {
                    ApiError::invalid("payload.timestamp: expected an ISO 8601 time")
                })?),
                _ => None,
            };
            let mut labels = LabelBuilder::default();
            for (name, value) in [
                ("source", p.source),
                ("component", p.component),
                ("group", p.group),
                ("class", p.class),
                ("client", body.client),
                ("severity", Some(severity)),
            ] {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    labels.insert(name, v);
                }
            }
            let description = details(p.custom_details, &mut labels);
            let mut event = IncomingEvent::vendor(summary, event_status);
            event.alert_key = dedup_key;
            event.description = description;
            event.labels = labels.into_vec();
            event.event_time_ms = event_time_ms.filter(|ms| *ms > 0);
            Ok(Parsed {
                events: vec![ParsedEvent::Apply(event)],
                reply,
                action: None,
            })
        }
        _ => Err(ApiError::invalid(
            "event_action: must be trigger, acknowledge or resolve",
        )),
    }
}

fn v1(body: V1) -> ApiResult<Parsed> {
    let incident_key = checked_key(body.incident_key, "incident_key")?;
    let event_type = body
        .event_type
        .ok_or_else(|| ApiError::invalid("event_type: required"))?;
    let reply = Reply::PagerDuty { v1: true };
    let event_status = match event_type.trim() {
        "acknowledge" => return acknowledge(incident_key, "incident_key", true),
        "resolve" => EventStatus::Ok,
        "trigger" => EventStatus::Warning,
        _ => {
            return Err(ApiError::invalid(
                "event_type: must be trigger, acknowledge or resolve",
            ))
        }
    };
    if event_status.is_ok() && incident_key.is_none() {
        return Err(ApiError::invalid("incident_key: required to resolve"));
    }
    let title = body
        .description
        .filter(|d| !d.trim().is_empty())
        .or_else(|| event_status.is_ok().then(|| "PagerDuty event".to_string()))
        .ok_or_else(|| ApiError::invalid("description: required"))?;
    let mut labels = LabelBuilder::default();
    if let Some(client) = body.client.filter(|c| !c.is_empty()) {
        labels.insert("client", client);
    }
    let description = details(body.details, &mut labels);
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = incident_key;
    event.description = description;
    event.labels = labels.into_vec();
    Ok(Parsed {
        events: vec![ParsedEvent::Apply(event)],
        reply,
        action: None,
    })
}

/// Scalar details become labels; the whole is the description.
fn details(raw: Option<Value>, labels: &mut LabelBuilder) -> Option<String> {
    match raw? {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Object(map) => {
            for (k, v) in &map {
                if let Some(text) = flex::scalar_to_string(v) {
                    labels.insert(k, text);
                }
            }
            Some(Value::Object(map).to_string())
        }
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::{BodyFormat, PushBody};

    fn parse(v: &Value) -> ApiResult<Parsed> {
        let text = v.to_string();
        let empty = Default::default();
        PagerDuty.parse(
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

    fn trigger() -> Value {
        let path = format!(
            "{}/fixtures/pagerduty/v2-trigger.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn status(p: &Parsed) -> EventStatus {
        match &p.events[0] {
            ParsedEvent::Apply(e) => e.event_status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v2_severities_and_actions() {
        for (sev, want) in [
            ("critical", EventStatus::Critical),
            ("error", EventStatus::Critical),
            ("warning", EventStatus::Warning),
            ("info", EventStatus::Info),
        ] {
            let mut doc = trigger();
            doc["payload"]["severity"] = json!(sev);
            assert_eq!(status(&parse(&doc).unwrap()), want);
        }
        let mut doc = trigger();
        doc["payload"]["severity"] = json!("fatal");
        assert!(parse(&doc)
            .unwrap_err()
            .message()
            .starts_with("payload.severity"));
        doc["event_action"] = json!("resolve");
        assert_eq!(status(&parse(&doc).unwrap()), EventStatus::Ok);
        doc["event_action"] = json!("acknowledge");
        let ack = parse(&doc).unwrap();
        assert!(ack.events.is_empty());
        assert!(matches!(ack.action, Some(SourceAction::Acknowledge { .. })));
        doc.as_object_mut().unwrap().remove("dedup_key");
        assert!(parse(&doc).unwrap_err().message().starts_with("dedup_key"));
    }

    #[test]
    fn v1_is_told_apart_and_has_no_severity() {
        let doc = json!({"service_key": "k", "event_type": "trigger", "description": "Disk full", "incident_key": "srv01/disk"});
        let p = parse(&doc).unwrap();
        assert_eq!(p.reply, Reply::PagerDuty { v1: true });
        assert_eq!(status(&p), EventStatus::Warning);
        let err = parse(&json!({"service_key": "k", "event_type": "trigger"})).unwrap_err();
        assert!(err.message().starts_with("description"));
    }

    #[test]
    fn the_key_comes_from_the_body_unless_the_query_has_one() {
        let text = trigger().to_string();
        let headers = Default::default();
        let key = |query: &std::collections::HashMap<String, String>| {
            PagerDuty.integration_key(&SourceRequest {
                method: "POST",
                headers: &headers,
                query,
                body: PushBody {
                    bytes: text.as_bytes(),
                    format: BodyFormat::Json,
                },
            })
        };
        let mut query = std::collections::HashMap::new();
        assert_eq!(key(&query).as_deref(), trigger()["routing_key"].as_str());
        query.insert("integration_key".to_string(), "q".to_string());
        assert_eq!(key(&query).as_deref(), Some("q"));
    }
}
