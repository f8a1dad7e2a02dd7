//! One parser per integration, each a pure function from the request to
//! standard events behind the one [`Source`] interface (Vector-style: adding
//! an integration is one file here, one registration line in
//! [`IntegrationKind`], one function crate, one route).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::intake::event::{truncate_chars, ParsedEvent};

pub mod aliyun_prometheus;
pub mod aws_cloudwatch;
pub mod blueking;
pub mod common;
pub mod flex;
pub mod grafana;
pub mod jiankongbao;
pub mod n9e;
pub mod pagerduty;
pub mod prometheus;
pub mod sentry;
pub mod source;
pub mod standard;
pub mod zabbix;

pub use source::{Parsed, Reply, Source, SourceAction, SourceRequest};

/// One push endpoint: its kind and its parser. A function names its own
/// (`prometheus::ENDPOINT`), so its binary links no other vendor's parser;
/// [`IntegrationKind::endpoint`] reaches every one (tests, the local server).
#[derive(Clone, Copy)]
pub struct Endpoint {
    pub kind: IntegrationKind,
    pub source: &'static dyn Source,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    Standard,
    Blueking,
    AliyunPrometheus,
    Jiankongbao,
    Prometheus,
    Grafana,
    Zabbix,
    PagerDuty,
    N9e,
    AwsCloudwatch,
    Sentry,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 11] = [
        IntegrationKind::Standard,
        IntegrationKind::Blueking,
        IntegrationKind::AliyunPrometheus,
        IntegrationKind::Jiankongbao,
        IntegrationKind::Prometheus,
        IntegrationKind::Grafana,
        IntegrationKind::Zabbix,
        IntegrationKind::PagerDuty,
        IntegrationKind::N9e,
        IntegrationKind::AwsCloudwatch,
        IntegrationKind::Sentry,
    ];

    /// The path segment in `/event/push/alert/{slug}` and the `kind` in the API.
    pub fn slug(self) -> &'static str {
        match self {
            IntegrationKind::Standard => "standard",
            IntegrationKind::Blueking => "blueking",
            IntegrationKind::AliyunPrometheus => "aliyun-prometheus",
            IntegrationKind::Jiankongbao => "jiankongbao",
            IntegrationKind::Prometheus => "prometheus",
            IntegrationKind::Grafana => "grafana",
            IntegrationKind::Zabbix => "zabbix",
            IntegrationKind::PagerDuty => "pagerduty",
            IntegrationKind::N9e => "n9e",
            IntegrationKind::AwsCloudwatch => "aws-cloudwatch",
            IntegrationKind::Sentry => "sentry",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// This kind's push endpoint: the kind with its parser.
    pub fn endpoint(self) -> Endpoint {
        match self {
            IntegrationKind::Standard => standard::ENDPOINT,
            IntegrationKind::Blueking => blueking::ENDPOINT,
            IntegrationKind::AliyunPrometheus => aliyun_prometheus::ENDPOINT,
            IntegrationKind::Jiankongbao => jiankongbao::ENDPOINT,
            IntegrationKind::Prometheus => prometheus::ENDPOINT,
            IntegrationKind::Grafana => grafana::ENDPOINT,
            IntegrationKind::Zabbix => zabbix::ENDPOINT,
            IntegrationKind::PagerDuty => pagerduty::ENDPOINT,
            IntegrationKind::N9e => n9e::ENDPOINT,
            IntegrationKind::AwsCloudwatch => aws_cloudwatch::ENDPOINT,
            IntegrationKind::Sentry => sentry::ENDPOINT,
        }
    }

    /// The parser behind this kind's endpoint.
    pub fn source(self) -> &'static dyn Source {
        self.endpoint().source
    }

    /// The events of a body alone (no headers, no query): benches and tests.
    pub fn parse(
        self,
        body: &PushBody<'_>,
        settings: &ParseSettings<'_>,
    ) -> ApiResult<Vec<ParsedEvent>> {
        let empty = std::collections::HashMap::new();
        let req = SourceRequest {
            method: "POST",
            headers: &empty,
            query: &empty,
            body: *body,
        };
        self.source().parse(&req, settings).map(|p| p.events)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Form,
}

/// The request body after the content-type and size checks.
#[derive(Clone, Copy, Debug)]
pub struct PushBody<'a> {
    pub bytes: &'a [u8],
    pub format: BodyFormat,
}

/// Per-integration configuration a parser may need, stored on the integration.
#[derive(Clone, Copy, Debug)]
pub struct ParseSettings<'a> {
    /// Jiankongbao callback token; when set, every push must carry a matching `token`.
    pub callback_token: Option<&'a str>,
    /// Sentry client secret; when set, `Sentry-Hook-Signature` must be its HMAC of the body.
    pub client_secret: Option<&'a str>,
    /// CloudWatch through SNS: check the message signature (on unless the
    /// integration was created with `"verify_signature": false`).
    pub verify_signature: bool,
}

impl Default for ParseSettings<'_> {
    fn default() -> Self {
        ParseSettings {
            callback_token: None,
            client_secret: None,
            verify_signature: true,
        }
    }
}

/// The body as a JSON value: JSON as is, a form as an object of strings.
pub fn body_to_value(body: &PushBody<'_>) -> ApiResult<Value> {
    match body.format {
        BodyFormat::Json => serde_json::from_slice(body.bytes).map_err(|e| syntax_error(&e)),
        BodyFormat::Form => {
            let map: serde_json::Map<String, Value> = form_urlencoded::parse(body.bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            Ok(Value::Object(map))
        }
    }
}

/// Deserialize a payload, naming the offending field on failure
/// (`event.level: expected an integer, got a string`).
pub fn from_value<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(&e))
}

/// Parse a body straight into a vendor struct. JSON is deserialized from the
/// bytes directly (no intermediate `Value`): this is the push path's hot spot.
pub fn decode<T: DeserializeOwned>(body: &PushBody<'_>) -> ApiResult<T> {
    match body.format {
        BodyFormat::Json => {
            let first = body.bytes.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return Err(ApiError::invalid("body: expected a JSON object"));
            }
            let mut de = serde_json::Deserializer::from_slice(body.bytes);
            let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| path_error(&e))?;
            de.end().map_err(|e| syntax_error(&e))?;
            Ok(value)
        }
        BodyFormat::Form => from_value(body_to_value(body)?),
    }
}

/// Longest field path a message repeats; longer ones are cut (a sender's key
/// can be any length).
const MAX_PATH_CHARS: usize = 128;

/// serde's own messages quote the value that was sent (`invalid type: string
/// "s3cret", expected u32`), and that value may be a secret. This keeps the
/// place and the rule and drops the value: `callback_token: expected a string,
/// got a number`.
pub fn path_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    if !inner.is_data() {
        return syntax_error(inner);
    }
    let path = e.path().to_string();
    let path = if path == "." || path.is_empty() {
        "body".to_string()
    } else {
        truncate_chars(&path, MAX_PATH_CHARS)
    };
    ApiError::invalid(data_error_message(&path, &message_of(inner)))
}

/// A body that is not JSON at all. serde_json's syntax messages are fixed
/// texts (`expected value`, `trailing characters`) and never quote the input.
pub fn syntax_error(e: &serde_json::Error) -> ApiError {
    if e.is_data() {
        // Only reachable for a `Value` target, which takes any JSON; keep the rule anyway.
        return ApiError::invalid("body: does not have the expected shape");
    }
    ApiError::invalid(format!(
        "body: not valid JSON ({} at line {} column {})",
        message_of(e),
        e.line(),
        e.column()
    ))
}

/// The message without serde_json's ` at line L column C` suffix.
fn message_of(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&position).unwrap_or(&full).to_string()
}

/// Rewrites serde's data messages so that they never carry the sent value.
/// Messages that are not serde's own come from this crate's decoders
/// ([`flex`]), which name kinds, never values, and pass through.
fn data_error_message(path: &str, message: &str) -> String {
    // serde appends the expectation last; a sent value that itself contains
    // ", expected " sits before it, so the last occurrence is serde's.
    let expected = message
        .rfind(", expected ")
        .map(|i| plain_expectation(&message[i + ", expected ".len()..]));
    let child = |field: &str| {
        if path == "body" {
            truncate_chars(field, MAX_PATH_CHARS)
        } else {
            format!("{path}.{}", truncate_chars(field, MAX_PATH_CHARS))
        }
    };
    if message.starts_with("unknown field `") {
        // serde_path_to_error puts the unknown field itself at the end of the path.
        return match expected {
            Some(e) => format!("{path}: unknown field; expected {e}"),
            None => format!("{path}: unknown field; this object takes no fields"),
        };
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{}: required", child(field));
    }
    if let Some(field) = message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{}: given more than once", child(field));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let expected = expected.unwrap_or_else(|| "another type".into());
        return match sent_kind(rest) {
            Some(kind) => format!("{path}: expected {expected}, got {kind}"),
            None => format!("{path}: expected {expected}"),
        };
    }
    if message.starts_with("invalid value: ")
        || message.starts_with("invalid length ")
        || message.starts_with("unknown variant `")
    {
        return match expected {
            Some(e) => format!("{path}: expected {e}"),
            None => format!("{path}: not an accepted value"),
        };
    }
    format!("{path}: {message}")
}

/// The kind of the sent value from the start of serde's `Unexpected` text
/// (`string "..."`, `integer `5``, `map`), without the value.
fn sent_kind(unexpected: &str) -> Option<&'static str> {
    const KINDS: [(&str, &str); 9] = [
        ("string", "a string"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("map", "an object"),
        ("sequence", "a list"),
        ("null", "null"),
        ("unit value", "null"),
        ("char", "a string"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| unexpected.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// serde's expectation in the words of the API (`u32` is an integer range,
/// `struct Grouping` an object, `` `none` or `rules` `` stays as it is).
fn plain_expectation(expected: &str) -> String {
    let text = match expected {
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "u64" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a borrowed string" => "a string",
        "a sequence" => "a list",
        "a map" => "an object",
        other if other.starts_with("struct ") => "an object",
        other if other.starts_with("tuple") => "a list",
        other => other,
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn every_endpoint_names_its_own_kind() {
        // A function binary serves the endpoint its module declares: a module
        // declaring another kind would answer for the wrong path and key.
        for kind in IntegrationKind::ALL {
            assert_eq!(kind.endpoint().kind, kind, "{}", kind.slug());
        }
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only the errors matter here
    struct Inner {
        count: u32,
        #[serde(default)]
        method: Option<crate::model::GroupingMethod>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        token: Option<String>,
        inner: Option<Inner>,
        list: Option<Vec<u8>>,
        #[serde(default, deserialize_with = "flex::opt_i64")]
        lenient: Option<i64>,
    }

    const SECRET: &str = "s3cr3t-4815162342";

    /// (body, the message expected), each body carrying the secret (or its
    /// number, 4815162342) where it does not belong.
    fn cases() -> Vec<(String, &'static str)> {
        vec![
            (
                r#"{"token": 4815162342}"#.into(),
                "token: expected a string, got a number",
            ),
            (
                format!(r#"{{"inner": {{"count": "{SECRET}"}}}}"#),
                "inner.count: expected an integer from 0 to 4294967295, got a string",
            ),
            (
                r#"{"inner": {"count": -4815162342}}"#.into(),
                "inner.count: expected an integer from 0 to 4294967295",
            ),
            (
                r#"{"inner": {"count": 4815162342}}"#.into(),
                "inner.count: expected an integer from 0 to 4294967295",
            ),
            (
                format!(r#"{{"inner": {{"count": 1, "method": "{SECRET}"}}}}"#),
                "inner.method: expected `none` or `rules`",
            ),
            (
                format!(r#"{{"list": "{SECRET}"}}"#),
                "list: expected a list, got a string",
            ),
            (
                r#"{"list": [1, 4815162342]}"#.into(),
                "list[1]: expected an integer from 0 to 255",
            ),
            (
                format!(r#"{{"lenient": "{SECRET}"}}"#),
                "lenient: expected an integer, got a string",
            ),
            (
                format!(
                    r#"{{"token": "x, expected {SECRET}", "inner": {{"count": "a, expected {SECRET}"}}}}"#
                ),
                "inner.count: expected an integer from 0 to 4294967295, got a string",
            ),
            (r#"{"inner": {}}"#.into(), "inner.count: required"),
            (
                r#"{"autoClose": true}"#.into(),
                "autoClose: unknown field; expected one of `token`, `inner`, `list`, `lenient`",
            ),
            (
                r#"{"inner": {"count": 1, "Count": 2}}"#.into(),
                "inner.Count: unknown field; expected `count` or `method`",
            ),
        ]
    }

    #[test]
    fn messages_name_the_field_and_rule_never_the_sent_value() {
        for (body, expected) in cases() {
            // Through a Value (management bodies, forms) and from bytes (push bodies).
            let value: Value = serde_json::from_str(&body).unwrap();
            let from_tree = from_value::<Outer>(value).unwrap_err();
            let from_bytes = decode::<Outer>(&PushBody {
                bytes: body.as_bytes(),
                format: BodyFormat::Json,
            })
            .unwrap_err();
            for err in [from_tree, from_bytes] {
                assert_eq!(err.code(), "InvalidParameter");
                assert_eq!(err.message(), expected, "{body}");
                assert!(!err.message().contains("s3cr3t"), "{body}");
                assert!(!err.message().contains("4815162342"), "{body}");
            }
        }
    }

    #[test]
    fn syntax_errors_say_where_without_quoting() {
        let body = format!(r#"{{"token": "{SECRET}" x}}"#);
        let err = decode::<Outer>(&PushBody {
            bytes: body.as_bytes(),
            format: BodyFormat::Json,
        })
        .unwrap_err();
        assert!(
            err.message().starts_with("body: not valid JSON ("),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("s3cr3t"));
        let trailing = format!(r#"{{"token": "t"}} {SECRET}"#);
        let err = decode::<Outer>(&PushBody {
            bytes: trailing.as_bytes(),
            format: BodyFormat::Json,
        })
        .unwrap_err();
        assert!(
            err.message().contains("trailing characters"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("s3cr3t"));
    }

    #[test]
    fn very_long_field_names_are_cut() {
        let body = format!(r#"{{"{}": 1}}"#, "k".repeat(5000));
        let err = from_value::<Outer>(serde_json::from_str(&body).unwrap()).unwrap_err();
        assert!(err.message().chars().count() < 400, "{}", err.message());
    }
}
