//! Keeps the three places that name the functions in step: the crates under
//! `functions/` (and the workspace members), `infra/template.yaml` (what AWS
//! runs) and the `cargo lambda watch` router in `Cargo.toml` (what `make run`
//! serves). Adding an integration means touching all three; these tests say
//! which one was forgotten.
//!
//! The template is read with `integration_tests::template`. Which DynamoDB
//! actions each function is granted is checked against what its code really
//! sends, in `tests/permissions.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use integration_tests::template::{
    flatten_yaml, read, root, template, unquote, Entry, Template, STREAM_FUNCTIONS, TEMPLATE,
};

const MAX_MAIN_LINES: usize = 60;

// ---------------------------------------------------------------- workspace

fn cargo_toml() -> toml::Table {
    read("Cargo.toml").parse().expect("Cargo.toml parses")
}

/// Crate names of `functions/*/Cargo.toml`, checked to equal their folder names.
fn function_crates() -> BTreeSet<String> {
    let mut crates = BTreeSet::new();
    let dir = root().join("functions");
    for entry in fs::read_dir(&dir).expect("functions/ exists") {
        let path = entry.expect("readable functions/ entry").path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let folder = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 folder name")
            .to_string();
        let table: toml::Table = fs::read_to_string(&manifest)
            .expect("readable manifest")
            .parse()
            .unwrap_or_else(|e| panic!("functions/{folder}/Cargo.toml: {e}"));
        let name = table
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_else(|| panic!("functions/{folder}/Cargo.toml has no package.name"));
        assert_eq!(
            name, folder,
            "functions/{folder}: the crate must be named like its folder"
        );
        crates.insert(folder);
    }
    assert!(!crates.is_empty(), "no crates under functions/");
    crates
}

/// cargo-lambda (matchit) writes API Gateway's greedy `{proxy+}` as `{*proxy}`.
fn watch_path_to_apigw(path: &str) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!("{{{name}+}}"),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// (path in API Gateway syntax, METHOD, function) of the watch router.
fn watch_routes() -> BTreeSet<(String, String, String)> {
    let cargo = cargo_toml();
    let router = ["workspace", "metadata", "lambda", "watch", "router"]
        .iter()
        .try_fold(&toml::Value::Table(cargo), |v, k| v.get(*k))
        .and_then(|v| v.as_table())
        .expect("Cargo.toml has [workspace.metadata.lambda.watch.router]")
        .clone();
    let mut routes = BTreeSet::new();
    for (path, route) in &router {
        assert!(
            !path.contains("+}"),
            "watch router path {path:?}: cargo lambda watch (matchit) matches `{{proxy+}}` as one segment; write the catch-all as `{{*proxy}}`"
        );
        let apigw = watch_path_to_apigw(path);
        match route {
            toml::Value::String(function) => {
                routes.insert((apigw, "ANY".to_string(), function.clone()));
            }
            toml::Value::Array(items) => {
                for item in items {
                    let field = |k: &str| {
                        item.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| {
                            panic!("watch router {path:?}: each item needs string `function` and `method`")
                        })
                    };
                    routes.insert((apigw.clone(), field("method").to_uppercase(), field("function").to_string()));
                }
            }
            other => panic!(
                "watch router {path:?} = {other}: cargo-lambda accepts a function name or an array of {{ function, method }} tables, not {}",
                other.type_str()
            ),
        }
    }
    routes
}

// ---------------------------------------------------------------------- tests

#[test]
fn every_function_crate_is_deployed_with_a_route() {
    let t = template();
    for krate in function_crates() {
        let found = t
            .functions
            .iter()
            .find(|(_, f)| f.binary.as_deref() == Some(krate.as_str()));
        let (id, f) = found.unwrap_or_else(|| {
            panic!("functions/{krate} has no AWS::Serverless::Function in {TEMPLATE} (Metadata.BuildProperties.Binary: {krate})")
        });
        assert!(
            !f.events.is_empty(),
            "{TEMPLATE}: {id} ({krate}) has no HttpApi route (or stream, for {STREAM_FUNCTIONS:?})"
        );
    }
}

#[test]
fn every_template_function_names_a_function_crate() {
    let t = template();
    let crates = function_crates();
    let mut seen = BTreeSet::new();
    for (id, f) in &t.functions {
        let binary = t.binary(id, f);
        assert!(
            crates.contains(binary),
            "{TEMPLATE}: {id} builds `{binary}`, which is not a crate under functions/ ({crates:?})"
        );
        assert!(
            seen.insert(binary.to_string()),
            "{TEMPLATE}: two functions build `{binary}`"
        );
        assert_eq!(
            f.build_method.as_deref(),
            Some("rust-cargolambda"),
            "{TEMPLATE}: {id} must be built with Metadata.BuildMethod: rust-cargolambda"
        );
    }
}

#[test]
fn workspace_members_match_function_crates() {
    let cargo = cargo_toml();
    let members: BTreeSet<String> = cargo
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .expect("Cargo.toml has workspace.members")
        .iter()
        .filter_map(|m| m.as_str())
        .filter_map(|m| m.trim_end_matches('/').strip_prefix("functions/"))
        .map(str::to_string)
        .collect();
    let crates = function_crates();
    let missing: Vec<_> = crates.difference(&members).collect();
    let stale: Vec<_> = members.difference(&crates).collect();
    assert!(
        missing.is_empty(),
        "crates under functions/ that are not workspace members: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "workspace members under functions/ with no crate there: {stale:?}"
    );
}

/// The console page and the public OpenAPI document are served by the
/// management function, in AWS and under `make run` alike.
#[test]
fn the_console_is_routed_to_the_management_function() {
    let routes = template().routes();
    let console = (
        shared::api::CONSOLE_PATH.to_string(),
        "GET".to_string(),
        "management-api".to_string(),
    );
    assert!(
        routes.contains(&console),
        "{TEMPLATE}: no GET {} route to management-api",
        shared::api::CONSOLE_PATH
    );
    let api = (
        "/api/{proxy+}".to_string(),
        "ANY".to_string(),
        "management-api".to_string(),
    );
    assert!(
        routes.contains(&api),
        "{TEMPLATE}: {} needs ANY /api/{{proxy+}}",
        shared::api::OPENAPI_PATH
    );
}

#[test]
fn watch_router_matches_template_routes() {
    let watch = watch_routes();
    let deployed = template().routes();
    let only_watch: Vec<_> = watch.difference(&deployed).collect();
    let only_template: Vec<_> = deployed.difference(&watch).collect();
    assert!(
        only_watch.is_empty() && only_template.is_empty(),
        "Cargo.toml's watch router and {TEMPLATE} disagree (path, method, function):\n  only in Cargo.toml: {only_watch:?}\n  only in the template: {only_template:?}"
    );
}

#[test]
fn functions_run_on_al2023_arm64_with_json_logs_and_the_table() {
    let t = template();
    let tables: Vec<&String> = t
        .types
        .iter()
        .filter(|(_, ty)| ty.as_str() == "AWS::DynamoDB::Table")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        tables.len(),
        1,
        "{TEMPLATE} should declare exactly one table"
    );
    let table_ref = format!("!Ref {}", tables[0]);
    for (id, f) in &t.functions {
        let check = |key: &str, want: &str| {
            assert_eq!(
                t.prop(f, key).as_deref(),
                Some(want),
                "{TEMPLATE}: {id} {key}"
            );
        };
        check("Runtime", "provided.al2023");
        check("Handler", "bootstrap");
        check("CodeUri", "..");
        check("LoggingConfig.LogFormat", "JSON");
        check("Environment.Variables.TABLE_NAME", &table_ref);
        let arch = if f.architectures.is_empty() {
            &t.global_architectures
        } else {
            &f.architectures
        };
        assert_eq!(
            arch,
            &["arm64".to_string()],
            "{TEMPLATE}: {id} Architectures"
        );
    }
}

/// The shape of every policy; which actions it grants is `tests/permissions.rs`.
#[test]
fn function_policies_are_inline_and_name_the_table() {
    let t = template();
    for (id, f) in &t.functions {
        let binary = t.binary(id, f);
        assert!(
            f.other_policies.is_empty(),
            "{TEMPLATE}: {id} has policies other than inline statements: {:?}",
            f.other_policies
        );
        assert!(
            !f.actions.is_empty(),
            "{TEMPLATE}: {id} has no access to the table"
        );
        for r in &f.policy_resources {
            let r = r.trim_end_matches('"');
            assert!(
                !r.contains('*') || r.ends_with("/index/*"),
                "{TEMPLATE}: {id} resource {r:?} is too broad"
            );
            assert!(
                !binary.starts_with("push-") || !r.ends_with("/index/*"),
                "{TEMPLATE}: {id} ({binary}) must name the indexes it queries"
            );
        }
    }
}

/// The partitions the push path writes (shared/src/store/mod.rs's table
/// layout): a push function may write nothing else (SPEC 15).
const PUSH_WRITE_PREFIXES: &[&str] = &[
    "AK#*", "INC#*", "EV#*", "INH#*", "GRP#*", "RT#*", "FLAP#*", "RL#*",
];

/// SPEC 15: every push function's statement that writes (PutItem,
/// UpdateItem) is conditioned on `dynamodb:LeadingKeys` to exactly the push
/// path's key prefixes, so a push function cannot write app keys,
/// integrations, channels, rules or webhooks.
#[test]
fn push_functions_write_only_the_push_paths_partitions() {
    let entries = flatten_yaml(&read(TEMPLATE));
    let t = template();
    let mut checked = 0;
    for (id, f) in &t.functions {
        if !t.binary(id, f).starts_with("push-") {
            continue;
        }
        // The function's policy entries, in order, one statement per `Sid`.
        let mut statements: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for e in entries.iter().filter(|e| {
            e.path.len() > 4 && e.path[..4] == ["Resources", id.as_str(), "Properties", "Policies"]
        }) {
            if e.path.last().map(String::as_str) == Some("Sid") {
                statements.push((Vec::new(), Vec::new()));
            }
            let Some((actions, keys)) = statements.last_mut() else {
                continue;
            };
            // Entries with a value only (a key opening a block has none).
            if e.value.is_empty() {
                continue;
            }
            if e.path.iter().any(|p| p == "Action") {
                actions.push(e.value.clone());
            }
            if e.path.iter().any(|p| p == "dynamodb:LeadingKeys") {
                keys.push(unquote(&e.value));
            }
        }
        assert!(
            !statements.is_empty(),
            "{TEMPLATE}: {id}: every statement needs a Sid"
        );
        let mut writes = 0;
        for (actions, keys) in &statements {
            let writing = actions
                .iter()
                .any(|a| a == "dynamodb:PutItem" || a == "dynamodb:UpdateItem");
            if writing {
                writes += 1;
                assert_eq!(
                    keys, PUSH_WRITE_PREFIXES,
                    "{TEMPLATE}: {id} writes {actions:?}"
                );
            }
        }
        assert!(writes >= 1, "{TEMPLATE}: {id} writes nothing?");
        checked += 1;
    }
    assert!(checked >= 10, "{checked} push functions");
}

/// A parameter's `Default` as a number, for a value that is a literal or `!Ref PARAM`.
fn figure(entries: &[Entry], value: &str) -> Option<f64> {
    match value.strip_prefix("!Ref ") {
        Some(param) => entries
            .iter()
            .find(|e| e.at(&["Parameters", param, "Default"]))
            .and_then(|e| e.value.parse().ok()),
        None => value.parse().ok(),
    }
}

#[test]
fn management_function_has_reserved_concurrency_from_a_parameter() {
    let entries = flatten_yaml(&read(TEMPLATE));
    let t = template();
    let (id, _) = t
        .functions
        .iter()
        .find(|(_, f)| f.binary.as_deref() == Some("management-api"))
        .expect("a function builds management-api");
    // Directly (`!Ref P`) or through a condition (`!If [C, !Ref P, !Ref AWS::NoValue]`).
    let under: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.path.len() >= 4
                && e.path[..4]
                    .iter()
                    .zip([
                        "Resources",
                        id.as_str(),
                        "Properties",
                        "ReservedConcurrentExecutions",
                    ])
                    .all(|(a, b)| a == b)
        })
        .collect();
    assert!(
        !under.is_empty(),
        "{TEMPLATE}: {id} has no ReservedConcurrentExecutions; a push storm could take all the account's concurrency from ack and resolve"
    );
    let defaults: Vec<f64> = under
        .iter()
        .filter(|e| e.value.starts_with("!Ref ") && e.value != "!Ref AWS::NoValue")
        .filter_map(|e| figure(&entries, &e.value))
        .collect();
    assert!(
        defaults.iter().any(|d| *d >= 1.0),
        "{TEMPLATE}: {id} ReservedConcurrentExecutions must come from a parameter whose Default reserves at least 1 ({under:?})"
    );
}

/// SPEC 15: the functions that save and deliver webhooks read
/// `ALLOW_PRIVATE_WEBHOOK_TARGETS` from a parameter whose default is false.
#[test]
fn private_webhook_targets_are_a_parameter_off_by_default() {
    let entries = flatten_yaml(&read(TEMPLATE));
    let t = template();
    for binary in ["management-api", "notify"] {
        let (id, f) = t
            .functions
            .iter()
            .find(|(_, f)| f.binary.as_deref() == Some(binary))
            .unwrap_or_else(|| panic!("a function builds {binary}"));
        let value = t
            .prop(f, "Environment.Variables.ALLOW_PRIVATE_WEBHOOK_TARGETS")
            .unwrap_or_else(|| panic!("{TEMPLATE}: {id} has no ALLOW_PRIVATE_WEBHOOK_TARGETS"));
        let param = value.strip_prefix("!Ref ").unwrap_or_else(|| {
            panic!("{TEMPLATE}: {id} ALLOW_PRIVATE_WEBHOOK_TARGETS is not a parameter")
        });
        let default = entries
            .iter()
            .find(|e| e.at(&["Parameters", param, "Default"]))
            .map(|e| e.value.as_str());
        assert_eq!(default, Some("false"), "{TEMPLATE}: {param} Default");
    }
}

/// SPEC 15: the management API's routes are throttled at the gateway apart
/// from the pushes, by parameters defaulting to 50 requests/s, burst 100.
#[test]
fn management_routes_are_throttled_apart_from_pushes() {
    let entries = flatten_yaml(&read(TEMPLATE));
    let t = template();
    let routes: Vec<String> = t
        .routes()
        .into_iter()
        .filter(|(_, _, binary)| binary == "management-api")
        .map(|(path, method, _)| format!("{method} {path}"))
        .collect();
    assert!(routes.iter().any(|r| r.contains("/api/")), "{routes:?}");
    for route in &routes {
        for (setting, default) in [
            ("ThrottlingRateLimit", 50.0),
            ("ThrottlingBurstLimit", 100.0),
        ] {
            let value = entries
                .iter()
                .find(|e| {
                    e.path.len() == 6
                        && e.path[0] == "Resources"
                        && e.path[2..] == ["Properties", "RouteSettings", route.as_str(), setting]
                })
                .unwrap_or_else(|| panic!("{TEMPLATE}: no {setting} for {route:?}"));
            let param = value
                .value
                .strip_prefix("!Ref ")
                .unwrap_or_else(|| panic!("{TEMPLATE}: {route} {setting} is not a parameter"));
            assert!(
                param.starts_with("Management"),
                "{route} {setting}: {param} is the pushes'"
            );
            assert_eq!(
                figure(&entries, &value.value),
                Some(default),
                "{route} {setting}"
            );
        }
    }
}

#[test]
fn every_push_route_is_throttled_at_the_gateway() {
    let entries = flatten_yaml(&read(TEMPLATE));
    let t = template();
    let push_routes: Vec<String> = t
        .routes()
        .into_iter()
        .filter(|(_, _, binary)| binary.starts_with("push-"))
        .map(|(path, method, _)| format!("{method} {path}"))
        .collect();
    assert!(!push_routes.is_empty());
    for route in &push_routes {
        for setting in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
            let value = entries
                .iter()
                .find(|e| {
                    e.path.len() == 6
                        && e.path[0] == "Resources"
                        && t.types.get(&e.path[1]).map(String::as_str)
                            == Some("AWS::Serverless::HttpApi")
                        && e.path[2..] == ["Properties", "RouteSettings", route.as_str(), setting]
                })
                .unwrap_or_else(|| {
                    panic!("{TEMPLATE}: the HttpApi's RouteSettings has no {setting} for {route:?}")
                });
            let limit = figure(&entries, &value.value).unwrap_or_else(|| {
                panic!("{TEMPLATE}: {route} {setting} = {:?} is neither a number nor a parameter with a numeric Default", value.value)
            });
            assert!(limit >= 1.0, "{TEMPLATE}: {route} {setting} is {limit}");
        }
    }
}

#[test]
fn notify_is_fed_by_the_stream_with_bisection_partial_batches_and_a_failure_queue() {
    let entries = flatten_yaml(&read(TEMPLATE));
    let value = |path: &[&str]| {
        entries
            .iter()
            .find(|e| e.at(path))
            .map(|e| e.value.clone())
            .unwrap_or_else(|| panic!("{TEMPLATE}: no {}", path.join(".")))
    };
    assert_eq!(
        value(&[
            "Resources",
            "AlertTable",
            "Properties",
            "StreamSpecification",
            "StreamViewType"
        ]),
        "NEW_AND_OLD_IMAGES"
    );
    let ev = [
        "Resources",
        "NotifyFunction",
        "Properties",
        "Events",
        "TableStream",
    ];
    let at = |rest: &[&str]| {
        let mut p = ev.to_vec();
        p.extend_from_slice(rest);
        value(&p)
    };
    assert_eq!(at(&["Type"]), "DynamoDB");
    assert_eq!(
        at(&["Properties", "Stream"]),
        "!GetAtt AlertTable.StreamArn"
    );
    assert_eq!(at(&["Properties", "BisectBatchOnFunctionError"]), "true");
    assert_eq!(at(&["Properties", "ParallelizationFactor"]), "1");
    assert_eq!(
        at(&["Properties", "FunctionResponseTypes", "[]"]),
        "ReportBatchItemFailures"
    );
    assert_eq!(
        at(&[
            "Properties",
            "DestinationConfig",
            "OnFailure",
            "Destination"
        ]),
        "!GetAtt NotifyFailureQueue.Arn"
    );
    // Deliveries waiting for a retry are found by a scheduled run.
    let schedule = [
        "Resources",
        "NotifyFunction",
        "Properties",
        "Events",
        "DeliveryRetries",
    ];
    let at_schedule = |rest: &[&str]| {
        let mut p = schedule.to_vec();
        p.extend_from_slice(rest);
        value(&p)
    };
    assert_eq!(at_schedule(&["Type"]), "Schedule");
    assert_eq!(at_schedule(&["Properties", "Schedule"]), "rate(1 minute)");
    let timeout: f64 = value(&["Resources", "NotifyFunction", "Properties", "Timeout"])
        .parse()
        .expect("a number");
    // Longer than one delivery's budget (3 attempts of 5 s plus backoff).
    assert!(timeout >= 20.0, "notify Timeout {timeout}");
}

fn code_lines(source: &str) -> usize {
    let mut in_block = false;
    let mut count = 0;
    for line in source.lines().map(str::trim) {
        if in_block {
            in_block = !line.contains("*/");
            continue;
        }
        if line.starts_with("/*") {
            in_block = !line.contains("*/");
            continue;
        }
        if !line.is_empty() && !line.starts_with("//") {
            count += 1;
        }
    }
    count
}

#[test]
fn function_entry_points_stay_thin() {
    for krate in function_crates() {
        let rel = format!("functions/{krate}/src/main.rs");
        let n = code_lines(&read(&rel));
        assert!(
            n <= MAX_MAIN_LINES,
            "{rel} has {n} code lines (max {MAX_MAIN_LINES}): move the logic into shared/ where it is tested once"
        );
    }
}

// The reader itself, so that a parsing slip cannot make the checks above vacuous.
#[test]
fn yaml_reader_handles_the_template_subset() {
    let entries = flatten_yaml(
        "A:\n  B: x # note\n  L:\n    - k: \"v: w\"\n      j: 1\n    - plain:thing\n    - !Sub \"${T.Arn}/index/*\"\n  D: >-\n    folded: text\n  E: '#x'\nF: y\n",
    );
    let find = |keys: &[&str]| -> Vec<&str> {
        entries
            .iter()
            .filter(|e| e.at(keys))
            .map(|e| e.value.as_str())
            .collect()
    };
    assert_eq!(find(&["A", "B"]), ["x"]);
    assert_eq!(find(&["A", "L", "[]", "k"]), ["v: w"]);
    assert_eq!(find(&["A", "L", "[]", "j"]), ["1"]);
    assert_eq!(
        find(&["A", "L", "[]"]),
        ["plain:thing", "!Sub \"${T.Arn}/index/*\""]
    );
    let same_column = flatten_yaml("K:\n- a\n- b: c\nM: d\n");
    let paths: Vec<String> = same_column
        .iter()
        .map(|e| e.path.join(".") + "=" + &e.value)
        .collect();
    assert_eq!(paths, ["K=", "K.[]=a", "K.[].b=c", "M=d"]);
    assert_eq!(find(&["A", "D"]), [">-"]);
    assert!(find(&["A", "D", "folded"]).is_empty());
    assert_eq!(find(&["A", "E"]), ["#x"]);
    assert_eq!(find(&["F"]), ["y"]);
    assert_eq!(watch_path_to_apigw("/api/{*proxy}"), "/api/{proxy+}");
    assert_eq!(code_lines("// c\n\nfn main() {\n    /* a\n b */\n}\n"), 2);
}

#[test]
fn table_indexes_project_what_the_store_expects() {
    // The store reads items behind gsi1/gsi2 (keys only, so counter updates
    // never write to them) and reads gsi3's projected attributes directly;
    // store::schema creates the local table the same way.
    let entries = flatten_yaml(&read(TEMPLATE));
    let prefix = [
        "Resources",
        "AlertTable",
        "Properties",
        "GlobalSecondaryIndexes",
    ];
    let mut indexes: Vec<(String, String, Vec<String>)> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.path.len() > prefix.len() && e.path[..prefix.len()] == prefix)
    {
        let Some(current) = (match e.path.last().map(String::as_str) {
            Some("IndexName") => {
                indexes.push((e.value.clone(), String::new(), Vec::new()));
                None
            }
            _ => indexes.last_mut(),
        }) else {
            continue;
        };
        if e.path.last().map(String::as_str) == Some("ProjectionType") {
            current.1 = e.value.clone();
        } else if e.path.iter().any(|k| k == "NonKeyAttributes") && !e.value.is_empty() {
            current.2.push(e.value.clone());
        }
    }
    let gsi3: Vec<String> = shared::store::GSI3_PROJECTION
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        indexes,
        vec![
            ("gsi1".to_string(), "KEYS_ONLY".to_string(), Vec::new()),
            ("gsi2".to_string(), "KEYS_ONLY".to_string(), Vec::new()),
            ("gsi3".to_string(), "INCLUDE".to_string(), gsi3),
            (
                shared::store::retries::GSI4.to_string(),
                "KEYS_ONLY".to_string(),
                Vec::new(),
            ),
        ],
        "{TEMPLATE}: AlertTable's indexes"
    );
}

// ------------------------------------------------------------------- alarms

/// One `AWS::CloudWatch::Alarm` of the template.
#[derive(Debug, Default)]
struct Alarm {
    namespace: String,
    metric: String,
    /// (Name, Value) in order.
    dimensions: Vec<(String, String)>,
    actions: Vec<String>,
}

fn alarms(t: &Template) -> BTreeMap<String, Alarm> {
    let mut out: BTreeMap<String, Alarm> = BTreeMap::new();
    for e in flatten_yaml(&read(TEMPLATE)) {
        let p: Vec<&str> = e.path.iter().map(String::as_str).collect();
        let ["Resources", id, "Properties", rest @ ..] = p.as_slice() else {
            continue;
        };
        if t.types.get(*id).map(String::as_str) != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let a = out.entry(id.to_string()).or_default();
        match rest {
            ["Namespace"] => a.namespace = e.value.clone(),
            ["MetricName"] => a.metric = e.value.clone(),
            ["Dimensions", "[]", "Name"] => a.dimensions.push((e.value.clone(), String::new())),
            ["Dimensions", "[]", "Value"] => match a.dimensions.last_mut() {
                Some(d) if d.1.is_empty() => d.1 = e.value.clone(),
                _ => panic!(
                    "{TEMPLATE}:{}: {id}: a dimension Value before its Name",
                    e.line
                ),
            },
            ["AlarmActions", "[]"] => a.actions.push(e.value.clone()),
            ["Metrics", ..] => panic!(
                "{TEMPLATE}:{}: {id}: metric math alarms are not read by this test; extend it",
                e.line
            ),
            _ => {}
        }
    }
    out
}

/// The resource a `!Ref X` / `!GetAtt X.Attr` names, if it has that type.
fn names_resource<'a>(
    t: &Template,
    value: &'a str,
    ty: &str,
    attr: Option<&str>,
) -> Option<&'a str> {
    let id = match attr {
        None => value.strip_prefix("!Ref ")?,
        Some(attr) => value
            .strip_prefix("!GetAtt ")?
            .strip_suffix(attr)?
            .strip_suffix('.')?,
    };
    (t.types.get(id).map(String::as_str) == Some(ty)).then_some(id)
}

/// Every alarm's metric comes from somewhere real: an AWS metric whose
/// dimension names a resource of this template (of the right type), or a
/// metric `shared::metrics` writes, with the dimensions it writes.
#[test]
fn every_alarm_names_a_metric_source() {
    let t = template();
    let alarms = alarms(&t);
    assert!(!alarms.is_empty(), "{TEMPLATE} declares no alarm");
    for (id, a) in &alarms {
        let dims: Vec<(&str, &str)> = a
            .dimensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let source = match (a.namespace.as_str(), dims.as_slice()) {
            ("AWS/Lambda", [("FunctionName", v)]) => {
                let f = names_resource(&t, v, "AWS::Serverless::Function", None);
                let allowed: &[&str] = match f.and_then(|f| t.functions.get(f).map(|x| (f, x))) {
                    Some((f, func)) if STREAM_FUNCTIONS.contains(&t.binary(f, func)) => {
                        &["Errors", "Throttles", "IteratorAge"]
                    }
                    _ => &["Errors", "Throttles"],
                };
                assert!(
                    allowed.contains(&a.metric.as_str()),
                    "{TEMPLATE}: {id}: AWS/Lambda {} is not a metric this function has (one of {allowed:?})",
                    a.metric
                );
                f
            }
            ("AWS/ApiGateway", [("ApiId", v)]) => {
                names_resource(&t, v, "AWS::Serverless::HttpApi", None)
            }
            ("AWS/SQS", [("QueueName", v)]) => {
                names_resource(&t, v, "AWS::SQS::Queue", Some("QueueName"))
            }
            ("AWS/DynamoDB", [("TableName", v)]) => {
                names_resource(&t, v, "AWS::DynamoDB::Table", None)
            }
            (ns, _) if ns == shared::metrics::NAMESPACE => {
                let (_, names) = shared::metrics::EMITTED
                    .iter()
                    .find(|(m, _)| *m == a.metric)
                    .unwrap_or_else(|| {
                        panic!(
                            "{TEMPLATE}: {id}: {ns} {} is not a metric shared::metrics emits",
                            a.metric
                        )
                    });
                let got: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
                assert_eq!(
                    got.as_slice(),
                    *names,
                    "{TEMPLATE}: {id}: {} is emitted with dimensions {names:?}",
                    a.metric
                );
                Some("shared::metrics")
            }
            (ns, _) => panic!(
                "{TEMPLATE}: {id}: no known source for {ns} {} {dims:?}",
                a.metric
            ),
        };
        assert!(
            source.is_some(),
            "{TEMPLATE}: {id}: {} {} {dims:?} names no resource of this template",
            a.namespace,
            a.metric
        );
        assert!(
            a.actions
                .iter()
                .any(|v| names_resource(&t, v, "AWS::SNS::Topic", None).is_some()),
            "{TEMPLATE}: {id} notifies no SNS topic of the template"
        );
    }
}

/// What the operator must hear of, each by at least one alarm.
#[test]
fn alarms_cover_functions_api_stream_queue_table_deliveries_and_escalations() {
    let t = template();
    let alarms = alarms(&t);
    let has = |ns: &str, metric: &str, dim: Option<(&str, &str)>| {
        alarms.values().any(|a| {
            a.namespace == ns
                && a.metric == metric
                && dim.is_none_or(|(k, v)| a.dimensions.iter().any(|(ak, av)| ak == k && av == v))
        })
    };
    for id in t.functions.keys() {
        let by_name = format!("!Ref {id}");
        for metric in ["Errors", "Throttles"] {
            assert!(
                has("AWS/Lambda", metric, Some(("FunctionName", &by_name))),
                "{TEMPLATE}: no {metric} alarm for {id}"
            );
        }
        if STREAM_FUNCTIONS.contains(&t.binary(id, &t.functions[id])) {
            assert!(
                has(
                    "AWS/Lambda",
                    "IteratorAge",
                    Some(("FunctionName", &by_name))
                ),
                "{TEMPLATE}: no IteratorAge alarm for the stream-fed {id}"
            );
        }
    }
    for (id, ty) in &t.types {
        match ty.as_str() {
            "AWS::Serverless::HttpApi" => assert!(
                has(
                    "AWS/ApiGateway",
                    "5xx",
                    Some(("ApiId", &format!("!Ref {id}")))
                ),
                "{TEMPLATE}: no 5xx alarm for {id}"
            ),
            "AWS::SQS::Queue" => assert!(
                has(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    Some(("QueueName", &format!("!GetAtt {id}.QueueName")))
                ),
                "{TEMPLATE}: no depth alarm for the queue {id}"
            ),
            "AWS::DynamoDB::Table" => {
                for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
                    assert!(
                        has(
                            "AWS/DynamoDB",
                            metric,
                            Some(("TableName", &format!("!Ref {id}")))
                        ),
                        "{TEMPLATE}: no {metric} alarm for {id}"
                    );
                }
            }
            _ => {}
        }
    }
    let ns = shared::metrics::NAMESPACE;
    for status in ["failed", "pending"] {
        assert!(
            has(ns, shared::metrics::DELIVERIES, Some(("Status", status))),
            "{TEMPLATE}: no alarm on deliveries {status}"
        );
    }
    assert!(
        has(ns, shared::metrics::ESCALATION_LAG, None),
        "{TEMPLATE}: no alarm on late escalations"
    );

    // The topic's mail subscription is optional: a parameter and a condition.
    let entries = flatten_yaml(&read(TEMPLATE));
    let value = |path: &[&str]| entries.iter().find(|e| e.at(path)).map(|e| e.value.clone());
    assert_eq!(
        value(&["Parameters", "AlarmEmail", "Default"]).as_deref(),
        Some("")
    );
    let subscriptions: Vec<&String> = t
        .types
        .iter()
        .filter(|(_, ty)| *ty == "AWS::SNS::Subscription")
        .map(|(id, _)| id)
        .collect();
    assert!(
        !subscriptions.is_empty(),
        "{TEMPLATE}: no AlarmEmail subscription"
    );
    for id in subscriptions {
        assert_eq!(
            value(&["Resources", id, "Properties", "Endpoint"]).as_deref(),
            Some("!Ref AlarmEmail"),
            "{TEMPLATE}: {id}"
        );
        let condition = value(&["Resources", id, "Condition"]).unwrap_or_else(|| {
            panic!("{TEMPLATE}: {id} has no Condition (AlarmEmail is optional)")
        });
        assert!(
            value(&["Conditions", &condition]).is_some(),
            "{TEMPLATE}: {id}'s Condition {condition} is not declared"
        );
    }
    assert!(
        t.types
            .values()
            .any(|ty| ty == "AWS::CloudWatch::Dashboard"),
        "{TEMPLATE}: no CloudWatch dashboard"
    );
}
