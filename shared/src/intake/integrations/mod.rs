//! One parser per integration, each a pure function from the request to
//! standard events behind the one [`Source`] interface (Vector-style: adding
//! an integration is one file here, one registration line in
//! [`IntegrationKind`], one function crate, one route).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::event::ParsedEvent;
use crate::error::{ApiError, ApiResult};

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

pub use crate::json::{from_value, path_error, syntax_error};
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
    /// CloudWatch through SNS: the only topics accepted (empty: any).
    pub sns_topic_arns: &'a [String],
    /// CloudWatch through SNS: the receipt time and the window a
    /// `Notification`'s `Timestamp` must fall in (`None`: not checked, for
    /// parsing tests of fixed fixtures; the push path always sets it).
    pub sns_timestamp: Option<(i64, aws_cloudwatch::TimestampWindow)>,
}

impl Default for ParseSettings<'_> {
    fn default() -> Self {
        ParseSettings {
            callback_token: None,
            client_secret: None,
            verify_signature: true,
            sns_topic_arns: &[],
            sns_timestamp: None,
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
