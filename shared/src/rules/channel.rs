//! A channel's rules (SPEC 7.3–7.5): drop, silence and inhibit. Each list is
//! ordered by position; each rule is compiled once and cached with its
//! channel. Deciding is pure: the store supplies the candidate sources of an
//! inhibition and persists what these functions answer.

use serde::{Deserialize, Serialize};

use crate::domain::mark::Mark;
use crate::domain::outcome::Outcome;
use crate::error::{ApiError, ApiResult};
use crate::rules::conditions::{ConditionGroups, Field, Matcher, Subject};
use crate::rules::silence::{SilenceTime, Window};

/// At most this many rules of each kind per channel (and per integration).
pub const MAX_RULES_PER_KIND: usize = 50;
pub const NAME_MAX_CHARS: usize = 64;
pub const MAX_EQUALS: usize = 10;
/// A source alert inhibits while its last event is at most this old.
pub const INHIBIT_SOURCE_FRESH_SECS: i64 = 600;
/// Quick silences last 1 minute to 7 days.
pub const QUICK_SILENCE_MAX_MINUTES: i64 = 10_080;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    #[default]
    Mark,
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    Drop,
    Silence,
    Inhibit,
}

impl RuleKind {
    pub fn slug(self) -> &'static str {
        match self {
            RuleKind::Drop => "drop",
            RuleKind::Silence => "silence",
            RuleKind::Inhibit => "inhibit",
        }
    }

    /// From the path segment `drop-rules`, `silence-rules`, `inhibit-rules`.
    pub fn from_path(segment: &str) -> Option<Self> {
        match segment {
            "drop-rules" => Some(RuleKind::Drop),
            "silence-rules" => Some(RuleKind::Silence),
            "inhibit-rules" => Some(RuleKind::Inhibit),
            _ => None,
        }
    }
}

fn enabled_default() -> bool {
    true
}

/// A drop rule, as stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRule {
    pub name: String,
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionGroups>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRule {
    pub name: String,
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionGroups>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    #[serde(default)]
    pub action: RuleAction,
    pub time: SilenceTime,
    /// Set on a quick silence: the incident it was made from. Not accepted
    /// from the API's create and patch bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    pub name: String,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    pub source_if: ConditionGroups,
    pub target_if: ConditionGroups,
    pub equals: Vec<String>,
    #[serde(default)]
    pub action: RuleAction,
}

/// One stored rule of any kind: its id and position with the kind's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRule {
    pub rule_id: String,
    pub position: i64,
    pub body: RuleBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleBody {
    Drop(DropRule),
    Silence(SilenceRule),
    Inhibit(InhibitRule),
}

impl RuleBody {
    pub fn kind(&self) -> RuleKind {
        match self {
            RuleBody::Drop(_) => RuleKind::Drop,
            RuleBody::Silence(_) => RuleKind::Silence,
            RuleBody::Inhibit(_) => RuleKind::Inhibit,
        }
    }

    /// Parse a JSON body of `kind`, refusing unknown fields by name.
    pub fn from_json(kind: RuleKind, value: serde_json::Value) -> ApiResult<Self> {
        use crate::json::from_value;
        Ok(match kind {
            RuleKind::Drop => RuleBody::Drop(from_value(value)?),
            RuleKind::Silence => RuleBody::Silence(from_value(value)?),
            RuleKind::Inhibit => RuleBody::Inhibit(from_value(value)?),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            RuleBody::Drop(r) => serde_json::to_value(r),
            RuleBody::Silence(r) => serde_json::to_value(r),
            RuleBody::Inhibit(r) => serde_json::to_value(r),
        };
        value.unwrap_or(serde_json::Value::Null)
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> ApiResult<()> {
        self.compile("").map(|_| ())
    }

    /// What the rule's patterns compile to, for the channel's regex budget.
    pub fn compiled_bytes(&self) -> ApiResult<usize> {
        Ok(match self.compile("")? {
            CompiledRule::Drop(m) => m.compiled_bytes(),
            CompiledRule::Silence(s) => s.matcher.compiled_bytes(),
            CompiledRule::Inhibit(i) => i.source.compiled_bytes() + i.target.compiled_bytes(),
        })
    }

    fn compile(&self, rule_id: &str) -> ApiResult<CompiledRule> {
        let check_name = |name: &str| {
            let chars = name.chars().count();
            if chars == 0 || chars > NAME_MAX_CHARS {
                Err(ApiError::invalid(format!(
                    "name: 1 to {NAME_MAX_CHARS} characters"
                )))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            RuleBody::Drop(r) => {
                check_name(&r.name)?;
                CompiledRule::Drop(Matcher::compile_optional(r.conditions.as_ref(), "if")?)
            }
            RuleBody::Silence(r) => {
                check_name(&r.name)?;
                CompiledRule::Silence(CompiledSilence {
                    rule_id: rule_id.to_string(),
                    matcher: Matcher::compile_optional(r.conditions.as_ref(), "if")?,
                    window: r.time.compile("time")?,
                    action: r.action,
                })
            }
            RuleBody::Inhibit(r) => {
                check_name(&r.name)?;
                if r.equals.is_empty() || r.equals.len() > MAX_EQUALS {
                    return Err(ApiError::invalid(format!("equals: 1 to {MAX_EQUALS} keys")));
                }
                let equals = r
                    .equals
                    .iter()
                    .enumerate()
                    .map(|(i, k)| Field::parse(k, &format!("equals[{i}]"), EQUALS_FIELDS))
                    .collect::<ApiResult<Vec<_>>>()?;
                CompiledRule::Inhibit(CompiledInhibit {
                    rule_id: rule_id.to_string(),
                    source: Matcher::compile(&r.source_if, "source_if")?,
                    target: Matcher::compile(&r.target_if, "target_if")?,
                    equals,
                    action: r.action,
                })
            }
        })
    }

    pub fn enabled(&self) -> bool {
        match self {
            RuleBody::Drop(r) => r.enabled,
            RuleBody::Silence(r) => r.enabled,
            RuleBody::Inhibit(r) => r.enabled,
        }
    }
}

/// Fields an inhibit rule's `equals` may compare.
pub const EQUALS_FIELDS: &[&str] = &["severity", "title", "description", "alert_key"];

enum CompiledRule {
    Drop(Matcher),
    Silence(CompiledSilence),
    Inhibit(CompiledInhibit),
}

#[derive(Clone, Debug)]
pub struct CompiledSilence {
    pub rule_id: String,
    matcher: Matcher,
    window: Window,
    pub action: RuleAction,
}

#[derive(Clone, Debug)]
pub struct CompiledInhibit {
    pub rule_id: String,
    source: Matcher,
    target: Matcher,
    equals: Vec<Field>,
    pub action: RuleAction,
}

impl CompiledInhibit {
    pub fn targets(&self, subject: &Subject<'_>) -> bool {
        self.target.matches(subject)
    }

    /// Whether an alert with this subject is a source of this rule.
    pub fn is_source(&self, subject: &Subject<'_>) -> bool {
        self.source.matches(subject)
    }

    /// The values of `equals` of an alert, in order (a missing label is
    /// empty), joined unambiguously: a source and a target agree on every
    /// one exactly when their `equals_values` are equal.
    pub fn equals_values(&self, subject: &Subject<'_>) -> String {
        let parts: Vec<&str> = self
            .equals
            .iter()
            .map(|f| subject.get(f).unwrap_or(""))
            .collect();
        crate::hashing::digest_parts(&parts)
    }

    /// Where this rule's sources with the given `equals_values` are kept
    /// (Alertmanager's inhibition index: one lookup per rule finds every
    /// source that agrees with a target).
    pub fn source_partition(&self, channel_id: &str, equals_values: &str) -> String {
        format!(
            "INH#{channel_id}#{}#{}",
            self.rule_id,
            &equals_values[..32.min(equals_values.len())]
        )
    }
}

/// What the rules say about an event that would open (or keep) an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Store nothing; answer `silenced` or `inhibited`.
    Drop(Outcome),
    Mark(Mark),
}

/// A channel's enabled rules, compiled, in position order.
#[derive(Clone, Debug, Default)]
pub struct ChannelRules {
    drop: Vec<Matcher>,
    silence: Vec<CompiledSilence>,
    pub inhibit: Vec<CompiledInhibit>,
}

impl ChannelRules {
    /// Compile the enabled rules. Stored rules were checked when saved, so a
    /// rule that no longer compiles (a time zone gone from the bundled
    /// database) is skipped and logged rather than failing every push.
    pub fn compile(rules: &[StoredRule]) -> Self {
        let mut sorted: Vec<&StoredRule> = rules.iter().filter(|r| r.body.enabled()).collect();
        sorted.sort_by_key(|r| r.position);
        let mut out = ChannelRules::default();
        for rule in sorted {
            match rule.body.compile(&rule.rule_id) {
                Ok(CompiledRule::Drop(m)) => out.drop.push(m),
                Ok(CompiledRule::Silence(s)) => out.silence.push(s),
                Ok(CompiledRule::Inhibit(i)) => out.inhibit.push(i),
                Err(e) => tracing::warn!(
                    error = e.message(),
                    "a stored rule no longer compiles; skipped"
                ),
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.silence.is_empty() && self.inhibit.is_empty()
    }

    pub fn dropped(&self, subject: &Subject<'_>) -> bool {
        self.drop.iter().any(|m| m.matches(subject))
    }

    /// The first silence that applies to `subject` at `now_s`.
    pub fn silence(&self, subject: &Subject<'_>, now_s: i64) -> Option<&CompiledSilence> {
        self.silence
            .iter()
            .find(|s| s.window.contains(now_s) && s.matcher.matches(subject))
    }

    /// The inhibit rules whose target this event is.
    pub fn inhibit_rules_for(&self, subject: &Subject<'_>) -> Vec<&CompiledInhibit> {
        self.inhibit.iter().filter(|r| r.targets(subject)).collect()
    }
}

/// The silence verdict for an event (pure, no storage): `Pass` when none applies.
pub fn silence_verdict(silence: Option<&CompiledSilence>) -> Verdict {
    match silence {
        None => Verdict::Pass,
        Some(s) if s.action == RuleAction::Drop => Verdict::Drop(Outcome::Silenced),
        Some(s) => Verdict::Mark(Mark::Silenced(s.rule_id.clone())),
    }
}

/// Whether a stored silence rule is active at `now_s` (listed as `active`).
pub fn silence_active(rule: &SilenceRule, now_s: i64) -> bool {
    rule.enabled && rule.time.compile("time").is_ok_and(|w| !w.expired(now_s))
}
