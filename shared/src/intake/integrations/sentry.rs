//! Sentry internal integration webhooks (SPEC section 10), told apart by the
//! `Sentry-Hook-Resource` header.
//!
//! - **Signature.** When the integration has a `client_secret`,
//!   `Sentry-Hook-Signature` must be the HMAC-SHA256 hex of the raw body
//!   keyed by it (checked in constant time, before anything else), else
//!   `Unauthorized`.
//! - **metric_alert**: `action` `critical` → Critical, `warning` → Warning,
//!   `resolved` → Ok; alert_key `sentry:metric_alert:<data.metric_alert.id>`
//!   (the metric alert incident); title the alert rule's name (else
//!   `description_title`); description `description_text`.
//! - **event_alert**: `triggered` → Warning; alert_key
//!   `sentry:issue:<data.event.issue_id>`; title `data.event.title`.
//! - **issue**: `resolved` → Ok, `unresolved` (a regression) → Warning, with
//!   alert_key `sentry:issue:<data.issue.id>` (so an issue alert and its
//!   issue's resolution meet); other actions (`created`, `assigned`,
//!   `archived`, `ignored`) → `ignored`.
//! - Other resources (`installation`, `comment`, `error`, ...) → `ignored`.
//! - Labels: project, level, environment, platform, culprit, triggered rule,
//!   web URL, and the event's tags (`[[key, value], ...]`) when present.
//!   Event time: the time of receipt (Sentry's timestamps describe the issue,
//!   not the notification, and would make a regression look stale).

use ring::hmac;
use serde_json::Value;

use super::common::LabelBuilder;
use super::{decode, flex, ParseSettings, Parsed, Source, SourceRequest};
use crate::domain::event::{EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS};
use crate::error::{ApiError, ApiResult};

pub struct Sentry;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Sentry,
    source: &Sentry,
};

impl Source for Sentry {
    fn parse(&self, req: &SourceRequest<'_>, settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        if let Some(secret) = settings.client_secret {
            verify_signature(req.header("sentry-hook-signature"), req.body.bytes, secret)?;
        }
        let resource = req
            .header("sentry-hook-resource")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "Sentry-Hook-Resource: header required (metric_alert, event_alert or issue)",
                )
            })?
            .to_string();
        let body: Value = decode(&req.body)?;
        let action = body
            .get("action")
            .and_then(flex::scalar_to_string)
            .unwrap_or_default();
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let event = match resource.as_str() {
            "metric_alert" => metric_alert(&action, &data)?,
            "event_alert" => event_alert(&action, &data)?,
            "issue" => issue(&action, &data)?,
            _ => ParsedEvent::Ignore {
                alert_key: None,
                reason: "sentry resource carries no alert".into(),
            },
        };
        Ok(Parsed::single(vec![event]))
    }
}

/// The signature header against HMAC-SHA256(secret, body), in constant time.
pub fn verify_signature(given: Option<&str>, body: &[u8], secret: &str) -> ApiResult<()> {
    let given = given
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "Sentry-Hook-Signature: missing; this integration requires Sentry's signature"
                    .into(),
            )
        })?;
    let bad = || {
        ApiError::Unauthorized(
            "Sentry-Hook-Signature: does not match HMAC-SHA256 of the body with the client secret"
                .into(),
        )
    };
    let tag = decode_hex(given).ok_or_else(bad)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, &tag).map_err(|_| bad())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(flex::scalar_to_string)
        .filter(|s| !s.trim().is_empty())
}

fn key(prefix: &str, id: Option<String>, field: &str) -> ApiResult<String> {
    let id = id.ok_or_else(|| ApiError::invalid(format!("{field}: required")))?;
    let key = format!("{prefix}{id}");
    if key.chars().count() > ALERT_KEY_MAX_CHARS {
        return Err(ApiError::invalid(format!(
            "{field}: too long for an alert key"
        )));
    }
    Ok(key)
}

fn labels_of(data: &Value, object: &str) -> LabelBuilder {
    let mut labels = LabelBuilder::default();
    for (name, pointer) in [
        ("project", format!("/{object}/project/slug")),
        ("project", format!("/{object}/project")),
        ("project_id", format!("/{object}/project_id")),
        ("level", format!("/{object}/level")),
        ("environment", format!("/{object}/environment")),
        ("platform", format!("/{object}/platform")),
        ("culprit", format!("/{object}/culprit")),
        ("short_id", format!("/{object}/shortId")),
        ("web_url", format!("/{object}/web_url")),
        ("triggered_rule", "/triggered_rule".to_string()),
    ] {
        if let Some(v) = text(data, &pointer) {
            labels.insert(name, v);
        }
    }
    if let Some(Value::Array(tags)) = data.pointer(&format!("/{object}/tags")) {
        for tag in tags {
            if let (Some(k), Some(v)) = (
                tag.get(0).and_then(flex::scalar_to_string),
                tag.get(1).and_then(flex::scalar_to_string),
            ) {
                labels.insert_or_prefixed(&k, v, "tag_");
            }
        }
    }
    labels
}

fn metric_alert(action: &str, data: &Value) -> ApiResult<ParsedEvent> {
    let event_status = match action {
        "critical" => EventStatus::Critical,
        "warning" => EventStatus::Warning,
        "resolved" => EventStatus::Ok,
        _ => {
            return Err(ApiError::invalid(
                "action: a metric_alert is critical, warning or resolved",
            ))
        }
    };
    let alert_key = key(
        "sentry:metric_alert:",
        text(data, "/metric_alert/id"),
        "data.metric_alert.id",
    )?;
    let title = text(data, "/metric_alert/alert_rule/name")
        .or_else(|| text(data, "/description_title"))
        .or_else(|| text(data, "/metric_alert/title"))
        .unwrap_or_else(|| "Sentry metric alert".into());
    let mut labels = LabelBuilder::default();
    for (name, pointer) in [
        ("alert_rule_id", "/metric_alert/alert_rule/id"),
        ("aggregate", "/metric_alert/alert_rule/aggregate"),
        ("query", "/metric_alert/alert_rule/query"),
        ("identifier", "/metric_alert/identifier"),
        ("web_url", "/web_url"),
    ] {
        if let Some(v) = text(data, pointer) {
            labels.insert(name, v);
        }
    }
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = text(data, "/description_text");
    event.labels = labels.into_vec();
    Ok(ParsedEvent::Apply(event))
}

fn event_alert(action: &str, data: &Value) -> ApiResult<ParsedEvent> {
    if action != "triggered" {
        return Ok(ParsedEvent::Ignore {
            alert_key: None,
            reason: "sentry event_alert action other than triggered".into(),
        });
    }
    let alert_key = key(
        "sentry:issue:",
        text(data, "/event/issue_id"),
        "data.event.issue_id",
    )?;
    let title = text(data, "/event/title").unwrap_or_else(|| "Sentry issue alert".into());
    let mut event = IncomingEvent::vendor(title, EventStatus::Warning);
    event.alert_key = Some(alert_key);
    event.description = text(data, "/event/culprit").or_else(|| text(data, "/event/message"));
    event.labels = labels_of(data, "event").into_vec();
    Ok(ParsedEvent::Apply(event))
}

fn issue(action: &str, data: &Value) -> ApiResult<ParsedEvent> {
    let alert_key = key("sentry:issue:", text(data, "/issue/id"), "data.issue.id")?;
    let event_status = match action {
        "resolved" => EventStatus::Ok,
        "unresolved" => EventStatus::Warning,
        _ => {
            return Ok(ParsedEvent::Ignore {
                alert_key: Some(alert_key),
                reason: "sentry issue action carries no alert state".into(),
            })
        }
    };
    let title = text(data, "/issue/title").unwrap_or_else(|| "Sentry issue".into());
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = text(data, "/issue/culprit");
    event.labels = labels_of(data, "issue").into_vec();
    Ok(ParsedEvent::Apply(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::hex;
    use crate::intake::integrations::{BodyFormat, PushBody};
    use std::collections::HashMap;

    fn run(
        resource: &str,
        body: &str,
        secret: Option<&str>,
        sig: Option<&str>,
    ) -> ApiResult<Parsed> {
        let mut headers = HashMap::new();
        headers.insert("sentry-hook-resource".to_string(), resource.to_string());
        if let Some(s) = sig {
            headers.insert("sentry-hook-signature".to_string(), s.to_string());
        }
        let query = HashMap::new();
        Sentry.parse(
            &SourceRequest {
                method: "POST",
                headers: &headers,
                query: &query,
                body: PushBody {
                    bytes: body.as_bytes(),
                    format: BodyFormat::Json,
                },
            },
            &ParseSettings {
                client_secret: secret,
                ..Default::default()
            },
        )
    }

    fn sign(secret: &str, body: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hex(hmac::sign(&key, body.as_bytes()).as_ref())
    }

    fn only(p: Parsed) -> IncomingEvent {
        match p.events.into_iter().next() {
            Some(ParsedEvent::Apply(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn metric_alert_actions() {
        for (action, want) in [
            ("critical", EventStatus::Critical),
            ("warning", EventStatus::Warning),
            ("resolved", EventStatus::Ok),
        ] {
            let body = format!(
                r#"{{"action":"{action}","data":{{"metric_alert":{{"id":"7","alert_rule":{{"name":"Too many errors"}}}}}}}}"#
            );
            let ev = only(run("metric_alert", &body, None, None).unwrap());
            assert_eq!(ev.event_status, want);
            assert_eq!(ev.alert_key.as_deref(), Some("sentry:metric_alert:7"));
        }
    }

    #[test]
    fn issue_actions_and_other_resources() {
        let body = |a: &str| {
            format!(
                r#"{{"action":"{a}","data":{{"issue":{{"id":"42","title":"ZeroDivisionError"}}}}}}"#
            )
        };
        assert_eq!(
            only(run("issue", &body("resolved"), None, None).unwrap()).event_status,
            EventStatus::Ok
        );
        assert_eq!(
            only(run("issue", &body("unresolved"), None, None).unwrap()).event_status,
            EventStatus::Warning
        );
        for ignored in [
            run("issue", &body("assigned"), None, None),
            run("installation", "{}", None, None),
        ] {
            assert!(matches!(
                ignored.unwrap().events[0],
                ParsedEvent::Ignore { .. }
            ));
        }
        let err = run("", "{}", None, None).unwrap_err();
        assert!(err.message().starts_with("Sentry-Hook-Resource"));
    }

    #[test]
    fn signatures() {
        let body = r#"{"action":"created","data":{"issue":{"id":"1"}}}"#;
        assert!(run("issue", body, Some("s3cret"), Some(&sign("s3cret", body))).is_ok());
        for sig in [
            None,
            Some("00"),
            Some("zz"),
            Some(sign("other", body).as_str()),
        ] {
            let err = run("issue", body, Some("s3cret"), sig).unwrap_err();
            assert_eq!(err.code(), "Unauthorized");
            assert!(!err.message().contains("s3cret"));
        }
        // A signature over another body fails too.
        let sig = sign("s3cret", body);
        assert!(run("issue", &body.replace('1', "2"), Some("s3cret"), Some(&sig)).is_err());
    }
}
