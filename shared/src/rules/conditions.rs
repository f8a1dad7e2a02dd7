//! The one condition language (SPEC section 6), written once and used by
//! routing now and by the channel rules (exclusion, silence, inhibition)
//! later: `{key, oper: IN|NOTIN, vals}` over `severity`, `title`,
//! `description` and `labels.NAME`; a value is exact, a `*`/`?` wildcard, or
//! a `/regex/`. Conditions in a list are ANDed; a list of lists is ORed.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::intake::event::{is_valid_label_key, StandardEvent};

pub const MAX_VALUES: usize = 100;
pub const MAX_VALUE_CHARS: usize = 1024;
pub const MAX_CONDITIONS: usize = 50;
/// Compiled-regex size cap, so one pattern cannot eat a function's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Oper {
    #[serde(rename = "IN")]
    In,
    #[serde(rename = "NOTIN")]
    NotIn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub key: String,
    pub oper: Oper,
    pub vals: Vec<String>,
}

/// ORed lists of ANDed conditions.
pub type ConditionGroups = Vec<Vec<Condition>>;

#[derive(Clone, Debug)]
enum Field {
    Severity,
    Title,
    Description,
    Label(String),
}

#[derive(Clone, Debug)]
enum Pattern {
    Exact(String),
    Regex(Regex),
}

#[derive(Clone, Debug)]
struct Compiled {
    field: Field,
    negate: bool,
    patterns: Vec<Pattern>,
}

impl Compiled {
    fn matches(&self, ev: &StandardEvent) -> bool {
        let value = match &self.field {
            Field::Severity => Some(ev.event_status.as_str()),
            Field::Title => Some(ev.title.as_str()),
            Field::Description => Some(ev.description.as_str()),
            Field::Label(name) => ev.labels.get(name).map(String::as_str),
        };
        // A missing label is in no set: IN is false, NOTIN is true.
        let found = value.is_some_and(|v| {
            self.patterns.iter().any(|p| match p {
                Pattern::Exact(e) => e == v,
                Pattern::Regex(r) => r.is_match(v),
            })
        });
        found != self.negate
    }
}

/// Compiled conditions, ready to test events against.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    any_of: Vec<Vec<Compiled>>,
}

fn regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// `*` matches any run of characters, `?` one character; the rest is literal; anchored.
fn wildcard(value: &str) -> Result<Regex, regex::Error> {
    let mut pattern = String::from("^");
    for c in value.chars() {
        match c {
            '*' => pattern.push_str(".*"),
            '?' => pattern.push('.'),
            other => pattern.push_str(&regex::escape(&other.to_string())),
        }
    }
    pattern.push('$');
    regex(&pattern)
}

/// The regex crate's messages quote the pattern, so only the rule is named.
fn regex_error(place: &str, e: &regex::Error) -> ApiError {
    match e {
        regex::Error::CompiledTooBig(limit) => ApiError::invalid(format!(
            "{place}: the pattern compiles to more than {limit} bytes"
        )),
        _ => ApiError::invalid(format!(
            "{place}: not a valid regex (Rust regex syntax between slashes)"
        )),
    }
}

fn compile_one(c: &Condition, at: &str) -> ApiResult<Compiled> {
    let field = match c.key.as_str() {
        "severity" => Field::Severity,
        "title" => Field::Title,
        "description" => Field::Description,
        other => match other.strip_prefix("labels.") {
            Some(name) if is_valid_label_key(name) => Field::Label(name.to_string()),
            _ => {
                return Err(ApiError::invalid(format!(
                    "{at}.key: must be severity, title, description or labels.NAME (NAME matching ^[a-zA-Z_][a-zA-Z0-9_]*$)"
                )))
            }
        },
    };
    if c.vals.is_empty() || c.vals.len() > MAX_VALUES {
        return Err(ApiError::invalid(format!(
            "{at}.vals: 1 to {MAX_VALUES} values, got {}",
            c.vals.len()
        )));
    }
    let mut patterns = Vec::with_capacity(c.vals.len());
    for (i, v) in c.vals.iter().enumerate() {
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::invalid(format!(
                "{at}.vals[{i}]: at most {MAX_VALUE_CHARS} characters"
            )));
        }
        let place = format!("{at}.vals[{i}]");
        let pattern = if v.len() >= 2 && v.starts_with('/') && v.ends_with('/') {
            Pattern::Regex(regex(&v[1..v.len() - 1]).map_err(|e| regex_error(&place, &e))?)
        } else if v.contains(['*', '?']) {
            Pattern::Regex(wildcard(v).map_err(|e| regex_error(&place, &e))?)
        } else {
            Pattern::Exact(v.clone())
        };
        patterns.push(pattern);
    }
    Ok(Compiled {
        field,
        negate: c.oper == Oper::NotIn,
        patterns,
    })
}

impl Matcher {
    /// Compile, or say which condition (`{field}[i][j]`) is wrong and why.
    pub fn compile(groups: &ConditionGroups, field: &str) -> ApiResult<Self> {
        if groups.is_empty() {
            return Err(ApiError::invalid(format!(
                "{field}: needs at least one list of conditions"
            )));
        }
        let total: usize = groups.iter().map(Vec::len).sum();
        if total > MAX_CONDITIONS {
            return Err(ApiError::invalid(format!(
                "{field}: at most {MAX_CONDITIONS} conditions, got {total}"
            )));
        }
        let mut any_of = Vec::with_capacity(groups.len());
        for (i, all) in groups.iter().enumerate() {
            if all.is_empty() {
                return Err(ApiError::invalid(format!(
                    "{field}[{i}]: an empty list of conditions"
                )));
            }
            let compiled = all
                .iter()
                .enumerate()
                .map(|(j, c)| compile_one(c, &format!("{field}[{i}][{j}]")))
                .collect::<ApiResult<Vec<_>>>()?;
            any_of.push(compiled);
        }
        Ok(Matcher { any_of })
    }

    pub fn matches(&self, ev: &StandardEvent) -> bool {
        self.any_of
            .iter()
            .any(|all| all.iter().all(|c| c.matches(ev)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::event::EventStatus;

    fn ev(title: &str, labels: &[(&str, &str)]) -> StandardEvent {
        StandardEvent {
            title: title.into(),
            event_status: EventStatus::Critical,
            alert_key: "k".into(),
            description: "disk /data full".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            event_time_ms: 1,
        }
    }

    fn cond(key: &str, oper: Oper, vals: &[&str]) -> Condition {
        Condition {
            key: key.into(),
            oper,
            vals: vals.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn m(groups: Vec<Vec<Condition>>) -> Matcher {
        Matcher::compile(&groups, "if").unwrap()
    }

    #[test]
    fn exact_wildcard_and_regex() {
        let e = ev("CPU high on db-01", &[("env", "prod-east")]);
        assert!(m(vec![vec![cond("labels.env", Oper::In, &["prod-east"])]]).matches(&e));
        assert!(!m(vec![vec![cond("labels.env", Oper::In, &["prod"])]]).matches(&e));
        assert!(m(vec![vec![cond("labels.env", Oper::In, &["prod-*"])]]).matches(&e));
        assert!(m(vec![vec![cond("labels.env", Oper::In, &["prod-eas?"])]]).matches(&e));
        assert!(!m(vec![vec![cond("labels.env", Oper::In, &["prod?"])]]).matches(&e));
        assert!(m(vec![vec![cond("title", Oper::In, &["/db-\\d+$/"])]]).matches(&e));
        assert!(m(vec![vec![cond(
            "severity",
            Oper::In,
            &["Critical", "Warning"]
        )]])
        .matches(&e));
        assert!(m(vec![vec![cond("description", Oper::NotIn, &["/memory/"])]]).matches(&e));
        // Wildcard special characters other than * and ? are literal.
        assert!(!m(vec![vec![cond("title", Oper::In, &["CPU.high*"])]]).matches(&e));
    }

    #[test]
    fn missing_label_is_in_no_set() {
        let e = ev("t", &[]);
        assert!(!m(vec![vec![cond("labels.env", Oper::In, &["*"])]]).matches(&e));
        assert!(m(vec![vec![cond("labels.env", Oper::NotIn, &["prod"])]]).matches(&e));
    }

    #[test]
    fn lists_are_anded_and_lists_of_lists_ored() {
        let e = ev("t", &[("env", "prod"), ("team", "db")]);
        let prod = cond("labels.env", Oper::In, &["prod"]);
        let web = cond("labels.team", Oper::In, &["web"]);
        let db = cond("labels.team", Oper::In, &["db"]);
        assert!(!m(vec![vec![prod.clone(), web.clone()]]).matches(&e));
        assert!(m(vec![vec![prod.clone(), db]]).matches(&e));
        assert!(m(vec![vec![web], vec![prod]]).matches(&e));
    }

    #[test]
    fn bad_conditions_name_the_place() {
        let cases = [
            (vec![vec![cond("host", Oper::In, &["a"])]], "if[0][0].key"),
            (vec![vec![cond("title", Oper::In, &[])]], "if[0][0].vals"),
            (
                vec![vec![
                    cond("title", Oper::In, &["a"]),
                    cond("title", Oper::In, &["/(/"]),
                ]],
                "if[0][1].vals[0]",
            ),
            (vec![vec![]], "if[0]"),
            (vec![], "if"),
        ];
        for (groups, place) in cases {
            let err = Matcher::compile(&groups, "if").unwrap_err();
            assert!(
                err.message().starts_with(place),
                "{} vs {place}",
                err.message()
            );
        }
    }

    #[test]
    fn opers_parse_from_json() {
        let c: Condition =
            serde_json::from_str(r#"{"key":"title","oper":"NOTIN","vals":["x"]}"#).unwrap();
        assert_eq!(c.oper, Oper::NotIn);
        assert!(
            serde_json::from_str::<Condition>(r#"{"key":"title","oper":"in","vals":["x"]}"#)
                .is_err()
        );
    }
}
