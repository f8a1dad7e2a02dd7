//! An integration's own rules, run before routing (SPEC 7.1 and 7.2): label
//! enrichment (`extract`, `compose`, `map`, `drop_labels`) and the pipeline
//! (`title_reset`, `description_reset`, `severity_reset`, `drop`). Both lists
//! are stored on the integration, compiled once per instance and version.

use std::collections::BTreeMap;
use std::future::Future;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::domain::event::{
    is_valid_label_key, keep_within_label_budget, truncate_chars, EventStatus, StandardEvent,
    DESCRIPTION_MAX_CHARS, LABELS_MAX, LABEL_VALUE_MAX_CHARS, TITLE_MAX_CHARS,
};
use crate::domain::template::{render_title, TemplateContext};
use crate::error::{ApiError, ApiResult};
use crate::ids::check_id;
use crate::rules::channel::{MAX_RULES_PER_KIND, NAME_MAX_CHARS};
use crate::rules::conditions::{slashed_regex, ConditionGroups, Field, Matcher, Subject};

/// Template text of `compose`, `title_reset` and `description_reset`.
pub const TEMPLATE_MAX_CHARS: usize = 2048;
pub const MAX_DROP_LABELS: usize = 50;

fn enabled_default() -> bool {
    true
}

/// One enrichment or pipeline rule as the API takes and shows it: the fields
/// its `kind` uses, the rest absent (and refused by name when present).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionGroups>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub override_existing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// Which list a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleList {
    Enrichment,
    Pipeline,
}

impl RuleList {
    pub fn name(self) -> &'static str {
        match self {
            RuleList::Enrichment => "enrichment",
            RuleList::Pipeline => "pipeline",
        }
    }

    /// The kinds of this list and, per kind, the fields it requires and allows.
    fn kinds(
        self,
    ) -> &'static [(
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    )] {
        match self {
            RuleList::Enrichment => &[
                ("extract", &["source", "pattern", "label"], &["override"]),
                ("compose", &["label", "template"], &["override"]),
                ("map", &["table_id"], &["override"]),
                ("drop_labels", &["labels"], &[]),
            ],
            RuleList::Pipeline => &[
                ("title_reset", &["title"], &[]),
                ("description_reset", &["description"], &[]),
                ("severity_reset", &["severity"], &[]),
                ("drop", &[], &[]),
            ],
        }
    }
}

impl IntegrationRule {
    fn present_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |name: &'static str, present: bool| {
            if present {
                out.push(name);
            }
        };
        note("source", self.source.is_some());
        note("pattern", self.pattern.is_some());
        note("label", self.label.is_some());
        note("override", self.override_existing.is_some());
        note("template", self.template.is_some());
        note("table_id", self.table_id.is_some());
        note("labels", self.labels.is_some());
        note("title", self.title.is_some());
        note("description", self.description.is_some());
        note("severity", self.severity.is_some());
        out
    }
}

/// What a `map` rule needs from the store: the result labels of a row.
pub trait MappingLookup {
    /// The table's source label names, or `None` when the table is gone.
    fn source_labels(&self, table_id: &str)
        -> impl Future<Output = ApiResult<Option<Vec<String>>>>;
    /// The result labels of the row whose source values are `values`.
    fn lookup(
        &self,
        table_id: &str,
        values: &[&str],
    ) -> impl Future<Output = ApiResult<Option<BTreeMap<String, String>>>>;
}

#[derive(Clone, Debug)]
enum Step {
    Extract {
        source: Field,
        pattern: Regex,
        label: String,
        override_existing: bool,
    },
    Compose {
        label: String,
        template: String,
        override_existing: bool,
    },
    Map {
        table_id: String,
        override_existing: bool,
    },
    DropLabels(Vec<String>),
    TitleReset(String),
    DescriptionReset(String),
    SeverityReset(EventStatus),
    Drop,
}

/// A compiled list, in order.
#[derive(Clone, Debug, Default)]
pub struct CompiledRules {
    steps: Vec<(Matcher, Step)>,
}

fn text(value: &Option<String>, at: &str, max: usize) -> ApiResult<String> {
    let v = value.clone().unwrap_or_default();
    let chars = v.chars().count();
    if chars == 0 || chars > max {
        return Err(ApiError::invalid(format!("{at}: 1 to {max} characters")));
    }
    Ok(v)
}

fn label_name(value: &Option<String>, at: &str) -> ApiResult<String> {
    match value {
        Some(name) if is_valid_label_key(name) => Ok(name.clone()),
        _ => Err(ApiError::invalid(format!(
            "{at}: a label name matching ^[a-zA-Z_][a-zA-Z0-9_]*$"
        ))),
    }
}

/// Check a list and give every rule an id; the error names `{list}.rules[i].field`.
pub fn prepare(list: RuleList, rules: &mut [IntegrationRule]) -> ApiResult<CompiledRules> {
    if rules.len() > MAX_RULES_PER_KIND {
        return Err(ApiError::invalid(format!(
            "rules: at most {MAX_RULES_PER_KIND} rules"
        )));
    }
    for rule in rules.iter_mut() {
        match &rule.rule_id {
            Some(id) => check_id("rules[].rule_id", id)?,
            None => rule.rule_id = Some(crate::hashing::random_hex(16)?),
        }
    }
    compile(list, rules)
}

/// What a (valid) list's regexes and wildcards compile to, for the
/// integration's regex budget: its conditions and its `extract` patterns.
pub fn compiled_bytes(rules: &[IntegrationRule]) -> usize {
    rules
        .iter()
        .map(|rule| {
            let conditions = Matcher::compile_optional(rule.conditions.as_ref(), "if")
                .map_or(0, |m| m.compiled_bytes());
            let pattern = rule
                .pattern
                .as_deref()
                .and_then(|p| p.strip_prefix('/')?.strip_suffix('/'))
                .map_or(0, crate::rules::conditions::program_bytes);
            conditions + pattern
        })
        .sum()
}

/// Compile a stored (or prepared) list.
pub fn compile(list: RuleList, rules: &[IntegrationRule]) -> ApiResult<CompiledRules> {
    let mut steps = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        let Some((_, required, optional)) = list.kinds().iter().find(|(k, _, _)| *k == rule.kind)
        else {
            let names: Vec<&str> = list.kinds().iter().map(|(k, _, _)| *k).collect();
            return Err(ApiError::invalid(format!(
                "{at}.kind: must be one of {}",
                names.join(", ")
            )));
        };
        let present = rule.present_fields();
        if let Some(extra) = present
            .iter()
            .find(|f| !required.contains(f) && !optional.contains(f))
        {
            return Err(ApiError::invalid(format!(
                "{at}.{extra}: not a field of a {} rule",
                rule.kind
            )));
        }
        if let Some(missing) = required.iter().find(|f| !present.contains(f)) {
            return Err(ApiError::invalid(format!(
                "{at}.{missing}: required for a {} rule",
                rule.kind
            )));
        }
        if let Some(name) = &rule.name {
            let chars = name.chars().count();
            if chars == 0 || chars > NAME_MAX_CHARS {
                return Err(ApiError::invalid(format!(
                    "{at}.name: 1 to {NAME_MAX_CHARS} characters"
                )));
            }
        }
        let matcher = Matcher::compile_optional(rule.conditions.as_ref(), &format!("{at}.if"))?;
        let override_existing = rule.override_existing.unwrap_or(false);
        let step = match rule.kind.as_str() {
            "extract" => Step::Extract {
                source: Field::parse(
                    rule.source.as_deref().unwrap_or_default(),
                    &format!("{at}.source"),
                    &["title", "description"],
                )?,
                pattern: slashed_regex(
                    rule.pattern.as_deref().unwrap_or_default(),
                    &format!("{at}.pattern"),
                )?,
                label: label_name(&rule.label, &format!("{at}.label"))?,
                override_existing,
            },
            "compose" => Step::Compose {
                label: label_name(&rule.label, &format!("{at}.label"))?,
                template: text(
                    &rule.template,
                    &format!("{at}.template"),
                    TEMPLATE_MAX_CHARS,
                )?,
                override_existing,
            },
            "map" => {
                let table_id = rule.table_id.clone().unwrap_or_default();
                check_id(&format!("{at}.table_id"), &table_id)?;
                Step::Map {
                    table_id,
                    override_existing,
                }
            }
            "drop_labels" => {
                let labels = rule.labels.clone().unwrap_or_default();
                if labels.is_empty() || labels.len() > MAX_DROP_LABELS {
                    return Err(ApiError::invalid(format!(
                        "{at}.labels: 1 to {MAX_DROP_LABELS} label names"
                    )));
                }
                for (j, l) in labels.iter().enumerate() {
                    label_name(&Some(l.clone()), &format!("{at}.labels[{j}]"))?;
                }
                Step::DropLabels(labels)
            }
            "title_reset" => Step::TitleReset(text(
                &rule.title,
                &format!("{at}.title"),
                TEMPLATE_MAX_CHARS,
            )?),
            "description_reset" => Step::DescriptionReset(text(
                &rule.description,
                &format!("{at}.description"),
                TEMPLATE_MAX_CHARS,
            )?),
            "severity_reset" => match rule.severity.as_deref() {
                Some("Critical") => Step::SeverityReset(EventStatus::Critical),
                Some("Warning") => Step::SeverityReset(EventStatus::Warning),
                Some("Info") => Step::SeverityReset(EventStatus::Info),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{at}.severity: must be Critical, Warning or Info"
                    )))
                }
            },
            _ => Step::Drop,
        };
        if rule.enabled {
            steps.push((matcher, step));
        }
    }
    Ok(CompiledRules { steps })
}

/// Add `value` as label `name` unless it exists and `override_existing` is
/// off, or the event already has the most labels it may.
fn set_label(ev: &mut StandardEvent, name: &str, value: String, override_existing: bool) {
    let exists = ev.labels.contains_key(name);
    if (exists && !override_existing) || (!exists && ev.labels.len() >= LABELS_MAX) {
        return;
    }
    if value.is_empty() {
        return;
    }
    ev.labels.insert(
        name.to_string(),
        truncate_chars(&value, LABEL_VALUE_MAX_CHARS),
    );
}

fn render(template: &str, ev: &StandardEvent, integration_name: &str) -> String {
    render_title(
        template,
        &TemplateContext {
            labels: &ev.labels,
            description: &ev.description,
            event_status: ev.event_status.as_str(),
            alert_key: &ev.alert_key,
            integration_name,
        },
    )
}

impl CompiledRules {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Run the enrichment list over `ev`; each rule sees the previous one's labels.
    pub async fn enrich<L: MappingLookup>(
        &self,
        ev: &mut StandardEvent,
        integration_id: &str,
        integration_name: &str,
        mappings: &L,
    ) -> ApiResult<()> {
        for (matcher, step) in &self.steps {
            if !matcher.matches(&Subject::of_event(ev, Some(integration_id))) {
                continue;
            }
            match step {
                Step::Extract {
                    source,
                    pattern,
                    label,
                    override_existing,
                } => {
                    let subject = Subject::of_event(ev, Some(integration_id));
                    let value = subject.get(source).and_then(|text| {
                        pattern.captures(text).map(|c| {
                            c.name("value")
                                .or_else(|| c.get(0))
                                .map_or(String::new(), |m| m.as_str().to_string())
                        })
                    });
                    if let Some(value) = value {
                        set_label(ev, label, value, *override_existing);
                    }
                }
                Step::Compose {
                    label,
                    template,
                    override_existing,
                } => {
                    let value = render(template, ev, integration_name);
                    set_label(ev, label, value, *override_existing);
                }
                Step::Map {
                    table_id,
                    override_existing,
                } => {
                    let Some(sources) = mappings.source_labels(table_id).await? else {
                        continue;
                    };
                    let values: Option<Vec<&str>> = sources
                        .iter()
                        .map(|s| ev.labels.get(s).map(String::as_str))
                        .collect();
                    let Some(values) = values else { continue };
                    if let Some(result) = mappings.lookup(table_id, &values).await? {
                        for (name, value) in result {
                            set_label(ev, &name, value, *override_existing);
                        }
                    }
                }
                Step::DropLabels(names) => {
                    for name in names {
                        ev.labels.remove(name);
                    }
                }
                _ => {}
            }
        }
        keep_within_label_budget(&mut ev.labels);
        Ok(())
    }

    /// Run the pipeline over a non-`Ok` event; `false` means a `drop` rule took it.
    pub fn run_pipeline(
        &self,
        ev: &mut StandardEvent,
        integration_id: &str,
        integration_name: &str,
    ) -> bool {
        for (matcher, step) in &self.steps {
            if !matcher.matches(&Subject::of_event(ev, Some(integration_id))) {
                continue;
            }
            match step {
                Step::TitleReset(template) => {
                    let title = render(template, ev, integration_name);
                    if !title.trim().is_empty() {
                        ev.title = truncate_chars(&title, TITLE_MAX_CHARS);
                    }
                }
                Step::DescriptionReset(template) => {
                    ev.description = truncate_chars(
                        &render(template, ev, integration_name),
                        DESCRIPTION_MAX_CHARS,
                    );
                }
                Step::SeverityReset(severity) => ev.event_status = *severity,
                Step::Drop => return false,
                _ => {}
            }
        }
        true
    }
}

/// A short digest of both lists: the key lookup item carries it, and
/// instances recompile when it changes.
pub fn rules_version(
    enrichment: &[IntegrationRule],
    pipeline: &[IntegrationRule],
) -> Option<String> {
    if enrichment.is_empty() && pipeline.is_empty() {
        return None;
    }
    let json = serde_json::to_string(&(enrichment, pipeline)).unwrap_or_default();
    Some(crate::hashing::sha256_hex(&json)[..16].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cmdb;

    impl MappingLookup for Cmdb {
        async fn source_labels(&self, table_id: &str) -> ApiResult<Option<Vec<String>>> {
            Ok((table_id == "t1").then(|| vec!["host".to_string()]))
        }
        async fn lookup(
            &self,
            _: &str,
            values: &[&str],
        ) -> ApiResult<Option<BTreeMap<String, String>>> {
            Ok((values == ["db-01"]).then(|| {
                BTreeMap::from([
                    ("owner".to_string(), "alice".to_string()),
                    ("env".to_string(), "from-cmdb".to_string()),
                ])
            }))
        }
    }

    fn rules(list: RuleList, json: serde_json::Value) -> CompiledRules {
        let mut parsed: Vec<IntegrationRule> = serde_json::from_value(json).unwrap();
        prepare(list, &mut parsed).unwrap()
    }

    fn event(title: &str, labels: &[(&str, &str)]) -> StandardEvent {
        StandardEvent {
            title: title.into(),
            event_status: EventStatus::Warning,
            alert_key: "k".into(),
            description: "d".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            event_time_ms: 1,
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn enrichment_rules_see_each_others_labels_and_respect_override() {
        let enrichment = rules(
            RuleList::Enrichment,
            serde_json::json!([
                {"kind": "extract", "source": "title", "pattern": "/on (?P<value>\\S+)/", "label": "host"},
                {"kind": "extract", "source": "title", "pattern": "/CPU|disk/", "label": "what"},
                {"kind": "map", "table_id": "t1"},
                {"kind": "map", "table_id": "gone"},
                {"kind": "compose", "label": "summary", "template": "[TPL]${owner}@${host}"},
                {"kind": "compose", "label": "env", "template": "composed", "override": true,
                 "if": [[{"key": "labels.owner", "oper": "IN", "vals": ["alice"]}]]},
                {"kind": "drop_labels", "labels": ["secret"]},
                {"kind": "compose", "label": "off", "template": "x", "enabled": false}
            ]),
        );
        let mut ev = event("CPU high on db-01", &[("env", "prod"), ("secret", "s")]);
        block_on(enrichment.enrich(&mut ev, "i", "n", &Cmdb)).unwrap();
        let labels: Vec<(&str, &str)> = ev
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("env", "composed"),
                ("host", "db-01"),
                ("owner", "alice"),
                ("summary", "alice@db-01"),
                ("what", "CPU")
            ]
        );
    }

    #[test]
    fn the_pipeline_runs_top_down_and_drop_stops_it() {
        let pipeline = rules(
            RuleList::Pipeline,
            serde_json::json!([
                {"kind": "title_reset", "title": "[TPL]${host} is down"},
                {"kind": "severity_reset", "severity": "Critical", "if": [[{"key": "title", "oper": "IN", "vals": ["/down$/"]}]]},
                {"kind": "description_reset", "description": "[TPL]{{.EventStatus}} now"},
                {"kind": "drop", "if": [[{"key": "labels.host", "oper": "IN", "vals": ["test-*"]}]]}
            ]),
        );
        let mut ev = event("x", &[("host", "db-01")]);
        assert!(pipeline.run_pipeline(&mut ev, "i", "n"));
        assert_eq!(ev.title, "db-01 is down");
        assert_eq!(ev.event_status, EventStatus::Critical);
        assert_eq!(ev.description, "Critical now");
        let mut test = event("x", &[("host", "test-1")]);
        assert!(!pipeline.run_pipeline(&mut test, "i", "n"));
    }
}
