//! SPEC 15 against DynamoDB Local: each role against every management route
//! (the route table itself, so a route without an access decision fails
//! here), refusals with nothing written, and who acted in the timeline and
//! in the logs.

use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::intake::http::{Inbound, Outbound};

/// Make a key of `role` (and member) with the tests' admin key.
async fn key_of(app: &App, role: &str, member_id: Option<&str>) -> (String, String) {
    let mut body = json!({"name": role, "role": role});
    if let Some(m) = member_id {
        body["member_id"] = json!(m);
    }
    let made = api_ok(app, "POST", "/api/app-keys", Some(body)).await;
    assert_eq!(made["role"], role);
    (
        made["app_key"].as_str().unwrap().to_string(),
        made["app_key_id"].as_str().unwrap().to_string(),
    )
}

async fn call_as(app: &App, key: &str, method: &str, path: &str, body: Option<Value>) -> Outbound {
    let mut req = Inbound::new(method, path).header("authorization", &format!("Bearer {key}"));
    if let Some(b) = body {
        req = req.json_body(b.to_string());
    }
    call_api(app, req).await
}

/// What SPEC 15 says, written out apart from the service's table: reads for
/// everyone (app keys are admin's alone), the responder's six actions, and
/// the rest admin.
fn least_role(pattern: &str, method: &str) -> &'static str {
    const RESPONDER: [&str; 6] = ["ack", "unack", "resolve", "reopen", "comments", "silence"];
    if pattern.starts_with("/api/app-keys") {
        "admin"
    } else if method == "GET" {
        "viewer"
    } else if pattern.starts_with("/api/incidents/{incident_id}/")
        && RESPONDER
            .iter()
            .any(|a| pattern.ends_with(&format!("/{a}")))
    {
        "responder"
    } else {
        "admin"
    }
}

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 0,
        "responder" => 1,
        _ => 2,
    }
}

#[tokio::test]
async fn each_role_against_every_route() {
    // Every test of this binary logs to a subscriber of its own thread: a
    // thread without one would make tracing cache the API span as disabled
    // for all (the actor test reads the span's fields).
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    let app = test_app().await;
    let mut keys = Vec::new();
    for role in ["viewer", "responder", "admin"] {
        keys.push((role, key_of(&app, role, None).await.0));
    }
    let mut checked = 0;
    for (pattern, methods) in shared::api::ROUTES {
        // Each `{param}` gets a well-formed id that names nothing: an
        // allowed call then fails on the id or the empty body, never on
        // access, and writes nothing either way.
        let path: String = pattern
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    if part == "{delivery_id}" {
                        "ffffffffffffffffffffffffffffffff"
                    } else {
                        "0123456789abcdef"
                    }
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in *methods {
            let needed = least_role(pattern, method);
            for (role, key) in &keys {
                let body = (*method != "GET" && *method != "DELETE").then(|| json!({}));
                let before = table_dump(&app).await;
                let out = call_as(&app, key, method, &path, body).await;
                let denied = out.status == 403 && out.json()["error"]["code"] == "AccessDenied";
                if rank(role) >= rank(needed) {
                    assert!(!denied, "{role} may {method} {pattern}: {}", out.body);
                } else {
                    assert!(
                        denied,
                        "{role} may not {method} {pattern}: {} {}",
                        out.status, out.body
                    );
                    assert_eq!(
                        table_dump(&app).await,
                        before,
                        "{role} {method} {pattern} wrote"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 3 * 50, "{checked} calls");
}

#[tokio::test]
async fn a_refused_change_writes_nothing_and_an_allowed_one_works() {
    // Every test of this binary logs to a subscriber of its own thread: a
    // thread without one would make tracing cache the API span as disabled
    // for all (the actor test reads the span's fields).
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let (viewer, _) = key_of(&app, "viewer", None).await;
    let (responder, _) = key_of(&app, "responder", None).await;
    let fired = push_ok(
        &app,
        &s.integration_key,
        &json!({"title": "disk full", "event_status": "Critical", "alert_key": "k1"}),
    )
    .await;
    let incident = fired["incident_id"].as_str().unwrap();
    let before = table_dump(&app).await;
    for (key, method, path, body) in [
        (
            &viewer,
            "POST",
            format!("/api/incidents/{incident}/ack"),
            None,
        ),
        (
            &viewer,
            "POST",
            "/api/channels".to_string(),
            Some(json!({"name": "x"})),
        ),
        (
            &responder,
            "POST",
            "/api/channels".to_string(),
            Some(json!({"name": "x"})),
        ),
        (
            &responder,
            "DELETE",
            format!("/api/channels/{}", s.channel_id),
            None,
        ),
        (
            &responder,
            "POST",
            "/api/app-keys".to_string(),
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (
            &responder,
            "POST",
            "/api/webhooks".to_string(),
            Some(json!({"name": "x", "url": "https://example.com/x"})),
        ),
    ] {
        let out = call_as(&app, key, method, &path, body).await;
        assert_eq!(out.status, 403, "{method} {path}: {}", out.body);
        assert_eq!(out.json()["error"]["code"], "AccessDenied");
    }
    assert_eq!(table_dump(&app).await, before, "nothing written");
    let out = call_as(
        &app,
        &responder,
        "POST",
        &format!("/api/incidents/{incident}/ack"),
        None,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let out = call_as(
        &app,
        &viewer,
        "GET",
        &format!("/api/incidents/{incident}"),
        None,
    )
    .await;
    assert_eq!(out.json()["data"]["status"], "Processing");
}

/// `detail.actor` on every human action's timeline entry: the member of a
/// member-tied key, else the key's id; `i_rslv` keeps `detail.by`. And the
/// log line of the change names the caller.
#[tokio::test(flavor = "current_thread")]
async fn the_actor_is_recorded_for_member_keys_and_plain_keys() {
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let (member_key, _) = key_of(&app, "responder", Some("m-alice")).await;
    let (plain_key, plain_id) = key_of(&app, "responder", None).await;
    let fired = push_ok(
        &app,
        &s.integration_key,
        &json!({"title": "disk full", "event_status": "Critical", "alert_key": "k1"}),
    )
    .await;
    let incident = fired["incident_id"].as_str().unwrap();
    let steps = [
        (&member_key, "ack", None),
        (&plain_key, "unack", None),
        (&member_key, "comments", Some(json!({"text": "looking"}))),
        (&plain_key, "resolve", None),
        (
            &member_key,
            "reopen",
            Some(json!({"reason": "still broken"})),
        ),
    ];
    for (key, action, body) in &steps {
        let out = call_as(
            &app,
            key,
            "POST",
            &format!("/api/incidents/{incident}/{action}"),
            body.clone(),
        )
        .await;
        assert_eq!(out.status, 200, "{action}: {}", out.body);
    }
    let timeline = api_ok(
        &app,
        "GET",
        &format!("/api/incidents/{incident}/timeline"),
        None,
    )
    .await;
    let items = timeline["items"].as_array().unwrap();
    let by_member = json!({"member_id": "m-alice"});
    let by_key = json!({"app_key_id": plain_id});
    for (kind, actor) in [
        ("i_ack", &by_member),
        ("i_unack", &by_key),
        ("i_comm", &by_member),
        ("i_rslv", &by_key),
        ("i_reopen", &by_member),
    ] {
        let entry = items
            .iter()
            .find(|i| i["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {timeline}"));
        assert_eq!(&entry["detail"]["actor"], actor, "{kind}: {entry}");
    }
    let rslv = items.iter().find(|i| i["type"] == "i_rslv").unwrap();
    assert_eq!(rslv["detail"]["by"], "manual");
    let comm = items.iter().find(|i| i["type"] == "i_comm").unwrap();
    assert_eq!(comm["detail"]["text"], "looking");
    let new = items.iter().find(|i| i["type"] == "i_new").unwrap();
    assert!(
        new["detail"].get("actor").is_none(),
        "a push is not a person"
    );

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("/api/incidents/{incident_id}/unack"))
        .unwrap_or_else(|| panic!("no log line of the unack:\n{text}"));
    assert!(line.contains(&plain_id), "{line}");
    let line = text
        .lines()
        .find(|l| l.contains("/api/incidents/{incident_id}/ack\""))
        .unwrap_or_else(|| panic!("no log line of the ack:\n{text}"));
    assert!(line.contains("m-alice"), "{line}");
    assert!(
        !text.contains(&member_key) && !text.contains(&plain_key),
        "a key was logged"
    );
}

#[tokio::test]
async fn app_keys_take_a_role_and_an_optional_member() {
    // Every test of this binary logs to a subscriber of its own thread: a
    // thread without one would make tracing cache the API span as disabled
    // for all (the actor test reads the span's fields).
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    let app = test_app().await;
    for (body, field) in [
        (json!({"name": "x"}), "role: "),
        (json!({"name": "x", "role": "root"}), "role: "),
        (
            json!({"name": "x", "role": "viewer", "member_id": "not an id!"}),
            "member_id: ",
        ),
    ] {
        let out = api(&app, "POST", "/api/app-keys", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(field), "{message}");
        assert!(!message.contains("root"));
    }
    let (_, id) = key_of(&app, "viewer", Some("m-wall")).await;
    let listed = api_ok(&app, "GET", "/api/app-keys", None).await;
    let mine = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["app_key_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["role"], "viewer");
    assert_eq!(mine["member_id"], "m-wall");
    // The tests' own key was stored without a role argument: admin.
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == "tests" && i["role"] == "admin"));
}
