//! One parser per integration, each a pure function from the request body to
//! standard events (Vector-style: adding an integration is one file here, one
//! registration line in [`IntegrationKind`], one function crate, one route).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::intake::event::ParsedEvent;

pub mod aliyun_prometheus;
pub mod blueking;
pub mod common;
pub mod flex;
pub mod jiankongbao;
pub mod standard;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    Standard,
    Blueking,
    AliyunPrometheus,
    Jiankongbao,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 4] = [
        IntegrationKind::Standard,
        IntegrationKind::Blueking,
        IntegrationKind::AliyunPrometheus,
        IntegrationKind::Jiankongbao,
    ];

    /// The path segment in `/event/push/alert/{slug}` and the `kind` in the API.
    pub fn slug(self) -> &'static str {
        match self {
            IntegrationKind::Standard => "standard",
            IntegrationKind::Blueking => "blueking",
            IntegrationKind::AliyunPrometheus => "aliyun-prometheus",
            IntegrationKind::Jiankongbao => "jiankongbao",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// Senders that may post HTML-form bodies.
    pub fn accepts_form(self) -> bool {
        matches!(self, IntegrationKind::Jiankongbao)
    }

    pub fn parse(
        self,
        body: &PushBody<'_>,
        settings: &ParseSettings<'_>,
    ) -> ApiResult<Vec<ParsedEvent>> {
        match self {
            IntegrationKind::Standard => standard::parse(body, settings),
            IntegrationKind::Blueking => blueking::parse(body, settings),
            IntegrationKind::AliyunPrometheus => aliyun_prometheus::parse(body, settings),
            IntegrationKind::Jiankongbao => jiankongbao::parse(body, settings),
        }
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

/// Per-integration configuration a parser may need.
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseSettings<'a> {
    /// Jiankongbao callback token; when set, every push must carry a matching `token`.
    pub callback_token: Option<&'a str>,
}

/// The body as a JSON value: JSON as is, a form as an object of strings.
pub fn body_to_value(body: &PushBody<'_>) -> ApiResult<Value> {
    match body.format {
        BodyFormat::Json => serde_json::from_slice(body.bytes)
            .map_err(|e| ApiError::invalid(format!("body: not valid JSON ({e})"))),
        BodyFormat::Form => {
            let map: serde_json::Map<String, Value> = form_urlencoded::parse(body.bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            Ok(Value::Object(map))
        }
    }
}

/// Deserialize a payload, naming the offending field on failure
/// (`event.level: invalid type: ...`).
pub fn from_value<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(path_error)
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
            let value: T = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
            de.end().map_err(|e| {
                ApiError::invalid(format!("body: not valid JSON after the object ({e})"))
            })?;
            Ok(value)
        }
        BodyFormat::Form => from_value(body_to_value(body)?),
    }
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    if path == "." || path.is_empty() {
        ApiError::invalid(format!("body: {inner}"))
    } else {
        ApiError::invalid(format!("{path}: {inner}"))
    }
}
