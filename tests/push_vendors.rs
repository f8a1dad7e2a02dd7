//! BlueKing, Alibaba Cloud Prometheus and Jiankongbao end to end against
//! DynamoDB Local, with their fixtures: firing opens an incident, a repeated
//! firing is a duplicate, recovery closes it.

use integration_tests::*;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use shared::intake::integrations::IntegrationKind;

fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

async fn push_kind(
    app: &shared::app::App,
    kind: IntegrationKind,
    key: &str,
    body: &Value,
) -> Value {
    let out = push_raw(app, kind, key, "application/json", &body.to_string()).await;
    assert_eq!(out.status, 200, "{}", out.body);
    out.json()["data"].clone()
}

async fn incident(app: &shared::app::App, id: &Value) -> Value {
    api_ok(
        app,
        "GET",
        &format!("/api/incidents/{}", id.as_str().unwrap()),
        None,
    )
    .await
}

#[tokio::test]
async fn blueking_anomaly_repeat_recovery_and_closed() {
    let app = test_app().await;
    let s = channel_with_integration(&app, "blueking", json!({"name": "bk"})).await;
    let bk = IntegrationKind::Blueking;
    let anomaly = fixture_json("blueking/anomaly.json");

    let first = push_kind(&app, bk, &s.integration_key, &anomaly).await;
    assert_eq!(first["outcome"], "new_incident");
    assert_eq!(first["alert_key"], "17632051301042");
    let inc = incident(&app, &first["incident_id"]).await;
    assert_eq!(inc["severity"], "Critical");
    assert_eq!(inc["title"], "Disk usage above 90% (10.0.1.7)");
    assert_eq!(inc["labels"]["bk_target_ip"], "10.0.1.7");

    // The same notice again (a sender retry) changes nothing; a later notice with the same content is a duplicate.
    assert_eq!(
        push_kind(&app, bk, &s.integration_key, &anomaly).await["outcome"],
        "already_applied"
    );
    let mut later = anomaly.clone();
    later["latest_anomaly_record"]["source_time"] = json!("2026-11-20 08:20:00");
    assert_eq!(
        push_kind(&app, bk, &s.integration_key, &later).await["outcome"],
        "deduplicated"
    );

    // Integer event ids from older senders name the same alert.
    let mut numeric = later.clone();
    numeric["event"]["id"] = json!(17632051301042u64);
    numeric["latest_anomaly_record"]["source_time"] = json!("2026-11-20 08:25:00");
    let out = push_kind(&app, bk, &s.integration_key, &numeric).await;
    assert_eq!(
        (out["outcome"].as_str(), &out["alert_id"]),
        (Some("deduplicated"), &first["alert_id"])
    );

    let recovered = push_kind(
        &app,
        bk,
        &s.integration_key,
        &fixture_json("blueking/recovery.json"),
    )
    .await;
    assert_eq!(recovered["outcome"], "recovered");
    assert_eq!(
        incident(&app, &first["incident_id"]).await["status"],
        "Closed"
    );
    // `closed` after recovery: nothing left to close.
    let closed = push_kind(
        &app,
        bk,
        &s.integration_key,
        &fixture_json("blueking/closed.json"),
    )
    .await;
    assert_eq!(closed["outcome"], "ignored");

    // Other notice types are accepted without a state change.
    let before = state_dump(&app).await;
    let mut manual = anomaly.clone();
    manual["type"] = json!("manual");
    assert_eq!(
        push_kind(&app, bk, &s.integration_key, &manual).await["outcome"],
        "ignored"
    );
    assert_eq!(state_dump(&app).await, before);

    // Not BlueKing's shape: refused, naming the field, nothing written.
    let mut broken = anomaly.clone();
    broken["event"]["level"] = json!(9);
    let before = table_dump(&app).await;
    let out = push_raw(
        &app,
        bk,
        &s.integration_key,
        "application/json",
        &broken.to_string(),
    )
    .await;
    assert_eq!(out.status, 400);
    assert!(
        out.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("event.level"),
        "{}",
        out.body
    );
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn aliyun_prometheus_multi_alert_payloads() {
    let app = test_app().await;
    let s = channel_with_integration(&app, "aliyun-prometheus", json!({"name": "arms"})).await;
    let kind = IntegrationKind::AliyunPrometheus;
    let firing = fixture_json("aliyun-prometheus/firing.json");

    let data = push_kind(&app, kind, &s.integration_key, &firing).await;
    assert_eq!(
        data["alert_keys"],
        json!(["3f9a1c2b7d4e8f01", "77c0e5a9b1d2f3e4"])
    );
    let results = data["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["outcome"] == "new_incident"));
    let first_incident = incident(&app, &results[0]["incident_id"]).await;
    assert_eq!(first_incident["severity"], "Critical");
    assert!(first_incident["title"]
        .as_str()
        .unwrap()
        .starts_with("PodCrashLooping"));
    assert_eq!(first_incident["labels"]["namespace"], "payments");
    assert_eq!(
        incident(&app, &results[1]["incident_id"]).await["severity"],
        "Critical",
        "error maps to Critical"
    );

    let again = push_kind(&app, kind, &s.integration_key, &firing).await;
    assert!(again["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["outcome"] == "already_applied"));

    let resolved = push_kind(
        &app,
        kind,
        &s.integration_key,
        &fixture_json("aliyun-prometheus/resolved.json"),
    )
    .await;
    assert_eq!(resolved["alert_keys"], json!(["3f9a1c2b7d4e8f01"]));
    assert_eq!(resolved["results"][0]["outcome"], "recovered");
    assert_eq!(
        incident(&app, &results[0]["incident_id"]).await["status"],
        "Closed"
    );
    assert_eq!(
        incident(&app, &results[1]["incident_id"]).await["status"],
        "Triggered"
    );

    // A bad element refuses the whole payload, naming it, and writes nothing.
    let before = table_dump(&app).await;
    let mut bad = firing.clone();
    bad["alerts"][1]["labels"] = json!("not a map");
    let out = push_raw(
        &app,
        kind,
        &s.integration_key,
        "application/json",
        &bad.to_string(),
    )
    .await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(
        out.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alerts"),
        "{}",
        out.body
    );
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn jiankongbao_json_and_form_bodies() {
    let app = test_app().await;
    let s = channel_with_integration(&app, "jiankongbao", json!({"name": "jkb"})).await;
    let kind = IntegrationKind::Jiankongbao;
    let alarm = fixture_json("jiankongbao/alarm.json");

    let first = push_kind(&app, kind, &s.integration_key, &alarm).await;
    assert_eq!(first["outcome"], "new_incident");
    assert_eq!(first["alert_key"], "jkb:1209934");
    let inc = incident(&app, &first["incident_id"]).await;
    assert_eq!(inc["severity"], "Warning");
    let alert = &inc["alerts"][0];
    assert!(
        alert["description"]
            .as_str()
            .unwrap()
            .contains("shop homepage"),
        "content is URL-decoded"
    );

    // The same alarm a minute later, as a form post with every number a string: a duplicate.
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(alarm.as_object().unwrap().iter().map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let text = if k == "fault_time" {
                "1763626860".to_string()
            } else {
                text
            };
            let text = if k == "msg_id" {
                "88213350".to_string()
            } else {
                text
            };
            (k.clone(), text)
        }))
        .finish();
    let out = push_raw(
        &app,
        kind,
        &s.integration_key,
        "application/x-www-form-urlencoded",
        &form,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.json()["data"]["outcome"], "deduplicated");

    let recovered = push_kind(
        &app,
        kind,
        &s.integration_key,
        &fixture_json("jiankongbao/recovery.json"),
    )
    .await;
    assert_eq!(recovered["outcome"], "recovered");
    assert_eq!(
        incident(&app, &first["incident_id"]).await["status"],
        "Closed"
    );
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn jiankongbao_callback_token_is_enforced() {
    let app = test_app().await;
    let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "jkb"}))).await;
    let made = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "jkb", "kind": "jiankongbao", "channel_id": ch["channel_id"], "callback_token": "s3cret"})),
    )
    .await;
    let key = made["integration_key"].as_str().unwrap();
    let kind = IntegrationKind::Jiankongbao;
    let mut alarm = fixture_json("jiankongbao/alarm.json");
    let before = table_dump(&app).await;

    for token in [None, Some("0".repeat(32))] {
        let mut body = alarm.clone();
        if let Some(t) = token {
            body["token"] = json!(t);
        }
        let out = push_raw(&app, kind, key, "application/json", &body.to_string()).await;
        assert_eq!(out.status, 401, "{}", out.body);
        assert!(!out.body.contains("s3cret"));
    }
    assert_eq!(table_dump(&app).await, before);

    alarm["token"] = json!(md5_hex(&format!(
        "{}{}{}{}",
        "88213340", "1209934", "1763626800", "s3cret"
    )));
    assert_eq!(
        push_kind(&app, kind, key, &alarm).await["outcome"],
        "new_incident"
    );
}

#[tokio::test]
async fn each_kind_refuses_the_others_keys() {
    let app = test_app().await;
    let bk = channel_with_integration(&app, "blueking", json!({"name": "bk"})).await;
    let out = push_raw(
        &app,
        IntegrationKind::AliyunPrometheus,
        &bk.integration_key,
        "application/json",
        &fixture("aliyun-prometheus/firing.json"),
    )
    .await;
    assert_eq!(out.status, 403);
    // Jiankongbao takes forms; the others do not.
    let out = push_raw(
        &app,
        IntegrationKind::Blueking,
        &bk.integration_key,
        "application/x-www-form-urlencoded",
        "a=b",
    )
    .await;
    assert_eq!(out.json()["error"]["code"], "InvalidContentType");
}
