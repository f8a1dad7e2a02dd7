//! Jiankongbao (SPEC section 4.3): the URL callback, posted as JSON or as an
//! HTML form (where every value is a string).
//!
//! Conventions this parser follows:
//!
//! - **Authentication.** When the integration has a callback token, `token`
//!   must be the MD5 hex (either case) of `msg_id` + `task_id` + `fault_time` +
//!   the token, each field as the text it was sent as (a JSON number in
//!   decimal). This is checked before anything else in the payload, so an
//!   unauthenticated sender learns nothing but `Unauthorized`; the token is
//!   never echoed.
//! - **Status.** `message_type` 1 (fault) → Warning, 2 (reminder) → Info;
//!   `message_status` 2 (recovery) → Ok, 1 (alarm) keeps the severity. Both
//!   are required; other values are refused naming the field.
//! - **alert_key.** `jkb:<task_id>:<server_id>`, or `jkb:<task_id>` without a
//!   server id. `msg_id` is per message and takes no part (and is not a label,
//!   since it would defeat duplicate detection).
//! - **Title.** `"<task_name>: <task_summary>"`, either part alone when the
//!   other is missing, else `"Jiankongbao task <task_id>"`.
//! - **Labels.** `task_id`, `task_type`, `task_name`, `server_id`, when present.
//! - **Description.** `content`, URL-decoded (`%XX` escapes, `+` as a space;
//!   invalid UTF-8 is replaced, malformed escapes are kept as written).
//! - **Event time.** `fault_time`, unix seconds (milliseconds told apart by
//!   size); 0 or absent means the time of receipt.

use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::Value;

use super::{body_to_value, flex, from_value, ParseSettings, PushBody};
use crate::domain::event::{
    event_time_to_ms, EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS,
};
use crate::error::{ApiError, ApiResult};
use crate::hashing::hex;

#[derive(Deserialize)]
struct Payload {
    #[serde(default, deserialize_with = "flex::opt_string")]
    task_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    task_type: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    task_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    task_summary: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    fault_time: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    message_type: Option<i64>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    message_status: Option<i64>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    content: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_string")]
    server_id: Option<String>,
}

pub fn parse(body: &PushBody<'_>, settings: &ParseSettings<'_>) -> ApiResult<Vec<ParsedEvent>> {
    let value = body_to_value(body)?;
    if !value.is_object() {
        return Err(ApiError::invalid("body: expected a JSON object or a form"));
    }
    if let Some(token) = settings.callback_token {
        verify_token(&value, token)?;
    }
    let payload: Payload = from_value(value)?;

    let task_id =
        non_empty(payload.task_id).ok_or_else(|| ApiError::invalid("task_id: missing"))?;
    let server_id = non_empty(payload.server_id);
    let severity = match payload.message_type {
        Some(1) => EventStatus::Warning,
        Some(2) => EventStatus::Info,
        Some(_) => {
            return Err(ApiError::invalid(
                "message_type: must be 1 (fault) or 2 (reminder)",
            ))
        }
        None => {
            return Err(ApiError::invalid(
                "message_type: missing; must be 1 (fault) or 2 (reminder)",
            ))
        }
    };
    let event_status = match payload.message_status {
        Some(1) => severity,
        Some(2) => EventStatus::Ok,
        Some(_) => {
            return Err(ApiError::invalid(
                "message_status: must be 1 (alarm) or 2 (recovery)",
            ))
        }
        None => {
            return Err(ApiError::invalid(
                "message_status: missing; must be 1 (alarm) or 2 (recovery)",
            ))
        }
    };
    let event_time_ms = fault_time_ms(payload.fault_time.as_deref())?;

    let alert_key = match &server_id {
        Some(server) => format!("jkb:{task_id}:{server}"),
        None => format!("jkb:{task_id}"),
    };
    if alert_key.chars().count() > ALERT_KEY_MAX_CHARS {
        return Err(ApiError::invalid(format!(
            "task_id: together with server_id at most {} characters are allowed",
            ALERT_KEY_MAX_CHARS - 5
        )));
    }

    let task_name = non_empty(payload.task_name);
    let task_type = non_empty(payload.task_type);
    let title = match (&task_name, non_empty(payload.task_summary)) {
        (Some(name), Some(summary)) => format!("{name}: {summary}"),
        (Some(name), None) => name.clone(),
        (None, Some(summary)) => summary,
        (None, None) => format!("Jiankongbao task {task_id}"),
    };

    let mut labels = vec![("task_id".to_string(), task_id)];
    let optional = [
        ("task_type", task_type),
        ("task_name", task_name),
        ("server_id", server_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            labels.push((name.to_string(), value));
        }
    }

    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = payload
        .content
        .map(|c| decode_content(&c))
        .filter(|c| !c.trim().is_empty());
    event.labels = labels;
    event.event_time_ms = event_time_ms;
    Ok(vec![ParsedEvent::Apply(event)])
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A field as the text it was sent as; absent or non-scalar is empty.
fn signed_field(value: &Value, name: &str) -> String {
    value
        .get(name)
        .and_then(flex::scalar_to_string)
        .unwrap_or_default()
}

fn verify_token(value: &Value, callback_token: &str) -> ApiResult<()> {
    let given = value
        .get("token")
        .and_then(flex::scalar_to_string)
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "token: missing; this integration requires the Jiankongbao callback signature"
                    .into(),
            )
        })?;
    let mut hasher = Md5::new();
    hasher.update(signed_field(value, "msg_id").as_bytes());
    hasher.update(signed_field(value, "task_id").as_bytes());
    hasher.update(signed_field(value, "fault_time").as_bytes());
    hasher.update(callback_token.as_bytes());
    let expected = hex(&hasher.finalize());
    if crate::hashing::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "token: does not match MD5(msg_id + task_id + fault_time + callback token)".into(),
        ))
    }
}

fn fault_time_ms(raw: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(text) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("fault_time: expected a positive unix time in seconds");
    let seconds = text.parse::<i64>().map_err(|_| bad())?;
    match seconds {
        0 => Ok(None),
        s if s < 0 => Err(bad()),
        s => event_time_to_ms(s).map(Some).map_err(|_| bad()),
    }
}

/// URL-decode the `content` text: `+` is a space, `%XX` a byte; bytes that are
/// not UTF-8 become U+FFFD.
fn decode_content(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Jiankongbao's URL callback, JSON or form.
pub struct Jiankongbao;

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::Jiankongbao,
    source: &Jiankongbao,
};

impl super::Source for Jiankongbao {
    fn content_types(&self) -> &'static [(&'static str, super::BodyFormat)] {
        &[
            ("application/json", super::BodyFormat::Json),
            ("application/x-www-form-urlencoded", super::BodyFormat::Form),
        ]
    }

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
    use crate::domain::event::TitleSource;
    use crate::intake::integrations::BodyFormat;
    use serde_json::json;

    const ALARM: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/jiankongbao/alarm.json"
    ));
    const RECOVERY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/jiankongbao/recovery.json"
    ));

    fn run(bytes: &[u8], format: BodyFormat, token: Option<&str>) -> ApiResult<Vec<ParsedEvent>> {
        parse(
            &PushBody { bytes, format },
            &ParseSettings {
                callback_token: token,
                ..Default::default()
            },
        )
    }

    fn only(events: Vec<ParsedEvent>) -> IncomingEvent {
        assert_eq!(events.len(), 1);
        match events.into_iter().next() {
            Some(ParsedEvent::Apply(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    fn json_event(v: &Value) -> IncomingEvent {
        only(run(v.to_string().as_bytes(), BodyFormat::Json, None).unwrap())
    }

    fn err_message(v: &Value) -> String {
        let err = run(v.to_string().as_bytes(), BodyFormat::Json, None).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        err.message().to_string()
    }

    fn fixture(raw: &str) -> Value {
        serde_json::from_str(raw).unwrap()
    }

    /// The JSON object as a form body, every value as its text.
    fn to_form(v: &Value) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, val) in v.as_object().unwrap() {
            form.append_pair(k, &flex::scalar_to_string(val).unwrap());
        }
        form.finish()
    }

    fn title(ev: &IncomingEvent) -> &str {
        match &ev.title {
            TitleSource::Plain(t) => t,
            TitleSource::Rule(r) => panic!("{r}"),
        }
    }

    fn label<'a>(ev: &'a IncomingEvent, name: &str) -> Option<&'a str> {
        ev.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn fixture_alarm() {
        let ev = only(run(ALARM.as_bytes(), BodyFormat::Json, None).unwrap());
        assert_eq!(ev.event_status, EventStatus::Warning);
        assert_eq!(ev.alert_key.as_deref(), Some("jkb:1209934"));
        assert_eq!(
            title(&ev),
            "shop homepage: https://shop.example.com/ unreachable from 3 probes"
        );
        assert_eq!(
            ev.description.as_deref(),
            Some("HTTP监控 shop homepage 超时，响应时间 10012ms")
        );
        assert_eq!(ev.event_time_ms, Some(1_763_626_800_000));
        assert_eq!(
            ev.labels,
            vec![
                ("task_id".to_string(), "1209934".to_string()),
                ("task_type".to_string(), "http".to_string()),
                ("task_name".to_string(), "shop homepage".to_string()),
            ]
        );
        assert_eq!(ev.origin, crate::domain::event::Origin::Vendor);
    }

    #[test]
    fn fixture_recovery() {
        let ev = only(run(RECOVERY.as_bytes(), BodyFormat::Json, None).unwrap());
        assert_eq!(ev.event_status, EventStatus::Ok);
        assert_eq!(ev.alert_key.as_deref(), Some("jkb:1209934"));
        assert_eq!(
            ev.description.as_deref(),
            Some("HTTP监控 shop homepage 已恢复")
        );
        assert_eq!(ev.event_time_ms, Some(1_763_627_400_000));
    }

    #[test]
    fn form_bodies_parse_like_json() {
        for raw in [ALARM, RECOVERY] {
            let v = fixture(raw);
            let form = to_form(&v);
            let from_form = only(run(form.as_bytes(), BodyFormat::Form, None).unwrap());
            let from_json = only(run(raw.as_bytes(), BodyFormat::Json, None).unwrap());
            assert_eq!(from_form, from_json);
        }
        // A hand-written form with '+' spaces at the form level and in content.
        let body =
            "task_id=7&task_name=api+check&message_type=2&message_status=1&fault_time=1763626800\
                    &server_id=s-1&content=disk%2Bfull+on+%E6%9C%BA%E5%99%A8";
        let ev = only(run(body.as_bytes(), BodyFormat::Form, None).unwrap());
        assert_eq!(ev.event_status, EventStatus::Info);
        assert_eq!(ev.alert_key.as_deref(), Some("jkb:7:s-1"));
        assert_eq!(title(&ev), "api check");
        // Form decoding turns %2B into '+', which content decoding then reads as a space.
        assert_eq!(ev.description.as_deref(), Some("disk full on 机器"));
        let err = run(
            b"task_id=7&message_type=x&message_status=1",
            BodyFormat::Form,
            None,
        )
        .unwrap_err();
        assert!(err.message().starts_with("message_type:"));
    }

    #[test]
    fn each_message_type_and_status_row() {
        let mut v = fixture(ALARM);
        for (mtype, mstatus, expected) in [
            (json!(1), json!(1), EventStatus::Warning),
            (json!(2), json!(1), EventStatus::Info),
            (json!(1), json!(2), EventStatus::Ok),
            (json!(2), json!(2), EventStatus::Ok),
            (json!("1"), json!("1"), EventStatus::Warning),
            (json!("2"), json!(" 1 "), EventStatus::Info),
        ] {
            v["message_type"] = mtype;
            v["message_status"] = mstatus;
            assert_eq!(json_event(&v).event_status, expected);
        }
        for bad in [
            json!(0),
            json!(3),
            json!("fault"),
            json!(1.5),
            json!([1]),
            Value::Null,
        ] {
            v["message_type"] = bad.clone();
            v["message_status"] = json!(2);
            assert!(err_message(&v).starts_with("message_type:"), "{bad}");
        }
        v["message_type"] = json!(1);
        for bad in [json!(0), json!(3), json!("x"), Value::Null] {
            v["message_status"] = bad.clone();
            assert!(err_message(&v).starts_with("message_status:"), "{bad}");
        }
    }

    #[test]
    fn server_id_joins_the_key_and_labels() {
        let mut v = fixture(ALARM);
        v["server_id"] = json!(3301);
        let ev = json_event(&v);
        assert_eq!(ev.alert_key.as_deref(), Some("jkb:1209934:3301"));
        assert_eq!(label(&ev, "server_id"), Some("3301"));
        // Same content, different key order and numbers instead of strings: same key.
        let reordered = r#"{"server_id":"3301","message_status":"1","message_type":"1","task_id":1209934,
            "fault_time":"1763626800","msg_id":99}"#;
        let ev2 = only(run(reordered.as_bytes(), BodyFormat::Json, None).unwrap());
        assert_eq!(ev2.alert_key, ev.alert_key);
        assert_eq!(ev2.event_time_ms, ev.event_time_ms);
        v["server_id"] = json!("");
        assert_eq!(json_event(&v).alert_key.as_deref(), Some("jkb:1209934"));
    }

    #[test]
    fn token_ok_mismatch_and_missing() {
        let secret = "s3cret";
        let mut v = fixture(ALARM);
        // MD5("88213340" + "1209934" + "1763626800" + "s3cret"), computed independently.
        let good = "2ebaeb7e9b59f8285980078e30a98c92";
        v["token"] = json!(good);
        let body = v.to_string();
        assert!(run(body.as_bytes(), BodyFormat::Json, Some(secret)).is_ok());
        // Either hex case; and the form body signs the same text.
        v["token"] = json!(good.to_uppercase());
        assert!(run(v.to_string().as_bytes(), BodyFormat::Json, Some(secret)).is_ok());
        v["token"] = json!(good);
        assert!(run(to_form(&v).as_bytes(), BodyFormat::Form, Some(secret)).is_ok());
        // Without a configured token, the token is not checked at all.
        v["token"] = json!("whatever");
        assert!(run(v.to_string().as_bytes(), BodyFormat::Json, None).is_ok());

        for (token, hint) in [
            (json!("0".repeat(32)), "match"),
            (json!(good[..31].to_string()), "match"),
            (json!(format!("{good}0")), "match"),
            (json!(""), "missing"),
            (Value::Null, "missing"),
            (json!({"x": good}), "missing"),
        ] {
            v["token"] = token;
            let err = run(v.to_string().as_bytes(), BodyFormat::Json, Some(secret)).unwrap_err();
            assert_eq!(err.code(), "Unauthorized");
            assert!(err.message().starts_with("token:") && err.message().contains(hint));
            assert!(!err.message().contains(secret) && !err.message().contains(good));
        }
        v.as_object_mut().unwrap().remove("token");
        let err = run(v.to_string().as_bytes(), BodyFormat::Json, Some(secret)).unwrap_err();
        assert_eq!(err.code(), "Unauthorized");

        // A signed field changed after signing: mismatch.
        v["token"] = json!(good);
        v["fault_time"] = json!(1763626801);
        let err = run(v.to_string().as_bytes(), BodyFormat::Json, Some(secret)).unwrap_err();
        assert_eq!(err.code(), "Unauthorized");
        // The wrong secret: mismatch.
        v["fault_time"] = json!(1763626800);
        let err = run(v.to_string().as_bytes(), BodyFormat::Json, Some("other")).unwrap_err();
        assert_eq!(err.code(), "Unauthorized");
    }

    #[test]
    fn unauthenticated_payloads_get_unauthorized_before_validation() {
        let err = run(br#"{"message_type":"junk"}"#, BodyFormat::Json, Some("t")).unwrap_err();
        assert_eq!(err.code(), "Unauthorized");
    }

    #[test]
    fn content_decoding() {
        assert_eq!(decode_content("a+b%20c"), "a b c");
        assert_eq!(decode_content("100%25+sure"), "100% sure");
        assert_eq!(decode_content("%E4%BD%A0%E5%A5%BD"), "你好");
        assert_eq!(decode_content("bad %FF byte"), "bad \u{FFFD} byte");
        assert_eq!(decode_content("50% off %zz %"), "50% off %zz %");
        assert_eq!(decode_content("already 中文"), "already 中文");
        let mut v = fixture(ALARM);
        v["content"] = json!("+ +");
        assert_eq!(json_event(&v).description, None);
        v.as_object_mut().unwrap().remove("content");
        assert_eq!(json_event(&v).description, None);
    }

    #[test]
    fn missing_optional_fields_and_fallbacks() {
        let ev = json_event(&json!({"task_id": "5", "message_type": 1, "message_status": 1}));
        assert_eq!(title(&ev), "Jiankongbao task 5");
        assert_eq!(ev.event_time_ms, None);
        assert_eq!(ev.labels, vec![("task_id".to_string(), "5".to_string())]);
        let ev = json_event(
            &json!({"task_id": "5", "task_summary": "only summary", "message_type": 1, "message_status": 1, "fault_time": 0}),
        );
        assert_eq!(title(&ev), "only summary");
        assert_eq!(ev.event_time_ms, None);
    }

    #[test]
    fn wrong_types_and_bad_values_name_the_field() {
        let cases = [
            ("task_id", Value::Null, "task_id:"),
            ("task_id", json!("  "), "task_id:"),
            ("task_id", json!({"a": 1}), "task_id:"),
            ("task_name", json!([1]), "task_name:"),
            ("fault_time", json!("yesterday"), "fault_time:"),
            ("fault_time", json!(-5), "fault_time:"),
            ("fault_time", json!(1.5), "fault_time:"),
            ("fault_time", json!("99999999999999999999"), "fault_time:"),
            ("content", json!({}), "content:"),
            ("server_id", json!([]), "server_id:"),
            ("task_id", json!("9".repeat(300)), "task_id:"),
        ];
        for (field, bad, prefix) in cases {
            let mut v = fixture(ALARM);
            v[field] = bad.clone();
            let msg = err_message(&v);
            assert!(msg.starts_with(prefix), "{field}={bad}: {msg}");
        }
        for body in ["[]", "null", "12", "{", ""] {
            assert_eq!(
                run(body.as_bytes(), BodyFormat::Json, None)
                    .unwrap_err()
                    .code(),
                "InvalidParameter"
            );
        }
    }

    #[test]
    fn unicode_extra_fields_huge_values_and_ms_times() {
        let mut v = fixture(ALARM);
        v["task_name"] = json!("首页监控 🚨");
        v["task_summary"] = json!("s".repeat(100_000));
        v["content"] = json!("%E2%9C%93".repeat(50_000));
        v["extra"] = json!({"nested": [1, 2, 3]});
        v["fault_time"] = json!("1763626800123");
        let ev = json_event(&v);
        assert!(title(&ev).starts_with("首页监控 🚨: sss"));
        assert_eq!(
            ev.description.as_deref().map(|d| d.chars().count()),
            Some(50_000)
        );
        assert_eq!(ev.event_time_ms, Some(1_763_626_800_123));
        // Absurd future times pass through; the normaliser clamps them to receipt time.
        v["content"] = json!("x");
        v["task_summary"] = json!("y");
        v["fault_time"] = json!(i64::MAX);
        assert_eq!(json_event(&v).event_time_ms, Some(i64::MAX));
    }
}
