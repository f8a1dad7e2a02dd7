//! The one condition language (SPEC section 6), used by routes and by every
//! rule (enrichment, pipeline, drop, silence, inhibit): `{key, oper: IN|NOTIN,
//! vals}` over `severity`, `title`, `description`, `alert_key`,
//! `integration_id` and `labels.NAME`. A value is exact, a `*`/`?` wildcard,
//! a `/regex/`, `cidr:RANGE` or `num:OP:N`; `IN ["*"]` means present.
//! Conditions in a list are ANDed; a list of lists is ORed. Compiled once per
//! rule and cached with its channel or integration.

use std::collections::BTreeMap;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::domain::event::{is_valid_label_key, StandardEvent};
use crate::error::{ApiError, ApiResult};

pub const MAX_VALUES: usize = 100;
pub const MAX_VALUE_CHARS: usize = 1024;
/// Enough for a quick silence: severity plus an event's 50 labels.
pub const MAX_CONDITIONS: usize = 64;
/// Compiled-regex size cap, so one pattern cannot eat a function's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// What all the patterns of one channel's rules (or one integration's
/// routes, enrichment and pipeline) may compile to together (SPEC 15): the
/// per-pattern cap times the counts allowed would be gigabytes.
pub const REGEX_BUDGET_BYTES: usize = 4 << 20;

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

/// What conditions look at: an event (with the integration it came through),
/// or an open alert (inhibition sources).
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub severity: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub alert_key: &'a str,
    pub integration_id: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> Subject<'a> {
    pub fn of_event(ev: &'a StandardEvent, integration_id: Option<&'a str>) -> Self {
        Subject {
            severity: ev.event_status.as_str(),
            title: &ev.title,
            description: &ev.description,
            alert_key: &ev.alert_key,
            integration_id,
            labels: &ev.labels,
        }
    }

    pub fn get(&self, field: &Field) -> Option<&'a str> {
        match field {
            Field::Severity => Some(self.severity),
            Field::Title => Some(self.title),
            Field::Description => Some(self.description),
            Field::AlertKey => Some(self.alert_key),
            Field::IntegrationId => self.integration_id,
            Field::Label(name) => self.labels.get(name).map(String::as_str),
        }
    }
}

/// A field conditions, enrichment sources and inhibit `equals` can name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Severity,
    Title,
    Description,
    AlertKey,
    IntegrationId,
    Label(String),
}

impl Field {
    /// Parse `key`; `allowed` lists the plain names the caller accepts
    /// (`labels.NAME` always is), and the error names them.
    pub fn parse(key: &str, at: &str, allowed: &[&str]) -> ApiResult<Field> {
        let field = match key {
            "severity" => Some(Field::Severity),
            "title" => Some(Field::Title),
            "description" => Some(Field::Description),
            "alert_key" => Some(Field::AlertKey),
            "integration_id" => Some(Field::IntegrationId),
            other => other
                .strip_prefix("labels.")
                .filter(|name| is_valid_label_key(name))
                .map(|name| Field::Label(name.to_string())),
        };
        match field {
            Some(Field::Label(name)) => Ok(Field::Label(name)),
            Some(f) if allowed.contains(&key) => Ok(f),
            _ => Err(ApiError::invalid(format!(
                "{at}: must be {} or labels.NAME (NAME matching ^[a-zA-Z_][a-zA-Z0-9_]*$)",
                allowed.join(", ")
            ))),
        }
    }
}

/// Every field a condition may test.
pub const CONDITION_FIELDS: &[&str] = &[
    "severity",
    "title",
    "description",
    "alert_key",
    "integration_id",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum NumOp {
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug)]
enum Pattern {
    /// `*` alone: the field is present.
    Present,
    Exact(String),
    Regex(Regex),
    Cidr(IpAddr, u8),
    Num(NumOp, f64),
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Present => true,
            Pattern::Exact(e) => e == value,
            Pattern::Regex(r) => r.is_match(value),
            Pattern::Cidr(net, prefix) => value
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_range(ip, *net, *prefix)),
            Pattern::Num(op, bound) => value.trim().parse::<f64>().is_ok_and(|v| match op {
                NumOp::Gt => v > *bound,
                NumOp::Ge => v >= *bound,
                NumOp::Lt => v < *bound,
                NumOp::Le => v <= *bound,
            }),
        }
    }
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[derive(Clone, Debug)]
struct Compiled {
    field: Field,
    negate: bool,
    patterns: Vec<Pattern>,
}

impl Compiled {
    fn matches(&self, subject: &Subject<'_>) -> bool {
        // A missing field is in no set: IN is false, NOTIN is true.
        let found = subject
            .get(&self.field)
            .is_some_and(|v| self.patterns.iter().any(|p| p.matches(v)));
        found != self.negate
    }
}

/// Compiled conditions, ready to test events against. The default matches everything.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    any_of: Vec<Vec<Compiled>>,
}

/// The size of a pattern's compiled program: its Thompson NFA, the thing
/// the regex crate's size limit bounds.
pub(crate) fn program_bytes(pattern: &str) -> usize {
    use regex_automata::nfa::thompson;
    thompson::Compiler::new()
        .configure(thompson::Config::new().nfa_size_limit(Some(REGEX_SIZE_LIMIT)))
        .build(pattern)
        .map_or(REGEX_SIZE_LIMIT, |nfa| nfa.memory_usage())
}

/// Refuse when `bytes` of patterns in `place`, beside `others` already
/// stored, would pass [`REGEX_BUDGET_BYTES`].
pub fn check_regex_budget(place: &str, bytes: usize, others: usize, whose: &str) -> ApiResult<()> {
    if bytes + others <= REGEX_BUDGET_BYTES {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "{place}: its patterns compile to {} KiB; with the rest of the {whose} that is {} KiB, over the {whose}'s budget of {} KiB (use fewer or simpler regexes and wildcards)",
        bytes.div_ceil(1024),
        (bytes + others).div_ceil(1024),
        REGEX_BUDGET_BYTES / 1024
    )))
}

pub(crate) fn regex(pattern: &str) -> Result<Regex, regex::Error> {
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
pub(crate) fn regex_error(place: &str, e: &regex::Error) -> ApiError {
    match e {
        regex::Error::CompiledTooBig(limit) => ApiError::invalid(format!(
            "{place}: the pattern compiles to more than {limit} bytes"
        )),
        _ => ApiError::invalid(format!(
            "{place}: not a valid regex (Rust regex syntax between slashes)"
        )),
    }
}

/// `/pattern/` as a compiled regex, or the error naming `place`.
pub(crate) fn slashed_regex(value: &str, place: &str) -> ApiResult<Regex> {
    match value.strip_prefix('/').and_then(|v| v.strip_suffix('/')) {
        Some(inner) => regex(inner).map_err(|e| regex_error(place, &e)),
        None => Err(ApiError::invalid(format!(
            "{place}: must be a regex between slashes, like /db-(?P<value>\\d+)/"
        ))),
    }
}

fn cidr(range: &str, place: &str) -> ApiResult<Pattern> {
    let bad = || {
        ApiError::invalid(format!(
            "{place}: not a CIDR range (cidr:ADDRESS/PREFIX, e.g. cidr:10.0.0.0/8 or cidr:fd00::/8)"
        ))
    };
    let (addr, prefix) = range.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok(Pattern::Cidr(addr, prefix))
}

fn number(spec: &str, place: &str) -> ApiResult<Pattern> {
    let bad = || {
        ApiError::invalid(format!(
            "{place}: not a number comparison (num:gt|ge|lt|le:NUMBER, e.g. num:gt:5)"
        ))
    };
    let (op, bound) = spec.split_once(':').ok_or_else(bad)?;
    let op = match op {
        "gt" => NumOp::Gt,
        "ge" => NumOp::Ge,
        "lt" => NumOp::Lt,
        "le" => NumOp::Le,
        _ => return Err(bad()),
    };
    let bound: f64 = bound.trim().parse().map_err(|_| bad())?;
    if !bound.is_finite() {
        return Err(bad());
    }
    Ok(Pattern::Num(op, bound))
}

fn pattern(v: &str, place: &str) -> ApiResult<Pattern> {
    if v == "*" {
        Ok(Pattern::Present)
    } else if let Some(range) = v.strip_prefix("cidr:") {
        cidr(range, place)
    } else if let Some(spec) = v.strip_prefix("num:") {
        number(spec, place)
    } else if v.len() >= 2 && v.starts_with('/') && v.ends_with('/') {
        Ok(Pattern::Regex(slashed_regex(v, place)?))
    } else if v.contains(['*', '?']) {
        Ok(Pattern::Regex(
            wildcard(v).map_err(|e| regex_error(place, &e))?,
        ))
    } else {
        Ok(Pattern::Exact(v.to_string()))
    }
}

fn compile_one(c: &Condition, at: &str) -> ApiResult<Compiled> {
    let field = Field::parse(&c.key, &format!("{at}.key"), CONDITION_FIELDS)?;
    if c.vals.is_empty() || c.vals.len() > MAX_VALUES {
        return Err(ApiError::invalid(format!(
            "{at}.vals: 1 to {MAX_VALUES} values, got {}",
            c.vals.len()
        )));
    }
    let mut patterns = Vec::with_capacity(c.vals.len());
    for (i, v) in c.vals.iter().enumerate() {
        let place = format!("{at}.vals[{i}]");
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::invalid(format!(
                "{place}: at most {MAX_VALUE_CHARS} characters"
            )));
        }
        patterns.push(pattern(v, &place)?);
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

    /// What its regexes and wildcards compile to, for the regex budget.
    /// Measured at save only (it compiles each pattern once more).
    pub fn compiled_bytes(&self) -> usize {
        self.any_of
            .iter()
            .flatten()
            .flat_map(|c| &c.patterns)
            .map(|p| match p {
                Pattern::Regex(r) => program_bytes(r.as_str()),
                _ => 0,
            })
            .sum()
    }

    /// A rule's optional `if`: absent matches every event.
    pub fn compile_optional(groups: Option<&ConditionGroups>, field: &str) -> ApiResult<Self> {
        match groups {
            Some(g) => Self::compile(g, field),
            None => Ok(Matcher::default()),
        }
    }

    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|all| all.iter().all(|c| c.matches(subject)))
    }

    pub fn matches_event(&self, ev: &StandardEvent) -> bool {
        self.matches(&Subject::of_event(ev, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventStatus;

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
        assert!(m(vec![vec![cond("labels.env", Oper::In, &["prod-east"])]]).matches_event(&e));
        assert!(!m(vec![vec![cond("labels.env", Oper::In, &["prod"])]]).matches_event(&e));
        assert!(m(vec![vec![cond("labels.env", Oper::In, &["prod-*"])]]).matches_event(&e));
        assert!(m(vec![vec![cond("labels.env", Oper::In, &["prod-eas?"])]]).matches_event(&e));
        assert!(!m(vec![vec![cond("labels.env", Oper::In, &["prod?"])]]).matches_event(&e));
        assert!(m(vec![vec![cond("title", Oper::In, &["/db-\\d+$/"])]]).matches_event(&e));
        assert!(m(vec![vec![cond(
            "severity",
            Oper::In,
            &["Critical", "Warning"]
        )]])
        .matches_event(&e));
        assert!(m(vec![vec![cond("description", Oper::NotIn, &["/memory/"])]]).matches_event(&e));
        // Wildcard special characters other than * and ? are literal.
        assert!(!m(vec![vec![cond("title", Oper::In, &["CPU.high*"])]]).matches_event(&e));
    }

    #[test]
    fn cidr_num_presence_and_the_key_fields() {
        let e = ev(
            "t",
            &[
                ("ip", "10.1.2.3"),
                ("ip6", "fd00::1"),
                ("load", "7.5"),
                ("n", "x"),
            ],
        );
        let one = |key: &str, oper, vals: &[&str]| m(vec![vec![cond(key, oper, vals)]]);
        assert!(one("labels.ip", Oper::In, &["cidr:10.0.0.0/8"]).matches_event(&e));
        assert!(!one("labels.ip", Oper::In, &["cidr:10.1.3.0/24"]).matches_event(&e));
        assert!(one("labels.ip", Oper::In, &["cidr:10.1.2.3/32"]).matches_event(&e));
        assert!(one("labels.ip", Oper::In, &["cidr:0.0.0.0/0"]).matches_event(&e));
        assert!(one("labels.ip6", Oper::In, &["cidr:fd00::/8"]).matches_event(&e));
        assert!(!one("labels.ip6", Oper::In, &["cidr:10.0.0.0/8"]).matches_event(&e));
        assert!(!one("labels.n", Oper::In, &["cidr:10.0.0.0/8"]).matches_event(&e));
        assert!(one("labels.load", Oper::In, &["num:gt:7"]).matches_event(&e));
        assert!(one("labels.load", Oper::In, &["num:ge:7.5"]).matches_event(&e));
        assert!(!one("labels.load", Oper::In, &["num:lt:7.5"]).matches_event(&e));
        assert!(one("labels.load", Oper::In, &["num:le:7.5"]).matches_event(&e));
        assert!(!one("labels.n", Oper::In, &["num:gt:0"]).matches_event(&e));
        assert!(one("labels.n", Oper::NotIn, &["num:gt:0"]).matches_event(&e));
        assert!(one("labels.n", Oper::In, &["*"]).matches_event(&e));
        assert!(!one("labels.gone", Oper::In, &["*"]).matches_event(&e));
        assert!(one("labels.gone", Oper::NotIn, &["*"]).matches_event(&e));
        assert!(one("alert_key", Oper::In, &["k"]).matches_event(&e));
        let via = |id| Subject::of_event(&e, id);
        let by_integration = one("integration_id", Oper::In, &["abc"]);
        assert!(by_integration.matches(&via(Some("abc"))));
        assert!(!by_integration.matches(&via(Some("abd"))));
        assert!(!by_integration.matches(&via(None)));
        for bad in [
            "cidr:10.0.0.7",
            "cidr:10.9.9.9/33",
            "cidr:fd00::/129",
            "cidr:x/8",
            "num:gtt",
            "num:eq:1",
            "num:gt:inf",
            "num:gt:NaN",
        ] {
            let err = Matcher::compile(&vec![vec![cond("labels.a", Oper::In, &[bad])]], "if")
                .unwrap_err();
            assert!(
                err.message().starts_with("if[0][0].vals[0]"),
                "{bad}: {}",
                err.message()
            );
            assert!(!err.message().contains(bad), "the value is not echoed");
        }
        assert!(
            Matcher::default().matches_event(&e),
            "no conditions: every event"
        );
    }

    #[test]
    fn missing_label_is_in_no_set() {
        let e = ev("t", &[]);
        assert!(!m(vec![vec![cond("labels.env", Oper::In, &["*"])]]).matches_event(&e));
        assert!(m(vec![vec![cond("labels.env", Oper::NotIn, &["prod"])]]).matches_event(&e));
    }

    #[test]
    fn lists_are_anded_and_lists_of_lists_ored() {
        let e = ev("t", &[("env", "prod"), ("team", "db")]);
        let prod = cond("labels.env", Oper::In, &["prod"]);
        let web = cond("labels.team", Oper::In, &["web"]);
        let db = cond("labels.team", Oper::In, &["db"]);
        assert!(!m(vec![vec![prod.clone(), web.clone()]]).matches_event(&e));
        assert!(m(vec![vec![prod.clone(), db]]).matches_event(&e));
        assert!(m(vec![vec![web], vec![prod]]).matches_event(&e));
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

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn regexes_and_wildcards_count_toward_the_budget_and_exact_values_do_not() {
        let cond = |vals: &[&str]| Condition {
            key: "title".into(),
            oper: Oper::In,
            vals: vals.iter().map(|v| v.to_string()).collect(),
        };
        let exact =
            Matcher::compile(&vec![vec![cond(&["disk full", "cidr:10.0.0.0/8"])]], "if").unwrap();
        assert_eq!(exact.compiled_bytes(), 0);
        let small = Matcher::compile(&vec![vec![cond(&["/^db-\\d+$/", "web-*"])]], "if").unwrap();
        assert!(small.compiled_bytes() > 0);
        let big = Matcher::compile(&vec![vec![cond(&["/\\w{20}/"])]], "if").unwrap();
        assert!(
            big.compiled_bytes() > 100 * small.compiled_bytes(),
            "{} vs {}",
            big.compiled_bytes(),
            small.compiled_bytes()
        );
        assert!(check_regex_budget("x", REGEX_BUDGET_BYTES, 0, "channel's rules").is_ok());
        let err = check_regex_budget("drop-rules/r1", REGEX_BUDGET_BYTES, 1, "channel's rules")
            .unwrap_err();
        assert!(
            err.message().starts_with("drop-rules/r1: "),
            "{}",
            err.message()
        );
    }
}
