//! The management API against DynamoDB Local: auth, channels, integrations,
//! key rotation, incident listing and pagination.

use integration_tests::*;
use serde_json::json;
use shared::intake::http::Inbound;

#[tokio::test]
async fn app_key_is_required_and_checked() {
    let app = test_app().await;
    let out = call_api(&app, Inbound::new("GET", "/api/channels")).await;
    assert_eq!(
        (out.status, out.json()["error"]["code"].as_str()),
        (401, Some("Unauthorized"))
    );
    let out = call_api(
        &app,
        Inbound::new("GET", "/api/channels").header("authorization", "Bearer wrong"),
    )
    .await;
    assert_eq!(out.status, 401);
    assert_eq!(
        api(&app, "GET", "/api/nothing", None).await.json()["error"]["code"],
        "RouteNotFound"
    );
    assert_eq!(
        api(&app, "PUT", "/api/channels", None).await.json()["error"]["code"],
        "MethodNotAllowed"
    );
}

#[tokio::test]
async fn channel_crud_and_validation() {
    let app = test_app().await;
    let created = api_ok(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"name": "payments"})),
    )
    .await;
    let id = created["channel_id"].as_str().unwrap();
    assert_eq!(created["grouping"]["method"], "none");
    assert_eq!(created["auto_close"], true);

    let patched = api_ok(
        &app,
        "PATCH",
        &format!("/api/channels/{id}"),
        Some(json!({"grouping": {"method": "rules", "equals": [["labels.service", "title"]], "window_minutes": 30, "window_type": "sliding"}, "auto_close": false})),
    )
    .await;
    assert_eq!(patched["grouping"]["window_type"], "sliding");
    assert_eq!(patched["auto_close"], false);
    assert_eq!(
        api_ok(&app, "GET", &format!("/api/channels/{id}"), None).await,
        patched
    );
    assert_eq!(
        api_ok(&app, "GET", "/api/channels", None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (
            json!({"name": "x", "grouping": {"method": "rules", "equals": [["nope"]]}}),
            "grouping.equals",
        ),
        (
            json!({"name": "x", "grouping": {"method": "rules", "equals": [["title"]], "window_minutes": 43201}}),
            "window_minutes",
        ),
        (
            json!({"name": "x", "grouping": {"method": "magic"}}),
            "grouping",
        ),
    ] {
        let out = api(&app, "POST", "/api/channels", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        assert!(
            out.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            out.body
        );
    }

    assert_eq!(
        api_ok(&app, "DELETE", &format!("/api/channels/{id}"), None).await["deleted"],
        true
    );
    assert_eq!(
        api(&app, "GET", &format!("/api/channels/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn integration_keys_are_shown_once_hashed_and_rotatable() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    assert_eq!(s.integration_key.len(), 32, "128 random bits, hex");
    // The key is stored only as a hash.
    let dump = table_dump(&app).await.join("\n");
    assert!(!dump.contains(&s.integration_key));

    let body = json!({"title_rule": "t", "event_status": "Info", "event_time": 1000});
    assert_eq!(push(&app, &s.integration_key, &body).await.status, 200);

    let ids: Vec<String> = scan_all(&app)
        .await
        .iter()
        .filter_map(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .and_then(|p| p.strip_prefix("INT#").map(String::from))
        })
        .collect();
    let integration_id = &ids[0];
    let read = api_ok(
        &app,
        "GET",
        &format!("/api/integrations/{integration_id}"),
        None,
    )
    .await;
    assert_eq!(read["kind"], "standard");
    assert!(read.get("integration_key").is_none());

    let other_instance = another_instance(&app).await;
    let rotated = api_ok(
        &app,
        "POST",
        &format!("/api/integrations/{integration_id}/rotate-key"),
        None,
    )
    .await;
    let new_key = rotated["integration_key"].as_str().unwrap();
    assert_ne!(new_key, s.integration_key);
    assert!(rotated["push_path"].as_str().unwrap().ends_with(new_key));
    // The old key is refused at once, by every instance.
    for instance in [&app, &other_instance] {
        assert_eq!(push(instance, &s.integration_key, &body).await.status, 401);
        assert_eq!(push(instance, new_key, &body).await.status, 200);
    }
}

#[tokio::test]
async fn integration_create_validation() {
    let app = test_app().await;
    let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "c"}))).await;
    let cid = ch["channel_id"].as_str().unwrap();
    for (body, field) in [
        (json!({"kind": "standard", "channel_id": cid}), "name"),
        (
            json!({"name": "x", "kind": "nagios", "channel_id": cid}),
            "kind",
        ),
        (json!({"name": "x", "kind": "standard"}), "channel_id"),
        (
            json!({"name": "x", "kind": "standard", "channel_id": "missing"}),
            "channel_id",
        ),
        (
            json!({"name": "x", "kind": "standard", "channel_id": cid, "callback_token": "t"}),
            "callback_token",
        ),
    ] {
        let out = api(&app, "POST", "/api/integrations", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        assert!(
            out.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            out.body
        );
    }
    let made = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "jkb", "kind": "jiankongbao", "channel_id": cid, "callback_token": "s3cret"})),
    )
    .await;
    assert!(made["push_path"]
        .as_str()
        .unwrap()
        .starts_with("/event/push/alert/jiankongbao?integration_key="));
    let read = api_ok(
        &app,
        "GET",
        &format!(
            "/api/integrations/{}",
            made["integration_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(read["has_callback_token"], true);
    assert!(
        !read.to_string().contains("s3cret"),
        "the callback token is never echoed"
    );
}

#[tokio::test]
async fn incidents_list_newest_first_filtered_and_paginated() {
    let app = test_app().await;
    let a = standard_setup(&app).await;
    let b = standard_setup(&app).await;
    for i in 0..7 {
        let body = json!({"title_rule": format!("a{i}"), "event_status": "Warning", "alert_key": format!("a{i}"), "event_time": 1000 + i});
        push_ok(&app, &a.integration_key, &body).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    for i in 0..3 {
        let body = json!({"title_rule": format!("b{i}"), "event_status": "Critical", "alert_key": format!("b{i}"), "event_time": 1000 + i});
        push_ok(&app, &b.integration_key, &body).await;
    }
    // Close a1 and acknowledge a2.
    push_ok(
        &app,
        &a.integration_key,
        &json!({"title_rule": "a1", "event_status": "Ok", "alert_key": "a1", "event_time": 5000}),
    )
    .await;
    let a_items = incidents(&app, &format!("channel_id={}", a.channel_id)).await;
    assert_eq!(a_items.len(), 7);
    let titles: Vec<&str> = a_items
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["a6", "a5", "a4", "a3", "a2", "a1", "a0"],
        "newest first"
    );
    let a2 = a_items.iter().find(|i| i["title"] == "a2").unwrap()["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    api_ok(&app, "POST", &format!("/api/incidents/{a2}/ack"), None).await;

    assert_eq!(
        incidents(&app, &format!("channel_id={}&status=Closed", a.channel_id))
            .await
            .len(),
        1
    );
    assert_eq!(
        incidents(
            &app,
            &format!("channel_id={}&status=Processing", a.channel_id)
        )
        .await
        .len(),
        1
    );
    assert_eq!(
        incidents(
            &app,
            &format!("channel_id={}&status=Triggered", a.channel_id)
        )
        .await
        .len(),
        5
    );
    assert_eq!(incidents(&app, "status=Triggered").await.len(), 8);
    assert_eq!(incidents(&app, "").await.len(), 10);

    // Pages of 3 across all statuses and channels: every incident once, newest first.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let data = api_ok(
            &app,
            "GET",
            &format!("/api/incidents?limit=3&cursor={cursor}"),
            None,
        )
        .await;
        let items = data["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| {
            (
                i["created_at"].as_i64().unwrap(),
                i["incident_id"].as_str().unwrap().to_string(),
            )
        }));
        match data["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0));

    for bad in ["limit=0", "limit=101", "status=Open", "cursor=@@"] {
        assert_eq!(
            api(&app, "GET", &format!("/api/incidents?{bad}"), None)
                .await
                .status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        api(&app, "GET", "/api/incidents/nope", None).await.status,
        404
    );
    assert_eq!(api(&app, "GET", "/api/alerts/nope", None).await.status, 404);
    assert_eq!(
        api(&app, "POST", "/api/incidents/nope/resolve", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_naming_the_field() {
    let app = test_app().await;
    let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "c"}))).await;
    let cid = ch["channel_id"].as_str().unwrap();
    let title_is_x = json!({"key": "title", "oper": "IN", "vals": ["x"]});
    let integration = |extra: serde_json::Value| {
        let mut body = json!({"name": "x", "kind": "standard"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let channel_path = format!("/api/channels/{cid}");
    for (method, path, body, field) in [
        (
            "POST",
            "/api/channels",
            json!({"name": "x", "autoClose": false}),
            "autoClose",
        ),
        (
            "PATCH",
            channel_path.as_str(),
            json!({"autoClose": false}),
            "autoClose",
        ),
        (
            "POST",
            "/api/channels",
            json!({"name": "x", "grouping": {"method": "none", "window": 5}}),
            "grouping.window",
        ),
        (
            "POST",
            "/api/integrations",
            integration(json!({"channel_id": cid, "rateLimit": {"per_second": 5}})),
            "rateLimit",
        ),
        (
            "POST",
            "/api/integrations",
            integration(
                json!({"channel_id": cid, "rate_limit": {"per_second": 5, "perMinute": 9}}),
            ),
            "rate_limit.perMinute",
        ),
        (
            "POST",
            "/api/integrations",
            integration(
                json!({"routes": {"cases": [{"if": [[{"key": "title", "oper": "IN", "vals": ["x"], "value": "y"}]], "channel_ids": [cid]}]}}),
            ),
            "routes.cases[0].if[0][0].value",
        ),
        (
            "POST",
            "/api/integrations",
            integration(
                json!({"routes": {"cases": [{"if": [[title_is_x]], "channel_ids": [cid], "fall_through": true}]}}),
            ),
            "routes.cases[0].fall_through",
        ),
        (
            "POST",
            "/api/integrations",
            integration(json!({"routes": {"default": {"channel_ids": [cid], "channel": cid}}})),
            "routes.default.channel",
        ),
        (
            "POST",
            "/api/integrations",
            integration(json!({"routes": {"defaults": {"channel_ids": [cid]}}})),
            "routes.defaults",
        ),
        (
            "POST",
            "/api/app-keys",
            json!({"name": "ops", "scope": "all"}),
            "scope",
        ),
    ] {
        let out = api(&app, method, path, Some(body.clone())).await;
        assert_eq!(
            (out.status, out.json()["error"]["code"].as_str()),
            (400, Some("InvalidParameter")),
            "{body}: {}",
            out.body
        );
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.starts_with(&format!("{field}: unknown field")),
            "{body}: {message}"
        );
    }
    // The refused PATCH changed nothing.
    assert_eq!(
        api_ok(&app, "GET", &channel_path, None).await["auto_close"],
        true
    );
}

#[tokio::test]
async fn status_filter_counts_each_status_once() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    for i in 0..3 {
        push_ok(
            &app,
            &s.integration_key,
            &json!({"title_rule": format!("t{i}"), "event_status": "Warning", "alert_key": format!("k{i}")}),
        )
        .await;
    }
    for query in [
        "status=Triggered,Triggered",
        "status=Triggered,Processing,Triggered",
        "status=Triggered, Triggered ,Closed,Triggered",
    ] {
        assert_eq!(incidents(&app, query).await.len(), 3, "{query}");
    }
    // Paginated, a repeated status neither repeats items nor loses any.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let data = api_ok(
            &app,
            "GET",
            &format!("/api/incidents?status=Triggered,Triggered&limit=2&cursor={cursor}"),
            None,
        )
        .await;
        seen.extend(
            data["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["incident_id"].as_str().unwrap().to_string()),
        );
        match data["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (3, 3), "{seen:?}");

    let out = api(&app, "GET", "/api/incidents?status=Triggered,Open", None).await;
    assert_eq!(out.json()["error"]["code"], "InvalidParameter");
    let message = out.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("status: ") && !message.contains("Open"),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_ids_cursors_and_limits_never_reach_dynamodb() {
    use base64::Engine as _;
    let app = test_app().await;
    let (watched, requests) = recorded_instance(&app).await;
    let long = "a".repeat(3000);
    let cursor_of = |json: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let cases: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
        ("GET", format!("/api/incidents/{long}"), None, "incident_id"),
        ("GET", "/api/incidents/inc$1".into(), None, "incident_id"),
        (
            "POST",
            format!("/api/incidents/{long}/ack"),
            None,
            "incident_id",
        ),
        (
            "POST",
            format!("/api/incidents/{long}/resolve"),
            None,
            "incident_id",
        ),
        ("GET", format!("/api/alerts/{long}"), None, "alert_id"),
        ("GET", format!("/api/channels/{long}"), None, "channel_id"),
        (
            "PATCH",
            format!("/api/channels/{long}"),
            Some(json!({"name": "x"})),
            "channel_id",
        ),
        (
            "DELETE",
            format!("/api/channels/{long}"),
            None,
            "channel_id",
        ),
        (
            "GET",
            format!("/api/integrations/{long}"),
            None,
            "integration_id",
        ),
        (
            "POST",
            format!("/api/integrations/{long}/rotate-key"),
            None,
            "integration_id",
        ),
        (
            "DELETE",
            format!("/api/app-keys/{long}"),
            None,
            "app_key_id",
        ),
        (
            "GET",
            "/api/incidents?cursor=not!a!cursor".into(),
            None,
            "cursor",
        ),
        (
            "GET",
            format!("/api/incidents?cursor={long}"),
            None,
            "cursor",
        ),
        (
            "GET",
            format!(
                "/api/incidents?cursor={}",
                cursor_of(format!(r#"{{"Triggered":"001763626800123#{long}"}}"#))
            ),
            None,
            "cursor",
        ),
        (
            "GET",
            format!(
                "/api/incidents?cursor={}",
                cursor_of(r#"{"Triggered":"zzz"}"#.into())
            ),
            None,
            "cursor",
        ),
        (
            "GET",
            format!(
                "/api/incidents?cursor={}",
                cursor_of(r#"{"Open":"001763626800123#ab"}"#.into())
            ),
            None,
            "cursor",
        ),
        (
            "GET",
            format!("/api/incidents?channel_id={long}"),
            None,
            "channel_id",
        ),
        ("GET", "/api/incidents?limit=abc".into(), None, "limit"),
        ("GET", "/api/incidents?limit=0".into(), None, "limit"),
        ("GET", "/api/incidents?limit=101".into(), None, "limit"),
        (
            "GET",
            "/api/incidents?limit=99999999999999999999999".into(),
            None,
            "limit",
        ),
        ("GET", "/api/incidents?limit=-1".into(), None, "limit"),
        (
            "POST",
            "/api/integrations".into(),
            Some(json!({"name": "x", "kind": "standard", "channel_id": long})),
            "channel_id",
        ),
        (
            "POST",
            "/api/integrations".into(),
            Some(
                json!({"name": "x", "kind": "standard", "routes": {"default": {"channel_ids": [long]}}}),
            ),
            "routes.default.channel_ids[0]",
        ),
    ];
    for (method, path, body, field) in cases {
        requests.take();
        let out = api(&watched, method, &path, body).await;
        let what = format!("{method} {}", &path[..path.len().min(60)]);
        assert_eq!(
            (out.status, out.json()["error"]["code"].as_str()),
            (400, Some("InvalidParameter")),
            "{what}: {}",
            &out.body[..out.body.len().min(300)]
        );
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{what}: {message}"
        );
        if field == "cursor" {
            assert_eq!(message, "cursor: not a cursor this API issued");
        }
        // Authentication is the one request; nothing was built from the bad value.
        let sent = requests.take();
        assert_eq!(sent.len(), 1, "{what}: {sent:?}");
        assert!(
            sent[0].contains("GetItem") && sent[0].contains("APPKEY#"),
            "{what}: {sent:?}"
        );
    }

    // Well-formed ids that name nothing: 404, naming the parameter.
    for (method, path, param) in [
        ("GET", "/api/incidents/0123456789abcdef", "incident_id"),
        ("POST", "/api/incidents/0123456789abcdef/ack", "incident_id"),
        (
            "POST",
            "/api/incidents/0123456789abcdef/resolve",
            "incident_id",
        ),
        ("GET", "/api/alerts/0123456789abcdef", "alert_id"),
        ("GET", "/api/channels/0123456789abcdef", "channel_id"),
        ("DELETE", "/api/channels/0123456789abcdef", "channel_id"),
        (
            "GET",
            "/api/integrations/0123456789abcdef",
            "integration_id",
        ),
        (
            "POST",
            "/api/integrations/0123456789abcdef/rotate-key",
            "integration_id",
        ),
        ("DELETE", "/api/app-keys/0123456789abcdef", "app_key_id"),
    ] {
        let out = api(&watched, method, path, None).await;
        assert_eq!(
            (out.status, out.json()["error"]["code"].as_str()),
            (404, Some("ResourceNotFound")),
            "{method} {path}: {}",
            out.body
        );
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.starts_with(&format!("{param}: ")) && !message.contains("0123456789abcdef"),
            "{method} {path}: {message}"
        );
    }
}

#[tokio::test]
async fn app_keys_are_shown_once_listed_without_secrets_and_revoked_at_once() {
    let app = test_app().await;
    let other_instance = another_instance(&app).await;
    let made = api_ok(
        &app,
        "POST",
        "/api/app-keys",
        Some(json!({"name": "on-call laptop", "role": "admin"})),
    )
    .await;
    let key = made["app_key"].as_str().unwrap().to_string();
    let id = made["app_key_id"].as_str().unwrap().to_string();
    assert_eq!(made["name"], "on-call laptop");
    assert_eq!(key.len(), 48, "192 random bits, hex");
    assert!(shared::api::check_app_key_strength(&key).is_ok());

    let with_key = |instance: &shared::app::App, key: &str| {
        let req =
            Inbound::new("GET", "/api/channels").header("authorization", &format!("Bearer {key}"));
        let instance = instance.clone();
        async move { call_api(&instance, req).await.status }
    };
    for instance in [&app, &other_instance] {
        assert_eq!(with_key(instance, &key).await, 200);
    }

    // Stored only as hashes; listed by id, name and creation time.
    let dump = table_dump(&app).await.join("\n");
    assert!(!dump.contains(&key), "the key itself is stored");
    let listed = api_ok(&app, "GET", "/api/app-keys", None).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "the tests' own key and the new one: {listed}"
    );
    let mine = items
        .iter()
        .find(|i| i["app_key_id"] == id.as_str())
        .unwrap();
    assert_eq!(mine["name"], "on-call laptop");
    assert_eq!(mine["created_at"], made["created_at"]);
    for item in items {
        let mut fields: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort();
        assert_eq!(fields, ["app_key_id", "created_at", "name", "role"]);
    }
    let hash = shared::hashing::sha256_hex(&key);
    assert!(!listed.to_string().contains(&key) && !listed.to_string().contains(&hash));

    // Revoked: refused at once by every instance; revoking again is 404.
    let revoked = api_ok(&app, "DELETE", &format!("/api/app-keys/{id}"), None).await;
    assert_eq!(revoked, json!({"app_key_id": id, "revoked": true}));
    for instance in [&app, &other_instance] {
        assert_eq!(with_key(instance, &key).await, 401);
    }
    let again = api(&app, "DELETE", &format!("/api/app-keys/{id}"), None).await;
    assert_eq!(
        (again.status, again.json()["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    let left = api_ok(&app, "GET", "/api/app-keys", None).await;
    assert!(!left.to_string().contains(&id), "{left}");
    assert!(
        !table_dump(&app).await.join("\n").contains(&hash),
        "the hash outlived revocation"
    );
    // The key the tests call with is untouched.
    assert_eq!(with_key(&app, APP_KEY).await, 200);

    // A name is required; the routes take only their methods.
    let out = api(&app, "POST", "/api/app-keys", Some(json!({}))).await;
    assert!(out.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("name: "));
    let out = api(&app, "GET", &format!("/api/app-keys/{id}"), None).await;
    assert_eq!(out.json()["error"]["code"], "MethodNotAllowed");
}

#[test]
fn supplied_app_keys_need_128_bits_of_entropy() {
    use shared::api::check_app_key_strength;
    let generated = shared::api::new_app_key().unwrap();
    for good in [
        generated.as_str(),
        "0123456789abcdef0123456789abcdef",
        "Zq3_x-Lr8mN1vB6tY0wE5sD2fG7hJ4kP",
    ] {
        assert!(check_app_key_strength(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "short-key-0123456789",
        "0123456789abcdef0123456789abcde",     // 31 characters
        "0123456789abcdef0123456789abcdef+/=", // outside [A-Za-z0-9_-]
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb", // half and half
        "abababababababababababababababababab",
        "passwordpasswordpasswordpassword", // 6 different characters
        "aaaaaaaaaaaaaaaaaaaaaaaaabcdefghij", // one character is most of it
    ] {
        let err = check_app_key_strength(bad).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter", "{bad}");
        assert!(bad.is_empty() || !err.message().contains(bad));
    }
}

/// `GET /api/integrations` (the console's list): every integration, oldest
/// first, still listed after its key is rotated and its rules replaced, and
/// never with a key, token or secret.
#[tokio::test]
async fn integrations_are_listed_without_secrets() {
    let app = test_app().await;
    let setup = standard_setup(&app).await;
    let jkb = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "jkb", "kind": "jiankongbao", "channel_id": setup.channel_id, "callback_token": "t0ken-value"})),
    )
    .await;
    let jkb_id = jkb["integration_id"].as_str().unwrap().to_string();
    api_ok(
        &app,
        "POST",
        &format!("/api/integrations/{jkb_id}/rotate-key"),
        None,
    )
    .await;
    api_ok(
        &app,
        "PUT",
        &format!("/api/integrations/{jkb_id}/pipeline"),
        Some(json!({"rules": [{"kind": "severity_reset", "severity": "Info"}]})),
    )
    .await;
    let listed = api_ok(&app, "GET", "/api/integrations", None).await;
    let items = listed["items"].as_array().unwrap();
    // Oldest first by creation second; these two share one, so either order.
    let mut names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["jkb", "standard test"]);
    let jkb_listed = items.iter().find(|i| i["name"] == "jkb").unwrap();
    assert_eq!(jkb_listed["has_callback_token"], true);
    let text = listed.to_string();
    for secret in [
        "t0ken-value",
        &setup.integration_key,
        "integration_key",
        "key_hash",
    ] {
        assert!(!text.contains(secret), "the listing shows {secret}");
    }
}

/// SPEC 16 "Bounded reads": an incident of 250 alerts and an alert of 120
/// events page 100 at a time with every item reachable once, and the
/// DynamoDB requests of `GET /api/incidents/{id}` do not grow with its alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incident_of_250_alerts_and_an_alert_of_120_events_page_100_at_a_time() {
    let app = test_app().await;
    let s = channel_with_integration(
        &app,
        "standard",
        json!({"name": "grouped", "grouping": {"method": "rules", "equals": [["labels.service"]]}}),
    )
    .await;
    let base = shared::store::now_ms() / 1000 - 3600;
    let fire = |i: usize| {
        json!({"title_rule": format!("disk {i}"), "event_status": "Critical", "alert_key": format!("k{i}"),
               "labels": {"service": "api"}, "event_time": base})
    };
    let first = push_ok(&app, &s.integration_key, &fire(0)).await;
    let incident = first["incident_id"].as_str().unwrap().to_string();
    for i in 1..5 {
        push_ok(&app, &s.integration_key, &fire(i)).await;
    }
    let (recorded, log) = recorded_instance(&app).await;
    let requests_of_get = |n: usize| {
        let (recorded, log, incident) = (recorded.clone(), log.clone(), incident.clone());
        async move {
            log.take();
            let data = api_ok(
                &recorded,
                "GET",
                &format!("/api/incidents/{incident}"),
                None,
            )
            .await;
            assert_eq!(data["alert_count"], n);
            log.take().len()
        }
    };
    let small = requests_of_get(5).await;
    for chunk in (5..250).collect::<Vec<_>>().chunks(25) {
        let pushes: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let (app, key, body) = (app.clone(), s.integration_key.clone(), fire(i));
                tokio::spawn(async move { push_ok(&app, &key, &body).await })
            })
            .collect();
        for pushed in pushes {
            assert_eq!(pushed.await.unwrap()["incident_id"], json!(incident));
        }
    }
    let large = requests_of_get(250).await;
    eprintln!(
        "FIGURE GET /api/incidents/{{id}}: {small} DynamoDB requests at 5 alerts, {large} at 250"
    );
    assert!(small > 0, "the recorder saw the requests");
    assert_eq!(
        small, large,
        "requests of GET incident grow with its alerts"
    );

    let data = api_ok(&app, "GET", &format!("/api/incidents/{incident}"), None).await;
    let mut seen: Vec<String> = Vec::new();
    let mut page = data["alerts"].as_array().unwrap().clone();
    let mut cursor = data["alerts_next_cursor"].clone();
    let mut sizes = vec![page.len()];
    loop {
        seen.extend(
            page.iter()
                .map(|a| a["alert_id"].as_str().unwrap().to_string()),
        );
        let Some(c) = cursor.as_str() else { break };
        let next = api_ok(
            &app,
            "GET",
            &format!("/api/incidents/{incident}/alerts?cursor={c}"),
            None,
        )
        .await;
        page = next["items"].as_array().unwrap().clone();
        cursor = next["next_cursor"].clone();
        sizes.push(page.len());
    }
    assert_eq!(sizes[..3], [100, 100, 50], "{sizes:?}");
    assert!(sizes[3..].iter().all(|n| *n == 0), "{sizes:?}");
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (250, 250));

    // One alert, 120 stored events (each a change, so each is stored).
    for i in 0..120 {
        let mut body = fire(0);
        body["description"] = json!(format!("reading {i}"));
        body["event_time"] = json!(base + 1 + i as i64);
        push_ok(&app, &s.integration_key, &body).await;
    }
    let alert_id = first["alert_id"].as_str().unwrap();
    let alert = api_ok(&app, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    let mut events = alert["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 100);
    let cursor = alert["events_next_cursor"].as_str().expect("more events");
    let rest = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{alert_id}/events?cursor={cursor}"),
        None,
    )
    .await;
    events.extend(rest["items"].as_array().unwrap().iter().cloned());
    assert!(rest["next_cursor"].is_null(), "{}", rest["next_cursor"]);
    assert_eq!(events.len(), 121, "the first event and 120 changes");
    let times: Vec<i64> = events
        .iter()
        .map(|e| e["event_time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    // A cursor that was not issued is refused, naming the field.
    let out = api(
        &app,
        "GET",
        &format!("/api/alerts/{alert_id}/events?cursor=Zm9v"),
        None,
    )
    .await;
    assert_eq!(out.status, 400);
    assert!(out.body.contains("cursor"));
}

/// An alert's first event is held on its record, not as an item of its own:
/// pages of one event still walk the whole history in order, and a
/// superseded alert's final snapshot keeps its first event.
#[tokio::test]
async fn the_first_event_lives_on_the_alert_record_and_pages_like_the_rest() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let base = shared::store::now_ms() / 1000 - 3600;
    let event = |description: &str, status: &str, t: i64| {
        json!({"title_rule": "disk full", "event_status": status, "alert_key": "db",
               "description": description, "event_time": base + t})
    };
    let first = push_ok(&app, &s.integration_key, &event("one", "Critical", 0)).await;
    let alert_id = first["alert_id"].as_str().unwrap().to_string();
    let event_items =
        |items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]| {
            items
                .iter()
                .filter(|i| {
                    i["pk"]
                        .as_s()
                        .is_ok_and(|pk| pk == &format!("EV#{alert_id}"))
                })
                .count()
        };
    assert_eq!(
        event_items(&scan_all(&app).await),
        0,
        "no item for the first event"
    );
    push_ok(&app, &s.integration_key, &event("two", "Critical", 1)).await;
    push_ok(&app, &s.integration_key, &event("three", "Warning", 2)).await;
    assert_eq!(event_items(&scan_all(&app).await), 2);

    // Pages of one: the first event, then each stored one, then the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let query = match &cursor {
            Some(c) => format!("?limit=1&cursor={c}"),
            None => "?limit=1".to_string(),
        };
        let page = api_ok(
            &app,
            "GET",
            &format!("/api/alerts/{alert_id}/events{query}"),
            None,
        )
        .await;
        for e in page["items"].as_array().unwrap() {
            seen.push(e["description"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["one", "two", "three"]);

    // The alert recovers; the key fires again: a new alert supersedes it,
    // and its record, now the final snapshot, still shows its first event.
    push_ok(&app, &s.integration_key, &event("", "Ok", 3)).await;
    let next = push_ok(&app, &s.integration_key, &event("again", "Critical", 4)).await;
    assert_ne!(next["alert_id"], json!(alert_id));
    let old = api_ok(&app, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    let history: Vec<&str> = old["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["description"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(history, ["one", "two", "three", ""], "{old}");
    assert_eq!(old["active"], false);
    let new_alert = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", next["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(new_alert["events"].as_array().unwrap().len(), 1);
    assert_eq!(new_alert["events"][0]["description"], "again");
}

/// The `Ok` that closes an alert is held on its head, then on its record
/// once a new alert supersedes it, not as an item of its own: every page
/// size walks the whole history in order, ending with it.
#[tokio::test]
async fn the_closing_event_lives_on_the_head_then_the_record_and_pages_last() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let base = shared::store::now_ms() / 1000 - 3600;
    let event = |description: &str, status: &str, t: i64| {
        json!({"title_rule": "disk full", "event_status": status, "alert_key": "db",
               "description": description, "event_time": base + t})
    };
    let first = push_ok(&app, &s.integration_key, &event("one", "Critical", 0)).await;
    let alert_id = first["alert_id"].as_str().unwrap().to_string();
    push_ok(&app, &s.integration_key, &event("two", "Warning", 1)).await;
    push_ok(&app, &s.integration_key, &event("closed", "Ok", 2)).await;
    let history_items = scan_all(&app)
        .await
        .iter()
        .filter(|i| {
            i["pk"]
                .as_s()
                .is_ok_and(|pk| pk == &format!("EV#{alert_id}"))
        })
        .count();
    assert_eq!(history_items, 1, "only the second event is an item");

    let walk = |limit: usize| {
        let app = &app;
        let alert_id = alert_id.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..10 {
                let query = match &cursor {
                    Some(c) => format!("?limit={limit}&cursor={c}"),
                    None => format!("?limit={limit}"),
                };
                let page = api_ok(
                    app,
                    "GET",
                    &format!("/api/alerts/{alert_id}/events{query}"),
                    None,
                )
                .await;
                for e in page["items"].as_array().unwrap() {
                    seen.push(e["description"].as_str().unwrap().to_string());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            seen
        }
    };
    for limit in [1, 2, 3, 100] {
        assert_eq!(walk(limit).await, ["one", "two", "closed"], "limit {limit}");
    }
    // Superseded: the final snapshot on the record holds it.
    push_ok(&app, &s.integration_key, &event("again", "Critical", 3)).await;
    for limit in [1, 2, 100] {
        assert_eq!(walk(limit).await, ["one", "two", "closed"], "limit {limit}");
    }
    let old = api_ok(&app, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    assert_eq!(old["event_count"], 3);
    assert_eq!(old["events"].as_array().unwrap().len(), 3);
}

/// A record written before records became pointers is a full snapshot of the
/// head at the time; when its alert is superseded, the final snapshot
/// replaces it whole: nothing of the old snapshot (here a silence mark the
/// alert has since lost) outlives it.
#[tokio::test]
async fn a_superseded_alert_of_an_older_record_shows_only_its_final_state() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let base = shared::store::now_ms() / 1000 - 3600;
    let event = |status: &str, t: i64| json!({"title_rule": "disk full", "event_status": status, "alert_key": "old", "event_time": base + t});
    let first = push_ok(&app, &s.integration_key, &event("Critical", 0)).await;
    let alert_id = first["alert_id"].as_str().unwrap().to_string();
    // The record as the code before pointer records wrote it, with a mark.
    let head = app
        .store
        .get_head(&s.channel_id, "old")
        .await
        .unwrap()
        .expect("head");
    let mut old_record = shared::store::items::alert_record(&head, false);
    old_record.insert(
        "silenced_by".into(),
        aws_sdk_dynamodb::types::AttributeValue::S("rule-gone".into()),
    );
    app.store
        .client()
        .put_item()
        .table_name(app.store.table())
        .set_item(Some(old_record))
        .send()
        .await
        .unwrap();
    push_ok(&app, &s.integration_key, &event("Ok", 1)).await;
    push_ok(&app, &s.integration_key, &event("Critical", 2)).await;
    let old = api_ok(&app, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    assert_eq!(old["active"], false, "{old}");
    assert_eq!(old["silenced"], false, "{old}");
    assert!(old["silenced_by"].is_null(), "{old}");
}
