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

/// A JSON object of scalar values as `(key, text)` pairs in payload order,
/// without building `serde_json::Value`s (the standard payload's hot path).
/// `null` values are dropped; nested values are refused naming the label.
pub fn opt_scalar_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(String, String)>>, D::Error> {
    use serde::de::{MapAccess, Visitor};
    use std::fmt;

    struct Scalar(Option<String>);

    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: Error>(self, v: &str) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_string<E: Error>(self, v: String) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v)))
                }
                fn visit_i64<E: Error>(self, v: i64) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_u64<E: Error>(self, v: u64) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_f64<E: Error>(self, v: f64) -> Result<Scalar, E> {
                    Ok(Scalar(Some(
                        serde_json::Number::from_f64(v)
                            .map_or_else(|| v.to_string(), |n| n.to_string()),
                    )))
                }
                fn visit_bool<E: Error>(self, v: bool) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_unit<E: Error>(self) -> Result<Scalar, E> {
                    Ok(Scalar(None))
                }
                fn visit_none<E: Error>(self) -> Result<Scalar, E> {
                    Ok(Scalar(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    struct MapVisitor;
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = Option<Vec<(String, String)>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, String)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
            while let Some(key) = map.next_key::<String>()? {
                // The path already ends with the key; the message names the rule.
                let Scalar(value) = map.next_value().map_err(|_| {
                    A::Error::custom("must be a string (numbers and booleans are taken as text)")
                })?;
                if let Some(v) = value {
                    // A repeated key: the last one wins, as in a JSON object.
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = v,
                        None => out.push((key, v)),
                    }
                }
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(MapVisitor)
}
