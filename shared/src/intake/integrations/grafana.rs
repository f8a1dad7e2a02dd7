//! Grafana (SPEC section 10): the webhook contact point of unified alerting
//! (Grafana ≥ 8; Alertmanager-shaped, `version` "1", plus `orgId`, `title`,
//! `state`, `message` and per alert `values`, `valueString`, `dashboardURL`,
//! `panelURL`, `silenceURL`) and the legacy dashboard alerting webhook
//! (Grafana ≤ 10: `ruleId`, `ruleName`, `state`, `evalMatches`, `tags`).
//!
//! A body with an `alerts` list is unified, else legacy.
//!
//! - **Unified**: exactly as [`super::prometheus`] (severity table, keys from
//!   `fingerprint`, titles, labels, times); `values` may be null.
//! - **Legacy**: `state` `alerting` → Warning, `no_data` → Critical, `ok` →
//!   Ok, `paused` / `pending` → accepted, no state change (`ignored`); other
//!   states are refused naming `state`. alert_key `grafana:<orgId>:<ruleId>`,
//!   `orgId` 1 when an old sender leaves it out (Grafana's default
//!   organisation, so a later sender that names it keeps the same key).
//!   Title `ruleName` (else `title`); description `message`; labels: the
//!   `tags`, `rule_id`, `rule_name`, `rule_url`, `org_id`, `dashboard_id`,
//!   `panel_id`, and each of the first ten `evalMatches` as
//!   `eval_<metric>` = value. Event time: the time of receipt (the legacy
//!   body carries none).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::LabelBuilder;
use super::prometheus::{
    alertmanager_events, severity_from_labels, truncated_count, AlertmanagerPayload,
};
use super::source::json_value;
use super::{flex, from_value, ParseSettings, Parsed, Source, SourceRequest};
use crate::domain::event::{EventStatus, IncomingEvent, ParsedEvent};
use crate::error::{ApiError, ApiResult};

pub struct Grafana;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Grafana,
    source: &Grafana,
};

impl Source for Grafana {
    fn parse(&self, req: &SourceRequest<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        let value = json_value(&req.body)?;
        let Value::Object(map) = &value else {
            return Err(ApiError::invalid("body: expected a JSON object"));
        };
        if map.contains_key("alerts") {
            let payload: AlertmanagerPayload = from_value(value)?;
            let truncated = truncated_count(payload.truncated_alerts)?;
            let events = alertmanager_events(payload, "grafana", severity_from_labels)?;
            return Ok(Parsed::many(events, truncated));
        }
        legacy(from_value(value)?).map(|e| Parsed::single(vec![e]))
    }
}

#[derive(Deserialize)]
struct Legacy {
    #[serde(rename = "ruleId", default, deserialize_with = "flex::opt_string")]
    rule_id: Option<String>,
    #[serde(rename = "orgId", default, deserialize_with = "flex::opt_string")]
    org_id: Option<String>,
    #[serde(rename = "ruleName", default, deserialize_with = "flex::opt_string")]
    rule_name: Option<String>,
    #[serde(rename = "ruleUrl", default, deserialize_with = "flex::opt_string")]
    rule_url: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    title: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    message: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    state: Option<String>,
    #[serde(rename = "dashboardId", default, deserialize_with = "flex::opt_string")]
    dashboard_id: Option<String>,
    #[serde(rename = "panelId", default, deserialize_with = "flex::opt_string")]
    panel_id: Option<String>,
    #[serde(default)]
    tags: Option<Map<String, Value>>,
    #[serde(rename = "evalMatches", default)]
    eval_matches: Option<Vec<EvalMatch>>,
}

#[derive(Deserialize)]
struct EvalMatch {
    #[serde(default, deserialize_with = "flex::opt_string")]
    metric: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

const EVAL_MATCHES_KEPT: usize = 10;

fn legacy(p: Legacy) -> ApiResult<ParsedEvent> {
    let rule_id = p.rule_id.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        ApiError::invalid("ruleId: required (or an alerts list for unified alerting)")
    })?;
    let org_id = p
        .org_id
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "1".into());
    let alert_key = format!("grafana:{org_id}:{rule_id}");
    let state = p
        .state
        .ok_or_else(|| ApiError::invalid("state: required"))?
        .trim()
        .to_ascii_lowercase();
    let event_status = match state.as_str() {
        "alerting" => EventStatus::Warning,
        "no_data" => EventStatus::Critical,
        "ok" => EventStatus::Ok,
        "paused" | "pending" => {
            return Ok(ParsedEvent::Ignore {
                alert_key: Some(alert_key),
                reason: format!("grafana legacy state {state} carries no alert state"),
            })
        }
        _ => {
            return Err(ApiError::invalid(
                "state: must be alerting, ok, no_data, paused or pending",
            ))
        }
    };
    let title = p
        .rule_name
        .clone()
        .or(p.title)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("Grafana rule {rule_id}"));
    let mut labels = LabelBuilder::default();
    for (name, value) in [
        ("rule_id", Some(rule_id)),
        ("rule_name", p.rule_name),
        ("rule_url", p.rule_url),
        ("org_id", Some(org_id)),
        ("dashboard_id", p.dashboard_id),
        ("panel_id", p.panel_id),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            labels.insert(name, v);
        }
    }
    for (name, value) in p.tags.unwrap_or_default() {
        if let Some(text) = flex::scalar_to_string(&value) {
            labels.insert(&name, text);
        }
    }
    for m in p
        .eval_matches
        .unwrap_or_default()
        .into_iter()
        .take(EVAL_MATCHES_KEPT)
    {
        if let (Some(metric), Some(value)) =
            (m.metric, m.value.as_ref().and_then(flex::scalar_to_string))
        {
            labels.insert(&format!("eval_{metric}"), value);
        }
    }
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = p.message;
    event.labels = labels.into_vec();
    Ok(ParsedEvent::Apply(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::{BodyFormat, PushBody};
    use serde_json::json;

    fn parse(v: &Value) -> ApiResult<Parsed> {
        let text = v.to_string();
        let empty = Default::default();
        Grafana.parse(
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

    fn fixture(name: &str) -> Value {
        let path = format!("{}/fixtures/grafana/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn unified_fixture_is_alertmanager_shaped() {
        let p = parse(&fixture("unified-firing.json")).unwrap();
        assert_eq!(p.events.len(), 2);
        match &p.events[0] {
            ParsedEvent::Apply(e) => {
                assert_eq!(e.alert_key.as_deref(), Some("c6eadffa33fcdf37"));
                assert_eq!(e.event_status, EventStatus::Warning);
                assert!(e.labels.iter().any(|(k, v)| k == "team" && v == "blue"));
            }
            other => panic!("{other:?}"),
        }
        // `values` may be null.
        let mut doc = fixture("unified-firing.json");
        doc["alerts"][0]["values"] = Value::Null;
        assert!(parse(&doc).is_ok());
    }

    #[test]
    fn legacy_states() {
        let base = fixture("legacy-alerting.json");
        let status = |state: &str| {
            let mut doc = base.clone();
            doc["state"] = json!(state);
            parse(&doc).map(|p| p.events.into_iter().next().unwrap())
        };
        for (state, want) in [
            ("alerting", EventStatus::Warning),
            ("no_data", EventStatus::Critical),
            ("ok", EventStatus::Ok),
        ] {
            match status(state).unwrap() {
                ParsedEvent::Apply(e) => {
                    assert_eq!(e.event_status, want);
                    assert_eq!(e.alert_key.as_deref(), Some("grafana:1:1"));
                }
                other => panic!("{other:?}"),
            }
        }
        for state in ["paused", "pending"] {
            assert!(matches!(status(state).unwrap(), ParsedEvent::Ignore { .. }));
        }
        assert!(status("exploded")
            .unwrap_err()
            .message()
            .starts_with("state:"));
        // Old senders leave orgId out: the same key as org 1.
        let mut old = base.clone();
        old.as_object_mut().unwrap().remove("orgId");
        match parse(&old).unwrap().events.remove(0) {
            ParsedEvent::Apply(e) => assert_eq!(e.alert_key.as_deref(), Some("grafana:1:1")),
            other => panic!("{other:?}"),
        }
    }
}
