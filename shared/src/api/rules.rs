//! Management routes for the rules of SPEC 7: a channel's drop, silence and
//! inhibit rules, quick silence from an incident, an integration's
//! enrichment and pipeline lists, and mapping tables.
//!
//! Why one file of about 700 lines (with tests): the rule kinds share the
//! ordering (`position`), the channel's and integration's regex budget and
//! the JSON shaping, and mapping tables exist only to serve the `map`
//! enrichment rule.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::pages;
use super::{json_body, not_found, parse_limit, path_id};
use crate::app::App;
use crate::domain::event::{is_valid_label_key, LABEL_VALUE_MAX_CHARS};
use crate::domain::time::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::intake::http::{media_type, Inbound};
use crate::intake::integrations::from_value;
use crate::rules::channel::{
    silence_active, RuleAction, RuleBody, RuleKind, SilenceRule, StoredRule, MAX_RULES_PER_KIND,
    QUICK_SILENCE_MAX_MINUTES,
};
use crate::rules::conditions::{check_regex_budget, Condition, Oper, MAX_VALUE_CHARS};
use crate::rules::integration::{prepare, IntegrationRule, RuleList};
use crate::rules::routing::CompiledRoutes;
use crate::rules::silence::SilenceTime;
use crate::store::config::mapping::{MappingRow, MappingTable};

/// At most this many rows per mapping table.
pub const MAX_MAPPING_ROWS: usize = 50_000;
/// A CSV upload's body: Lambda takes at most 6 MB per request.
pub const MAX_CSV_BYTES: usize = 6 * 1024 * 1024;

fn rule_json(rule: &StoredRule, now_s: i64) -> Value {
    let mut value = rule.body.to_json();
    if let Value::Object(map) = &mut value {
        map.insert("rule_id".into(), json!(rule.rule_id));
        map.insert("position".into(), json!(rule.position));
        if let RuleBody::Silence(s) = &rule.body {
            map.insert("active".into(), json!(silence_active(s, now_s)));
        }
    }
    value
}

async fn require_channel(app: &App, channel_id: &str) -> ApiResult<()> {
    match app.store.get_channel(channel_id).await? {
        Some(_) => Ok(()),
        None => Err(not_found("channel_id", "channel")),
    }
}

/// `position` is where a rule goes in its list (0 = first); it is not part
/// of the rule's own fields.
fn take_position(body: &mut Map<String, Value>) -> ApiResult<Option<usize>> {
    match body.remove("position") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|p| Some(p as usize))
            .ok_or_else(|| ApiError::invalid("position: a whole number from 0")),
    }
}

fn refuse_internal_fields(body: &Map<String, Value>) -> ApiResult<()> {
    for field in ["rule_id", "incident_id", "active"] {
        if body.contains_key(field) {
            return Err(ApiError::invalid(format!(
                "{field}: set by the service, not accepted in a request"
            )));
        }
    }
    Ok(())
}

/// Place `rule_id` at `position` and renumber; answers the rules whose
/// position changed.
fn reorder(rules: &mut Vec<StoredRule>, rule_id: &str, position: usize) -> Vec<(String, i64)> {
    let Some(at) = rules.iter().position(|r| r.rule_id == rule_id) else {
        return Vec::new();
    };
    let moved = rules.remove(at);
    let to = position.min(rules.len());
    rules.insert(to, moved);
    let mut changed = Vec::new();
    for (i, rule) in rules.iter_mut().enumerate() {
        let i = i as i64;
        if rule.position != i {
            rule.position = i;
            changed.push((rule.rule_id.clone(), i));
        }
    }
    changed
}

/// SPEC 15: a channel's rules of every kind, `rule` in place of `rule_id`'s
/// stored version, compile to at most the regex budget. Three queries, only
/// when the rule has regexes or wildcards at all.
async fn check_channel_budget(
    app: &App,
    channel_id: &str,
    rule: &RuleBody,
    rule_id: Option<&str>,
    now_s: i64,
) -> ApiResult<()> {
    let bytes = rule.compiled_bytes()?;
    if bytes == 0 {
        return Ok(());
    }
    let mut others = 0;
    for kind in [RuleKind::Drop, RuleKind::Silence, RuleKind::Inhibit] {
        for stored in app.store.list_rules(channel_id, kind, now_s).await? {
            if Some(stored.rule_id.as_str()) != rule_id {
                others += stored.body.compiled_bytes().unwrap_or(0);
            }
        }
    }
    let place = match rule_id {
        Some(id) => format!("{}-rules/{id}", rule.kind().slug()),
        None => format!("{}-rules (the new rule)", rule.kind().slug()),
    };
    check_regex_budget(&place, bytes, others, "channel's rules")
}

pub(super) async fn create_rule(
    app: &App,
    channel_id: &str,
    kind: RuleKind,
    req: &Inbound,
) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    let Value::Object(mut body) = json_body(req)? else {
        return Err(ApiError::invalid("body: expected a JSON object"));
    };
    refuse_internal_fields(&body)?;
    let position = take_position(&mut body)?;
    let rule = RuleBody::from_json(kind, Value::Object(body))?;
    rule.validate()?;
    require_channel(app, channel_id).await?;
    let now_s = now_ms() / 1000;
    let mut rules = app.store.list_rules(channel_id, kind, now_s).await?;
    if rules.len() >= MAX_RULES_PER_KIND {
        return Err(ApiError::invalid(format!(
            "{}-rules: a channel has at most {MAX_RULES_PER_KIND} rules of each kind",
            kind.slug()
        )));
    }
    check_channel_budget(app, channel_id, &rule, None, now_s).await?;
    let stored = StoredRule {
        rule_id: random_hex(16)?,
        position: rules.last().map_or(0, |r| r.position + 1),
        body: rule,
    };
    app.store.put_rule(channel_id, &stored, None).await?;
    rules.push(stored.clone());
    let mut answer = stored.clone();
    if let Some(p) = position {
        let changed = reorder(&mut rules, &stored.rule_id, p);
        app.store
            .set_rule_positions(channel_id, kind, &changed)
            .await?;
        if let Some(r) = rules.iter().find(|r| r.rule_id == stored.rule_id) {
            answer = r.clone();
        }
    }
    Ok(rule_json(&answer, now_s))
}

pub(super) async fn list_rules(app: &App, channel_id: &str, kind: RuleKind) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    require_channel(app, channel_id).await?;
    let now_s = now_ms() / 1000;
    let rules = app.store.list_rules(channel_id, kind, now_s).await?;
    let items: Vec<Value> = rules.iter().map(|r| rule_json(r, now_s)).collect();
    Ok(json!({ "items": items, "next_cursor": null }))
}

async fn find_rule(
    app: &App,
    channel_id: &str,
    kind: RuleKind,
    rule_id: &str,
    now_s: i64,
) -> ApiResult<(Vec<StoredRule>, StoredRule)> {
    let rules = app.store.list_rules(channel_id, kind, now_s).await?;
    let rule = rules
        .iter()
        .find(|r| r.rule_id == rule_id)
        .cloned()
        .ok_or_else(|| not_found("rule_id", "rule"))?;
    Ok((rules, rule))
}

pub(super) async fn get_rule(
    app: &App,
    channel_id: &str,
    kind: RuleKind,
    rule_id: &str,
) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    let rule_id = path_id("rule_id", rule_id)?;
    let now_s = now_ms() / 1000;
    let (_, rule) = find_rule(app, channel_id, kind, rule_id, now_s).await?;
    Ok(rule_json(&rule, now_s))
}

/// Fields present replace the rule's; `null` removes an optional one (`if`).
pub(super) async fn patch_rule(
    app: &App,
    channel_id: &str,
    kind: RuleKind,
    rule_id: &str,
    req: &Inbound,
) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    let rule_id = path_id("rule_id", rule_id)?;
    let Value::Object(mut patch) = json_body(req)? else {
        return Err(ApiError::invalid("body: expected a JSON object"));
    };
    refuse_internal_fields(&patch)?;
    let position = take_position(&mut patch)?;
    let now_s = now_ms() / 1000;
    let (mut rules, current) = find_rule(app, channel_id, kind, rule_id, now_s).await?;
    let Value::Object(mut merged) = current.body.to_json() else {
        return Err(ApiError::internal("a stored rule is not an object"));
    };
    for (field, value) in patch {
        if value.is_null() {
            merged.remove(&field);
        } else {
            merged.insert(field, value);
        }
    }
    let body = RuleBody::from_json(kind, Value::Object(merged))?;
    body.validate()?;
    check_channel_budget(app, channel_id, &body, Some(rule_id), now_s).await?;
    let mut updated = StoredRule {
        body,
        ..current.clone()
    };
    let expires_at = match &updated.body {
        RuleBody::Silence(SilenceRule {
            incident_id: Some(_),
            time,
            ..
        }) => time.end,
        _ => None,
    };
    app.store.put_rule(channel_id, &updated, expires_at).await?;
    if let Some(p) = position {
        if let Some(slot) = rules.iter_mut().find(|r| r.rule_id == rule_id) {
            *slot = updated.clone();
        }
        let changed = reorder(&mut rules, rule_id, p);
        app.store
            .set_rule_positions(channel_id, kind, &changed)
            .await?;
        if let Some(r) = rules.iter().find(|r| r.rule_id == rule_id) {
            updated.position = r.position;
        }
    }
    Ok(rule_json(&updated, now_s))
}

pub(super) async fn delete_rule(
    app: &App,
    channel_id: &str,
    kind: RuleKind,
    rule_id: &str,
) -> ApiResult<Value> {
    let channel_id = path_id("channel_id", channel_id)?;
    let rule_id = path_id("rule_id", rule_id)?;
    if app.store.delete_rule(channel_id, kind, rule_id).await? {
        Ok(json!({ "rule_id": rule_id, "deleted": true }))
    } else {
        Err(not_found("rule_id", "rule"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuickSilenceBody {
    minutes: Option<i64>,
}

/// A label value as a condition value that matches exactly that text.
fn exact_value(value: &str) -> String {
    let plain = value != "*"
        && !value.contains(['*', '?'])
        && !value.starts_with('/')
        && !value.starts_with("cidr:")
        && !value.starts_with("num:");
    if plain {
        value.to_string()
    } else {
        format!("/^{}$/", regex::escape(value))
    }
}

/// `POST /api/incidents/{id}/silence`: a `mark` silence in the incident's
/// channel for its severity and labels, from now, that deletes itself when
/// it ends. Repeating it replaces the incident's rule (its id derives from
/// the incident's).
pub(super) async fn quick_silence(app: &App, incident_id: &str, req: &Inbound) -> ApiResult<Value> {
    let incident_id = path_id("incident_id", incident_id)?;
    let body: QuickSilenceBody = from_value(json_body(req)?)?;
    let minutes = body
        .minutes
        .filter(|m| (1..=QUICK_SILENCE_MAX_MINUTES).contains(m))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "minutes: a whole number from 1 to {QUICK_SILENCE_MAX_MINUTES}"
            ))
        })?;
    let incident = app
        .store
        .get_incident(incident_id)
        .await?
        .ok_or_else(|| not_found("incident_id", "incident"))?;
    let mut conditions = vec![Condition {
        key: "severity".into(),
        oper: Oper::In,
        vals: vec![incident.severity.as_str().to_string()],
    }];
    for (name, value) in &incident.labels {
        let exact = exact_value(value);
        // A label too long for a condition value is left out of the match.
        if exact.chars().count() <= MAX_VALUE_CHARS {
            conditions.push(Condition {
                key: format!("labels.{name}"),
                oper: Oper::In,
                vals: vec![exact],
            });
        }
    }
    let now_s = now_ms() / 1000;
    let end = now_s + minutes * 60;
    let rule_id = format!("qs-{incident_id}");
    let existing = app
        .store
        .list_rules(&incident.channel_id, RuleKind::Silence, now_s)
        .await?;
    let position = existing
        .iter()
        .find(|r| r.rule_id == rule_id)
        .map(|r| r.position)
        .unwrap_or_else(|| existing.last().map_or(0, |r| r.position + 1));
    let rule = StoredRule {
        rule_id,
        position,
        body: RuleBody::Silence(SilenceRule {
            name: "Quick silence".into(),
            conditions: Some(vec![conditions]),
            enabled: true,
            action: RuleAction::Mark,
            time: SilenceTime {
                start: Some(now_s),
                end: Some(end),
                ..SilenceTime::default()
            },
            incident_id: Some(incident_id.to_string()),
        }),
    };
    rule.body.validate()?;
    app.store
        .put_rule(&incident.channel_id, &rule, Some(end))
        .await?;
    let mut answer = rule_json(&rule, now_s);
    answer["channel_id"] = json!(incident.channel_id);
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleListBody {
    rules: Option<Vec<IntegrationRule>>,
}

pub(super) async fn put_integration_rules(
    app: &App,
    integration_id: &str,
    list: RuleList,
    req: &Inbound,
) -> ApiResult<Value> {
    let integration_id = path_id("integration_id", integration_id)?;
    let body: RuleListBody = from_value(json_body(req)?)?;
    let mut rules = body
        .rules
        .ok_or_else(|| ApiError::invalid("rules: required (a list, [] to clear)"))?;
    prepare(list, &mut rules)?;
    let bytes = crate::rules::integration::compiled_bytes(&rules);
    if bytes > 0 {
        // SPEC 15: with the integration's routes and its other list.
        let current = app
            .store
            .get_integration(integration_id)
            .await?
            .ok_or_else(|| not_found("integration_id", "integration"))?;
        let other = match list {
            RuleList::Enrichment => &current.pipeline,
            RuleList::Pipeline => &current.enrichment,
        };
        let routes = current
            .routes
            .as_ref()
            .and_then(|r| CompiledRoutes::compile(r).ok())
            .map_or(0, |r| r.compiled_bytes());
        let others = crate::rules::integration::compiled_bytes(other) + routes;
        check_regex_budget(list.name(), bytes, others, "integration's routes and rules")?;
    }
    for (i, rule) in rules.iter().enumerate() {
        if let Some(table_id) = &rule.table_id {
            if app.store.get_mapping_table(table_id).await?.is_none() {
                return Err(ApiError::invalid(format!(
                    "rules[{i}].table_id: no mapping table has this id"
                )));
            }
        }
    }
    let integration = app
        .store
        .set_integration_rules(integration_id, list, rules)
        .await?
        .ok_or_else(|| not_found("integration_id", "integration"))?;
    Ok(rules_answer(&integration, list))
}

fn rules_answer(integration: &crate::model::Integration, list: RuleList) -> Value {
    let rules = match list {
        RuleList::Enrichment => &integration.enrichment,
        RuleList::Pipeline => &integration.pipeline,
    };
    json!({ "integration_id": integration.integration_id, "rules": rules })
}

pub(super) async fn get_integration_rules(
    app: &App,
    integration_id: &str,
    list: RuleList,
) -> ApiResult<Value> {
    let integration_id = path_id("integration_id", integration_id)?;
    let integration = app
        .store
        .get_integration(integration_id)
        .await?
        .ok_or_else(|| not_found("integration_id", "integration"))?;
    Ok(rules_answer(&integration, list))
}

// ---- mapping tables ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingTableBody {
    name: Option<String>,
    source_labels: Option<Vec<String>>,
    result_labels: Option<Vec<String>>,
}

fn label_names(field: &str, names: Option<Vec<String>>, max: usize) -> ApiResult<Vec<String>> {
    let names = names.unwrap_or_default();
    if names.is_empty() || names.len() > max {
        return Err(ApiError::invalid(format!(
            "{field}: 1 to {max} label names"
        )));
    }
    for (i, name) in names.iter().enumerate() {
        if !is_valid_label_key(name) {
            return Err(ApiError::invalid(format!(
                "{field}[{i}]: a label name matching ^[a-zA-Z_][a-zA-Z0-9_]*$"
            )));
        }
        if names[..i].contains(name) {
            return Err(ApiError::invalid(format!("{field}[{i}]: named twice")));
        }
    }
    Ok(names)
}

pub(super) async fn create_mapping_table(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: MappingTableBody = from_value(json_body(req)?)?;
    let name = super::check_name("name", body.name.as_deref().unwrap_or_default())?;
    let source_labels = label_names("source_labels", body.source_labels, 3)?;
    let result_labels = label_names("result_labels", body.result_labels, 10)?;
    if let Some(i) = result_labels.iter().position(|r| source_labels.contains(r)) {
        return Err(ApiError::invalid(format!(
            "result_labels[{i}]: also a source label"
        )));
    }
    let now_s = now_ms() / 1000;
    let table = MappingTable {
        table_id: random_hex(8)?,
        name,
        source_labels,
        result_labels,
        row_count: 0,
        created_at: now_s,
        updated_at: now_s,
        rows_version: random_hex(8)?,
    };
    app.store.create_mapping_table(&table).await?;
    Ok(json!(table))
}

async fn find_table(app: &App, table_id: &str) -> ApiResult<MappingTable> {
    let table_id = path_id("table_id", table_id)?;
    app.store
        .get_mapping_table(table_id)
        .await?
        .ok_or_else(|| not_found("table_id", "mapping table"))
}

pub(super) async fn get_mapping_table(app: &App, table_id: &str) -> ApiResult<Value> {
    Ok(json!(find_table(app, table_id).await?))
}

pub(super) async fn delete_mapping_table(app: &App, table_id: &str) -> ApiResult<Value> {
    let table_id = path_id("table_id", table_id)?;
    if app.store.delete_mapping_table(table_id).await? {
        Ok(json!({ "table_id": table_id, "deleted": true }))
    } else {
        Err(not_found("table_id", "mapping table"))
    }
}

/// `PUT /api/mapping-tables/{id}/rows`: a `text/csv` body whose header names
/// the source labels, then the result labels, in the table's order.
pub(super) async fn put_mapping_rows(app: &App, table_id: &str, req: &Inbound) -> ApiResult<Value> {
    let mut table = find_table(app, table_id).await?;
    if media_type(req.get_header("content-type")).as_deref() != Some("text/csv") {
        return Err(ApiError::InvalidContentType(
            "Content-Type: send text/csv (a charset parameter is allowed)".into(),
        ));
    }
    if req.body.len() > MAX_CSV_BYTES {
        return Err(ApiError::invalid(format!(
            "body: over the limit of {MAX_CSV_BYTES} bytes"
        )));
    }
    let text =
        std::str::from_utf8(&req.body).map_err(|_| ApiError::invalid("body: not UTF-8 text"))?;
    let rows = rows_from_csv(&table, text)?;
    let started = std::time::Instant::now();
    table = app
        .store
        .replace_mapping_rows(&table, &rows, now_ms() / 1000)
        .await?;
    tracing::info!(
        rows = rows.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "mapping rows replaced"
    );
    Ok(json!(table))
}

fn rows_from_csv(table: &MappingTable, text: &str) -> ApiResult<Vec<MappingRow>> {
    let records = parse_csv(text)?;
    let Some((_, header)) = records.first() else {
        return Err(ApiError::invalid(
            "body: line 1: a header row naming the source then the result labels",
        ));
    };
    let expected: Vec<&String> = table
        .source_labels
        .iter()
        .chain(table.result_labels.iter())
        .collect();
    let header: Vec<&str> = header.iter().map(|h| h.trim()).collect();
    if header.len() != expected.len() || header.iter().zip(&expected).any(|(h, e)| h != e) {
        return Err(ApiError::invalid(format!(
            "body: line 1: the header must be {}",
            expected
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    let body = &records[1..];
    if body.len() > MAX_MAPPING_ROWS {
        return Err(ApiError::invalid(format!(
            "body: {} rows; a table holds at most {MAX_MAPPING_ROWS}",
            body.len()
        )));
    }
    let sources = table.source_labels.len();
    let mut seen = std::collections::HashSet::with_capacity(body.len());
    let mut rows = Vec::with_capacity(body.len());
    for (line, fields) in body {
        if fields.len() != expected.len() {
            return Err(ApiError::invalid(format!(
                "body: line {line}: {} fields, the header has {}",
                fields.len(),
                expected.len()
            )));
        }
        if let Some(col) = fields
            .iter()
            .position(|f| f.chars().count() > LABEL_VALUE_MAX_CHARS)
        {
            return Err(ApiError::invalid(format!(
                "body: line {line}: field {} is over {LABEL_VALUE_MAX_CHARS} characters",
                col + 1
            )));
        }
        if let Some(col) = fields[..sources].iter().position(|f| f.is_empty()) {
            return Err(ApiError::invalid(format!(
                "body: line {line}: source field {} is empty",
                col + 1
            )));
        }
        if !seen.insert(fields[..sources].to_vec()) {
            return Err(ApiError::invalid(format!(
                "body: line {line}: the same source values as an earlier row"
            )));
        }
        let pick = |names: &[String], values: &[String]| -> BTreeMap<String, String> {
            names
                .iter()
                .zip(values)
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect()
        };
        rows.push(MappingRow {
            source: pick(&table.source_labels, &fields[..sources]),
            result: pick(&table.result_labels, &fields[sources..]),
        });
    }
    Ok(rows)
}

/// RFC 4180 CSV: records with the line each starts on (1-based). Quoted
/// fields may hold commas, quotes (doubled) and line breaks. Blank lines are skipped.
pub fn parse_csv(text: &str) -> ApiResult<Vec<(usize, Vec<String>)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut quoted = false;
    let mut field_started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !field_started => {
                quoted = true;
                field_started = true;
            }
            '"' => {
                return Err(ApiError::invalid(format!(
                    "body: line {line}: a quote inside an unquoted field (quote the field and double the quote)"
                )))
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if !(fields.is_empty() && field.is_empty() && !field_started) {
                    fields.push(std::mem::take(&mut field));
                    records.push((record_line, std::mem::take(&mut fields)));
                }
                field_started = false;
                line += 1;
                record_line = line;
            }
            _ => {
                field.push(c);
                field_started = true;
            }
        }
    }
    if quoted {
        return Err(ApiError::invalid(format!(
            "body: line {record_line}: a quoted field is not closed"
        )));
    }
    if !(fields.is_empty() && field.is_empty() && !field_started) {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}

pub(super) async fn get_mapping_rows(app: &App, table_id: &str, req: &Inbound) -> ApiResult<Value> {
    let table = find_table(app, table_id).await?;
    let limit = parse_limit(req.query.get("limit").map(String::as_str))?;
    let after = match req.query.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        // Row keys are the mapped values themselves: a longer cursor.
        Some(c) => Some(pages::decode_within(c, 2048, |sk| {
            sk.starts_with("V#") || sk.starts_with("H#")
        })?),
    };
    let (rows, next) = app.store.mapping_rows_page(&table, limit, after).await?;
    let next_cursor = next.as_deref().map(pages::encode);
    Ok(json!({ "items": rows, "next_cursor": next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_line_breaks_and_line_numbers() {
        let text = "host,team\r\ndb-01,\"core, storage\"\n\n\"web\n01\",\"say \"\"hi\"\"\"\nlast,x";
        let records = parse_csv(text).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(
            records[1],
            (2, vec!["db-01".into(), "core, storage".into()])
        );
        assert_eq!(records[2], (4, vec!["web\n01".into(), "say \"hi\"".into()]));
        assert_eq!(records[3].0, 6);
        let err = parse_csv("a,b\nx,y\"z\n").unwrap_err();
        assert!(err.message().contains("line 2"), "{}", err.message());
        let err = parse_csv("a,b\n\"x,y\n").unwrap_err();
        assert!(err.message().contains("line 2"), "{}", err.message());
    }

    #[test]
    fn exact_values_never_act_as_patterns() {
        assert_eq!(exact_value("db-01"), "db-01");
        assert_eq!(exact_value("a*b"), "/^a\\*b$/");
        assert_eq!(exact_value("/x/"), "/^/x/$/");
        assert_eq!(exact_value("cidr:1"), "/^cidr:1$/");
    }

    #[test]
    fn moving_a_rule_renumbers_the_list() {
        let rule = |id: &str, position| StoredRule {
            rule_id: id.into(),
            position,
            body: RuleBody::from_json(RuleKind::Drop, json!({"name": id})).unwrap(),
        };
        let mut rules = vec![rule("a", 0), rule("b", 1), rule("c", 5)];
        let changed = reorder(&mut rules, "c", 0);
        let order: Vec<&str> = rules.iter().map(|r| r.rule_id.as_str()).collect();
        assert_eq!(order, ["c", "a", "b"]);
        assert_eq!(changed.len(), 3);
    }
}
