//! The standard integration end to end against DynamoDB Local.

use integration_tests::*;
use serde_json::{json, Value};
use shared::intake::integrations::IntegrationKind;

fn firing() -> Value {
    serde_json::from_str(&fixture("standard/firing.json")).unwrap()
}

fn recovery() -> Value {
    serde_json::from_str(&fixture("standard/recovery.json")).unwrap()
}

fn at(mut v: Value, t: i64) -> Value {
    v["event_time"] = json!(t);
    v
}

#[tokio::test]
async fn push_opens_incident_and_recovery_closes_it() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let data = push_ok(&app, &s.integration_key, &at(firing(), 1_763_626_800)).await;
    assert_eq!(data["alert_key"], "web-01-latency");
    assert_eq!(data["outcome"], "new_incident");
    let incident_id = data["incident_id"].as_str().unwrap().to_string();

    let open = incidents(
        &app,
        &format!("channel_id={}&status=Triggered", s.channel_id),
    )
    .await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["incident_id"], incident_id.as_str());
    assert_eq!(open[0]["title"], "10.20.3.14 / api latency > 500ms");
    assert_eq!(open[0]["severity"], "Warning");
    assert_eq!(open[0]["active_alert_count"], 1);

    let data = push_ok(&app, &s.integration_key, &at(recovery(), 1_763_627_000)).await;
    assert_eq!(data["outcome"], "recovered");

    let inc = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(inc["status"], "Closed");
    assert_eq!(inc["active_alert_count"], 0);
    assert!(inc["closed_at"].is_i64());
    let alerts = inc["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["active"], false);
    assert_eq!(alerts[0]["event_status"], "Ok");

    let alert = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", alerts[0]["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    let events = alert["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event_status"], "Warning");
    assert_eq!(events[1]["event_status"], "Ok");
    assert_eq!(events[0]["event_time"], 1_763_626_800);

    assert!(incidents(&app, "status=Triggered").await.is_empty());
    assert_eq!(incidents(&app, "status=Closed").await.len(), 1);
}

#[tokio::test]
async fn identical_event_is_a_duplicate_and_label_change_a_refresh() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let first = push_ok(&app, &s.integration_key, &at(firing(), 1000)).await;
    let dup = push_ok(&app, &s.integration_key, &at(firing(), 1001)).await;
    assert_eq!(dup["outcome"], "deduplicated");
    assert_eq!(dup["alert_id"], first["alert_id"]);

    let mut relabelled = at(firing(), 1002);
    relabelled["labels"]["cluster"] = json!("prod-west");
    assert_eq!(
        push_ok(&app, &s.integration_key, &relabelled).await["outcome"],
        "refreshed"
    );
    let alert_path = format!("/api/alerts/{}", first["alert_id"].as_str().unwrap());
    let refreshed = api_ok(&app, "GET", &alert_path, None).await;
    assert_eq!(refreshed["labels"]["cluster"], "prod-west");
    assert_eq!(refreshed["events"].as_array().unwrap().len(), 1);

    let mut changed = at(firing(), 1003);
    changed["event_status"] = json!("Critical");
    assert_eq!(
        push_ok(&app, &s.integration_key, &changed).await["outcome"],
        "updated"
    );

    let alert = api_ok(&app, "GET", &alert_path, None).await;
    assert_eq!(alert["event_count"], 4);
    assert_eq!(alert["duplicate_count"], 1);
    assert_eq!(alert["labels"]["cluster"], "prod-east");
    assert_eq!(alert["severity"], "Critical");
    // Only the first and the status change are stored events.
    assert_eq!(alert["events"].as_array().unwrap().len(), 2);
    let inc = api_ok(
        &app,
        "GET",
        &format!("/api/incidents/{}", first["incident_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(inc["severity"], "Critical");
    assert_eq!(inc["alert_count"], 1);
}

#[tokio::test]
async fn retried_request_is_not_counted_twice() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let first = push_ok(&app, &s.integration_key, &at(firing(), 1000)).await;
    for _ in 0..3 {
        assert_eq!(
            push_ok(&app, &s.integration_key, &at(firing(), 1000)).await["outcome"],
            "already_applied"
        );
    }
    let alert = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", first["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(alert["event_count"], 1);
    assert_eq!(alert["duplicate_count"], 0);
}

#[tokio::test]
async fn ok_without_open_alert_changes_nothing_and_orders_a_late_firing() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let data = push_ok(&app, &s.integration_key, &at(recovery(), 2000)).await;
    assert_eq!(data["outcome"], "ignored");
    assert!(data["alert_id"].is_null() && data["incident_id"].is_null());
    assert!(incidents(&app, "").await.is_empty());
    // The firing it overtook (older) arrives late: it must not open anything.
    assert_eq!(
        push_ok(&app, &s.integration_key, &at(firing(), 1000)).await["outcome"],
        "ignored"
    );
    assert!(incidents(&app, "").await.is_empty());
    // A newer firing does.
    assert_eq!(
        push_ok(&app, &s.integration_key, &at(firing(), 3000)).await["outcome"],
        "new_incident"
    );
    assert_eq!(incidents(&app, "").await.len(), 1);
    integration_tests::invariants::check(&app).await;
}

#[tokio::test]
async fn ack_then_resolve_closes_incident_and_alerts_and_key_reopens() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let first = push_ok(&app, &s.integration_key, &at(firing(), 1000)).await;
    let incident_id = first["incident_id"].as_str().unwrap();

    let acked = api_ok(
        &app,
        "POST",
        &format!("/api/incidents/{incident_id}/ack"),
        None,
    )
    .await;
    assert_eq!(acked["status"], "Processing");
    assert!(acked["acknowledged_at"].is_i64());
    assert_eq!(incidents(&app, "status=Processing").await.len(), 1);
    // Acknowledging twice is harmless.
    assert_eq!(
        api_ok(
            &app,
            "POST",
            &format!("/api/incidents/{incident_id}/ack"),
            None
        )
        .await["status"],
        "Processing"
    );

    let resolved = api_ok(
        &app,
        "POST",
        &format!("/api/incidents/{incident_id}/resolve"),
        None,
    )
    .await;
    assert_eq!(resolved["status"], "Closed");
    let inc = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(inc["alerts"][0]["active"], false);
    assert_eq!(inc["active_alert_count"], 0);

    // A closed incident can't be acknowledged.
    let out = api(
        &app,
        "POST",
        &format!("/api/incidents/{incident_id}/ack"),
        None,
    )
    .await;
    assert_eq!(out.status, 400);

    // The same key opens a new alert in a new incident.
    let again = push_ok(&app, &s.integration_key, &at(firing(), 2000)).await;
    assert_eq!(again["outcome"], "new_incident");
    assert_ne!(again["alert_id"], first["alert_id"]);
    assert_ne!(again["incident_id"], first["incident_id"]);
    // The old alert keeps its final state.
    let old = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", first["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(old["active"], false);
    assert_eq!(old["incident_id"], incident_id);
    let open = incidents(&app, "status=Triggered").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["incident_id"], again["incident_id"]);
}

#[tokio::test]
async fn stale_events_do_not_change_state() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    push_ok(&app, &s.integration_key, &at(firing(), 1000)).await;
    let ok = push_ok(&app, &s.integration_key, &at(recovery(), 3000)).await;
    assert_eq!(ok["outcome"], "recovered");
    let late = push_ok(&app, &s.integration_key, &at(firing(), 2000)).await;
    assert_eq!(late["outcome"], "ignored");
    assert!(incidents(&app, "status=Triggered").await.is_empty());
}

#[tokio::test]
async fn unknown_key_is_401_and_other_kind_is_403_and_nothing_is_written() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let bk = channel_with_integration(&app, "blueking", json!({"name": "bk"})).await;
    let before = table_dump(&app).await;

    let out = push(&app, "", &firing()).await;
    assert_eq!(
        (out.status, out.json()["error"]["code"].as_str()),
        (401, Some("Unauthorized"))
    );
    let out = push(&app, "0123456789abcdef0123456789abcdef", &firing()).await;
    assert_eq!(out.status, 401);
    let out = push(&app, &bk.integration_key, &firing()).await;
    assert_eq!(
        (out.status, out.json()["error"]["code"].as_str()),
        (403, Some("AccessDenied"))
    );

    // Refused for the content: each names the field, writes nothing.
    let mut too_many = firing();
    too_many["labels"] = json!((0..51)
        .map(|i| (format!("l{i}"), json!("v")))
        .collect::<serde_json::Map<_, _>>());
    let mut long_key = firing();
    long_key["alert_key"] = json!("k".repeat(256));
    let mut bad_label = firing();
    bad_label["labels"]["bad-key"] = json!("v");
    let mut ok_without_key = recovery();
    ok_without_key.as_object_mut().unwrap().remove("alert_key");
    let mut lower = firing();
    lower["event_status"] = json!("warning");
    for (body, field) in [
        (too_many, "labels"),
        (long_key, "alert_key"),
        (bad_label, "labels"),
        (ok_without_key, "alert_key"),
        (lower, "event_status"),
    ] {
        let out = push(&app, &s.integration_key, &body).await;
        assert_eq!(out.status, 400, "{}", out.body);
        let err = out.json()["error"].clone();
        assert_eq!(err["code"], "InvalidParameter");
        assert!(err["message"].as_str().unwrap().contains(field), "{err}");
    }
    let out = push_raw(
        &app,
        IntegrationKind::Standard,
        &s.integration_key,
        "text/plain",
        &firing().to_string(),
    )
    .await;
    assert_eq!(out.json()["error"]["code"], "InvalidContentType");
    let huge = format!(
        "{{\"title_rule\":\"{}\",\"event_status\":\"Info\"}}",
        "x".repeat(256 * 1024)
    );
    let out = push_raw(
        &app,
        IntegrationKind::Standard,
        &s.integration_key,
        "application/json",
        &huge,
    )
    .await;
    assert_eq!(out.json()["error"]["code"], "InvalidParameter");
    let out = push_raw(
        &app,
        IntegrationKind::Standard,
        &s.integration_key,
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!(out.status, 400);
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn every_response_has_a_fresh_request_id() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let a = push(&app, &s.integration_key, &firing()).await.json();
    let b = push(&app, "nope", &firing()).await.json();
    let (ra, rb) = (
        a["request_id"].as_str().unwrap(),
        b["request_id"].as_str().unwrap(),
    );
    assert_eq!(ra.len(), 32);
    assert_ne!(ra, rb);
}

#[tokio::test]
async fn generated_keys_dedup_senders_that_send_none() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let body = json!({"title_rule": "[TPL]${host} down", "event_status": "Critical", "labels": {"host": "db1"}, "event_time": 1000});
    let a = push_ok(&app, &s.integration_key, &body).await;
    let mut later = body.clone();
    later["event_time"] = json!(2000);
    later["description"] = json!("still down");
    let b = push_ok(&app, &s.integration_key, &later).await;
    assert_eq!(a["alert_key"], b["alert_key"]);
    assert_eq!(a["alert_key"].as_str().unwrap().len(), 32);
    assert_eq!(b["alert_id"], a["alert_id"]);
}
