//! The standard alert event (SPEC section 3), posted as is by any webhook sender.
//! `title` stands in for `title_rule` (Uptime Kuma's built-in Flashduty
//! notifier sends `title`); when both are sent, `title_rule` wins.

use serde::Deserialize;

use super::{decode, flex, ParseSettings, PushBody};
use crate::domain::event::{
    event_time_to_ms, EventStatus, IncomingEvent, Origin, ParsedEvent, TitleSource,
};
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
struct StandardPayload {
    #[serde(default, deserialize_with = "flex::opt_string")]
    title_rule: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    title: Option<String>,
    event_status: String,
    #[serde(default, deserialize_with = "flex::opt_string")]
    alert_key: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_scalar_map")]
    labels: Option<Vec<(String, String)>>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    event_time: Option<i64>,
}

pub fn parse(body: &PushBody<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Vec<ParsedEvent>> {
    let payload: StandardPayload = decode(body)?;
    let title_rule = payload
        .title_rule
        .or(payload.title)
        .ok_or_else(|| ApiError::invalid("title_rule: required (or title, its alias)"))?;
    let event_status = EventStatus::parse(&payload.event_status).ok_or_else(|| {
        ApiError::invalid(
            "event_status: must be exactly one of Critical, Warning, Info, Ok (case-sensitive)",
        )
    })?;
    let labels = payload.labels.unwrap_or_default();
    let event_time_ms = payload.event_time.map(event_time_to_ms).transpose()?;
    Ok(vec![ParsedEvent::Apply(IncomingEvent {
        origin: Origin::Standard,
        title: TitleSource::Rule(title_rule),
        event_status,
        alert_key: payload.alert_key,
        description: payload.description,
        labels,
        event_time_ms,
    })])
}

/// The standard event, posted as is (also Uptime Kuma's Flashduty notifier).
pub struct Standard;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Standard,
    source: &Standard,
};

impl super::Source for Standard {
    fn parse(
        &self,
        req: &super::SourceRequest<'_>,
        settings: &ParseSettings<'_>,
    ) -> ApiResult<super::Parsed> {
        parse(&req.body, settings).map(super::Parsed::single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::BodyFormat;

    fn parse_json(json: &str) -> ApiResult<Vec<ParsedEvent>> {
        parse(
            &PushBody {
                bytes: json.as_bytes(),
                format: BodyFormat::Json,
            },
            &ParseSettings::default(),
        )
    }

    fn only(events: Vec<ParsedEvent>) -> IncomingEvent {
        match events.into_iter().next() {
            Some(ParsedEvent::Apply(e)) => e,
            other => panic!("expected one event, got {other:?}"),
        }
    }

    #[test]
    fn fixture_firing_parses() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/standard/firing.json"
        ));
        let ev = only(parse_json(raw).unwrap());
        assert_eq!(ev.event_status, EventStatus::Warning);
        assert_eq!(ev.alert_key.as_deref(), Some("web-01-latency"));
        assert_eq!(ev.labels.len(), 4);
    }

    #[test]
    fn fixture_recovery_parses() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/standard/recovery.json"
        ));
        assert_eq!(only(parse_json(raw).unwrap()).event_status, EventStatus::Ok);
    }

    #[test]
    fn missing_title_rule_names_the_field() {
        let err = parse_json(r#"{"event_status":"Info"}"#).unwrap_err();
        assert!(err.message().contains("title_rule"), "{}", err.message());
    }

    #[test]
    fn lowercase_status_is_refused() {
        let err = parse_json(r#"{"title_rule":"t","event_status":"critical"}"#).unwrap_err();
        assert!(err.message().contains("event_status"));
    }

    #[test]
    fn nested_label_values_are_refused_and_scalars_accepted() {
        let err = parse_json(r#"{"title_rule":"t","event_status":"Info","labels":{"a":{"b":1}}}"#)
            .unwrap_err();
        assert!(err.message().contains("labels.a"));
        let ev = only(
            parse_json(r#"{"title_rule":"t","event_status":"Info","labels":{"a":5,"b":true}}"#)
                .unwrap(),
        );
        assert_eq!(
            ev.labels,
            vec![
                ("a".to_string(), "5".to_string()),
                ("b".to_string(), "true".to_string())
            ]
        );
    }

    #[test]
    fn non_object_bodies_are_refused() {
        for body in ["[]", "\"x\"", "12", "not json", ""] {
            assert_eq!(
                parse_json(body).unwrap_err().code(),
                "InvalidParameter",
                "{body}"
            );
        }
    }

    #[test]
    fn event_time_in_seconds_and_ms_and_strings() {
        let ev = only(
            parse_json(r#"{"title_rule":"t","event_status":"Info","event_time":1763626800}"#)
                .unwrap(),
        );
        assert_eq!(ev.event_time_ms, Some(1_763_626_800_000));
        let ev = only(
            parse_json(r#"{"title_rule":"t","event_status":"Info","event_time":"1763626800123"}"#)
                .unwrap(),
        );
        assert_eq!(ev.event_time_ms, Some(1_763_626_800_123));
        assert!(
            parse_json(r#"{"title_rule":"t","event_status":"Info","event_time":"soon"}"#).is_err()
        );
    }
}
