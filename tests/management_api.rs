//! The management API against DynamoDB Local: auth, channels, integrations,
//! key rotation, incident listing and pagination.

use integration_tests::*;
use serde_json::json;
use shared::intake::http::Inbound;

#[tokio::test]
async fn app_key_is_required_and_checked() {
    let app = test_app().await;
    let out = shared::api::handle_api(&app, Inbound::new("GET", "/api/channels")).await;
    assert_eq!(
        (out.status, out.json()["error"]["code"].as_str()),
        (401, Some("Unauthorized"))
    );
    let out = shared::api::handle_api(
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
