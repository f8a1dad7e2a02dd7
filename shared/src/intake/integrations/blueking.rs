//! Tencent BlueKing Monitor (SPEC section 4.1): the `{{alarm.callback_message}}`
//! an action plan's HTTP callback posts.
//!
//! Conventions this parser follows:
//!
//! - **Status.** `type` `ANOMALY_NOTICE` takes its severity from `event.level`
//!   (1 → Critical, 2 → Warning, 3 → Info, as number or numeric string; other
//!   levels are refused naming `event.level`). `RECOVERY_NOTICE` and `closed`
//!   are `Ok`. Any other type (`manual`, ...) is accepted and ignored. Types
//!   match case-insensitively. A payload without `type` or without an `event`
//!   object is refused.
//! - **alert_key.** `event.id` as text (string in V7, integer in older senders,
//!   both give the same key). Without it: [`stable_key`] over `bk_biz_id`,
//!   `strategy.id` and the dimensions sorted by name (values as text), so the
//!   same alert content gives the same key whatever the key order.
//! - **Title.** The strategy name, then the target in parentheses when the
//!   dimensions name one: the first non-empty of `bk_target_ip`, `ip`,
//!   `bk_target_service_instance_id`, `target` —
//!   `"Disk usage above 90% (10.0.1.7)"`. Without a strategy name:
//!   `"BlueKing strategy <strategy.id>"`, or `"BlueKing alert"`.
//! - **Labels.** `bk_biz_id`, `bk_biz_name`, `strategy_id`, `strategy_name`;
//!   the top-level `labels` list, de-duplicated, sorted and joined with `,` as
//!   `strategy_labels` (`"disk,prod"`; one label keeps names that are not
//!   valid label keys, such as Chinese or `/os/disk/` paths, readable); then
//!   every dimension under its own name (normalised to a valid label key;
//!   arrays and objects become their JSON text). A dimension whose name is
//!   already taken by one of the labels above is stored as `dimension_<name>`.
//!   Dimensions may come as an object or as BlueKing's list of
//!   `{key, value}` entries.
//! - **Description.** `description`.
//! - **Event time.** Anomalies: `latest_anomaly_record.source_time`, else
//!   `event.begin_time`. Recoveries and closes: `event.end_time`, else the time
//!   of receipt (falling back to the begin time would make the recovery look
//!   older than the anomaly notices it ends). Times are `YYYY-MM-DD HH:MM:SS`
//!   in UTC; RFC 3339 and unix seconds/milliseconds are tolerated.

use serde::Deserialize;
use serde_json::Value;

use super::common::{flatten_to_string, parse_naive_utc, parse_rfc3339, LabelBuilder};
use super::{decode, flex, ParseSettings, PushBody};
use crate::domain::event::{
    event_time_to_ms, truncate_chars, EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS,
};
use crate::error::{ApiError, ApiResult};
use crate::hashing::stable_key;

/// Dimensions that name the monitored target, in order of preference.
const TARGET_DIMENSIONS: [&str; 4] = [
    "bk_target_ip",
    "ip",
    "bk_target_service_instance_id",
    "target",
];

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type", default, deserialize_with = "flex::opt_string")]
    notice_type: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    bk_biz_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    bk_biz_name: Option<String>,
    #[serde(default)]
    event: Option<Event>,
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    latest_anomaly_record: Option<AnomalyRecord>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    description: Option<String>,
    #[serde(default)]
    labels: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default, deserialize_with = "flex::opt_string")]
    id: Option<String>,
    /// Times stay raw until used, so a malformed time nobody reads refuses nothing.
    #[serde(default)]
    begin_time: Value,
    #[serde(default)]
    end_time: Value,
    #[serde(default)]
    level: Value,
    #[serde(default)]
    dimensions: Value,
}

#[derive(Deserialize)]
struct Strategy {
    #[serde(default, deserialize_with = "flex::opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct AnomalyRecord {
    #[serde(default)]
    source_time: Value,
}

pub fn parse(body: &PushBody<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Vec<ParsedEvent>> {
    let payload: Payload = decode(body)?;
    let event = payload.event.ok_or_else(|| {
        ApiError::invalid("event: missing; the callback must carry an event object")
    })?;
    let notice_type =
        non_empty(payload.notice_type).ok_or_else(|| ApiError::invalid("type: missing"))?;
    let dimensions = dimensions(&event.dimensions)?;
    let strategy_id = payload
        .strategy
        .as_ref()
        .and_then(|s| non_empty(s.id.clone()));
    let strategy_name = payload
        .strategy
        .as_ref()
        .and_then(|s| non_empty(s.name.clone()));
    let alert_key = alert_key(
        event.id.as_deref(),
        payload.bk_biz_id.as_deref(),
        strategy_id.as_deref(),
        &dimensions,
    )?;

    let event_status = if notice_type.eq_ignore_ascii_case("ANOMALY_NOTICE") {
        level_to_status(&event.level)?
    } else if notice_type.eq_ignore_ascii_case("RECOVERY_NOTICE")
        || notice_type.eq_ignore_ascii_case("closed")
    {
        EventStatus::Ok
    } else {
        return Ok(vec![ParsedEvent::Ignore {
            alert_key: Some(alert_key),
            reason: format!(
                "BlueKing notice type {:?} does not change alert state",
                truncate_chars(&notice_type, 64)
            ),
        }]);
    };

    let event_time_ms = if event_status.is_ok() {
        time_ms(&event.end_time, "event.end_time")?
    } else {
        let source_time = match &payload.latest_anomaly_record {
            Some(record) => time_ms(&record.source_time, "latest_anomaly_record.source_time")?,
            None => None,
        };
        match source_time {
            Some(t) => Some(t),
            None => time_ms(&event.begin_time, "event.begin_time")?,
        }
    };

    let mut title = match (&strategy_name, &strategy_id) {
        (Some(name), _) => name.clone(),
        (None, Some(id)) => format!("BlueKing strategy {id}"),
        (None, None) => "BlueKing alert".to_string(),
    };
    let target = TARGET_DIMENSIONS.iter().find_map(|wanted| {
        dimensions
            .iter()
            .find(|(k, v)| k.as_str() == *wanted && !v.trim().is_empty())
            .map(|(_, v)| v)
    });
    if let Some(target) = target {
        title = format!("{title} ({target})");
    }

    let mut labels = LabelBuilder::default();
    let fixed = [
        ("bk_biz_id", non_empty(payload.bk_biz_id)),
        ("bk_biz_name", non_empty(payload.bk_biz_name)),
        ("strategy_id", strategy_id),
        ("strategy_name", strategy_name),
        ("strategy_labels", strategy_labels(payload.labels)?),
    ];
    for (name, value) in fixed {
        if let Some(value) = value {
            labels.insert(name, value);
        }
    }
    for (name, value) in dimensions {
        labels.insert_or_prefixed(&name, value, "dimension_");
    }

    let mut out = IncomingEvent::vendor(title, event_status);
    out.alert_key = Some(alert_key);
    out.description = payload.description;
    out.labels = labels.into_vec();
    out.event_time_ms = event_time_ms;
    Ok(vec![ParsedEvent::Apply(out)])
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn level_to_status(level: &Value) -> ApiResult<EventStatus> {
    if level.is_null() {
        return Err(ApiError::invalid(
            "event.level: missing; an ANOMALY_NOTICE needs level 1, 2 or 3",
        ));
    }
    match flex::value_to_i64(level) {
        Some(1) => Ok(EventStatus::Critical),
        Some(2) => Ok(EventStatus::Warning),
        Some(3) => Ok(EventStatus::Info),
        _ => Err(ApiError::invalid(
            "event.level: must be 1 (fatal), 2 (warning) or 3 (notice)",
        )),
    }
}

/// The dimensions as (name, text) pairs sorted by name. Accepts an object, or
/// a list of `{"key": ..., "value": ...}` entries; `null` values are skipped.
fn dimensions(raw: &Value) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    match raw {
        Value::Null => {}
        Value::Object(map) => {
            for (key, value) in map {
                if let Some(text) = flatten_to_string(value) {
                    out.push((key.clone(), text));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let entry = item.as_object().ok_or_else(|| {
                    ApiError::invalid(format!(
                        "event.dimensions[{i}]: must be an object with key and value, got {}",
                        flex::kind(item)
                    ))
                })?;
                let key = entry
                    .get("key")
                    .and_then(flex::scalar_to_string)
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("event.dimensions[{i}].key: missing"))
                    })?;
                if let Some(text) = entry.get("value").and_then(flatten_to_string) {
                    out.push((key, text));
                }
            }
        }
        other => {
            return Err(ApiError::invalid(format!(
                "event.dimensions: must be an object, got {}",
                flex::kind(other)
            )))
        }
    }
    out.sort();
    Ok(out)
}

fn alert_key(
    id: Option<&str>,
    bk_biz_id: Option<&str>,
    strategy_id: Option<&str>,
    dimensions: &[(String, String)],
) -> ApiResult<String> {
    if let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) {
        if id.chars().count() > ALERT_KEY_MAX_CHARS {
            return Err(ApiError::invalid(format!(
                "event.id: at most {ALERT_KEY_MAX_CHARS} characters are allowed"
            )));
        }
        return Ok(id.to_string());
    }
    let mut parts: Vec<&str> = vec![
        "blueking",
        bk_biz_id.map(str::trim).unwrap_or(""),
        strategy_id.unwrap_or(""),
    ];
    for (k, v) in dimensions {
        parts.push(k);
        parts.push(v);
    }
    Ok(stable_key(&parts))
}

/// The `labels` list, de-duplicated, sorted and joined with `,`.
fn strategy_labels(raw: Option<Vec<Value>>) -> ApiResult<Option<String>> {
    let mut names = Vec::new();
    for (i, value) in raw.unwrap_or_default().iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let name = flex::scalar_to_string(value).ok_or_else(|| {
            ApiError::invalid(format!(
                "labels[{i}]: must be a string, got {}",
                flex::kind(value)
            ))
        })?;
        let name = name.trim().to_string();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    Ok((!names.is_empty()).then(|| names.join(",")))
}

/// A BlueKing time (`YYYY-MM-DD HH:MM:SS`, UTC) to unix ms; `null` or `""` is absent.
fn time_ms(raw: &Value, field: &str) -> ApiResult<Option<i64>> {
    let bad = || {
        ApiError::invalid(format!(
            "{field}: expected a time as YYYY-MM-DD HH:MM:SS (UTC) after 1970, got {}",
            flex::kind(raw)
        ))
    };
    let ms = match raw {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => match parse_naive_utc(s).or_else(|| parse_rfc3339(s)) {
            Some(ms) => ms,
            None => {
                let n = s.trim().parse::<i64>().map_err(|_| bad())?;
                event_time_to_ms(n).map_err(|_| bad())?
            }
        },
        Value::Number(_) => {
            let n = flex::value_to_i64(raw).ok_or_else(bad)?;
            event_time_to_ms(n).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    if ms <= 0 {
        return Err(bad());
    }
    Ok(Some(ms))
}

/// Tencent BlueKing's HTTP callback.
pub struct Blueking;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Blueking,
    source: &Blueking,
};

impl super::Source for Blueking {
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
    use serde_json::json;

    const ANOMALY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/blueking/anomaly.json"
    ));
    const RECOVERY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/blueking/recovery.json"
    ));
    const CLOSED: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/blueking/closed.json"
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

    fn parse_value(v: &Value) -> ApiResult<Vec<ParsedEvent>> {
        parse_json(&v.to_string())
    }

    fn only(events: Vec<ParsedEvent>) -> IncomingEvent {
        assert_eq!(events.len(), 1, "{events:?}");
        match events.into_iter().next() {
            Some(ParsedEvent::Apply(e)) => e,
            other => panic!("expected one event, got {other:?}"),
        }
    }

    fn fixture(raw: &str) -> Value {
        serde_json::from_str(raw).unwrap()
    }

    fn label<'a>(ev: &'a IncomingEvent, name: &str) -> Option<&'a str> {
        ev.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn err_message(v: &Value) -> String {
        let err = parse_value(v).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        err.message().to_string()
    }

    #[test]
    fn fixture_anomaly() {
        let ev = only(parse_json(ANOMALY).unwrap());
        assert_eq!(ev.origin, crate::domain::event::Origin::Vendor);
        assert_eq!(ev.event_status, EventStatus::Critical);
        assert_eq!(ev.alert_key.as_deref(), Some("17632051301042"));
        assert_eq!(
            ev.title,
            crate::domain::event::TitleSource::Plain("Disk usage above 90% (10.0.1.7)".into())
        );
        assert_eq!(
            ev.description.as_deref(),
            Some("新告警, 平均值 >= 90.0%, 当前值93.4%")
        );
        // 2026-11-20 08:15:00 UTC, the record's source_time.
        assert_eq!(ev.event_time_ms, Some(1_795_162_500_000));
        let expected = [
            ("bk_biz_id", "2"),
            ("bk_biz_name", "blueking"),
            ("strategy_id", "41"),
            ("strategy_name", "Disk usage above 90%"),
            ("strategy_labels", "disk,prod"),
            ("bk_target_cloud_id", "0"),
            ("bk_target_ip", "10.0.1.7"),
            ("device_name", "/data"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(ev.labels, expected);
    }

    #[test]
    fn fixture_recovery_uses_end_time() {
        let ev = only(parse_json(RECOVERY).unwrap());
        assert_eq!(ev.event_status, EventStatus::Ok);
        assert_eq!(ev.alert_key.as_deref(), Some("17632051301042"));
        assert_eq!(ev.description.as_deref(), Some("当前告警已恢复"));
        // 2026-11-20 08:41:00 UTC
        assert_eq!(ev.event_time_ms, Some(1_795_164_060_000));
    }

    #[test]
    fn fixture_closed_is_ok() {
        let ev = only(parse_json(CLOSED).unwrap());
        assert_eq!(ev.event_status, EventStatus::Ok);
        assert_eq!(ev.alert_key.as_deref(), Some("17632051301042"));
        // 2026-11-20 09:00:00 UTC
        assert_eq!(ev.event_time_ms, Some(1_795_165_200_000));
    }

    #[test]
    fn recovery_without_end_time_uses_receipt_time() {
        let mut v = fixture(RECOVERY);
        v["event"]["end_time"] = Value::Null;
        assert_eq!(only(parse_value(&v).unwrap()).event_time_ms, None);
    }

    #[test]
    fn anomaly_falls_back_to_begin_time() {
        let mut v = fixture(ANOMALY);
        v.as_object_mut().unwrap().remove("latest_anomaly_record");
        v["event"]["begin_time"] = json!("2024-02-29 23:59:59");
        assert_eq!(
            only(parse_value(&v).unwrap()).event_time_ms,
            Some(1_709_251_199_000)
        );
        v["event"]["begin_time"] = Value::Null;
        assert_eq!(only(parse_value(&v).unwrap()).event_time_ms, None);
    }

    #[test]
    fn each_level_maps_to_its_severity_as_number_or_string() {
        let mut v = fixture(ANOMALY);
        for (level, status) in [
            (json!(1), EventStatus::Critical),
            (json!(2), EventStatus::Warning),
            (json!(3), EventStatus::Info),
            (json!("1"), EventStatus::Critical),
            (json!("2"), EventStatus::Warning),
            (json!(" 3 "), EventStatus::Info),
            (json!(2.0), EventStatus::Warning),
        ] {
            v["event"]["level"] = level.clone();
            assert_eq!(
                only(parse_value(&v).unwrap()).event_status,
                status,
                "{level}"
            );
        }
    }

    #[test]
    fn unknown_or_missing_level_names_event_level() {
        let mut v = fixture(ANOMALY);
        for level in [
            json!(0),
            json!(4),
            json!("fatal"),
            json!([1]),
            json!(1.5),
            Value::Null,
        ] {
            v["event"]["level"] = level.clone();
            assert!(err_message(&v).starts_with("event.level:"), "{level}");
        }
        // A recovery does not need a level.
        let mut r = fixture(RECOVERY);
        r["event"]["level"] = json!("garbage");
        assert!(parse_value(&r).is_ok());
    }

    #[test]
    fn other_types_are_ignored_with_the_key() {
        let mut v = fixture(ANOMALY);
        v["type"] = json!("manual");
        v["event"]["level"] = json!(99);
        match parse_value(&v).unwrap().as_slice() {
            [ParsedEvent::Ignore { alert_key, reason }] => {
                assert_eq!(alert_key.as_deref(), Some("17632051301042"));
                assert!(reason.contains("manual"));
            }
            other => panic!("{other:?}"),
        }
        v["type"] = json!("anomaly_notice");
        v["event"]["level"] = json!(2);
        assert_eq!(
            only(parse_value(&v).unwrap()).event_status,
            EventStatus::Warning
        );
    }

    #[test]
    fn missing_event_or_type_is_refused() {
        let mut v = fixture(ANOMALY);
        v.as_object_mut().unwrap().remove("event");
        assert!(err_message(&v).starts_with("event:"));
        v["event"] = Value::Null;
        assert!(err_message(&v).starts_with("event:"));
        let mut v = fixture(ANOMALY);
        v.as_object_mut().unwrap().remove("type");
        assert!(err_message(&v).starts_with("type:"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            ("/event", json!("x"), "event"),
            ("/event/id", json!({"a": 1}), "event.id"),
            ("/event/dimensions", json!("x"), "event.dimensions"),
            ("/event/begin_time", json!("yesterday"), "event.begin_time"),
            ("/strategy", json!(41), "strategy"),
            ("/strategy/name", json!(["a"]), "strategy.name"),
            ("/labels", json!("disk"), "labels"),
            ("/bk_biz_id", json!({}), "bk_biz_id"),
            ("/description", json!([]), "description"),
        ];
        for (pointer, bad, field) in cases {
            let mut v = fixture(ANOMALY);
            v.as_object_mut().unwrap().remove("latest_anomaly_record");
            *v.pointer_mut(pointer).unwrap() = bad;
            let msg = err_message(&v);
            assert!(msg.starts_with(&format!("{field}:")), "{pointer}: {msg}");
        }
        let mut v = fixture(ANOMALY);
        v["labels"] = json!(["ok", {"x": 1}]);
        assert!(err_message(&v).starts_with("labels[1]:"));
        v = fixture(ANOMALY);
        v["latest_anomaly_record"]["source_time"] = json!("2026-02-30 00:00:00");
        assert!(err_message(&v).starts_with("latest_anomaly_record.source_time:"));
        let mut r = fixture(RECOVERY);
        r["event"]["end_time"] = json!(true);
        assert!(err_message(&r).starts_with("event.end_time:"));
        for body in ["[]", "null", "\"x\"", "{", ""] {
            assert_eq!(parse_json(body).unwrap_err().code(), "InvalidParameter");
        }
    }

    #[test]
    fn integer_and_string_event_ids_give_the_same_key() {
        let mut v = fixture(ANOMALY);
        v["event"]["id"] = json!(17632051301042_u64);
        assert_eq!(
            only(parse_value(&v).unwrap()).alert_key.as_deref(),
            Some("17632051301042")
        );
    }

    #[test]
    fn key_without_id_is_a_stable_hash_of_business_strategy_and_dimensions() {
        let a = r#"{"type":"ANOMALY_NOTICE","bk_biz_id":2,"strategy":{"id":41,"name":"n"},
            "event":{"level":2,"dimensions":{"bk_target_ip":"10.0.1.7","device_name":"/data","port":80}}}"#;
        let b = r#"{"event":{"dimensions":{"port":"80","device_name":"/data","bk_target_ip":"10.0.1.7"},"level":"2"},
            "strategy":{"name":"renamed","id":"41"},"bk_biz_id":"2","type":"ANOMALY_NOTICE","extra":[1,2]}"#;
        let ka = only(parse_json(a).unwrap()).alert_key.unwrap();
        let kb = only(parse_json(b).unwrap()).alert_key.unwrap();
        assert_eq!(ka, kb);
        assert_eq!(ka.len(), 32);
        let c = a.replace("/data", "/home");
        assert_ne!(ka, only(parse_json(&c).unwrap()).alert_key.unwrap());
        let d = a.replace("\"id\":41", "\"id\":42");
        assert_ne!(ka, only(parse_json(&d).unwrap()).alert_key.unwrap());
        // An empty id counts as absent.
        let e = a.replace("\"level\":2", "\"level\":2,\"id\":\"\"");
        assert_eq!(ka, only(parse_json(&e).unwrap()).alert_key.unwrap());
    }

    #[test]
    fn minimal_payload_uses_fallbacks() {
        let ev = only(parse_json(r#"{"type":"ANOMALY_NOTICE","event":{"level":3}}"#).unwrap());
        assert_eq!(ev.event_status, EventStatus::Info);
        assert_eq!(
            ev.title,
            crate::domain::event::TitleSource::Plain("BlueKing alert".into())
        );
        assert!(ev.alert_key.is_some());
        assert!(ev.labels.is_empty());
        assert_eq!(ev.description, None);
        assert_eq!(ev.event_time_ms, None);
        let ev = only(
            parse_json(r#"{"type":"ANOMALY_NOTICE","strategy":{"id":7},"event":{"level":3,"dimensions":{"ip":"::1"}}}"#)
                .unwrap(),
        );
        assert_eq!(
            ev.title,
            crate::domain::event::TitleSource::Plain("BlueKing strategy 7 (::1)".into())
        );
    }

    #[test]
    fn target_preference_and_dimension_flattening() {
        let mut v = fixture(ANOMALY);
        v["event"]["dimensions"] = json!({
            "target": "svc-a",
            "bk_target_service_instance_id": 77,
            "bk_target_ip": "",
            "tags.env": "prod",
            "bk_biz_id": "other",
            "nested": {"a": [1, 2]},
            "gone": null,
            "数据": "x"
        });
        let ev = only(parse_value(&v).unwrap());
        assert_eq!(
            ev.title,
            crate::domain::event::TitleSource::Plain("Disk usage above 90% (77)".into())
        );
        assert_eq!(label(&ev, "tags_env"), Some("prod"));
        assert_eq!(label(&ev, "bk_biz_id"), Some("2"));
        assert_eq!(label(&ev, "dimension_bk_biz_id"), Some("other"));
        assert_eq!(label(&ev, "nested"), Some(r#"{"a":[1,2]}"#));
        assert_eq!(label(&ev, "bk_target_service_instance_id"), Some("77"));
        assert_eq!(label(&ev, "gone"), None);
        assert_eq!(label(&ev, "__"), Some("x"));
        assert!(ev
            .labels
            .iter()
            .all(|(k, _)| crate::domain::event::is_valid_label_key(k)));
    }

    #[test]
    fn dimensions_as_a_key_value_list() {
        let mut v = fixture(ANOMALY);
        v["event"]["dimensions"] = json!([
            {"key": "bk_target_ip", "value": "10.0.1.8", "display_key": "IP"},
            {"key": "device_name", "value": "/data"}
        ]);
        let ev = only(parse_value(&v).unwrap());
        assert_eq!(
            ev.title,
            crate::domain::event::TitleSource::Plain("Disk usage above 90% (10.0.1.8)".into())
        );
        assert_eq!(label(&ev, "device_name"), Some("/data"));
        v["event"]["dimensions"] = json!([{"value": "x"}]);
        assert!(err_message(&v).starts_with("event.dimensions[0].key:"));
        v["event"]["dimensions"] = json!([5]);
        assert!(err_message(&v).starts_with("event.dimensions[0]:"));
    }

    #[test]
    fn strategy_labels_are_sorted_and_deduplicated() {
        let mut v = fixture(ANOMALY);
        v["labels"] = json!(["prod", "/os/disk/", 5, null, "prod", "  "]);
        let ev = only(parse_value(&v).unwrap());
        assert_eq!(label(&ev, "strategy_labels"), Some("/os/disk/,5,prod"));
        v["labels"] = json!([]);
        assert_eq!(
            label(&only(parse_value(&v).unwrap()), "strategy_labels"),
            None
        );
    }

    #[test]
    fn numbers_as_strings_and_strings_as_numbers() {
        let mut v = fixture(ANOMALY);
        v["bk_biz_id"] = json!("2");
        v["strategy"]["id"] = json!("41");
        v["event"]["dimensions"]["bk_target_cloud_id"] = json!(0);
        v["bk_biz_name"] = json!(12345);
        let ev = only(parse_value(&v).unwrap());
        assert_eq!(label(&ev, "bk_biz_id"), Some("2"));
        assert_eq!(label(&ev, "strategy_id"), Some("41"));
        assert_eq!(label(&ev, "bk_target_cloud_id"), Some("0"));
        assert_eq!(label(&ev, "bk_biz_name"), Some("12345"));
    }

    #[test]
    fn times_as_unix_numbers_and_rfc3339_are_tolerated() {
        let mut v = fixture(ANOMALY);
        v["latest_anomaly_record"]["source_time"] = json!(1763626500);
        assert_eq!(
            only(parse_value(&v).unwrap()).event_time_ms,
            Some(1_763_626_500_000)
        );
        v["latest_anomaly_record"]["source_time"] = json!("2026-11-20T16:15:00+08:00");
        assert_eq!(
            only(parse_value(&v).unwrap()).event_time_ms,
            Some(1_795_162_500_000)
        );
        v["latest_anomaly_record"]["source_time"] = json!("1763626500123");
        assert_eq!(
            only(parse_value(&v).unwrap()).event_time_ms,
            Some(1_763_626_500_123)
        );
        v["latest_anomaly_record"]["source_time"] = json!("");
        assert_eq!(
            only(parse_value(&v).unwrap()).event_time_ms,
            Some(1_795_162_500_000)
        );
        for bad in [json!(-1), json!("1970-01-01 00:00:00"), json!(1e300)] {
            v["latest_anomaly_record"]["source_time"] = bad;
            assert!(err_message(&v).starts_with("latest_anomaly_record.source_time:"));
        }
    }

    #[test]
    fn unicode_extra_fields_and_huge_values() {
        let mut v = fixture(ANOMALY);
        v["strategy"]["name"] = json!("磁盘使用率超过90% 🚨");
        v["unexpected"] = json!({"deep": [1, {"x": null}]});
        v["event"]["unexpected"] = json!(true);
        v["description"] = json!("д".repeat(100_000));
        v["event"]["dimensions"]["huge"] = json!("x".repeat(100_000));
        let ev = only(parse_value(&v).unwrap());
        assert_eq!(
            ev.title,
            crate::domain::event::TitleSource::Plain("磁盘使用率超过90% 🚨 (10.0.1.7)".into())
        );
        v["event"]["id"] = json!("9".repeat(300));
        assert!(err_message(&v).starts_with("event.id:"));
        v["event"]["id"] = json!(u64::MAX);
        assert_eq!(
            only(parse_value(&v).unwrap()).alert_key,
            Some(u64::MAX.to_string())
        );
        v["event"]["level"] = json!(1e308);
        assert!(err_message(&v).starts_with("event.level:"));
    }
}
