//! The OpenAPI document (`GET /api/openapi.json`, SPEC 12) against the
//! service: its paths are exactly the routers' (management, public and one
//! push route per integration kind), it uses only schema keywords the
//! checker understands, every management route answers a real call as the
//! document says, and the checker does catch an answer that drifted.
//! (Every other test's calls are checked too, through `call_api`/`call_push`.)

use std::collections::BTreeSet;

use integration_tests::openapi::{self, path_template, validate, Exchange, DOCUMENT};
use integration_tests::*;
use serde_json::{json, Value};
use shared::intake::http::{Inbound, Outbound};
use shared::intake::integrations::IntegrationKind;

fn documented_operations() -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in DOCUMENT["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if method != "parameters" {
                ops.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
    }
    ops
}

fn routed_operations() -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (pattern, methods) in shared::api::ROUTES.iter().chain(shared::api::PUBLIC_ROUTES) {
        for method in *methods {
            ops.insert((pattern.to_string(), method.to_string()));
        }
    }
    for kind in IntegrationKind::ALL {
        ops.insert((
            format!("{}{}", shared::intake::push::PUSH_PATH_PREFIX, kind.slug()),
            "POST".to_string(),
        ));
    }
    ops
}

#[test]
fn the_document_lists_every_route_and_nothing_else() {
    let documented = documented_operations();
    let routed = routed_operations();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "shared/src/api/openapi.json and the routers disagree:\n  routed but not documented: {missing:?}\n  documented but not routed: {extra:?}"
    );
}

/// Every schema keyword must be one the checker applies: a misspelt
/// `requried` would otherwise check nothing, silently.
#[test]
fn the_document_uses_only_keywords_the_checker_knows() {
    fn walk(schema: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(map) = schema.as_object() else {
            problems.push(format!("{at}: a schema must be an object"));
            return;
        };
        for (keyword, value) in map {
            let place = format!("{at}.{keyword}");
            if !openapi::SCHEMA_KEYWORDS.contains(&keyword.as_str()) {
                problems.push(format!("{place}: keyword unknown to the checker"));
            }
            match keyword.as_str() {
                "properties" => {
                    for (name, property) in value.as_object().into_iter().flatten() {
                        walk(property, &format!("{place}.{name}"), problems);
                    }
                }
                "items" => walk(value, &place, problems),
                "additionalProperties" if value.is_object() => walk(value, &place, problems),
                "anyOf" | "oneOf" => {
                    for (i, option) in value.as_array().into_iter().flatten().enumerate() {
                        walk(option, &format!("{place}[{i}]"), problems);
                    }
                }
                "$ref" => {
                    let target = value.as_str().and_then(|r| r.strip_prefix('#'));
                    if target.and_then(|p| DOCUMENT.pointer(p)).is_none() {
                        problems.push(format!("{place}: {value} resolves to nothing"));
                    }
                }
                _ => {}
            }
        }
    }
    fn every_schema(node: &Value, at: &str, problems: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    let place = format!("{at}/{key}");
                    if key == "schema" {
                        walk(value, &place, problems);
                    } else {
                        every_schema(value, &place, problems);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    every_schema(item, &format!("{at}/{i}"), problems);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    every_schema(&DOCUMENT["paths"], "#/paths", &mut problems);
    every_schema(
        &DOCUMENT["components"]["responses"],
        "#/components/responses",
        &mut problems,
    );
    for (name, schema) in DOCUMENT["components"]["schemas"]
        .as_object()
        .expect("schemas")
    {
        walk(
            schema,
            &format!("#/components/schemas/{name}"),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn answer(status: u16, body: Value) -> Outbound {
    Outbound {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

fn channel_json() -> Value {
    json!({
        "channel_id": "0123456789abcdef", "name": "ops", "auto_close": true, "created_at": 1,
        "grouping": {"method": "none", "equals": [], "strict": false, "window_minutes": 0, "window_type": "tumbling"},
        "storm_thresholds": [], "flapping": {"enabled": false, "max_changes": 4, "window_minutes": 60, "mute_minutes": 120}
    })
}

/// The checker is what keeps the document honest, so it must fail on drift:
/// a missing field, an extra field, a wrong type, a value outside an enum,
/// an undocumented status and an undocumented route.
#[test]
fn the_checker_refuses_answers_that_drifted() {
    let req = Inbound::new("GET", "/api/channels/0123456789abcdef");
    let check = |out: &Outbound| openapi::check(&Exchange::of(&req, out));
    let envelope = |data: Value| json!({"request_id": "r", "data": data});
    assert_eq!(check(&answer(200, envelope(channel_json()))), Ok(()));

    let mut missing = channel_json();
    missing.as_object_mut().unwrap().remove("auto_close");
    let mut extra = channel_json();
    extra["autoClose"] = json!(true);
    let mut wrong_type = channel_json();
    wrong_type["created_at"] = json!("yesterday");
    let mut bad_enum = channel_json();
    bad_enum["grouping"]["method"] = json!("similarity");
    for (drift, expected) in [
        (missing, "required field auto_close is missing"),
        (
            extra,
            "answer.data.autoClose: a field the document does not list",
        ),
        (
            wrong_type,
            "answer.data.created_at: expected integer, got string",
        ),
        (
            bad_enum,
            "answer.data.grouping.method: \"similarity\" is not one of",
        ),
    ] {
        let problem = check(&answer(200, envelope(drift))).unwrap_err();
        assert!(problem.contains(expected), "{problem}");
    }
    // A refusal must be the error envelope, with a documented code.
    let refusal = json!({"request_id": "r", "error": {"code": "NotFound", "message": "m"}});
    assert!(check(&answer(404, refusal))
        .unwrap_err()
        .contains("NotFound"));
    // A success on a path or method the document does not have.
    let undocumented = Inbound::new("GET", "/api/teams");
    let problem =
        openapi::check(&Exchange::of(&undocumented, &answer(200, json!({})))).unwrap_err();
    assert!(problem.contains("not in the document"), "{problem}");
    let wrong_method = Inbound::new("PUT", "/api/channels/0123456789abcdef");
    let problem = openapi::check(&Exchange::of(
        &wrong_method,
        &answer(200, envelope(channel_json())),
    ))
    .unwrap_err();
    assert!(problem.contains("no put operation"), "{problem}");
    // A request body the service accepted must fit the request schema too.
    let accepted = Inbound::new("POST", "/api/channels").json_body(json!({"name": 5}).to_string());
    let problem = openapi::check(&Exchange::of(
        &accepted,
        &answer(200, envelope(channel_json())),
    ))
    .unwrap_err();
    assert!(
        problem.contains("request.name: expected string"),
        "{problem}"
    );
}

#[test]
fn nullable_types_refs_and_any_of() {
    let doc = &*DOCUMENT;
    let alert = json!({"$ref": "#/components/schemas/PushResult"});
    let ok = json!({"alert_key": "k", "outcome": "merged", "alert_id": null, "incident_id": "i"});
    assert_eq!(validate(doc, &alert, &ok, "x"), Ok(()));
    let bad =
        json!({"alert_key": "k", "outcome": "exploded", "alert_id": null, "incident_id": "i"});
    assert!(validate(doc, &alert, &bad, "x").is_err());
    let push = json!({"$ref": "#/components/schemas/PushData"});
    let many = json!({"alert_keys": ["a"], "results": [ok]});
    assert_eq!(validate(doc, &push, &many, "x"), Ok(()));
    assert!(validate(doc, &push, &json!({"alert_keys": "a"}), "x").is_err());
}

#[tokio::test]
async fn the_document_and_the_console_are_served_without_a_key() {
    let app = test_app().await;
    let out = call_api(&app, Inbound::new("GET", "/api/openapi.json")).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.content_type(), "application/json");
    assert_eq!(out.json(), *DOCUMENT);
    let out = call_api(&app, Inbound::new("POST", "/api/openapi.json")).await;
    assert_eq!(
        (out.status, out.json()["error"]["code"].as_str()),
        (400, Some("MethodNotAllowed"))
    );

    let out = call_api(&app, Inbound::new("GET", "/console")).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.content_type(), "text/html; charset=utf-8");
    let header = |name: &str| {
        out.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    assert!(
        header("content-security-policy").starts_with("default-src 'none'; script-src 'sha256-")
    );
    assert!(out.body.contains("<title>Alert intake console</title>"));
    // The console itself is public; its API calls are not.
    let out = call_api(&app, Inbound::new("GET", "/api/channels")).await;
    assert_eq!(out.status, 401);
}

/// One successful call of every management route, each answer checked
/// against the document (by `api`), then proof that the tour missed none.
#[tokio::test]
async fn every_management_route_answers_as_documented() {
    Box::pin(tour_every_management_route()).await;
}

async fn tour_every_management_route() {
    let app = test_app().await;
    let mut called: BTreeSet<(String, String)> = BTreeSet::new();
    macro_rules! call {
        ($method:expr, $path:expr) => {
            call!($method, $path, None)
        };
        ($method:expr, $path:expr, $body:expr) => {{
            let path: String = $path;
            // Boxed: dozens of inline call futures overflow a test thread's stack.
            let data = Box::pin(api_ok(&app, $method, &path, $body)).await;
            let template = path_template(&path).expect("documented path");
            called.insert((template.to_string(), $method.to_string()));
            data
        }};
    }
    let id = |v: &Value, field: &str| v[field].as_str().expect(field).to_string();

    let ch = call!(
        "POST",
        "/api/channels".into(),
        Some(json!({"name": "ops", "storm_thresholds": [10]}))
    );
    let channel = id(&ch, "channel_id");
    call!("GET", "/api/channels".into());
    call!("GET", format!("/api/channels/{channel}"));
    call!(
        "PATCH",
        format!("/api/channels/{channel}"),
        Some(json!({"auto_close": false, "grouping": {"method": "rules", "equals": [["title"]]}}))
    );
    let condition = json!([[{"key": "labels.env", "oper": "IN", "vals": ["test"]}]]);
    let bodies = [
        ("drop", json!({"name": "drop test", "if": condition})),
        (
            "silence",
            json!({"name": "nights", "time": {"weekly": [{"days": [1, 2], "start": "22:00", "end": "06:00"}], "timezone": "UTC"}}),
        ),
        (
            "inhibit",
            json!({"name": "host down", "source_if": condition, "target_if": condition, "equals": ["labels.host"]}),
        ),
    ];
    for (kind, body) in bodies {
        let base = format!("/api/channels/{channel}/{kind}-rules");
        let rule = call!("POST", base.clone(), Some(body));
        let rule_id = id(&rule, "rule_id");
        call!("GET", base.clone());
        call!("GET", format!("{base}/{rule_id}"));
        call!(
            "PATCH",
            format!("{base}/{rule_id}"),
            Some(json!({"enabled": false, "position": 0}))
        );
        call!("DELETE", format!("{base}/{rule_id}"));
    }

    let table = call!(
        "POST",
        "/api/mapping-tables".into(),
        Some(json!({"name": "cmdb", "source_labels": ["host"], "result_labels": ["team"]}))
    );
    let table_id = id(&table, "table_id");
    let mut rows = Inbound::new("PUT", &format!("/api/mapping-tables/{table_id}/rows"))
        .header("authorization", &format!("Bearer {APP_KEY}"))
        .header("content-type", "text/csv");
    rows.body = b"host,team\nweb-1,shop\n".to_vec();
    assert_eq!(Box::pin(call_api(&app, rows)).await.status, 200);
    called.insert(("/api/mapping-tables/{table_id}/rows".into(), "PUT".into()));
    call!("GET", format!("/api/mapping-tables/{table_id}"));
    call!(
        "GET",
        format!("/api/mapping-tables/{table_id}/rows?limit=10")
    );

    let integ = call!(
        "POST",
        "/api/integrations".into(),
        Some(
            json!({"name": "std", "kind": "standard", "channel_id": channel, "rate_limit": UNLIMITED.clone()})
        )
    );
    let integration = id(&integ, "integration_id");
    call!("GET", "/api/integrations".into());
    call!("GET", format!("/api/integrations/{integration}"));
    let enrichment = json!({"rules": [{"kind": "map", "table_id": table_id}, {"kind": "compose", "label": "where", "template": "[TPL]${host}"}]});
    call!(
        "PUT",
        format!("/api/integrations/{integration}/enrichment"),
        Some(enrichment)
    );
    call!("GET", format!("/api/integrations/{integration}/enrichment"));
    call!(
        "PUT",
        format!("/api/integrations/{integration}/pipeline"),
        Some(json!({"rules": [{"kind": "severity_reset", "severity": "Critical"}]}))
    );
    call!("GET", format!("/api/integrations/{integration}/pipeline"));
    let rotated = call!(
        "POST",
        format!("/api/integrations/{integration}/rotate-key")
    );
    let key = id(&rotated, "integration_key");

    call!(
        "PUT",
        format!("/api/channels/{channel}/escalation"),
        // (Rules naming members and schedules: tests/escalation.rs.)
        Some(json!({"rules": []}))
    );
    call!("GET", format!("/api/channels/{channel}/escalation"));

    let pushed = Box::pin(push_ok(&app, &key, &json!({"title_rule": "disk full", "event_status": "Warning", "alert_key": "disk", "labels": {"host": "web-1"}}))).await;
    let incident = id(&pushed, "incident_id");
    call!("GET", format!("/api/incidents/{incident}/notifications"));
    let alert = id(&pushed, "alert_id");
    call!("GET", "/api/incidents?status=Triggered&limit=5".into());
    call!("GET", format!("/api/incidents/{incident}"));
    call!("GET", format!("/api/alerts/{alert}"));
    call!("GET", format!("/api/incidents/{incident}/alerts?limit=10"));
    call!("GET", format!("/api/alerts/{alert}/events?limit=10"));
    call!("POST", format!("/api/incidents/{incident}/ack"));
    call!("POST", format!("/api/incidents/{incident}/unack"));
    call!(
        "POST",
        format!("/api/incidents/{incident}/comments"),
        Some(json!({"text": "looking"}))
    );
    call!(
        "POST",
        format!("/api/incidents/{incident}/silence"),
        Some(json!({"minutes": 30}))
    );
    call!("POST", format!("/api/incidents/{incident}/resolve"));
    call!(
        "POST",
        format!("/api/incidents/{incident}/reopen"),
        Some(json!({"reason": "not fixed"}))
    );
    call!(
        "GET",
        format!("/api/incidents/{incident}/timeline?limit=50")
    );

    let hook = call!(
        "POST",
        "/api/webhooks".into(),
        Some(json!({"name": "ops", "url": "http://127.0.0.1:9/hook", "secret": "s3cr3t-value"}))
    );
    let webhook = id(&hook, "webhook_id");
    call!("GET", "/api/webhooks".into());
    call!("GET", format!("/api/webhooks/{webhook}"));
    call!(
        "PATCH",
        format!("/api/webhooks/{webhook}"),
        Some(json!({"enabled": false, "secret": null}))
    );
    call!(
        "GET",
        format!("/api/webhooks/{webhook}/deliveries?status=failed")
    );
    call!("DELETE", format!("/api/webhooks/{webhook}"));

    let made = call!(
        "POST",
        "/api/app-keys".into(),
        Some(json!({"name": "laptop", "role": "viewer", "member_id": "m-1"}))
    );
    call!("GET", "/api/app-keys".into());
    call!("GET", "/api/whoami".into());
    call!(
        "DELETE",
        format!("/api/app-keys/{}", id(&made, "app_key_id"))
    );
    Box::pin(tour_oncall_routes(&app, &mut called)).await;

    call!("DELETE", format!("/api/mapping-tables/{table_id}"));
    call!("DELETE", format!("/api/channels/{channel}"));

    // A resend needs a delivery, which only the notify function makes:
    // tests/webhooks.rs resends through `api`, checked the same way.
    let resend = (
        "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/resend".to_string(),
        "POST".to_string(),
    );
    let expected: BTreeSet<(String, String)> = shared::api::ROUTES
        .iter()
        .flat_map(|(pattern, methods)| methods.iter().map(|m| (pattern.to_string(), m.to_string())))
        .filter(|op| *op != resend)
        .collect();
    let missed: Vec<_> = expected.difference(&called).collect();
    assert!(missed.is_empty(), "the tour did not call {missed:?}");
}

/// The on-call routes of the tour, in a function of their own: one more
/// dozen inline calls would overflow the tour's stack in a debug build.
async fn tour_oncall_routes(app: &shared::app::App, called: &mut BTreeSet<(String, String)>) {
    async fn call(
        app: &shared::app::App,
        called: &mut BTreeSet<(String, String)>,
        method: &str,
        path: String,
        body: Option<Value>,
    ) -> Value {
        let data = Box::pin(api_ok(app, method, &path, body)).await;
        let template = path_template(&path).expect("documented path");
        called.insert((template.to_string(), method.to_string()));
        data
    }
    let id = |v: &Value, field: &str| v[field].as_str().expect(field).to_string();
    let member = call(
        app,
        called,
        "POST",
        "/api/members".into(),
        Some(json!({"name": "Alice", "email": "alice@example.org", "phone": "+49-30-1234567", "time_zone": "Europe/Berlin", "im": {"slack_user_id": "U024BE7LH"}})),
    )
    .await;
    let member_id = id(&member, "member_id");
    call(app, called, "GET", "/api/members".into(), None).await;
    call(
        app,
        called,
        "GET",
        format!("/api/members/{member_id}"),
        None,
    )
    .await;
    call(
        app,
        called,
        "PATCH",
        format!("/api/members/{member_id}"),
        Some(json!({"phone": null, "im": {"wecom_user_id": "alice"}})),
    )
    .await;
    let layer = json!({"name": "daily", "member_ids": [member_id], "start": 1_774_252_800, "shift": {"unit": "days", "length": 1}, "restrictions": [{"weekdays": [1, 2, 3, 4, 5], "from": "09:00", "to": "18:00"}]});
    let schedule = call(
        app,
        called,
        "POST",
        "/api/schedules".into(),
        Some(json!({"name": "primary", "time_zone": "Europe/Berlin", "layers": [layer], "overrides": [{"member_id": member_id, "from": 1_774_300_000, "to": 1_774_310_000}]})),
    )
    .await;
    let schedule_id = id(&schedule, "schedule_id");
    call(app, called, "GET", "/api/schedules".into(), None).await;
    call(
        app,
        called,
        "GET",
        format!("/api/schedules/{schedule_id}"),
        None,
    )
    .await;
    call(
        app,
        called,
        "PATCH",
        format!("/api/schedules/{schedule_id}"),
        Some(json!({"name": "primary on-call", "overrides": []})),
    )
    .await;
    let base = format!("/api/schedules/{schedule_id}");
    call(
        app,
        called,
        "GET",
        format!("{base}/oncall?at=1774260000"),
        None,
    )
    .await;
    call(
        app,
        called,
        "GET",
        format!("{base}/shifts?from=1774252800&to=1774857600"),
        None,
    )
    .await;
    call(
        app,
        called,
        "GET",
        format!("{base}/shifts?from=1774252800&layer=0"),
        None,
    )
    .await;
    call(app, called, "POST", format!("{base}/rotate-ical"), None).await;
    call(app, called, "DELETE", base, None).await;
    call(
        app,
        called,
        "DELETE",
        format!("/api/members/{member_id}"),
        None,
    )
    .await;
}
