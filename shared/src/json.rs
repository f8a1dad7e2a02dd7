//! JSON decoding that names the offending field and the rule, never the
//! value that was sent (a value may be a secret). Every layer that parses a
//! caller's JSON (pushes, rules, the management API) goes through here.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::event::truncate_chars;
use crate::error::ApiError;
use crate::error::ApiResult;

/// Deserialize a payload, naming the offending field on failure
/// (`event.level: expected an integer, got a string`).
pub fn from_value<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(&e))
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
