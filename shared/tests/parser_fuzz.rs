//! Property-based fuzzing of every parser in `IntegrationKind::ALL`: arbitrary
//! bytes, arbitrary JSON values, and fixtures mutated structurally and
//! byte-wise, as JSON and as form bodies, with and without a callback token.
//! The only property: a parser returns `Ok` or `Err`, it never panics.
//!
//! The number of cases per test is proptest's, overridable with
//! `PROPTEST_CASES` (for a long run: `PROPTEST_CASES=20000 cargo test -p shared
//! --test parser_fuzz -- blueking::`).

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};
use std::collections::HashMap;

use shared::intake::integrations::{
    BodyFormat, IntegrationKind, ParseSettings, PushBody, SourceRequest,
};

const STANDARD: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/standard/firing.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/standard/recovery.json"
    )),
];
const BLUEKING: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/blueking/anomaly.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/blueking/recovery.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/blueking/closed.json"
    )),
];
const ALIYUN_PROMETHEUS: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aliyun-prometheus/firing.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aliyun-prometheus/resolved.json"
    )),
];
const JIANKONGBAO: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/jiankongbao/alarm.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/jiankongbao/recovery.json"
    )),
];

const PROMETHEUS: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/prometheus/firing.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/prometheus/resolved.json"
    )),
];
const GRAFANA: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/grafana/unified-firing.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/grafana/unified-resolved.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/grafana/legacy-alerting.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/grafana/legacy-ok.json"
    )),
];
const ZABBIX: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/zabbix/problem.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/zabbix/recovery.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/zabbix/update.json"
    )),
];
const PAGERDUTY: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty/v2-trigger.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty/v2-acknowledge.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty/v2-resolve.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty/alertmanager-trigger.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty/v1-trigger.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty/v1-resolve.json"
    )),
];
const N9E: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/n9e/alerting.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/n9e/recovered.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/n9e/v8-array.json"
    )),
];
const AWS_CLOUDWATCH: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aws-cloudwatch/alarm-v1.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/aws-cloudwatch/ok-v2.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sns-signing/subscription-confirmation.json"
    )),
];
const SENTRY: &[&str] = &[
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sentry/metric_alert-critical.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sentry/metric_alert-resolved.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sentry/event_alert-triggered.json"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sentry/issue-resolved.json"
    )),
];

/// Field names the parsers look for, so that generated objects hit real paths.
const FIELD_NAMES: &[&str] = &[
    "alerts",
    "status",
    "fingerprint",
    "truncatedAlerts",
    "ruleId",
    "orgId",
    "state",
    "evalMatches",
    "event_value",
    "event_nseverity",
    "event_update_status",
    "event_tags",
    "event_action",
    "dedup_key",
    "routing_key",
    "payload",
    "severity",
    "summary",
    "custom_details",
    "service_key",
    "event_type",
    "incident_key",
    "hash",
    "is_recovered",
    "tags_map",
    "trigger_time",
    "Type",
    "Message",
    "SubscribeURL",
    "Signature",
    "SignatureVersion",
    "SigningCertURL",
    "NewStateValue",
    "AlarmArn",
    "StateChangeTime",
    "action",
    "data",
    "metric_alert",
    "issue",
    "type",
    "event",
    "id",
    "event_id",
    "level",
    "dimensions",
    "key",
    "value",
    "begin_time",
    "end_time",
    "strategy",
    "name",
    "labels",
    "latest_anomaly_record",
    "source_time",
    "bk_biz_id",
    "bk_biz_name",
    "description",
    "bk_target_ip",
    "ip",
    "target",
    "alerts",
    "status",
    "annotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "severity",
    "_aliyun_arms_alert_level",
    "alertname",
    "summary",
    "message",
    "msg_id",
    "task_id",
    "task_type",
    "task_name",
    "task_summary",
    "fault_time",
    "message_type",
    "message_status",
    "content",
    "server_id",
    "token",
    "title_rule",
    "event_status",
    "alert_key",
    "event_time",
];

/// Strings that mean something to some parser.
const INTERESTING: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "1.5",
    "1e400",
    "99999999999999999999",
    "9223372036854775807",
    "ANOMALY_NOTICE",
    "RECOVERY_NOTICE",
    "closed",
    "manual",
    "firing",
    "resolved",
    "critical",
    "error",
    "warning",
    "info",
    "normal",
    "P1",
    "P2",
    "P3",
    "P4",
    "2026-11-20 08:15:00",
    "2024-02-29 23:59:59",
    "2026-02-29 00:00:00",
    "9999-12-31 23:59:60",
    "0000-01-01 00:00:00",
    "2026-11-20T08:20:31.412Z",
    "2026-11-20T08:20:31.123456789+08:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "1763626800",
    "1763626800123",
    "%E4%BD%A0%E5%A5%BD",
    "%FF%FE+%",
    "%",
    "+",
    "Critical",
    "Ok",
    "$a::$b",
    "[TPL]${a} {{.Labels.a}}",
    "中文",
    "🚨",
    "\u{0}",
    "\u{FFFD}",
];

fn kind(slug: &str) -> IntegrationKind {
    IntegrationKind::ALL
        .into_iter()
        .find(|k| k.slug() == slug)
        .unwrap_or_else(|| panic!("{slug} is not in IntegrationKind::ALL"))
}

/// The header sets a kind's sender may send (the parsers that read headers
/// are run with each; the others with none).
fn header_sets(kind: IntegrationKind) -> Vec<HashMap<String, String>> {
    let set = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>()
    };
    match kind.slug() {
        "sentry" => ["metric_alert", "event_alert", "issue", "installation"]
            .iter()
            .map(|r| {
                set(&[
                    ("sentry-hook-resource", r),
                    ("sentry-hook-signature", "00ff"),
                ])
            })
            .collect(),
        "aws-cloudwatch" => vec![
            set(&[]),
            set(&[("x-amz-sns-message-type", "Notification")]),
            set(&[("x-amz-sns-message-type", "SubscriptionConfirmation")]),
        ],
        _ => vec![set(&[])],
    }
}

/// Run the parser on the body in the given format, without and with the
/// per-integration secrets (token, client secret, signature checks).
fn exercise(kind: IntegrationKind, bytes: &[u8], format: BodyFormat) {
    let query: HashMap<String, String> = [("channel_id".to_string(), "1".to_string())]
        .into_iter()
        .collect();
    for headers in header_sets(kind) {
        for secret in [None, Some("fuzz-token")] {
            let req = SourceRequest {
                method: "POST",
                headers: &headers,
                query: &query,
                body: PushBody { bytes, format },
            };
            let settings = ParseSettings {
                callback_token: secret,
                client_secret: secret,
                verify_signature: secret.is_some(),
                sns_topic_arns: &[],
                sns_timestamp: Some((0, Default::default())),
            };
            // Ok or Err are both fine; a panic fails the test.
            let _ = kind.source().integration_key(&req);
            let _ = kind.source().parse(&req, &settings);
        }
    }
}

/// A JSON object as a form body: scalars as their text, the rest as JSON text.
fn to_form(v: &Value) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            let text = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            form.append_pair(k, &text);
        }
    }
    form.finish().into_bytes()
}

fn exercise_value(kind: IntegrationKind, v: &Value) {
    exercise(kind, v.to_string().as_bytes(), BodyFormat::Json);
    exercise(kind, &to_form(v), BodyFormat::Form);
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(INTERESTING).prop_map(str::to_string),
        8 => ".{0,24}",
        4 => "[0-9]{1,25}",
        4 => "[0-9 :T.Z+-]{0,32}",
        // Rare, but real: huge values.
        1 => (1usize..100_000).prop_map(|n| "é".repeat(n)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELD_NAMES).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        text().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value()), 0..12)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

#[derive(Clone, Debug)]
enum Edit {
    Replace(Value),
    Remove,
    AddKey(String, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => json_value().prop_map(Edit::Replace),
        1 => Just(Edit::Remove),
        1 => (key(), json_value()).prop_map(|(k, v)| Edit::AddKey(k, v)),
    ]
}

/// Every JSON pointer in the document, the root included.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{here}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(here);
}

fn apply_edit(doc: &mut Value, at: &Index, edit: &Edit) {
    let mut all = Vec::new();
    pointers(doc, String::new(), &mut all);
    let pointer = at.get(&all).clone();
    match edit {
        Edit::Replace(v) => {
            if let Some(slot) = doc.pointer_mut(&pointer) {
                *slot = v.clone();
            }
        }
        Edit::Remove => {
            let (parent, last) = match pointer.rfind('/') {
                Some(i) => (&pointer[..i], &pointer[i + 1..]),
                None => return,
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match doc.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < items.len() {
                            items.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
        Edit::AddKey(k, v) => {
            if let Some(Value::Object(map)) = doc.pointer_mut(&pointer) {
                map.insert(k.clone(), v.clone());
            }
        }
    }
}

#[derive(Clone, Debug)]
enum ByteEdit {
    Set(u8),
    Insert(u8),
    Delete,
    Truncate,
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let special = prop::sample::select(&b"{}[]\":,0123456789-+.eE%&= \\nul"[..]);
    prop_oneof![
        3 => any::<u8>().prop_map(ByteEdit::Set),
        2 => special.prop_map(ByteEdit::Insert),
        1 => any::<u8>().prop_map(ByteEdit::Insert),
        2 => Just(ByteEdit::Delete),
        1 => Just(ByteEdit::Truncate),
    ]
}

fn apply_byte_edits(bytes: &mut Vec<u8>, edits: &[(Index, ByteEdit)]) {
    for (at, edit) in edits {
        if bytes.is_empty() {
            return;
        }
        let i = at.index(bytes.len());
        match edit {
            ByteEdit::Set(b) => bytes[i] = *b,
            ByteEdit::Insert(b) => bytes.insert(i, *b),
            ByteEdit::Delete => {
                bytes.remove(i);
            }
            ByteEdit::Truncate => bytes.truncate(i),
        }
    }
}

fn config() -> ProptestConfig {
    // Cases from PROPTEST_CASES (proptest's default otherwise).
    ProptestConfig::default()
}

macro_rules! fuzz_parser {
    ($module:ident, $slug:literal, $fixtures:expr) => {
        mod $module {
            use super::*;

            fn fixtures() -> Vec<Value> {
                $fixtures
                    .iter()
                    .map(|raw| serde_json::from_str(raw).expect("fixture is JSON"))
                    .collect()
            }

            #[test]
            fn fixtures_parse() {
                for raw in $fixtures {
                    let body = PushBody {
                        bytes: raw.as_bytes(),
                        format: BodyFormat::Json,
                    };
                    // Each fixture parses with one of its sender's header sets.
                    let query = HashMap::new();
                    let errors: Vec<String> = header_sets(kind($slug))
                        .iter()
                        .map(|headers| {
                            let req = SourceRequest {
                                method: "POST",
                                headers,
                                query: &query,
                                body,
                            };
                            kind($slug).source().parse(
                                &req,
                                &ParseSettings {
                                    verify_signature: false,
                                    ..ParseSettings::default()
                                },
                            )
                        })
                        .filter_map(|parsed| parsed.err().map(|e| e.to_string()))
                        .collect();
                    assert!(errors.len() < header_sets(kind($slug)).len(), "{errors:?}");
                }
            }

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
                    exercise(kind($slug), &bytes, BodyFormat::Json);
                    exercise(kind($slug), &bytes, BodyFormat::Form);
                }

                #[test]
                fn arbitrary_json(v in prop_oneof![json_value(), json_object()]) {
                    exercise_value(kind($slug), &v);
                }

                #[test]
                fn mutated_fixture(
                    which in any::<Index>(),
                    edits in prop::collection::vec((any::<Index>(), edit()), 1..5),
                ) {
                    let mut doc = which.get(&fixtures()).clone();
                    for (at, e) in &edits {
                        apply_edit(&mut doc, at, e);
                    }
                    exercise_value(kind($slug), &doc);
                }

                #[test]
                fn mutated_fixture_bytes(
                    which in any::<Index>(),
                    as_form in any::<bool>(),
                    edits in prop::collection::vec((any::<Index>(), byte_edit()), 1..8),
                ) {
                    let doc = which.get(&fixtures()).clone();
                    let (mut bytes, format) = if as_form {
                        (to_form(&doc), BodyFormat::Form)
                    } else {
                        (doc.to_string().into_bytes(), BodyFormat::Json)
                    };
                    apply_byte_edits(&mut bytes, &edits);
                    exercise(kind($slug), &bytes, format);
                }
            }
        }
    };
}

fuzz_parser!(standard, "standard", STANDARD);
fuzz_parser!(blueking, "blueking", BLUEKING);
fuzz_parser!(aliyun_prometheus, "aliyun-prometheus", ALIYUN_PROMETHEUS);
fuzz_parser!(jiankongbao, "jiankongbao", JIANKONGBAO);
fuzz_parser!(prometheus, "prometheus", PROMETHEUS);
fuzz_parser!(grafana, "grafana", GRAFANA);
fuzz_parser!(zabbix, "zabbix", ZABBIX);
fuzz_parser!(pagerduty, "pagerduty", PAGERDUTY);
fuzz_parser!(n9e, "n9e", N9E);
fuzz_parser!(aws_cloudwatch, "aws-cloudwatch", AWS_CLOUDWATCH);
fuzz_parser!(sentry, "sentry", SENTRY);

#[test]
fn every_integration_is_fuzzed() {
    let fuzzed = [
        "standard",
        "blueking",
        "aliyun-prometheus",
        "jiankongbao",
        "prometheus",
        "grafana",
        "zabbix",
        "pagerduty",
        "n9e",
        "aws-cloudwatch",
        "sentry",
    ];
    for k in IntegrationKind::ALL {
        assert!(
            fuzzed.contains(&k.slug()),
            "{} has no fuzz module",
            k.slug()
        );
    }
}
