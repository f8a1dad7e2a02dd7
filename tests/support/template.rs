//! The SAM template as the tests read it: a small line-based YAML reader
//! (block mappings, `- ` lists, comments, quoted scalars), enough for the
//! subset `infra/template.yaml` is written in, without a YAML dependency;
//! and each function's declared events and IAM policy.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

pub const TEMPLATE: &str = "infra/template.yaml";
/// Functions fed by the table's stream (and a schedule) rather than routes.
pub const STREAM_FUNCTIONS: &[&str] = &["notify"];
/// Functions run by a schedule only (the escalation tick).
pub const SCHEDULED_FUNCTIONS: &[&str] = &["escalate"];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

pub fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

// ---------------------------------------------------------------- YAML subset

/// One scalar of the template with the keys that lead to it; list items
/// appear as a `[]` key.
#[derive(Debug)]
pub struct Entry {
    pub path: Vec<String>,
    pub value: String,
    pub line: usize,
}

impl Entry {
    pub fn at(&self, keys: &[&str]) -> bool {
        self.path.len() == keys.len() && self.path.iter().zip(keys).all(|(a, b)| a == b)
    }
}

pub fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

fn strip_comment(value: &str) -> &str {
    let v = value.trim();
    if v.starts_with('"') || v.starts_with('\'') {
        return v;
    }
    match v.find(" #") {
        Some(i) => v[..i].trim_end(),
        None if v.starts_with('#') => "",
        None => v,
    }
}

/// Splits `key: value` / `key:`; `None` for a plain scalar.
fn split_key(content: &str) -> Option<(String, &str)> {
    if let Some(key) = content.strip_suffix(':') {
        if !key.contains(": ") {
            return Some((unquote(key), ""));
        }
    }
    let i = content.find(": ")?;
    let key = &content[..i];
    if key.starts_with('!') || (key.starts_with('"') && !key.ends_with('"')) {
        return None;
    }
    Some((unquote(key), &content[i + 2..]))
}

pub fn flatten_yaml(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut block_scalar_of: Option<usize> = None;

    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        let mut indent = line.len() - trimmed.len();
        if let Some(owner) = block_scalar_of {
            if indent > owner {
                continue;
            }
            block_scalar_of = None;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        let mut content = trimmed;
        // A list item: a `[]` key at the dash's column; its content sits after
        // the dash. The parent key may share the dash's column.
        loop {
            let rest = match content.strip_prefix("- ") {
                Some(rest) => rest,
                None if content == "-" => "",
                None => break,
            };
            stack.retain(|(i, k)| *i < indent || (*i == indent && k != "[]"));
            stack.push((indent, "[]".to_string()));
            let rest_trimmed = rest.trim_start();
            indent += content.len() - rest_trimmed.len();
            content = rest_trimmed;
        }
        if content.is_empty() {
            continue;
        }
        stack.retain(|(i, _)| *i < indent);
        let keys = || stack.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>();
        match split_key(content) {
            Some((key, value)) => {
                let value = strip_comment(value);
                if matches!(value, "|" | ">" | "|-" | ">-" | "|+" | ">+") {
                    block_scalar_of = Some(indent);
                }
                let mut path = keys();
                path.push(key.clone());
                entries.push(Entry {
                    path,
                    value: unquote(value),
                    line: n + 1,
                });
                stack.push((indent, key));
            }
            None => entries.push(Entry {
                path: keys(),
                value: unquote(strip_comment(content)),
                line: n + 1,
            }),
        }
    }
    entries
}

// ------------------------------------------------------------------- template

#[derive(Debug, Default)]
pub struct Function {
    pub binary: Option<String>,
    pub build_method: Option<String>,
    /// Properties.X scalars and `Properties.X.Y` paths (joined with '.').
    pub props: BTreeMap<String, String>,
    pub architectures: Vec<String>,
    /// event name -> field (Type, Path, Method, ApiId) -> value
    pub events: BTreeMap<String, BTreeMap<String, String>>,
    pub actions: BTreeSet<String>,
    pub policy_resources: Vec<String>,
    /// Policies entries that are not inline statements (managed policies,
    /// SAM policy templates), with their line.
    pub other_policies: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Template {
    pub types: BTreeMap<String, String>,
    pub functions: BTreeMap<String, Function>,
    pub globals: BTreeMap<String, String>,
    pub global_architectures: Vec<String>,
}

pub fn template() -> Template {
    let entries = flatten_yaml(&read(TEMPLATE));
    let mut t = Template::default();
    for e in &entries {
        if e.path.len() == 3 && e.path[0] == "Resources" && e.path[2] == "Type" {
            t.types.insert(e.path[1].clone(), e.value.clone());
        }
    }
    for e in &entries {
        let p: Vec<&str> = e.path.iter().map(String::as_str).collect();
        match p.as_slice() {
            ["Globals", "Function", "Architectures", "[]"] => {
                t.global_architectures.push(e.value.clone())
            }
            ["Globals", "Function", rest @ ..] if !rest.is_empty() && !e.value.is_empty() => {
                t.globals.insert(rest.join("."), e.value.clone());
            }
            ["Resources", id, rest @ ..]
                if t.types.get(*id).map(String::as_str) == Some("AWS::Serverless::Function") =>
            {
                let f = t.functions.entry(id.to_string()).or_default();
                match rest {
                    ["Metadata", "BuildProperties", "Binary"] => f.binary = Some(e.value.clone()),
                    ["Metadata", "BuildMethod"] => f.build_method = Some(e.value.clone()),
                    ["Properties", "Architectures", "[]"] => f.architectures.push(e.value.clone()),
                    ["Properties", "Events", name, "Type"] => {
                        f.events
                            .entry(name.to_string())
                            .or_default()
                            .insert("Type".into(), e.value.clone());
                    }
                    ["Properties", "Events", name, "Properties", field] => {
                        f.events
                            .entry(name.to_string())
                            .or_default()
                            .insert(field.to_string(), e.value.clone());
                    }
                    ["Properties", "Policies", "[]", first, ..] => {
                        if *first != "Version" && *first != "Statement" {
                            f.other_policies.push(format!("{first} (line {})", e.line));
                        }
                        if rest.contains(&"Action") && !e.value.is_empty() {
                            f.actions.insert(e.value.clone());
                        }
                        if rest.contains(&"Resource") && !e.value.is_empty() {
                            f.policy_resources.push(e.value.clone());
                        }
                    }
                    ["Properties", "Policies", "[]"] => f
                        .other_policies
                        .push(format!("{} (line {})", e.value, e.line)),
                    ["Properties", "Policies"] if !e.value.is_empty() => f
                        .other_policies
                        .push(format!("{} (line {})", e.value, e.line)),
                    ["Properties", rest @ ..] if !e.value.is_empty() && !rest.contains(&"[]") => {
                        f.props.insert(rest.join("."), e.value.clone());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert!(
        !t.functions.is_empty(),
        "{TEMPLATE} declares no AWS::Serverless::Function"
    );
    t
}

impl Template {
    /// A function property, falling back to Globals.Function.
    pub fn prop(&self, f: &Function, key: &str) -> Option<String> {
        f.props.get(key).or_else(|| self.globals.get(key)).cloned()
    }

    pub fn binary<'a>(&self, id: &str, f: &'a Function) -> &'a str {
        f.binary.as_deref().unwrap_or_else(|| {
            panic!("{TEMPLATE}: {id} has no Metadata.BuildProperties.Binary naming its crate")
        })
    }

    /// (path, METHOD, crate) of every HttpApi event.
    pub fn routes(&self) -> BTreeSet<(String, String, String)> {
        let mut routes = BTreeSet::new();
        for (id, f) in &self.functions {
            let binary = self.binary(id, f);
            for (name, ev) in &f.events {
                if SCHEDULED_FUNCTIONS.contains(&binary) {
                    assert_eq!(
                        ev.get("Type").map(String::as_str),
                        Some("Schedule"),
                        "{TEMPLATE}: {id}.Events.{name} must be its schedule"
                    );
                    continue;
                }
                if STREAM_FUNCTIONS.contains(&binary) {
                    assert!(
                        matches!(
                            ev.get("Type").map(String::as_str),
                            Some("DynamoDB" | "Schedule")
                        ),
                        "{TEMPLATE}: {id}.Events.{name} must be the table's stream or its schedule"
                    );
                    continue;
                }
                assert_eq!(
                    ev.get("Type").map(String::as_str),
                    Some("HttpApi"),
                    "{TEMPLATE}: {id}.Events.{name} must be an HttpApi event"
                );
                let path = ev
                    .get("Path")
                    .unwrap_or_else(|| panic!("{id}.Events.{name} has no Path"));
                let method = ev
                    .get("Method")
                    .unwrap_or_else(|| panic!("{id}.Events.{name} has no Method"));
                let api = ev.get("ApiId").map(String::as_str).unwrap_or("");
                let api_id = api.strip_prefix("!Ref ").unwrap_or("");
                assert_eq!(
                    self.types.get(api_id).map(String::as_str),
                    Some("AWS::Serverless::HttpApi"),
                    "{TEMPLATE}: {id}.Events.{name} must attach to the template's HttpApi (ApiId: !Ref <HttpApi>), got {api:?}"
                );
                routes.insert((path.clone(), method.to_uppercase(), binary.to_string()));
            }
        }
        routes
    }
}
