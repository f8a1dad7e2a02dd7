//! The one interface every integration implements. A source sees the whole
//! request (method, headers, query, body) and its integration's settings, and
//! answers with events, how the answer is shaped, and at most one thing the
//! push handler must do for it (confirm an SNS subscription, acknowledge an
//! incident). Parsing stays pure: anything that needs the network or the
//! table is described here and carried out by [`crate::intake::push`].

use std::collections::HashMap;

use serde_json::Value;

use super::{BodyFormat, ParseSettings, PushBody};
use crate::domain::event::ParsedEvent;
use crate::error::{ApiError, ApiResult};
use crate::intake::http::{respond, Outbound};

/// The request as a source sees it. Header names are lower-case.
#[derive(Clone, Copy, Debug)]
pub struct SourceRequest<'a> {
    pub method: &'a str,
    pub headers: &'a HashMap<String, String>,
    pub query: &'a HashMap<String, String>,
    pub body: PushBody<'a>,
}

impl SourceRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How the success answer is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `{"alert_key", "outcome", ...}` (or `results` when routes fanned it out).
    Single,
    /// Alertmanager-shaped: `{"alert_keys": [...], "results": [...]}`, with
    /// `truncated_alerts` when the sender left alerts out.
    Many { truncated_alerts: u64 },
    /// PagerDuty's own answers (see [`super::pagerduty`]).
    PagerDuty { v1: bool },
}

/// What the push handler does for a source besides applying events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceAction {
    /// Check an SNS message signature before anything else (a bad one is `Unauthorized`).
    VerifySns(SnsSignature),
    /// Check the signature, then confirm the subscription by fetching `subscribe_url`.
    ConfirmSnsSubscription {
        signature: Option<SnsSignature>,
        subscribe_url: String,
    },
    /// Acknowledge the incident of the open alert with this key (PagerDuty `acknowledge`).
    Acknowledge { alert_key: String },
}

/// What a source made of a request.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub events: Vec<ParsedEvent>,
    pub reply: Reply,
    pub action: Option<SourceAction>,
}

impl Parsed {
    /// Events answered in the single-alert shape, nothing else to do.
    pub fn single(events: Vec<ParsedEvent>) -> Self {
        Parsed {
            events,
            reply: Reply::Single,
            action: None,
        }
    }

    /// Alertmanager-shaped events.
    pub fn many(events: Vec<ParsedEvent>, truncated_alerts: u64) -> Self {
        Parsed {
            events,
            reply: Reply::Many { truncated_alerts },
            action: None,
        }
    }
}

const JSON_ONLY: &[(&str, BodyFormat)] = &[("application/json", BodyFormat::Json)];

/// One integration's parser.
pub trait Source: Sync {
    /// The media types the sender may post, and how each body is read.
    fn content_types(&self) -> &'static [(&'static str, BodyFormat)] {
        JSON_ONLY
    }

    /// The integration key: the query's `integration_key` unless the sender
    /// puts it elsewhere (PagerDuty's `routing_key`).
    fn integration_key(&self, req: &SourceRequest<'_>) -> Option<String> {
        query_key(req)
    }

    /// What a push without a key is told: where this sender puts it.
    fn missing_key(&self) -> &'static str {
        "integration_key: missing from the query string"
    }

    /// Events and what the answer must say; pure (no network, no table).
    fn parse(&self, req: &SourceRequest<'_>, settings: &ParseSettings<'_>) -> ApiResult<Parsed>;

    /// The HTTP answer for the push's result (`data` on success).
    fn reply(&self, request_id: &str, result: Result<Value, ApiError>) -> Outbound {
        respond(request_id, result)
    }
}

/// The non-empty `integration_key` query parameter.
pub fn query_key(req: &SourceRequest<'_>) -> Option<String> {
    req.query
        .get("integration_key")
        .filter(|k| !k.is_empty())
        .cloned()
}

/// The body as a JSON value of any kind (object or array), refusing non-JSON
/// without quoting it.
pub fn json_value(body: &PushBody<'_>) -> ApiResult<Value> {
    match body.format {
        BodyFormat::Json => serde_json::from_slice(body.bytes).map_err(|e| super::syntax_error(&e)),
        BodyFormat::Form => super::body_to_value(body),
    }
}

/// What must be checked for one SNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnsSignature {
    pub cert_url: String,
    /// SNS's canonical string for the message type.
    pub string_to_sign: String,
    /// The decoded `Signature`.
    pub signature: Vec<u8>,
    /// `SignatureVersion` 2 (SHA-256); else 1 (SHA-1).
    pub sha256: bool,
}
