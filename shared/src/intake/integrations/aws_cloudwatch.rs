//! AWS CloudWatch alarms through an SNS HTTPS subscription (SPEC section 10).
//! SNS posts its JSON envelope as `text/plain` with the header
//! `x-amz-sns-message-type`; a notification's `Message` is the alarm, as JSON
//! text. This file is pure: what must be fetched (the signing certificate,
//! the `SubscribeURL`) is returned as a [`SourceAction`] for
//! [`crate::intake::sns`] to carry out.
//!
//! - **Signature.** Unless the integration was created with
//!   `"verify_signature": false`, every message's signature is checked
//!   (versions 1, SHA1withRSA, and 2, SHA256withRSA, over SNS's canonical
//!   string) against the certificate at `SigningCertURL`, which must be an
//!   https URL on an `sns.<region>.amazonaws.com(.cn)` host; else `Unauthorized`.
//! - **Topic.** With `"sns_topic_arns": [...]` on the integration, a message
//!   (confirmation included) whose `TopicArn` is not one of them is
//!   `AccessDenied`, before any fetch (SPEC 15).
//! - **Replay.** A `Notification` whose `Timestamp` is more than one hour
//!   old or five minutes ahead of the receipt time is `InvalidParameter`,
//!   signature checked or not ([`TimestampWindow`]).
//! - **SubscriptionConfirmation**: confirmed by fetching `SubscribeURL`, which
//!   must be https on such a host (no other host is ever contacted), with or
//!   without signature checks. **UnsubscribeConfirmation** → `ignored`.
//! - **Notification**: `NewStateValue` `ALARM` → Warning, or Critical /
//!   Warning / Info when `AlarmDescription` contains `severity=critical`,
//!   `severity=warning` or `severity=info` (case-insensitive); `OK` → Ok;
//!   `INSUFFICIENT_DATA` → Info. alert_key `AlarmArn` (a hash of it if longer
//!   than an alert key may be); title `AlarmName`; description
//!   `NewStateReason`; labels alarm name, account, region, namespace, metric,
//!   the dimensions, the old and new states, the topic. Event time
//!   `StateChangeTime` (`+0000` offsets as CloudWatch writes them).
//!
//! Why one file of about 500 lines before its tests: the envelope, the
//! signature, the topic and replay checks all read the one SNS message and
//! must run in this order before the alarm is mapped.

use serde::Deserialize;
use serde_json::Value;

use super::common::{parse_rfc3339, LabelBuilder};
use super::source::json_value;
pub use super::source::SnsSignature;
use super::{
    flex, from_value, BodyFormat, ParseSettings, Parsed, Source, SourceAction, SourceRequest,
};
use crate::domain::event::{EventStatus, IncomingEvent, ParsedEvent, ALERT_KEY_MAX_CHARS};
use crate::error::{ApiError, ApiResult};
use crate::hashing::stable_key;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type", default, deserialize_with = "flex::opt_string")]
    kind: Option<String>,
    #[serde(rename = "MessageId", default, deserialize_with = "flex::opt_string")]
    message_id: Option<String>,
    #[serde(rename = "TopicArn", default, deserialize_with = "flex::opt_string")]
    topic_arn: Option<String>,
    #[serde(rename = "Subject", default, deserialize_with = "flex::opt_string")]
    subject: Option<String>,
    #[serde(rename = "Message", default, deserialize_with = "flex::opt_string")]
    message: Option<String>,
    #[serde(rename = "Timestamp", default, deserialize_with = "flex::opt_string")]
    timestamp: Option<String>,
    #[serde(rename = "Token", default, deserialize_with = "flex::opt_string")]
    token: Option<String>,
    #[serde(
        rename = "SubscribeURL",
        default,
        deserialize_with = "flex::opt_string"
    )]
    subscribe_url: Option<String>,
    #[serde(
        rename = "SignatureVersion",
        default,
        deserialize_with = "flex::opt_string"
    )]
    signature_version: Option<String>,
    #[serde(rename = "Signature", default, deserialize_with = "flex::opt_string")]
    signature: Option<String>,
    #[serde(
        rename = "SigningCertURL",
        default,
        deserialize_with = "flex::opt_string"
    )]
    signing_cert_url: Option<String>,
}

#[derive(Deserialize)]
struct Alarm {
    #[serde(rename = "AlarmName", default, deserialize_with = "flex::opt_string")]
    alarm_name: Option<String>,
    #[serde(
        rename = "AlarmDescription",
        default,
        deserialize_with = "flex::opt_string"
    )]
    alarm_description: Option<String>,
    #[serde(
        rename = "AWSAccountId",
        default,
        deserialize_with = "flex::opt_string"
    )]
    account: Option<String>,
    #[serde(
        rename = "NewStateValue",
        default,
        deserialize_with = "flex::opt_string"
    )]
    new_state: Option<String>,
    #[serde(
        rename = "NewStateReason",
        default,
        deserialize_with = "flex::opt_string"
    )]
    new_state_reason: Option<String>,
    #[serde(
        rename = "OldStateValue",
        default,
        deserialize_with = "flex::opt_string"
    )]
    old_state: Option<String>,
    #[serde(
        rename = "StateChangeTime",
        default,
        deserialize_with = "flex::opt_string"
    )]
    state_change_time: Option<String>,
    #[serde(rename = "Region", default, deserialize_with = "flex::opt_string")]
    region: Option<String>,
    #[serde(rename = "AlarmArn", default, deserialize_with = "flex::opt_string")]
    alarm_arn: Option<String>,
    #[serde(rename = "Trigger", default)]
    trigger: Option<Value>,
}

pub struct AwsCloudwatch;

pub use crate::domain::sns::TimestampWindow;

pub const MAX_TOPIC_ARNS: usize = 20;

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic>`.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let [arn_, partition, service, region, account, topic] = parts[..] else {
        return false;
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    arn_ == "arn"
        && word(partition)
        && partition.starts_with("aws")
        && service == "sns"
        && word(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=256).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The `sns_topic_arns` setting: at most [`MAX_TOPIC_ARNS`] topic ARNs.
pub fn check_topic_arns(arns: &[String]) -> ApiResult<()> {
    if arns.len() > MAX_TOPIC_ARNS {
        return Err(ApiError::invalid(format!(
            "sns_topic_arns: at most {MAX_TOPIC_ARNS} topics"
        )));
    }
    for (i, arn) in arns.iter().enumerate() {
        if !is_topic_arn(arn) {
            return Err(ApiError::invalid(format!(
                "sns_topic_arns[{i}]: must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"
            )));
        }
    }
    Ok(())
}

/// The topic pin: with topics set, only those may speak.
fn check_topic(env: &Envelope, allowed: &[String]) -> ApiResult<()> {
    if allowed.is_empty() {
        return Ok(());
    }
    match env.topic_arn.as_deref() {
        Some(topic) if allowed.iter().any(|a| a == topic) => Ok(()),
        _ => Err(ApiError::AccessDenied(
            "TopicArn: not one of this integration's sns_topic_arns".into(),
        )),
    }
}

/// A `Notification` must be fresh: a captured one cannot be replayed later.
fn check_timestamp(env: &Envelope, now_ms: i64, window: TimestampWindow) -> ApiResult<()> {
    let at = env
        .timestamp
        .as_deref()
        .and_then(parse_rfc3339)
        .ok_or_else(|| ApiError::invalid("Timestamp: required, an RFC 3339 time"))?;
    if at < now_ms - window.max_age_ms {
        return Err(ApiError::invalid(format!(
            "Timestamp: more than {} minutes old (a replayed message?)",
            window.max_age_ms / 60_000
        )));
    }
    if at > now_ms + window.max_ahead_ms {
        return Err(ApiError::invalid(format!(
            "Timestamp: more than {} minutes ahead of this service's clock",
            window.max_ahead_ms / 60_000
        )));
    }
    Ok(())
}

/// This integration's push endpoint: its function binary links this parser only.
pub const ENDPOINT: super::Endpoint = super::Endpoint {
    kind: super::IntegrationKind::AwsCloudwatch,
    source: &AwsCloudwatch,
};

const CONTENT_TYPES: &[(&str, BodyFormat)] = &[
    ("text/plain", BodyFormat::Json),
    ("application/json", BodyFormat::Json),
];

impl Source for AwsCloudwatch {
    fn content_types(&self) -> &'static [(&'static str, BodyFormat)] {
        CONTENT_TYPES
    }

    fn parse(&self, req: &SourceRequest<'_>, settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        let value = json_value(&req.body)?;
        if !value.is_object() {
            return Err(ApiError::invalid(
                "body: expected an SNS message (a JSON object)",
            ));
        }
        let env: Envelope = from_value(value)?;
        let kind = env
            .kind
            .clone()
            .ok_or_else(|| ApiError::invalid("Type: required (an SNS message)"))?;
        if let Some(header) = req.header("x-amz-sns-message-type") {
            if header.trim() != kind {
                return Err(ApiError::invalid(
                    "x-amz-sns-message-type: does not match the message's Type",
                ));
            }
        }
        check_topic(&env, settings.sns_topic_arns)?;
        if let (Some((now_ms, window)), "Notification") = (settings.sns_timestamp, kind.as_str()) {
            check_timestamp(&env, now_ms, window)?;
        }
        let signature = if settings.verify_signature {
            Some(signature_of(&env, &kind)?)
        } else {
            None
        };
        match kind.as_str() {
            "SubscriptionConfirmation" => {
                let url = env
                    .subscribe_url
                    .clone()
                    .ok_or_else(|| ApiError::invalid("SubscribeURL: required"))?;
                if !is_sns_url(&url) {
                    return Err(ApiError::invalid(
                        "SubscribeURL: must be an https URL on an sns.<region>.amazonaws.com host",
                    ));
                }
                Ok(Parsed {
                    events: Vec::new(),
                    reply: super::Reply::Single,
                    action: Some(SourceAction::ConfirmSnsSubscription {
                        signature,
                        subscribe_url: url,
                    }),
                })
            }
            "UnsubscribeConfirmation" => Ok(Parsed {
                events: vec![ParsedEvent::Ignore {
                    alert_key: None,
                    reason: "sns unsubscribe confirmation".into(),
                }],
                reply: super::Reply::Single,
                action: signature.map(SourceAction::VerifySns),
            }),
            "Notification" => {
                let event = alarm_event(&env)?;
                Ok(Parsed {
                    events: vec![event],
                    reply: super::Reply::Single,
                    action: signature.map(SourceAction::VerifySns),
                })
            }
            _ => Err(ApiError::invalid(
                "Type: must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation",
            )),
        }
    }
}

/// An https URL (no user info, no port but 443) whose host is
/// `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`.
pub fn is_sns_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.strip_suffix(":443").unwrap_or(authority);
    if host.contains(['@', ':']) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let Some(region) = host.strip_prefix("sns.").and_then(|h| {
        h.strip_suffix(".amazonaws.com")
            .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
    }) else {
        return false;
    };
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn required<'a>(v: &'a Option<String>, field: &str) -> ApiResult<&'a str> {
    v.as_deref().ok_or_else(|| {
        ApiError::Unauthorized(format!("{field}: required to verify the SNS signature"))
    })
}

/// The signature material: SNS's canonical string of the fields its type
/// signs, in their order, each as `Name\nvalue\n`.
fn signature_of(env: &Envelope, kind: &str) -> ApiResult<SnsSignature> {
    let cert_url = required(&env.signing_cert_url, "SigningCertURL")?;
    if !is_sns_url(cert_url) || !cert_url.to_ascii_lowercase().ends_with(".pem") {
        return Err(ApiError::Unauthorized(
            "SigningCertURL: must be an https .pem URL on an sns.<region>.amazonaws.com host"
                .into(),
        ));
    }
    let sha256 = match env.signature_version.as_deref() {
        Some("1") => false,
        Some("2") => true,
        _ => {
            return Err(ApiError::Unauthorized(
                "SignatureVersion: must be 1 or 2".into(),
            ))
        }
    };
    use base64::Engine;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(required(&env.signature, "Signature")?.trim())
        .map_err(|_| ApiError::Unauthorized("Signature: not base64".into()))?;
    let mut fields: Vec<(&str, &str)> = vec![
        ("Message", required(&env.message, "Message")?),
        ("MessageId", required(&env.message_id, "MessageId")?),
    ];
    if kind == "Notification" {
        if let Some(subject) = env.subject.as_deref() {
            fields.push(("Subject", subject));
        }
    } else {
        fields.push((
            "SubscribeURL",
            required(&env.subscribe_url, "SubscribeURL")?,
        ));
    }
    fields.push(("Timestamp", required(&env.timestamp, "Timestamp")?));
    if kind != "Notification" {
        fields.push(("Token", required(&env.token, "Token")?));
    }
    fields.push(("TopicArn", required(&env.topic_arn, "TopicArn")?));
    fields.push(("Type", kind));
    let mut string_to_sign = String::new();
    for (name, value) in fields {
        string_to_sign.push_str(name);
        string_to_sign.push('\n');
        string_to_sign.push_str(value);
        string_to_sign.push('\n');
    }
    Ok(SnsSignature {
        cert_url: cert_url.to_string(),
        string_to_sign,
        signature,
        sha256,
    })
}

fn alarm_event(env: &Envelope) -> ApiResult<ParsedEvent> {
    let text = env
        .message
        .as_deref()
        .ok_or_else(|| ApiError::invalid("Message: required"))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|_| ApiError::invalid("Message: expected a CloudWatch alarm as JSON text"))?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            "Message: expected a CloudWatch alarm object",
        ));
    }
    let alarm: Alarm =
        from_value(value).map_err(|e| ApiError::invalid(format!("Message.{}", e.message())))?;
    let description = alarm
        .alarm_description
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let event_status = match alarm.new_state.as_deref() {
        Some("ALARM") => {
            if description.contains("severity=critical") {
                EventStatus::Critical
            } else if description.contains("severity=info") {
                EventStatus::Info
            } else {
                EventStatus::Warning
            }
        }
        Some("OK") => EventStatus::Ok,
        Some("INSUFFICIENT_DATA") => EventStatus::Info,
        _ => {
            return Err(ApiError::invalid(
                "Message.NewStateValue: must be ALARM, OK or INSUFFICIENT_DATA",
            ))
        }
    };
    let arn = alarm
        .alarm_arn
        .clone()
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("Message.AlarmArn: required"))?;
    let alert_key = if arn.chars().count() > ALERT_KEY_MAX_CHARS {
        stable_key(&["aws-cloudwatch", arn.as_str()])
    } else {
        arn.clone()
    };
    let event_time_ms = match alarm.state_change_time.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Some(cloudwatch_time(t).ok_or_else(|| {
            ApiError::invalid(
                "Message.StateChangeTime: expected a time such as 2026-11-20T08:20:31.412+0000",
            )
        })?),
        _ => None,
    };
    let title = alarm
        .alarm_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "CloudWatch alarm".into());
    let mut labels = LabelBuilder::default();
    for (name, value) in [
        ("alarm_name", alarm.alarm_name),
        ("account", alarm.account),
        ("region", alarm.region),
        ("new_state", alarm.new_state),
        ("old_state", alarm.old_state),
        ("alarm_arn", Some(arn)),
        ("topic_arn", env.topic_arn.clone()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            labels.insert(name, v);
        }
    }
    if let Some(trigger) = &alarm.trigger {
        for (name, pointer) in [("namespace", "/Namespace"), ("metric_name", "/MetricName")] {
            if let Some(v) = trigger.pointer(pointer).and_then(flex::scalar_to_string) {
                labels.insert(name, v);
            }
        }
        if let Some(Value::Array(dims)) = trigger.get("Dimensions") {
            for d in dims {
                let name = d
                    .get("name")
                    .or_else(|| d.get("Name"))
                    .and_then(flex::scalar_to_string);
                let value = d
                    .get("value")
                    .or_else(|| d.get("Value"))
                    .and_then(flex::scalar_to_string);
                if let (Some(n), Some(v)) = (name, value) {
                    labels.insert_or_prefixed(&n, v, "dimension_");
                }
            }
        }
    }
    let mut event = IncomingEvent::vendor(title, event_status);
    event.alert_key = Some(alert_key);
    event.description = alarm.new_state_reason;
    event.labels = labels.into_vec();
    event.event_time_ms = event_time_ms;
    Ok(ParsedEvent::Apply(event))
}

/// CloudWatch writes `2026-11-20T08:20:31.412+0000`; RFC 3339 wants `+00:00`.
fn cloudwatch_time(text: &str) -> Option<i64> {
    if let Some(ms) = parse_rfc3339(text) {
        return Some(ms);
    }
    let split = text.len().checked_sub(5)?;
    let (head, offset) = (text.get(..split)?, text.get(split..)?);
    let (sign, digits) = offset.split_at_checked(1)?;
    if !matches!(sign, "+" | "-") || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_rfc3339(&format!(
        "{head}{sign}{}:{}",
        digits.get(..2)?,
        digits.get(2..)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::PushBody;
    use std::collections::HashMap;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/fixtures/aws-cloudwatch/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn run(body: &str, verify: bool) -> ApiResult<Parsed> {
        let headers = HashMap::new();
        let query = HashMap::new();
        AwsCloudwatch.parse(
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
                verify_signature: verify,
                ..Default::default()
            },
        )
    }

    #[test]
    fn sns_hosts_only() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
            "https://SNS.eu-west-3.amazonaws.com:443/?Action=ConfirmSubscription&Token=t",
        ] {
            assert!(is_sns_url(good), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://s3.us-east-1.amazonaws.com/x.pem",
            "https://127.0.0.1/x.pem",
            "https://sns.us_east.amazonaws.com/x.pem",
        ] {
            assert!(!is_sns_url(bad), "{bad}");
        }
    }

    #[test]
    fn notification_states_and_severity_in_the_description() {
        let doc: Value = serde_json::from_str(&fixture("alarm-v1.json")).unwrap();
        let with_message = |state: &str, description: &str| {
            let mut alarm: Value = serde_json::from_str(doc["Message"].as_str().unwrap()).unwrap();
            alarm["NewStateValue"] = Value::from(state);
            alarm["AlarmDescription"] = Value::from(description);
            let mut d = doc.clone();
            d["Message"] = Value::from(alarm.to_string());
            run(&d.to_string(), false)
        };
        for (state, desc, want) in [
            ("ALARM", "", EventStatus::Warning),
            ("ALARM", "team=web Severity=Critical", EventStatus::Critical),
            ("ALARM", "severity=info", EventStatus::Info),
            ("ALARM", "severity=warning", EventStatus::Warning),
            ("OK", "severity=critical", EventStatus::Ok),
            ("INSUFFICIENT_DATA", "", EventStatus::Info),
        ] {
            match &with_message(state, desc).unwrap().events[0] {
                ParsedEvent::Apply(e) => assert_eq!(e.event_status, want, "{state} {desc}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(with_message("BROKEN", "")
            .unwrap_err()
            .message()
            .starts_with("Message.NewStateValue"));
    }

    #[test]
    fn verification_material_follows_the_setting() {
        let p = run(&fixture("alarm-v1.json"), true).unwrap();
        match p.action {
            Some(SourceAction::VerifySns(s)) => {
                assert!(!s.sha256);
                assert!(s.string_to_sign.starts_with("Message\n"));
                assert!(s.string_to_sign.ends_with("Type\nNotification\n"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(run(&fixture("alarm-v1.json"), false).unwrap().action, None);
        let confirmation = std::fs::read_to_string(format!(
            "{}/fixtures/sns-signing/subscription-confirmation.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        match run(&confirmation, false).unwrap().action {
            Some(SourceAction::ConfirmSnsSubscription {
                signature: None,
                subscribe_url,
            }) => {
                assert!(is_sns_url(&subscribe_url))
            }
            other => panic!("{other:?}"),
        }
    }

    fn run_with(body: &str, settings: &ParseSettings<'_>) -> ApiResult<Parsed> {
        let headers = HashMap::new();
        let query = HashMap::new();
        AwsCloudwatch.parse(
            &SourceRequest {
                method: "POST",
                headers: &headers,
                query: &query,
                body: PushBody {
                    bytes: body.as_bytes(),
                    format: BodyFormat::Json,
                },
            },
            settings,
        )
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:cloudwatch-alarms";

    #[test]
    fn pinned_topics_refuse_every_other_topic() {
        let confirmation = std::fs::read_to_string(format!(
            "{}/fixtures/sns-signing/subscription-confirmation.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let other = ["arn:aws:sns:us-east-1:999999999999:attacker".to_string()];
        let ours = [TOPIC.to_string()];
        for body in [fixture("alarm-v1.json"), confirmation] {
            for verify in [true, false] {
                let pinned = |arns| ParseSettings {
                    verify_signature: verify,
                    sns_topic_arns: arns,
                    ..Default::default()
                };
                let err = run_with(&body, &pinned(&other)).unwrap_err();
                assert_eq!(err.code(), "AccessDenied");
                assert!(run_with(&body, &pinned(&ours)).is_ok());
                assert!(
                    run_with(&body, &pinned(&[])).is_ok(),
                    "not pinned: any topic"
                );
            }
        }
        let no_topic = fixture("alarm-v1.json").replace(TOPIC, "");
        let pinned = ParseSettings {
            sns_topic_arns: &ours,
            ..Default::default()
        };
        assert_eq!(
            run_with(&no_topic, &pinned).unwrap_err().code(),
            "AccessDenied"
        );
    }

    #[test]
    fn notification_timestamps_outside_the_window_are_refused() {
        let sent = parse_rfc3339("2026-11-20T08:20:32.003Z").unwrap();
        let window = TimestampWindow::default();
        for verify in [true, false] {
            let at = |now: i64| ParseSettings {
                verify_signature: verify,
                sns_timestamp: Some((now, window)),
                ..Default::default()
            };
            let body = fixture("alarm-v1.json");
            assert!(run_with(&body, &at(sent)).is_ok());
            assert!(run_with(&body, &at(sent + 3_600_000)).is_ok());
            assert!(run_with(&body, &at(sent - 300_000)).is_ok());
            let old = run_with(&body, &at(sent + 3_600_001)).unwrap_err();
            assert_eq!(old.code(), "InvalidParameter");
            assert!(old.message().starts_with("Timestamp: "));
            let ahead = run_with(&body, &at(sent - 300_001)).unwrap_err();
            assert!(ahead.message().starts_with("Timestamp: "));
            let garbled = body.replace("2026-11-20T08:20:32.003Z", "yesterday");
            assert!(run_with(&garbled, &at(sent)).is_err());
        }
    }

    #[test]
    fn topic_arn_setting() {
        assert!(check_topic_arns(&[TOPIC.into()]).is_ok());
        assert!(
            check_topic_arns(&["arn:aws-cn:sns:cn-north-1:123456789012:a.fifo".into()]).is_ok()
        );
        for bad in [
            "arn:aws:sqs:us-east-1:123456789012:q",
            "arn:aws:sns:us-east-1:1234:t",
            "arn:aws:sns:us-east-1:123456789012:",
            "topic",
        ] {
            let err = check_topic_arns(&[TOPIC.into(), bad.into()]).unwrap_err();
            assert!(err.message().starts_with("sns_topic_arns[1]:"), "{bad}");
        }
    }

    #[test]
    fn cloudwatch_offsets() {
        assert_eq!(
            cloudwatch_time("2026-11-20T08:20:31.412+0000"),
            parse_rfc3339("2026-11-20T08:20:31.412Z")
        );
        assert_eq!(
            cloudwatch_time("2026-11-20T16:20:31.412+0800"),
            parse_rfc3339("2026-11-20T08:20:31.412Z")
        );
        assert_eq!(cloudwatch_time("2026-11-20T08:20:31.412+00"), None);
        assert_eq!(cloudwatch_time("é"), None);
    }
}
