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

// ---- the seven integrations of SPEC section 10, and Uptime Kuma on standard ----

/// A private integration of `kind` with extra settings; its key.
async fn integration_with(app: &shared::app::App, kind: &str, extra: Value) -> (String, String) {
    let ch = api_ok(app, "POST", "/api/channels", Some(json!({"name": kind}))).await;
    let mut body = json!({"name": kind, "kind": kind, "channel_id": ch["channel_id"], "rate_limit": UNLIMITED.clone()});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let made = api_ok(app, "POST", "/api/integrations", Some(body)).await;
    (
        ch["channel_id"].as_str().unwrap().to_string(),
        made["integration_key"].as_str().unwrap().to_string(),
    )
}

/// Push with headers; the raw answer.
async fn push_with(
    app: &shared::app::App,
    kind: IntegrationKind,
    query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> shared::intake::http::Outbound {
    let mut req = shared::intake::http::Inbound::new(
        "POST",
        &format!("/event/push/alert/{}{query}", kind.slug()),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.body = body.as_bytes().to_vec();
    call_push(app, kind, req).await
}

/// A refused push writes nothing and names the field.
async fn refused_naming(
    app: &shared::app::App,
    kind: IntegrationKind,
    key: &str,
    body: &Value,
    field: &str,
) {
    let before = table_dump(app).await;
    let out = push_raw(app, kind, key, "application/json", &body.to_string()).await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(out.body.contains(field), "{field}: {}", out.body);
    assert_eq!(table_dump(app).await, before);
}

#[tokio::test]
async fn prometheus_fire_repeat_recover_and_truncation() {
    let app = test_app().await;
    let (_, key) = integration_with(&app, "prometheus", json!({})).await;
    let kind = IntegrationKind::Prometheus;
    let firing = fixture_json("prometheus/firing.json");
    let data = push_kind(&app, kind, &key, &firing).await;
    assert_eq!(
        data["alert_keys"],
        json!(["a7d4e2f1c9b80356", "3c91be07d25fa448"])
    );
    assert!(data.get("truncated_alerts").is_none());
    let first = &data["results"][0];
    assert_eq!(first["outcome"], "new_incident");
    let inc = incident(&app, &first["incident_id"]).await;
    assert_eq!(inc["severity"], "Critical");
    assert_eq!(
        inc["title"],
        "HighRequestLatency: High request latency on web-01"
    );
    assert_eq!(
        incident(&app, &data["results"][1]["incident_id"]).await["severity"],
        "Warning"
    );
    // Alertmanager re-sends the group every repeat_interval: duplicates.
    let again = push_kind(&app, kind, &key, &firing).await;
    assert_eq!(again["results"][0]["outcome"], "already_applied");
    let mut truncated = firing.clone();
    truncated["truncatedAlerts"] = json!(5);
    assert_eq!(
        push_kind(&app, kind, &key, &truncated).await["truncated_alerts"],
        5
    );
    let resolved = push_kind(&app, kind, &key, &fixture_json("prometheus/resolved.json")).await;
    assert_eq!(resolved["results"][0]["outcome"], "recovered");
    assert_eq!(
        incident(&app, &first["incident_id"]).await["status"],
        "Closed"
    );
    let mut bad = firing.clone();
    bad["alerts"][0]["startsAt"] = json!("yesterday");
    refused_naming(&app, kind, &key, &bad, "alerts[0].startsAt").await;
}

#[tokio::test]
async fn grafana_unified_and_legacy() {
    let app = test_app().await;
    let (_, key) = integration_with(&app, "grafana", json!({})).await;
    let kind = IntegrationKind::Grafana;
    let data = push_kind(
        &app,
        kind,
        &key,
        &fixture_json("grafana/unified-firing.json"),
    )
    .await;
    assert_eq!(
        data["alert_keys"],
        json!(["c6eadffa33fcdf37", "bc97ff14869b13e3"])
    );
    let inc_id = data["results"][0]["incident_id"].clone();
    let resolved = push_kind(
        &app,
        kind,
        &key,
        &fixture_json("grafana/unified-resolved.json"),
    )
    .await;
    assert_eq!(resolved["results"][0]["outcome"], "recovered");
    assert_eq!(incident(&app, &inc_id).await["status"], "Closed");

    let legacy = fixture_json("grafana/legacy-alerting.json");
    let first = push_kind(&app, kind, &key, &legacy).await;
    assert_eq!(
        (first["alert_key"].as_str(), first["outcome"].as_str()),
        (Some("grafana:1:1"), Some("new_incident"))
    );
    assert_eq!(
        push_kind(&app, kind, &key, &legacy).await["outcome"],
        "deduplicated" // no time in the legacy body: a later receipt
    );
    let mut pending = legacy.clone();
    pending["state"] = json!("pending");
    assert_eq!(
        push_kind(&app, kind, &key, &pending).await["outcome"],
        "ignored"
    );
    let ok = push_kind(&app, kind, &key, &fixture_json("grafana/legacy-ok.json")).await;
    assert_eq!(ok["outcome"], "recovered");
    let mut bad = legacy.clone();
    bad["state"] = json!("on fire");
    refused_naming(&app, kind, &key, &bad, "state").await;
}

#[tokio::test]
async fn zabbix_problem_update_recovery() {
    let app = test_app().await;
    let (_, key) = integration_with(&app, "zabbix", json!({})).await;
    let kind = IntegrationKind::Zabbix;
    let first = push_kind(&app, kind, &key, &fixture_json("zabbix/problem.json")).await;
    assert_eq!(
        (first["alert_key"].as_str(), first["outcome"].as_str()),
        (Some("zabbix:12877"), Some("new_incident"))
    );
    let inc = incident(&app, &first["incident_id"]).await;
    assert_eq!(inc["severity"], "Critical");
    assert_eq!(inc["labels"]["component"], "cpu");
    assert_eq!(
        push_kind(&app, kind, &key, &fixture_json("zabbix/problem.json")).await["outcome"],
        "already_applied"
    );
    let before = state_dump(&app).await;
    assert_eq!(
        push_kind(&app, kind, &key, &fixture_json("zabbix/update.json")).await["outcome"],
        "ignored"
    );
    assert_eq!(state_dump(&app).await, before);
    assert_eq!(
        push_kind(&app, kind, &key, &fixture_json("zabbix/recovery.json")).await["outcome"],
        "recovered"
    );
    assert_eq!(
        incident(&app, &first["incident_id"]).await["status"],
        "Closed"
    );
    let mut bad = fixture_json("zabbix/problem.json");
    bad["event_nseverity"] = json!("{EVENT.NSEVERITY}");
    refused_naming(&app, kind, &key, &bad, "event_nseverity").await;
}

#[tokio::test]
async fn nightingale_objects_and_arrays() {
    let app = test_app().await;
    let (_, key) = integration_with(&app, "n9e", json!({})).await;
    let kind = IntegrationKind::N9e;
    let first = push_kind(&app, kind, &key, &fixture_json("n9e/alerting.json")).await;
    assert_eq!(first["outcome"], "new_incident");
    assert_eq!(
        incident(&app, &first["incident_id"]).await["severity"],
        "Critical"
    );
    // v8's Flashduty notifier: an array, and a channel_id query parameter that is ignored.
    let out = push_with(
        &app,
        kind,
        &format!("?integration_key={key}&channel_id=42"),
        &[("content-type", "application/json")],
        &fixture("n9e/v8-array.json"),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let data = out.json()["data"].clone();
    // Same event (same trigger_time) again: a retry.
    assert_eq!(data["results"][0]["outcome"], "already_applied");
    assert_eq!(data["results"][1]["outcome"], "new_incident");
    let rec = push_kind(&app, kind, &key, &fixture_json("n9e/recovered.json")).await;
    assert_eq!(rec["outcome"], "recovered");
    assert_eq!(
        incident(&app, &first["incident_id"]).await["status"],
        "Closed"
    );
    let mut bad = fixture_json("n9e/alerting.json");
    bad["severity"] = json!(0);
    refused_naming(&app, kind, &key, &bad, "severity").await;
}

#[tokio::test]
async fn pagerduty_v2_trigger_acknowledge_resolve_and_v1() {
    let app = test_app().await;
    let (_, key) = integration_with(&app, "pagerduty", json!({})).await;
    let kind = IntegrationKind::PagerDuty;
    // The routing key in the body stands for the integration key.
    let send = |body: Value| {
        let app = &app;
        async move {
            push_with(
                app,
                kind,
                "",
                &[("content-type", "application/json")],
                &body.to_string(),
            )
            .await
        }
    };
    let mut trigger = fixture_json("pagerduty/v2-trigger.json");
    // Without a key anywhere, the answer says where a PagerDuty client puts it.
    let mut keyless = trigger.clone();
    keyless.as_object_mut().unwrap().remove("routing_key");
    let out = send(keyless).await;
    assert_eq!(out.status, 401, "{}", out.body);
    assert!(out.body.contains("routing_key: missing"), "{}", out.body);
    trigger["routing_key"] = json!(key);
    let out = send(trigger.clone()).await;
    assert_eq!(out.status, 202, "{}", out.body);
    let answer = out.json();
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["message"], "Event processed");
    assert_eq!(answer["dedup_key"], "samplekeyhere");
    assert!(answer["request_id"].is_string());
    let inc_id = answer["data"]["incident_id"].clone();
    assert_eq!(incident(&app, &inc_id).await["severity"], "Critical");
    assert_eq!(
        send(trigger.clone()).await.json()["data"]["outcome"],
        "already_applied"
    );

    let mut ack = fixture_json("pagerduty/v2-acknowledge.json");
    ack["routing_key"] = json!(key);
    let out = send(ack.clone()).await;
    assert_eq!(out.status, 202, "{}", out.body);
    assert_eq!(out.json()["data"]["outcome"], "acknowledged");
    assert_eq!(incident(&app, &inc_id).await["status"], "Processing");
    let mut resolve = fixture_json("pagerduty/v2-resolve.json");
    resolve["routing_key"] = json!(key);
    assert_eq!(send(resolve).await.json()["data"]["outcome"], "recovered");
    assert_eq!(incident(&app, &inc_id).await["status"], "Closed");
    // Acknowledging what is closed changes nothing.
    assert_eq!(send(ack).await.json()["data"]["outcome"], "ignored");

    // A trigger without dedup_key gets a key made from its content, returned.
    let mut keyless = trigger.clone();
    keyless.as_object_mut().unwrap().remove("dedup_key");
    keyless["payload"]["summary"] = json!("No key given");
    let a = send(keyless.clone()).await.json();
    let b = send(keyless).await.json();
    assert!(a["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(a["dedup_key"], b["dedup_key"]);

    // PagerDuty-shaped refusals, nothing written.
    let before = table_dump(&app).await;
    let mut bad = trigger.clone();
    bad["payload"]["severity"] = json!("fatal");
    let out = send(bad).await;
    assert_eq!(out.status, 400);
    let err = out.json();
    assert_eq!(err["status"], "invalid event");
    assert_eq!(err["message"], "Event object is invalid");
    assert!(err["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("payload.severity"));
    let mut unknown = trigger.clone();
    unknown["routing_key"] = json!("0".repeat(32));
    assert_eq!(send(unknown).await.status, 401);
    assert_eq!(table_dump(&app).await, before);

    // v1: service_key, incident_key; answers 200 with incident_key.
    let mut v1 = fixture_json("pagerduty/v1-trigger.json");
    v1["service_key"] = json!(key);
    let out = send(v1).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.json()["incident_key"], "srv01/HTTP");
    let v1_inc = out.json()["data"]["incident_id"].clone();
    assert_eq!(incident(&app, &v1_inc).await["severity"], "Warning");
    let mut v1r = fixture_json("pagerduty/v1-resolve.json");
    v1r["service_key"] = json!(key);
    assert_eq!(send(v1r).await.json()["data"]["outcome"], "recovered");
}

fn sentry_sign(secret: &str, body: &str) -> String {
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::sign(&key, body.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn sentry_resources_and_signatures() {
    let app = test_app().await;
    let (_, key) =
        integration_with(&app, "sentry", json!({"client_secret": "s3cret-sentry"})).await;
    let kind = IntegrationKind::Sentry;
    let query = format!("?integration_key={key}");
    let send = |resource: &'static str, body: String, signature: Option<String>| {
        let (app, query) = (&app, &query);
        async move {
            let sig = signature.unwrap_or_else(|| sentry_sign("s3cret-sentry", &body));
            push_with(
                app,
                kind,
                query,
                &[
                    ("content-type", "application/json"),
                    ("sentry-hook-resource", resource),
                    ("sentry-hook-signature", &sig),
                ],
                &body,
            )
            .await
        }
    };
    let critical = fixture("sentry/metric_alert-critical.json");
    let out = send("metric_alert", critical.clone(), None).await;
    assert_eq!(out.status, 200, "{}", out.body);
    let data = out.json()["data"].clone();
    assert_eq!(data["alert_key"], "sentry:metric_alert:53");
    assert_eq!(data["outcome"], "new_incident");
    assert_eq!(
        incident(&app, &data["incident_id"]).await["title"],
        "Too many errors"
    );
    assert_eq!(
        send("metric_alert", critical.clone(), None).await.json()["data"]["outcome"],
        "deduplicated" // timed on receipt: a later duplicate
    );
    let out = send(
        "metric_alert",
        fixture("sentry/metric_alert-resolved.json"),
        None,
    )
    .await;
    assert_eq!(out.json()["data"]["outcome"], "recovered");

    let issue_alert = send(
        "event_alert",
        fixture("sentry/event_alert-triggered.json"),
        None,
    )
    .await;
    let data = issue_alert.json()["data"].clone();
    assert_eq!(
        (data["alert_key"].as_str(), data["outcome"].as_str()),
        (Some("sentry:issue:1170820242"), Some("new_incident"))
    );
    let resolved = send("issue", fixture("sentry/issue-resolved.json"), None).await;
    assert_eq!(resolved.json()["data"]["outcome"], "recovered");
    let installation = send(
        "installation",
        r#"{"action":"created","data":{}}"#.into(),
        None,
    )
    .await;
    assert_eq!(installation.json()["data"]["outcome"], "ignored");

    // A bad or missing signature: Unauthorized, nothing written, no secret echoed.
    let before = table_dump(&app).await;
    for sig in [
        Some("0".repeat(64)),
        Some(sentry_sign("wrong", &critical)),
        Some(String::new()),
    ] {
        let out = send("metric_alert", critical.replace("critical", "warning"), sig).await;
        assert_eq!(out.status, 401, "{}", out.body);
        assert!(!out.body.contains("s3cret"));
    }
    assert_eq!(table_dump(&app).await, before);
    // Wrong shape with a good signature: 400 naming the field.
    let out = send(
        "metric_alert",
        r#"{"action":"critical","data":{}}"#.into(),
        None,
    )
    .await;
    assert_eq!(out.status, 400);
    assert!(out.body.contains("data.metric_alert.id"), "{}", out.body);
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn cloudwatch_signed_notifications() {
    let mut app = test_app().await;
    // The fixtures were signed once, at their Timestamp, by a key that was
    // then deleted: this test widens the replay window to accept them
    // (cloudwatch_topics_and_timestamps tests the window itself).
    app.sns_timestamp_window.max_age_ms = i64::MAX / 4;
    let (_, key) = integration_with(&app, "aws-cloudwatch", json!({})).await;
    let kind = IntegrationKind::AwsCloudwatch;
    let alarm = fixture("aws-cloudwatch/alarm-v1.json");
    let cert_url = fixture_json("aws-cloudwatch/alarm-v1.json")["SigningCertURL"]
        .as_str()
        .unwrap()
        .to_string();
    // The fixtures are signed by a test certificate; put it where a fetch would.
    shared::intake::sns::cache_certificate(&cert_url, &fixture("sns-signing/cert.pem")).unwrap();
    let query = format!("?integration_key={key}");
    let send = |body: String, message_type: &'static str| {
        let (app, query) = (&app, &query);
        async move {
            push_with(
                app,
                kind,
                query,
                &[
                    ("content-type", "text/plain; charset=UTF-8"),
                    ("x-amz-sns-message-type", message_type),
                ],
                &body,
            )
            .await
        }
    };
    let out = send(alarm.clone(), "Notification").await;
    assert_eq!(out.status, 200, "{}", out.body);
    let data = out.json()["data"].clone();
    assert_eq!(
        data["alert_key"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx-rate"
    );
    assert_eq!(data["outcome"], "new_incident");
    let inc = incident(&app, &data["incident_id"]).await;
    assert_eq!(
        inc["severity"], "Critical",
        "severity=critical in AlarmDescription"
    );
    assert_eq!(
        inc["labels"]["LoadBalancer"],
        "app/api-prod/50dc6c495c0c9188"
    );
    assert_eq!(
        send(alarm.clone(), "Notification").await.json()["data"]["outcome"],
        "already_applied"
    );

    // A tampered message does not verify: Unauthorized, nothing written.
    let before = table_dump(&app).await;
    let tampered = alarm.replace("api-5xx-rate", "api-5xx-rat3");
    assert_eq!(send(tampered, "Notification").await.status, 401);
    // A certificate from anywhere but SNS is never fetched.
    let elsewhere = alarm.replace(
        "https://sns.us-east-1.amazonaws.com/",
        "https://evil.example/",
    );
    assert_eq!(send(elsewhere, "Notification").await.status, 401);
    // A subscription confirmation pointing elsewhere is refused before any fetch.
    let mut confirm = fixture_json("sns-signing/subscription-confirmation.json");
    confirm["SubscribeURL"] = json!("https://169.254.169.254/latest/meta-data/");
    let out = send(confirm.to_string(), "SubscriptionConfirmation").await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(out.body.contains("SubscribeURL"));
    // The header and the body must agree on the type.
    assert_eq!(
        send(alarm.clone(), "SubscriptionConfirmation").await.status,
        400
    );
    assert_eq!(table_dump(&app).await, before);

    // Version 2 (SHA256withRSA) recovers it.
    let ok = send(fixture("aws-cloudwatch/ok-v2.json"), "Notification").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["data"]["outcome"], "recovered");
    assert_eq!(
        incident(&app, &data["incident_id"]).await["status"],
        "Closed"
    );

    // verify_signature: false skips the check (private relays).
    let (_, relay_key) =
        integration_with(&app, "aws-cloudwatch", json!({"verify_signature": false})).await;
    let out = push_with(
        &app,
        kind,
        &format!("?integration_key={relay_key}"),
        &[("content-type", "text/plain")],
        &alarm.replace("api-5xx-rate", "api-5xx-rat3"),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
}

/// SPEC 15: `sns_topic_arns` pins the integration to its topics (any other
/// is 403 AccessDenied, confirmations included, nothing written); a
/// `Notification` whose `Timestamp` is over an hour old is refused, signature
/// checked or not, and a fresh one passes.
#[tokio::test]
async fn cloudwatch_topics_and_timestamps() {
    let app = test_app().await;
    let kind = IntegrationKind::AwsCloudwatch;
    let alarm = fixture("aws-cloudwatch/alarm-v1.json");
    let confirmation = fixture("sns-signing/subscription-confirmation.json");
    let cert_url = fixture_json("aws-cloudwatch/alarm-v1.json")["SigningCertURL"]
        .as_str()
        .unwrap()
        .to_string();
    shared::intake::sns::cache_certificate(&cert_url, &fixture("sns-signing/cert.pem")).unwrap();
    let send = |key: String, body: String, message_type: &'static str| {
        let app = &app;
        async move {
            push_with(
                app,
                kind,
                &format!("?integration_key={key}"),
                &[
                    ("content-type", "text/plain; charset=UTF-8"),
                    ("x-amz-sns-message-type", message_type),
                ],
                &body,
            )
            .await
        }
    };

    // Pinned to another topic: both message types refused, nothing written.
    let (_, pinned) = integration_with(
        &app,
        "aws-cloudwatch",
        json!({"sns_topic_arns": ["arn:aws:sns:us-east-1:123456789012:someone-elses"]}),
    )
    .await;
    let before = table_dump(&app).await;
    for (body, message_type) in [
        (alarm.clone(), "Notification"),
        (confirmation.clone(), "SubscriptionConfirmation"),
    ] {
        let out = send(pinned.clone(), body, message_type).await;
        assert_eq!(out.status, 403, "{}", out.body);
        assert_eq!(out.json()["error"]["code"], "AccessDenied");
        assert!(out.body.contains("TopicArn"));
    }
    assert_eq!(table_dump(&app).await, before);

    // The fixture's Timestamp is long past: refused, signed or not.
    let (_, ours) = integration_with(
        &app,
        "aws-cloudwatch",
        json!({"sns_topic_arns": ["arn:aws:sns:us-east-1:123456789012:cloudwatch-alarms"]}),
    )
    .await;
    let (_, relay) =
        integration_with(&app, "aws-cloudwatch", json!({"verify_signature": false})).await;
    let before = table_dump(&app).await;
    for key in [&ours, &relay] {
        let out = send(key.clone(), alarm.clone(), "Notification").await;
        assert_eq!(out.status, 400, "{}", out.body);
        assert_eq!(out.json()["error"]["code"], "InvalidParameter");
        assert!(out.body.contains("Timestamp"), "{}", out.body);
    }
    assert_eq!(table_dump(&app).await, before);

    // A fresh Timestamp (unsigned relay): accepted.
    let now = jiff::Timestamp::now().to_string();
    let fresh = alarm.replace("2026-11-20T08:20:32.003Z", &now);
    let out = send(relay.clone(), fresh, "Notification").await;
    assert_eq!(out.status, 200, "{}", out.body);

    // The setting belongs to aws-cloudwatch and must be topic ARNs.
    let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "x"}))).await;
    for (kind, arns, field) in [
        (
            "prometheus",
            json!(["arn:aws:sns:us-east-1:123456789012:t"]),
            "sns_topic_arns:",
        ),
        (
            "aws-cloudwatch",
            json!(["arn:aws:sqs:us-east-1:123456789012:q"]),
            "sns_topic_arns[0]:",
        ),
    ] {
        let body = json!({"name": "x", "kind": kind, "channel_id": ch["channel_id"], "sns_topic_arns": arns});
        let out = api(&app, "POST", "/api/integrations", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        assert!(out.body.contains(field), "{}", out.body);
    }
}

#[tokio::test]
async fn uptime_kuma_down_then_up_on_standard() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let down = push_ok(
        &app,
        &s.integration_key,
        &fixture_json("standard/uptime-kuma-down.json"),
    )
    .await;
    assert_eq!(
        (down["alert_key"].as_str(), down["outcome"].as_str()),
        (Some("7"), Some("new_incident"))
    );
    let inc = incident(&app, &down["incident_id"]).await;
    assert_eq!(inc["title"], "Uptime Kuma Monitor 🔴 Down");
    let up = push_ok(
        &app,
        &s.integration_key,
        &fixture_json("standard/uptime-kuma-up.json"),
    )
    .await;
    assert_eq!(up["outcome"], "recovered");
    assert_eq!(
        incident(&app, &down["incident_id"]).await["status"],
        "Closed"
    );
}

#[tokio::test]
async fn new_kinds_refuse_other_kinds_keys() {
    let app = test_app().await;
    let (_, prom_key) = integration_with(&app, "prometheus", json!({})).await;
    for (kind, body) in [
        (
            IntegrationKind::Grafana,
            fixture("grafana/unified-firing.json"),
        ),
        (IntegrationKind::Zabbix, fixture("zabbix/problem.json")),
        (IntegrationKind::N9e, fixture("n9e/alerting.json")),
        (
            IntegrationKind::PagerDuty,
            fixture("pagerduty/v2-trigger.json"),
        ),
    ] {
        let before = table_dump(&app).await;
        let out = push_raw(&app, kind, &prom_key, "application/json", &body).await;
        assert_eq!(out.status, 403, "{}: {}", kind.slug(), out.body);
        assert_eq!(table_dump(&app).await, before);
    }
    let out = push_with(
        &app,
        IntegrationKind::Sentry,
        &format!("?integration_key={prom_key}"),
        &[
            ("content-type", "application/json"),
            ("sentry-hook-resource", "issue"),
        ],
        &fixture("sentry/issue-resolved.json"),
    )
    .await;
    assert_eq!(out.status, 403);
    let out = push_with(
        &app,
        IntegrationKind::AwsCloudwatch,
        &format!("?integration_key={prom_key}"),
        &[("content-type", "text/plain")],
        &fixture("aws-cloudwatch/alarm-v1.json"),
    )
    .await;
    assert_eq!(out.status, 403);
    // Settings belong to their kind.
    let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "x"}))).await;
    for (kind, field) in [
        ("standard", json!({"client_secret": "x"})),
        ("sentry", json!({"verify_signature": false})),
    ] {
        let mut body = json!({"name": "x", "kind": kind, "channel_id": ch["channel_id"]});
        for (k, v) in field.as_object().unwrap() {
            body[k] = v.clone();
        }
        let out = api(&app, "POST", "/api/integrations", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
    }
}
