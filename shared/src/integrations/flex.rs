//! Lenient field decoders: real senders send numbers as strings and the other
//! way round. Use with `#[serde(deserialize_with = "...")]`.

use serde::de::{Deserializer, Error};
use serde::Deserialize;
use serde_json::Value;

/// A string, a number or a bool, as text. `null` and absence are refused here;
/// wrap in `Option` via [`opt_string`] for optional fields.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    scalar_to_string(&v)
        .ok_or_else(|| D::Error::custom(format!("expected a string or number, got {}", kind(&v))))
}

pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    scalar_to_string(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a string or number, got {}", kind(&v))))
}

/// An integer given as a number or a numeric string.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_i64(&v)
        .ok_or_else(|| D::Error::custom(format!("expected an integer, got {}", kind(&v))))
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() || v.as_str() == Some("") {
        return Ok(None);
    }
    value_to_i64(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected an integer, got {}", kind(&v))))
}

pub fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
