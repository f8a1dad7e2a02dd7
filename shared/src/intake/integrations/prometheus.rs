//! Prometheus Alertmanager `webhook_configs` (SPEC section 10): the webhook
//! body of Alertmanager ≥ 0.16 (`version` "4"), one event per `alerts[]`
//! element in payload order. Grafana's unified alerting posts the same shape
//! and reuses [`alertmanager_events`].
//!
//! Conventions this parser follows:
//!
//! - **Status.** An alert whose `status` is `resolved` (case-insensitive) is
//!   `Ok`; without an alert-level `status`, the top-level one decides.
//! - **Severity.** The first present label (names compared case-insensitively)
//!   of `severity`, `priority`, `level`; its value, case-insensitive:
//!   `critical` → Critical; `warning`, `warn` → Warning; `info`,
//!   `acknowledged`, `unknown`, `unk` → Info; any other value, or no such
//!   label, → Warning.
//! - **alert_key.** `fingerprint` (Alertmanager ≥ 0.19); before that there is
//!   none, and the key is a stable hash of the labels sorted by name.
//! - **Title.** `alertname`, then `": "` and the `summary` (else `message`)
//!   annotation when present. **Description**: `description`, else
//!   `message`, else `summary`. **Labels**: the alert's labels, then its
//!   annotations (an annotation whose name a label took is `annotation_<name>`).
//! - **Event time.** `startsAt`, or `endsAt` for a resolved alert; the zero
//!   time `0001-01-01T00:00:00Z` means absent (time of receipt).
//! - **truncatedAlerts.** A non-zero count (alerts Alertmanager left out
//!   because of `max_alerts`) is answered as `truncated_alerts`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::{parse_rfc3339, LabelBuilder};
use super::{decode, flex, ParseSettings, Parsed, Source, SourceRequest};
use crate::domain::event::{
    truncate_chars, EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS,
};
use crate::error::{ApiError, ApiResult};
use crate::hashing::stable_key;

/// The Alertmanager webhook body. Fields the parser does not use
/// (`version`, `groupKey`, `receiver`, `groupLabels`, ...) are not required.
#[derive(Deserialize)]
pub struct AlertmanagerPayload {
    #[serde(default, deserialize_with = "flex::opt_string")]
    pub status: Option<String>,
    #[serde(default)]
    pub alerts: Option<Vec<AlertmanagerAlert>>,
    #[serde(
        rename = "truncatedAlerts",
        default,
        deserialize_with = "flex::opt_i64"
    )]
    pub truncated_alerts: Option<i64>,
}

#[derive(Deserialize)]
pub struct AlertmanagerAlert {
    #[serde(default, deserialize_with = "flex::opt_string")]
    status: Option<String>,
    #[serde(default)]
    labels: Option<Map<String, Value>>,
    #[serde(default)]
    annotations: Option<Map<String, Value>>,
    #[serde(rename = "startsAt", default, deserialize_with = "flex::opt_string")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", default, deserialize_with = "flex::opt_string")]
    ends_at: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    fingerprint: Option<String>,
}

/// Prometheus Alertmanager's webhook.
pub struct Prometheus;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Prometheus,
    source: &Prometheus,
};

impl Source for Prometheus {
    fn parse(&self, req: &SourceRequest<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        let payload: AlertmanagerPayload = decode(&req.body)?;
        let truncated = truncated_count(payload.truncated_alerts)?;
        let events = alertmanager_events(payload, "prometheus", severity_from_labels)?;
        Ok(Parsed::many(events, truncated))
    }
}

pub fn truncated_count(raw: Option<i64>) -> ApiResult<u64> {
    match raw {
        None => Ok(0),
        Some(n) => u64::try_from(n)
            .map_err(|_| ApiError::invalid("truncatedAlerts: must be a non-negative integer")),
    }
}

/// One event per alert, in payload order; `source` seeds keys made without a fingerprint.
pub fn alertmanager_events(
    payload: AlertmanagerPayload,
    source: &str,
    severity: fn(&[(String, String)]) -> EventStatus,
) -> ApiResult<Vec<ParsedEvent>> {
    let alerts = payload.alerts.unwrap_or_default();
    if alerts.is_empty() {
        return Err(ApiError::invalid(
            "alerts: missing or empty; the payload must carry at least one alert",
        ));
    }
    alerts
        .into_iter()
        .enumerate()
        .map(|(i, alert)| {
            convert(i, alert, payload.status.as_deref(), source, severity).map(ParsedEvent::Apply)
        })
        .collect()
}

/// SPEC section 10's table for `prometheus` (and Grafana unified).
pub fn severity_from_labels(labels: &[(String, String)]) -> EventStatus {
    let first = ["severity", "priority", "level"].iter().find_map(|name| {
        labels
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    });
    match first.as_deref() {
        Some("critical") => EventStatus::Critical,
        Some("info" | "acknowledged" | "unknown" | "unk") => EventStatus::Info,
        _ => EventStatus::Warning,
    }
}

fn convert(
    i: usize,
    alert: AlertmanagerAlert,
    group_status: Option<&str>,
    source: &str,
    severity: fn(&[(String, String)]) -> EventStatus,
) -> ApiResult<IncomingEvent> {
    let labels = string_map(alert.labels, i, "labels")?;
    let annotations = string_map(alert.annotations, i, "annotations")?;
    let status = alert
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(group_status);
    let resolved = status.is_some_and(|s| s.trim().eq_ignore_ascii_case("resolved"));
    let event_status = if resolved {
        EventStatus::Ok
    } else {
        severity(&labels)
    };
    let alert_key = match alert.fingerprint.as_deref().map(str::trim) {
        Some(fp) if !fp.is_empty() => {
            if fp.chars().count() > ALERT_KEY_MAX_CHARS {
                return Err(ApiError::invalid(format!(
                    "alerts[{i}].fingerprint: at most {ALERT_KEY_MAX_CHARS} characters are allowed"
                )));
            }
            fp.to_string()
        }
        _ => {
            // Sorted by name already (string_map).
            let mut parts: Vec<&str> = vec![source];
            for (k, v) in &labels {
                parts.push(k);
                parts.push(v);
            }
            stable_key(&parts)
        }
    };
    let headline = get(&annotations, "summary").or_else(|| get(&annotations, "message"));
    let title = match (get(&labels, "alertname"), headline) {
        (Some(name), Some(text)) => format!("{name}: {text}"),
        (Some(name), None) => name.to_string(),
        (None, Some(text)) => text.to_string(),
        (None, None) => "Prometheus alert".to_string(),
    };
    let description = ["description", "message", "summary"]
        .iter()
        .find_map(|name| get(&annotations, name))
        .map(str::to_string);
    let event_time_ms = if resolved {
        time_ms(alert.ends_at.as_deref(), i, "endsAt")?
    } else {
        time_ms(alert.starts_at.as_deref(), i, "startsAt")?
    };
    let mut builder = LabelBuilder::default();
    for (name, value) in labels {
        builder.insert(&name, value);
    }
    for (name, value) in annotations {
        builder.insert_or_prefixed(&name, value, "annotation_");
    }
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = description;
    event.labels = builder.into_vec();
    event.event_time_ms = event_time_ms;
    Ok(event)
}

fn get<'a>(map: &'a [(String, String)], name: &str) -> Option<&'a str> {
    map.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A label or annotation object as (name, text) pairs sorted by name.
fn string_map(
    raw: Option<Map<String, Value>>,
    i: usize,
    field: &str,
) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, value) in raw.unwrap_or_default() {
        if value.is_null() {
            continue;
        }
        let text = flex::scalar_to_string(&value).ok_or_else(|| {
            ApiError::invalid(format!(
                "alerts[{i}].{field}.{}: must be a string, got {}",
                truncate_chars(&name, 64),
                flex::kind(&value)
            ))
        })?;
        out.push((name, text));
    }
    out.sort();
    Ok(out)
}

fn time_ms(raw: Option<&str>, i: usize, field: &str) -> ApiResult<Option<i64>> {
    let Some(text) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ms = parse_rfc3339(text).ok_or_else(|| {
        ApiError::invalid(format!(
            "alerts[{i}].{field}: expected an RFC 3339 time such as 2026-11-20T08:20:31.412Z"
        ))
    })?;
    // The zero time (year 1) and anything not after 1970 mean "not set".
    Ok((ms > 0).then_some(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::{BodyFormat, PushBody};
    use serde_json::json;

    const FIRING: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/prometheus/firing.json"
    ));

    fn parsed(v: &Value) -> ApiResult<Parsed> {
        let text = v.to_string();
        let empty = Default::default();
        Prometheus.parse(
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

    fn events(v: &Value) -> Vec<IncomingEvent> {
        parsed(v)
            .unwrap()
            .events
            .into_iter()
            .map(|e| match e {
                ParsedEvent::Apply(e) => e,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn fixture_gives_one_event_per_alert_with_truncation_reported() {
        let doc: Value = serde_json::from_str(FIRING).unwrap();
        let p = parsed(&doc).unwrap();
        assert_eq!(
            p.reply,
            super::super::Reply::Many {
                truncated_alerts: 0
            }
        );
        let evs = events(&doc);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].event_status, EventStatus::Critical);
        assert_eq!(evs[1].event_status, EventStatus::Warning);
        assert!(evs[0].alert_key.as_deref().is_some_and(|k| !k.is_empty()));
        let mut truncated = doc.clone();
        truncated["truncatedAlerts"] = json!(3);
        assert_eq!(
            parsed(&truncated).unwrap().reply,
            super::super::Reply::Many {
                truncated_alerts: 3
            }
        );
        truncated["truncatedAlerts"] = json!(-1);
        assert!(parsed(&truncated).is_err());
    }

    #[test]
    fn severity_table() {
        for (labels, status) in [
            (json!({"severity": "critical"}), EventStatus::Critical),
            (json!({"severity": "CRITICAL"}), EventStatus::Critical),
            (json!({"severity": "warn"}), EventStatus::Warning),
            (json!({"severity": "warning"}), EventStatus::Warning),
            (json!({"severity": "info"}), EventStatus::Info),
            (json!({"severity": "acknowledged"}), EventStatus::Info),
            (json!({"severity": "unknown"}), EventStatus::Info),
            (json!({"severity": "unk"}), EventStatus::Info),
            (json!({"severity": "page"}), EventStatus::Warning),
            (json!({}), EventStatus::Warning),
            (json!({"priority": "critical"}), EventStatus::Critical),
            (json!({"level": "info"}), EventStatus::Info),
            (json!({"Severity": "critical"}), EventStatus::Critical),
            // The first present label decides, even when its value is unknown.
            (
                json!({"severity": "p1", "priority": "critical"}),
                EventStatus::Warning,
            ),
        ] {
            let evs = events(&json!({"alerts": [{"labels": labels}]}));
            assert_eq!(evs[0].event_status, status, "{labels}");
        }
        let evs = events(
            &json!({"status": "resolved", "alerts": [{"labels": {"severity": "critical"}}]}),
        );
        assert_eq!(evs[0].event_status, EventStatus::Ok);
    }

    #[test]
    fn without_fingerprint_the_key_hashes_sorted_labels() {
        // Alertmanager before 0.19 sends no fingerprint.
        let a = events(&json!({"alerts": [{"labels": {"a": "1", "b": "2"}}]}));
        let b = events(&json!({"alerts": [{"labels": {"b": "2", "a": "1"}}]}));
        let c = events(&json!({"alerts": [{"labels": {"a": "1", "b": "3"}}]}));
        assert_eq!(a[0].alert_key, b[0].alert_key);
        assert_ne!(a[0].alert_key, c[0].alert_key);
    }

    #[test]
    fn zero_end_time_means_absent() {
        let evs =
            events(&json!({"alerts": [{"status": "resolved", "endsAt": "0001-01-01T00:00:00Z"}]}));
        assert_eq!(evs[0].event_time_ms, None);
        assert!(parsed(&json!({"alerts": [{"startsAt": "yesterday"}]}))
            .unwrap_err()
            .message()
            .contains("alerts[0].startsAt"));
    }
}
