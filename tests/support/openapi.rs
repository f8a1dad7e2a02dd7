//! Holds the service to its OpenAPI document (`GET /api/openapi.json`):
//! every answer the test helpers receive is checked against the schema the
//! document gives for its route, method and status, and every request body
//! the service accepted against the operation's request schema. A mismatch
//! fails the test that made the call, so the document cannot drift.
//!
//! The checker covers the subset of JSON Schema the document uses (and
//! `tests/openapi.rs` refuses any other keyword): `type` (one or a list, so
//! `["string", "null"]` is nullable), `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `const`, `anyOf`, `oneOf` and
//! `$ref` to anywhere in the document; `description` is prose.

use std::sync::LazyLock;

use serde_json::Value;
use shared::intake::http::{media_type, Inbound, Outbound};

/// Schema keywords the checker understands; `description` is prose only.
pub const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "$ref",
    "description",
];

pub static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(shared::api::openapi::DOCUMENT).expect("openapi.json is JSON")
});

/// One request and the answer the service gave it.
pub struct Exchange<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    pub request_content_type: Option<&'a str>,
    pub request_body: &'a [u8],
    pub status: u16,
    pub response_content_type: &'a str,
    pub response_body: &'a str,
}

impl<'a> Exchange<'a> {
    pub fn of(req: &'a Inbound, out: &'a Outbound) -> Self {
        Exchange {
            method: &req.method,
            path: &req.path,
            request_content_type: req.get_header("content-type"),
            request_body: &req.body,
            status: out.status,
            response_content_type: out.content_type(),
            response_body: &out.body,
        }
    }
}

/// Panics, naming the route and the first mismatch, when the exchange
/// does not fit the document.
pub fn assert_conforms(exchange: &Exchange<'_>) {
    if let Err(problem) = check(exchange) {
        panic!(
            "OpenAPI document and service disagree on {} {} (HTTP {}): {problem}\nanswer: {}",
            exchange.method,
            exchange.path,
            exchange.status,
            truncate(exchange.response_body)
        );
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(600).collect()
}

/// The document's path template for a concrete path: the one with the most
/// literal segments among those that fit (`{name}` takes one segment).
pub fn path_template(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let path = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    DOCUMENT["paths"]
        .as_object()?
        .keys()
        .filter(|template| shared::api::pattern_matches(template, &segments))
        .max_by_key(|template| template.split('/').filter(|s| !s.starts_with('{')).count())
        .map(String::as_str)
}

pub fn check(ex: &Exchange<'_>) -> Result<(), String> {
    let doc = &*DOCUMENT;
    let error_schema = json_pointer(doc, "#/components/schemas/ErrorEnvelope")?;
    let Some(template) = path_template(ex.path) else {
        // A path the service has no route for: only a refusal may answer it.
        if ex.status >= 400 {
            return check_json(doc, error_schema, ex.response_body, "answer");
        }
        return Err("the path is not in the document, yet it was answered with success".into());
    };
    let path_item = &doc["paths"][template];
    let method = ex.method.to_ascii_lowercase();
    let operation = match path_item.get(&method) {
        Some(op) => op,
        None => {
            // A method the route does not take: refused with the shape any of
            // the route's operations refuses with.
            if ex.status < 400 {
                return Err(format!(
                    "{template} documents no {method} operation, yet it succeeded"
                ));
            }
            path_item
                .as_object()
                .and_then(|ops| ops.values().find(|op| op.get("responses").is_some()))
                .ok_or_else(|| format!("{template} has no operation"))?
        }
    };
    let responses = &operation["responses"];
    let status = ex.status.to_string();
    let range = format!("{}XX", &status[..1]);
    let response = [status.as_str(), range.as_str(), "default"]
        .iter()
        .find_map(|key| responses.get(*key))
        .ok_or_else(|| format!("{template} {method} documents no response for HTTP {status}"))?;
    let response = resolve(doc, response)?;
    let media = media_type(Some(ex.response_content_type)).unwrap_or_default();
    let schema = response["content"]
        .get(&media)
        .map(|content| &content["schema"])
        .ok_or_else(|| {
            format!("{template} {method} HTTP {status}: the document has no {media} content")
        })?;
    if media == "application/json" {
        check_json(doc, schema, ex.response_body, "answer")?;
    } else if ex.response_body.is_empty() {
        return Err(format!("{template} {method}: an empty {media} answer"));
    }
    // A request the service accepted must fit the request schema.
    let accepted = (200..300).contains(&ex.status);
    let request_media = media_type(ex.request_content_type);
    if accepted && !ex.request_body.is_empty() {
        let request_media = request_media.unwrap_or_default();
        let content = operation["requestBody"]["content"]
            .get(&request_media)
            .ok_or_else(|| {
                format!("{template} {method} accepted a {request_media} body the document does not list")
            })?;
        if request_media == "application/json" {
            let body = String::from_utf8_lossy(ex.request_body);
            check_json(doc, &content["schema"], &body, "request")?;
        }
    }
    Ok(())
}

fn check_json(doc: &Value, schema: &Value, text: &str, what: &str) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the {what} is not JSON: {e}"))?;
    validate(doc, schema, &value, what)
}

fn json_pointer<'d>(doc: &'d Value, reference: &str) -> Result<&'d Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("$ref {reference}: only references into this document"))?;
    doc.pointer(pointer)
        .ok_or_else(|| format!("$ref {reference}: nothing there"))
}

fn resolve<'d>(doc: &'d Value, mut node: &'d Value) -> Result<&'d Value, String> {
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => node = json_pointer(doc, reference)?,
            None => return Ok(node),
        }
    }
    Err("$ref chain longer than 16".into())
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// Validates `value` against `schema`; the error names the JSON path (`answer.data.items[0].title`).
pub fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema)?;
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let mut reasons = Vec::new();
        for option in options {
            match validate(doc, option, value, at) {
                Ok(()) => {
                    reasons.clear();
                    break;
                }
                Err(reason) => reasons.push(reason),
            }
        }
        if !reasons.is_empty() {
            return Err(format!(
                "{at}: matches none of anyOf: {}",
                reasons.join(" | ")
            ));
        }
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = options
            .iter()
            .filter(|option| validate(doc, option, value, at).is_ok())
            .count();
        if fits != 1 {
            return Err(format!(
                "{at}: matches {fits} of oneOf's schemas, not exactly one"
            ));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!(
                "{at}: {value} is not one of {}",
                Value::Array(allowed.clone())
            ));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(format!("{at}: {value} is not {constant}"));
        }
    }
    match schema.get("type") {
        Some(Value::String(name)) if !type_matches(name, value) => {
            return Err(format!("{at}: expected {name}, got {}", kind_of(value)));
        }
        Some(Value::Array(names))
            if !names
                .iter()
                .any(|n| n.as_str().is_some_and(|n| type_matches(n, value))) =>
        {
            return Err(format!(
                "{at}: expected one of {}, got {}",
                Value::Array(names.clone()),
                kind_of(value)
            ));
        }
        _ => {}
    }
    if let Value::Object(map) = value {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                return Err(format!("{at}: required field {name} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in map {
            let place = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(doc, property, field, &place)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{place}: a field the document does not list"))
                    }
                    Some(extra @ Value::Object(_)) => validate(doc, extra, field, &place)?,
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(doc, item_schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
