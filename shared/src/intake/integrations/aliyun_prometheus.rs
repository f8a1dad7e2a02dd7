//! Alibaba Cloud Monitor Prometheus (SPEC section 4.2): the custom webhook
//! posts an Alertmanager-shaped body; one event per element of `alerts[]`,
//! in payload order.
//!
//! Conventions this parser follows:
//!
//! - **Status.** An alert whose `status` is `resolved` (case-insensitive) is
//!   `Ok`; without an alert-level `status` the top-level `status` decides.
//!   Anything else counts as firing, with the severity (case-insensitive) of
//!   the `severity` label, else of `_aliyun_arms_alert_level`: `critical`,
//!   `error`, `p1` → Critical; `warning`, `p2`, `p3` → Warning; `normal`,
//!   `info`, `p4` → Info. A value outside this table counts as absent (so an
//!   unknown `severity` falls through to `_aliyun_arms_alert_level`); when
//!   neither gives a severity, Warning.
//! - **alert_key.** `fingerprint`; without it, [`stable_key`] over the alert's
//!   labels sorted by name (values as text), so the same labels in any order
//!   give the same key.
//! - **Title.** The `alertname` label, then `": "` and the `summary`
//!   annotation, or else the `message` annotation, when present
//!   (`"PodCrashLooping: Pod payments/... restarted 6 times"`). Without
//!   `alertname`, the summary/message alone, or `"Prometheus alert"`.
//! - **Labels.** The alert's labels under their (normalised) names, then its
//!   annotations. Annotation names that are not valid label names are
//!   normalised, not dropped; an annotation whose name is taken by a label is
//!   stored as `annotation_<name>` (the label keeps the plain name). Label and
//!   annotation values may be strings, numbers or booleans; `null` is skipped.
//! - **Description.** The `description` annotation, else `message`, else `summary`.
//! - **Event time.** `startsAt`; for resolved alerts `endsAt`. RFC 3339 with
//!   any fraction and `Z` or `±hh:mm`. Alertmanager's zero time
//!   (`0001-01-01T00:00:00Z`), and any time not after 1970, means absent (the
//!   time of receipt); a resolved alert without `endsAt` uses receipt time too.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::{parse_rfc3339, LabelBuilder};
use super::{decode, flex, ParseSettings, PushBody};
use crate::domain::event::{
    truncate_chars, EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS,
};
use crate::error::{ApiError, ApiResult};
use crate::hashing::stable_key;

#[derive(Deserialize)]
struct Payload {
    #[serde(default, deserialize_with = "flex::opt_string")]
    status: Option<String>,
    #[serde(default)]
    alerts: Option<Vec<Alert>>,
}

#[derive(Deserialize)]
struct Alert {
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

pub fn parse(body: &PushBody<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Vec<ParsedEvent>> {
    let payload: Payload = decode(body)?;
    let alerts = payload.alerts.unwrap_or_default();
    if alerts.is_empty() {
        return Err(ApiError::invalid(
            "alerts: missing or empty; the payload must carry at least one alert",
        ));
    }
    alerts
        .into_iter()
        .enumerate()
        .map(|(i, alert)| convert(i, alert, payload.status.as_deref()).map(ParsedEvent::Apply))
        .collect()
}

fn convert(i: usize, alert: Alert, group_status: Option<&str>) -> ApiResult<IncomingEvent> {
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
        ["severity", "_aliyun_arms_alert_level"]
            .iter()
            .find_map(|name| get(&labels, name).and_then(severity))
            .unwrap_or(EventStatus::Warning)
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
            let mut sorted: Vec<&(String, String)> = labels.iter().collect();
            sorted.sort();
            let mut parts: Vec<&str> = vec!["aliyun-prometheus"];
            for (k, v) in sorted {
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

/// A non-empty (after trimming) value of `name`.
fn get<'a>(map: &'a [(String, String)], name: &str) -> Option<&'a str> {
    map.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn severity(raw: &str) -> Option<EventStatus> {
    match raw.to_ascii_lowercase().as_str() {
        "critical" | "error" | "p1" => Some(EventStatus::Critical),
        "warning" | "p2" | "p3" => Some(EventStatus::Warning),
        "normal" | "info" | "p4" => Some(EventStatus::Info),
        _ => None,
    }
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
    // Alertmanager's zero time (year 1) and anything not after 1970 mean "not set".
    Ok((ms > 0).then_some(ms))
}

/// Alibaba Cloud Prometheus's Alertmanager-shaped webhook.
pub struct AliyunPrometheus;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::AliyunPrometheus,
    source: &AliyunPrometheus,
};

impl super::Source for AliyunPrometheus {
    fn parse(
        &self,
        req: &super::SourceRequest<'_>,
        settings: &ParseSettings<'_>,
    ) -> ApiResult<super::Parsed> {
        parse(&req.body, settings).map(|events| super::Parsed::many(events, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::TitleSource;
    use crate::intake::integrations::BodyFormat;
    use serde_json::json;

    const FIRING: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aliyun-prometheus/firing.json"
    ));
    const RESOLVED: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aliyun-prometheus/resolved.json"
    ));

    fn parse_json(json: &str) -> ApiResult<Vec<ParsedEvent>> {
        parse(
            &PushBody {
                bytes: json.as_bytes(),
                format: BodyFormat::Json,
            },
            &ParseSettings::default(),
        )
    }

    fn events(v: &Value) -> Vec<IncomingEvent> {
        parse_json(&v.to_string())
            .unwrap()
            .into_iter()
            .map(|e| match e {
                ParsedEvent::Apply(e) => e,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn one(alert: Value) -> IncomingEvent {
        let mut evs = events(&json!({ "alerts": [alert] }));
        assert_eq!(evs.len(), 1);
        evs.remove(0)
    }

    fn err_message(v: &Value) -> String {
        let err = parse_json(&v.to_string()).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        err.message().to_string()
    }

    fn label<'a>(ev: &'a IncomingEvent, name: &str) -> Option<&'a str> {
        ev.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn title(ev: &IncomingEvent) -> &str {
        match &ev.title {
            TitleSource::Plain(t) => t,
            TitleSource::Rule(r) => panic!("vendor titles are plain, got rule {r}"),
        }
    }

    #[test]
    fn fixture_firing_gives_one_event_per_alert_in_order() {
        let evs = events(&serde_json::from_str(FIRING).unwrap());
        assert_eq!(evs.len(), 2);
        let (a, b) = (&evs[0], &evs[1]);
        assert_eq!(a.alert_key.as_deref(), Some("3f9a1c2b7d4e8f01"));
        assert_eq!(b.alert_key.as_deref(), Some("77c0e5a9b1d2f3e4"));
        assert_eq!(a.event_status, EventStatus::Critical);
        assert_eq!(b.event_status, EventStatus::Critical); // severity "error"
        assert_eq!(
            title(a),
            "PodCrashLooping: Pod payments/ledger-7d9f6c-x2k4q restarted 6 times in 10 minutes"
        );
        assert_eq!(
            a.description.as_deref(),
            Some("Pod payments/ledger-7d9f6c-x2k4q restarted 6 times in 10 minutes")
        );
        // 2026-11-20T08:20:31.412Z
        assert_eq!(a.event_time_ms, Some(1_795_162_831_412));
        assert_eq!(b.event_time_ms, Some(1_795_162_862_090));
        assert_eq!(label(a, "namespace"), Some("payments"));
        assert_eq!(label(a, "_aliyun_arms_alert_rule_id"), Some("10342"));
        assert_eq!(label(a, "value"), Some("6"));
        assert_eq!(a.labels.len(), 9);
        assert_eq!(a.origin, crate::domain::event::Origin::Vendor);
    }

    #[test]
    fn fixture_resolved_uses_ends_at() {
        let evs = events(&serde_json::from_str(RESOLVED).unwrap());
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_status, EventStatus::Ok);
        assert_eq!(evs[0].alert_key.as_deref(), Some("3f9a1c2b7d4e8f01"));
        // 2026-11-20T08:47:31.412Z
        assert_eq!(evs[0].event_time_ms, Some(1_795_164_451_412));
    }

    #[test]
    fn each_severity_row() {
        for (value, status) in [
            ("critical", EventStatus::Critical),
            ("CRITICAL", EventStatus::Critical),
            ("error", EventStatus::Critical),
            ("P1", EventStatus::Critical),
            ("p1", EventStatus::Critical),
            ("warning", EventStatus::Warning),
            ("Warning", EventStatus::Warning),
            ("P2", EventStatus::Warning),
            ("p3", EventStatus::Warning),
            ("normal", EventStatus::Info),
            ("INFO", EventStatus::Info),
            ("P4", EventStatus::Info),
            ("bogus", EventStatus::Warning),
            ("", EventStatus::Warning),
        ] {
            let ev = one(json!({"labels": {"alertname": "A", "severity": value}}));
            assert_eq!(ev.event_status, status, "severity={value}");
            let ev = one(json!({"labels": {"alertname": "A", "_aliyun_arms_alert_level": value}}));
            assert_eq!(ev.event_status, status, "arms level={value}");
        }
        // No severity at all: Warning.
        assert_eq!(
            one(json!({"labels": {"alertname": "A"}})).event_status,
            EventStatus::Warning
        );
        // The severity label wins over the ARMS level; an unknown one falls through.
        let ev = one(json!({"labels": {"severity": "info", "_aliyun_arms_alert_level": "P1"}}));
        assert_eq!(ev.event_status, EventStatus::Info);
        let ev = one(json!({"labels": {"severity": "high", "_aliyun_arms_alert_level": "P1"}}));
        assert_eq!(ev.event_status, EventStatus::Critical);
    }

    #[test]
    fn resolved_status_from_alert_or_group() {
        let ev = one(json!({"status": "RESOLVED", "labels": {"severity": "critical"}}));
        assert_eq!(ev.event_status, EventStatus::Ok);
        // The alert's own status wins over the group status.
        let evs = events(&json!({"status": "resolved", "alerts": [
            {"status": "firing", "labels": {"severity": "critical"}},
            {"labels": {"severity": "critical"}, "endsAt": "2026-11-20T08:47:31+08:00"}
        ]}));
        assert_eq!(evs[0].event_status, EventStatus::Critical);
        assert_eq!(evs[1].event_status, EventStatus::Ok);
        assert_eq!(evs[1].event_time_ms, Some(1_795_135_651_000));
        // Resolved without endsAt, or with the zero time: receipt time.
        let ev = one(
            json!({"status": "resolved", "startsAt": "2026-11-20T08:20:31Z", "endsAt": "0001-01-01T00:00:00Z"}),
        );
        assert_eq!(ev.event_time_ms, None);
        let ev = one(json!({"status": "resolved", "startsAt": "2026-11-20T08:20:31Z"}));
        assert_eq!(ev.event_time_ms, None);
    }

    #[test]
    fn zero_start_time_means_absent() {
        let ev = one(json!({"startsAt": "0001-01-01T00:00:00Z"}));
        assert_eq!(ev.event_time_ms, None);
        let ev = one(json!({"startsAt": "1969-12-31T23:59:59Z"}));
        assert_eq!(ev.event_time_ms, None);
    }

    #[test]
    fn key_without_fingerprint_is_a_stable_hash_of_sorted_labels() {
        let a = r#"{"alerts":[{"labels":{"alertname":"A","pod":"p1","port":8080},"annotations":{"summary":"x"}}]}"#;
        let b = r#"{"extra":1,"alerts":[{"annotations":{"summary":"y"},"labels":{"port":"8080","pod":"p1","alertname":"A"},"fingerprint":""}]}"#;
        let ka = events(&serde_json::from_str(a).unwrap())[0]
            .alert_key
            .clone()
            .unwrap();
        let kb = events(&serde_json::from_str(b).unwrap())[0]
            .alert_key
            .clone()
            .unwrap();
        assert_eq!(ka, kb);
        assert_eq!(ka.len(), 32);
        let c = a.replace("p1", "p2");
        assert_ne!(
            ka,
            events(&serde_json::from_str(&c).unwrap())[0]
                .alert_key
                .clone()
                .unwrap()
        );
        // Fingerprints given as numbers are accepted as text.
        assert_eq!(
            one(json!({"fingerprint": 12345})).alert_key.as_deref(),
            Some("12345")
        );
    }

    #[test]
    fn title_and_description_fallbacks() {
        let ev = one(
            json!({"labels": {"alertname": "A"}, "annotations": {"summary": "S", "message": "M"}}),
        );
        assert_eq!(title(&ev), "A: S");
        assert_eq!(ev.description.as_deref(), Some("M"));
        let ev = one(
            json!({"labels": {"alertname": "A"}, "annotations": {"description": "D", "message": "M"}}),
        );
        assert_eq!(title(&ev), "A: M");
        assert_eq!(ev.description.as_deref(), Some("D"));
        let ev = one(json!({"labels": {"alertname": "A"}}));
        assert_eq!(title(&ev), "A");
        assert_eq!(ev.description, None);
        let ev = one(json!({"annotations": {"summary": "only summary"}}));
        assert_eq!(title(&ev), "only summary");
        assert_eq!(ev.description.as_deref(), Some("only summary"));
        let ev = one(json!({}));
        assert_eq!(title(&ev), "Prometheus alert");
        assert!(ev.alert_key.is_some());
        assert!(ev.labels.is_empty());
    }

    #[test]
    fn annotations_are_normalised_and_never_shadow_labels() {
        let ev = one(json!({
            "labels": {"alertname": "A", "value": "label-wins"},
            "annotations": {"value": "7", "runbook.url": "https://x", "1st": "a", "描述": "b", "n": null}
        }));
        assert_eq!(label(&ev, "value"), Some("label-wins"));
        assert_eq!(label(&ev, "annotation_value"), Some("7"));
        assert_eq!(label(&ev, "runbook_url"), Some("https://x"));
        assert_eq!(label(&ev, "_1st"), Some("a"));
        assert_eq!(label(&ev, "__"), Some("b"));
        assert_eq!(label(&ev, "n"), None);
        assert!(ev
            .labels
            .iter()
            .all(|(k, _)| crate::domain::event::is_valid_label_key(k)));
    }

    #[test]
    fn empty_or_missing_alerts_name_alerts() {
        for v in [
            json!({}),
            json!({"alerts": []}),
            json!({"alerts": null}),
            json!({"status": "firing"}),
        ] {
            assert!(err_message(&v).starts_with("alerts:"), "{v}");
        }
        assert!(err_message(&json!({"alerts": {}})).starts_with("alerts:"));
        for body in ["[]", "null", "1", "{", ""] {
            assert_eq!(parse_json(body).unwrap_err().code(), "InvalidParameter");
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (json!({"alerts": [1]}), "alerts[0]:"),
            (json!({"alerts": [{}, {"labels": []}]}), "alerts[1].labels:"),
            (
                json!({"alerts": [{"labels": {"a": {"b": 1}}}]}),
                "alerts[0].labels.a:",
            ),
            (
                json!({"alerts": [{"annotations": {"a": [1]}}]}),
                "alerts[0].annotations.a:",
            ),
            (
                json!({"alerts": [{"startsAt": "yesterday"}]}),
                "alerts[0].startsAt:",
            ),
            (
                json!({"alerts": [{"startsAt": 1763626831}]}),
                "alerts[0].startsAt:",
            ),
            (
                json!({"alerts": [{"status": "resolved", "endsAt": "2026-11-20"}]}),
                "alerts[0].endsAt:",
            ),
            (
                json!({"alerts": [{"fingerprint": {"x": 1}}]}),
                "alerts[0].fingerprint:",
            ),
            (
                json!({"alerts": [{"fingerprint": "f".repeat(256)}]}),
                "alerts[0].fingerprint:",
            ),
            (json!({"status": [], "alerts": [{}]}), "status:"),
        ];
        for (v, prefix) in cases {
            let msg = err_message(&v);
            assert!(msg.starts_with(prefix), "{v}: {msg}");
        }
        // endsAt of a firing alert is not read, so garbage there refuses nothing.
        assert!(parse_json(&json!({"alerts": [{"endsAt": "garbage"}]}).to_string()).is_ok());
    }

    #[test]
    fn optional_fields_unicode_numbers_and_huge_values() {
        let ev = one(json!({
            "labels": {"alertname": "磁盘告警 🚨", "replicas": 3, "up": true},
            "annotations": {"summary": "x".repeat(100_000)},
            "startsAt": "2026-11-20T16:20:31.412345+08:00",
            "generatorURL": null,
            "unknown": {"deep": [1, 2]}
        }));
        assert!(title(&ev).starts_with("磁盘告警 🚨: xxx"));
        assert_eq!(label(&ev, "replicas"), Some("3"));
        assert_eq!(label(&ev, "up"), Some("true"));
        assert_eq!(ev.event_time_ms, Some(1_795_162_831_412));
        // No version, groupKey, generatorURL, receiver or commonLabels needed.
        assert_eq!(events(&json!({"alerts": [{}]})).len(), 1);
    }
}
