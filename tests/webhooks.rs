//! SPEC 11 against DynamoDB Local and a local HTTP receiver: the timeline and
//! its routes, storm and flapping, webhook CRUD, every event type, signatures,
//! IM shapes, filters, ordering, retries, history, resend, and a receiver
//! that hangs while another receives on time. The notify core is fed with the
//! records read from the table's stream ([`Pump`]), as Lambda would feed it.

use std::time::{Duration, Instant};

use integration_tests::receiver::{Behaviour, Receiver};
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::domain::event::{EventStatus, StandardEvent};
use shared::model::Channel;
use shared::store::now_ms;

fn ev(key: &str, status: EventStatus, labels: &[(&str, &str)], t: i64) -> StandardEvent {
    StandardEvent {
        title: format!("{key} is unhappy"),
        event_status: status,
        alert_key: key.into(),
        description: String::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        event_time_ms: t,
    }
}

async fn channel(app: &App, body: Value) -> Channel {
    let made = api_ok(app, "POST", "/api/channels", Some(body)).await;
    app.store
        .get_channel(made["channel_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn webhook(app: &App, body: Value) -> String {
    let made = api_ok(app, "POST", "/api/webhooks", Some(body)).await;
    made["webhook_id"].as_str().unwrap().to_string()
}

async fn fire(app: &App, ch: &Channel, key: &str, t: i64) -> String {
    let applied = app
        .store
        .apply_event(
            ch,
            &ev(key, EventStatus::Critical, &[("svc", "api")], t),
            now_ms(),
        )
        .await
        .unwrap();
    applied.incident_id.unwrap()
}

async fn recover(app: &App, ch: &Channel, key: &str, t: i64) {
    app.store
        .apply_event(ch, &ev(key, EventStatus::Ok, &[], t), now_ms())
        .await
        .unwrap();
}

async fn timeline_types(app: &App, incident: &str) -> Vec<String> {
    let data = api_ok(
        app,
        "GET",
        &format!("/api/incidents/{incident}/timeline?limit=100"),
        None,
    )
    .await;
    data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_string())
        .collect()
}

async fn deliveries(app: &App, hook: &str, query: &str) -> Vec<Value> {
    let data = api_ok(
        app,
        "GET",
        &format!("/api/webhooks/{hook}/deliveries?{query}"),
        None,
    )
    .await;
    data["items"].as_array().unwrap().clone()
}

const T0: i64 = 1_763_600_000_000;

#[tokio::test]
async fn timeline_records_every_transition_and_the_routes_page_it() {
    let app = test_app_with_stream().await;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let id = fire(&app, &ch, "k1", T0).await;
    let inc = format!("/api/incidents/{id}");
    api_ok(&app, "POST", &format!("{inc}/ack"), None).await;
    let unacked = api_ok(&app, "POST", &format!("{inc}/unack"), None).await;
    assert_eq!(unacked["status"], "Triggered");
    let c = api_ok(
        &app,
        "POST",
        &format!("{inc}/comments"),
        Some(json!({"text": "on it"})),
    )
    .await;
    assert_eq!(c["type"], "i_comm");
    assert_eq!(c["detail"]["text"], "on it");
    api_ok(&app, "POST", &format!("{inc}/resolve"), None).await;
    let reopened = api_ok(
        &app,
        "POST",
        &format!("{inc}/reopen"),
        Some(json!({"reason": "not fixed"})),
    )
    .await;
    assert_eq!(reopened["status"], "Triggered");
    assert_eq!(reopened["storm_level"], 0);
    assert_eq!(reopened["flapping"], false);
    assert_eq!(
        timeline_types(&app, &id).await,
        ["i_new", "i_ack", "i_unack", "i_comm", "i_rslv", "i_reopen"]
    );
    // Its alerts stayed closed: the key's next firing opens a new alert and incident.
    let next = fire(&app, &ch, "k1", T0 + 1000).await;
    assert_ne!(next, id);

    // Paging: 2 at a time, oldest first, every entry once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{inc}/timeline?limit=2&cursor={c}"),
            None => format!("{inc}/timeline?limit=2"),
        };
        let page = api_ok(&app, "GET", &q, None).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let types: Vec<&str> = seen.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["i_new", "i_ack", "i_unack", "i_comm", "i_rslv", "i_reopen"]
    );
    assert_eq!(seen[0]["detail"]["alert_id"].as_str().unwrap().len(), 32);
    assert_eq!(seen[4]["detail"]["by"], "manual");
    assert_eq!(seen[5]["detail"]["reason"], "not fixed");

    // Refusals name the field, change nothing.
    for (body, field) in [
        (json!({"text": ""}), "text:"),
        (json!({"text": "x".repeat(1025)}), "text:"),
        (json!({"txt": "hi"}), "txt"),
    ] {
        let out = api(&app, "POST", &format!("{inc}/comments"), Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        assert!(out.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(field));
    }
    let out = api(&app, "GET", &format!("{inc}/timeline?cursor=bm9wZQ"), None).await;
    assert_eq!(out.status, 400);
    let out = api(
        &app,
        "GET",
        "/api/incidents/0000000000000000/timeline",
        None,
    )
    .await;
    assert_eq!(out.status, 404);
    assert_eq!(timeline_types(&app, &id).await.len(), 6);
}

#[tokio::test]
async fn auto_close_and_merges_are_on_the_timeline() {
    let app = test_app_with_stream().await;
    let ch = channel(
        &app,
        json!({"name": "g", "grouping": {"method": "rules", "equals": [["labels.svc"]]}}),
    )
    .await;
    let id = fire(&app, &ch, "a", T0).await;
    assert_eq!(fire(&app, &ch, "b", T0).await, id);
    recover(&app, &ch, "a", T0 + 1).await;
    recover(&app, &ch, "b", T0 + 1).await;
    assert_eq!(
        timeline_types(&app, &id).await,
        ["i_new", "a_merge", "i_rslv"]
    );
    let data = api_ok(&app, "GET", &format!("/api/incidents/{id}/timeline"), None).await;
    assert_eq!(data["items"][2]["detail"]["by"], "auto");
}

#[tokio::test]
async fn webhook_crud_hides_the_secret_and_refuses_bad_fields() {
    let app = test_app_with_stream().await;
    let made = api_ok(
        &app,
        "POST",
        "/api/webhooks",
        Some(json!({"name": "ops", "url": "http://127.0.0.1:9/x", "secret": "s3cret-value"})),
    )
    .await;
    let id = made["webhook_id"].as_str().unwrap();
    assert!(!made.to_string().contains("s3cret-value"));
    assert_eq!(made["has_secret"], true);
    assert_eq!(made["kind"], "generic");
    assert_eq!(made["enabled"], true);
    // The incident types by default, the on-call ones (SPEC 14) included.
    assert_eq!(
        made["event_types"],
        json!(shared::engine::INCIDENT_EVENT_TYPES)
    );
    assert!(made["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "i_assign"));
    let got = api_ok(&app, "GET", &format!("/api/webhooks/{id}"), None).await;
    assert!(!got.to_string().contains("s3cret-value"));
    let patched = api_ok(
        &app,
        "PATCH",
        &format!("/api/webhooks/{id}"),
        Some(json!({"kind": "slack", "enabled": false, "secret": null})),
    )
    .await;
    assert_eq!(patched["kind"], "slack");
    assert_eq!(patched["has_secret"], false);
    let listed = api_ok(&app, "GET", "/api/webhooks", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    for (body, field) in [
        (json!({"name": "x", "url": "ftp://secret-host/x"}), "url:"),
        (
            json!({"name": "x", "url": "http://h/x", "kind": "teams"}),
            "kind",
        ),
        (
            json!({"name": "x", "url": "http://h/x", "event_types": ["i_nwe"]}),
            "event_types[0]",
        ),
        (
            json!({"name": "x", "url": "http://h/x", "urls": []}),
            "urls",
        ),
        (
            json!({"name": "x", "url": "http://h/x", "headers": {"X-Alert-Intake-Signature": "v"}}),
            "headers",
        ),
    ] {
        let out = api(&app, "POST", "/api/webhooks", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(field), "{message}");
        assert!(!message.contains("secret-host") && !message.contains("i_nwe"));
    }
    api_ok(&app, "DELETE", &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(
        api(&app, "GET", &format!("/api/webhooks/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn every_event_type_reaches_a_generic_webhook_signed_and_in_order() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(
        &app,
        json!({"name": "g", "grouping": {"method": "rules", "equals": [["labels.svc"]]}}),
    )
    .await;
    let all: Vec<&str> = vec![
        "i_new", "a_merge", "i_ack", "i_unack", "i_rslv", "i_reopen", "i_comm", "a_new",
        "a_update", "a_close",
    ];
    webhook(
        &app,
        json!({"name": "all", "url": rx.url, "secret": "topsecret", "event_types": all}),
    )
    .await;
    let id = fire(&app, &ch, "a", T0).await;
    fire(&app, &ch, "b", T0).await;
    // A stored event (new title) on alert a.
    let mut changed = ev("a", EventStatus::Critical, &[("svc", "api")], T0 + 5);
    changed.title = "a is worse".into();
    app.store
        .apply_event(&ch, &changed, now_ms())
        .await
        .unwrap();
    let inc = format!("/api/incidents/{id}");
    api_ok(&app, "POST", &format!("{inc}/ack"), None).await;
    api_ok(&app, "POST", &format!("{inc}/unack"), None).await;
    api_ok(
        &app,
        "POST",
        &format!("{inc}/comments"),
        Some(json!({"text": "looking"})),
    )
    .await;
    api_ok(&app, "POST", &format!("{inc}/resolve"), None).await;
    api_ok(&app, "POST", &format!("{inc}/reopen"), Some(json!({}))).await;
    pump.run().await;

    let got = rx.received();
    let incident_types: Vec<String> = got
        .iter()
        .map(|r| r.json())
        .filter(|b| b.get("incident").is_some())
        .map(|b| b["event_type"].as_str().unwrap().to_string())
        .collect();
    // One incident's changes in the order they happened.
    assert_eq!(
        incident_types,
        ["i_new", "a_merge", "i_ack", "i_unack", "i_comm", "i_rslv", "i_reopen"]
    );
    let alert_types: Vec<String> = got
        .iter()
        .map(|r| r.json())
        .filter(|b| b.get("alert").is_some())
        .map(|b| b["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(alert_types.iter().filter(|t| *t == "a_new").count(), 2);
    assert_eq!(
        alert_types.iter().filter(|t| *t == "a_update").count(),
        1,
        "{:?}",
        got.iter()
            .map(|r| r.json())
            .filter(|b| b.get("alert").is_some())
            .map(|b| (
                b["event_type"].clone(),
                b["alert"]["alert_key"].clone(),
                b["alert"]["event_count"].clone(),
                b["alert"]["title"].clone()
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(alert_types.iter().filter(|t| *t == "a_close").count(), 2);

    for r in &got {
        let body = r.json();
        // Each object as it is after its change.
        match body["event_type"].as_str().unwrap() {
            "i_ack" => assert_eq!(body["incident"]["status"], "Processing"),
            "i_unack" | "i_reopen" => assert_eq!(body["incident"]["status"], "Triggered"),
            "i_rslv" => {
                assert_eq!(body["incident"]["status"], "Closed");
                assert_eq!(body["detail"]["by"], "manual");
            }
            "a_merge" => assert_eq!(body["incident"]["alert_count"], 2),
            "i_comm" => assert_eq!(body["detail"]["text"], "looking"),
            "a_update" => assert_eq!(body["alert"]["title"], "a is worse"),
            "a_close" => assert_eq!(body["alert"]["active"], false),
            _ => {}
        }
        assert!(body["event_time"].as_i64().unwrap() > 1_000_000_000_000);
        // Headers and a signature the receiver can check with the secret.
        let ts = r.header("x-alert-intake-timestamp").unwrap();
        assert_eq!(
            r.header("x-alert-intake-event-id").unwrap(),
            body["event_id"]
        );
        let mut message = ts.as_bytes().to_vec();
        message.push(b'.');
        message.extend_from_slice(&r.body);
        let want = format!(
            "sha256={}",
            shared::hashing::hex(&shared::outbound::sign::hmac_sha256(b"topsecret", &message))
        );
        assert_eq!(r.header("x-alert-intake-signature").unwrap(), want);
    }
    // Each change once.
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.json()["event_id"].as_str().unwrap().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);

    // The reopened incident takes the group's next alert, and closes by
    // itself when its last open alert recovers.
    let id2 = fire(&app, &ch, "c", T0 + 10).await;
    recover(&app, &ch, "c", T0 + 11).await;
    pump.run().await;
    let auto: Vec<Value> = rx
        .bodies()
        .into_iter()
        .filter(|b| b["event_type"] == "i_rslv" && b["incident"]["incident_id"] == id2.as_str())
        .collect();
    assert_eq!(id2, id);
    assert_eq!(auto.len(), 2);
    assert_eq!(auto[0]["detail"]["by"], "manual");
    assert_eq!(auto[1]["detail"]["by"], "auto");
    assert_eq!(auto[1]["incident"]["status"], "Closed");
}

#[tokio::test]
async fn channel_and_event_type_filters_choose_what_each_webhook_gets() {
    let app = test_app_with_stream().await;
    let rx_all = Receiver::start(Behaviour::Status(200)).await;
    let rx_one = Receiver::start(Behaviour::Status(204)).await;
    let mut pump = Pump::new(&app).await;
    let ch1 = channel(&app, json!({"name": "one"})).await;
    let ch2 = channel(&app, json!({"name": "two"})).await;
    webhook(&app, json!({"name": "all", "url": rx_all.url})).await;
    webhook(
        &app,
        json!({"name": "one", "url": rx_one.url, "channel_ids": [ch1.channel_id], "event_types": ["i_ack"]}),
    )
    .await;
    webhook(
        &app,
        json!({"name": "off", "url": rx_one.url, "enabled": false}),
    )
    .await;
    let i1 = fire(&app, &ch1, "k", T0).await;
    let i2 = fire(&app, &ch2, "k", T0).await;
    api_ok(&app, "POST", &format!("/api/incidents/{i1}/ack"), None).await;
    api_ok(&app, "POST", &format!("/api/incidents/{i2}/ack"), None).await;
    pump.run().await;
    assert_eq!(rx_all.types().len(), 4);
    let one = rx_one.bodies();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["event_type"], "i_ack");
    assert_eq!(one[0]["incident"]["incident_id"], i1.as_str());
}

#[tokio::test]
async fn retries_then_success_and_exhausted_retries_then_failed_and_resend() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let hook = webhook(&app, json!({"name": "flaky", "url": rx.url})).await;

    // 500, 429, then 200: one delivery, three attempts.
    rx.script(vec![Behaviour::Status(500), Behaviour::Status(429)]);
    fire(&app, &ch, "k1", T0).await;
    pump.run().await;
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.body == got[0].body));
    let history = deliveries(&app, &hook, "").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "succeeded");
    assert_eq!(history[0]["attempts"], 3);
    assert_eq!(history[0]["http_status"], 200);

    // Always 503: three attempts, then `pending` on SPEC 11's schedule
    // (shortened: Pump's speedup), then `failed` once its 24 hours are over.
    rx.set_default(Behaviour::Status(503));
    let id2 = fire(&app, &ch, "k2", T0).await;
    pump.run().await;
    assert_eq!(rx.received().len(), 6);
    let pending = deliveries(&app, &hook, "status=pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["attempts"], 3);
    assert!(pending[0]["next_attempt_at"].is_i64(), "{pending:?}");
    assert!(
        pump.settle(Duration::from_millis(20), Duration::from_secs(20))
            .await,
        "the retries end within their (shortened) 24 hours"
    );
    let failed = deliveries(&app, &hook, "status=failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let attempts = failed[0]["attempts"].as_i64().unwrap();
    assert!(attempts > 3, "{failed:?}");
    assert_eq!(rx.received().len() as i64, 3 + attempts);
    assert!(failed[0]["next_attempt_at"].is_null());
    assert_eq!(failed[0]["http_status"], 503);
    assert_eq!(failed[0]["object_id"], id2.as_str());
    assert!(failed[0]["error"].as_str().unwrap().contains("503"));
    let failed_event = failed[0]["event_id"].as_str().unwrap().to_string();

    // A 4xx other than 429 is final at once.
    rx.set_default(Behaviour::Status(404));
    let before = rx.received().len();
    fire(&app, &ch, "k3", T0).await;
    pump.run().await;
    assert_eq!(rx.received().len(), before + 1);

    // Resend: the same event, the same event_id, delivered by the stream.
    rx.set_default(Behaviour::Status(200));
    let delivery = failed[0]["delivery_id"].as_str().unwrap();
    let resent = api_ok(
        &app,
        "POST",
        &format!("/api/webhooks/{hook}/deliveries/{delivery}/resend"),
        None,
    )
    .await;
    assert_eq!(resent["status"], "queued");
    pump.run().await;
    let last = rx.received().last().unwrap().json();
    assert_eq!(last["event_id"], failed_event.as_str());
    assert_eq!(last["event_type"], "i_new");
    let history = deliveries(&app, &hook, "status=succeeded").await;
    assert_eq!(history[0]["event_id"], failed_event.as_str());
    assert_eq!(history[0]["delivery_id"], resent["delivery_id"]);
    // Newest first, paged.
    let page = api_ok(
        &app,
        "GET",
        &format!("/api/webhooks/{hook}/deliveries?limit=2"),
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = deliveries(&app, &hook, &format!("limit=10&cursor={next}")).await;
    assert_eq!(rest.len(), 2);
    let out = api(
        &app,
        "POST",
        &format!("/api/webhooks/{hook}/deliveries/ffffffffffffffffffffffffffffffff/resend"),
        None,
    )
    .await;
    assert_eq!(out.status, 404);
}

#[tokio::test]
async fn a_retried_batch_delivers_nothing_twice() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(&app, json!({"name": "ops"})).await;
    webhook(&app, json!({"name": "w", "url": rx.url})).await;
    let id = fire(&app, &ch, "k", T0).await;
    api_ok(&app, "POST", &format!("/api/incidents/{id}/ack"), None).await;
    let records = pump.records().await;
    let first = pump.notifier.process(&records).await;
    assert_eq!(first.delivered, 2);
    assert!(first.failed.is_empty());
    // The stream hands the same batch again (a retry after a failure).
    let again = pump.notifier.process(&records).await;
    assert_eq!(again.delivered, 0);
    assert_eq!(again.skipped, 2);
    assert_eq!(rx.types(), ["i_new", "i_ack"]);
}

#[tokio::test]
async fn im_kinds_post_their_platforms_shapes_and_signatures() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(&app, json!({"name": "ops"})).await;
    for kind in ["slack", "feishu", "dingtalk", "wecom"] {
        webhook(
            &app,
            json!({"name": kind, "kind": kind, "url": format!("{}/{kind}?access_token=t", rx.url),
                   "secret": "SEC", "event_types": ["i_new"]}),
        )
        .await;
    }
    let id = fire(&app, &ch, "disk", T0).await;
    pump.run().await;
    let got = rx.received();
    assert_eq!(got.len(), 4);
    let by = |kind: &str| {
        got.iter()
            .find(|r| r.target.starts_with(&format!("/hook/{kind}")))
            .unwrap_or_else(|| panic!("no {kind} request"))
            .clone()
    };
    let link = format!("https://alerts.example/console#/incidents/{id}");
    let slack = by("slack").json();
    assert!(slack["text"]
        .as_str()
        .unwrap()
        .starts_with("*[Triggered] Critical: disk is unhappy*"));
    assert!(slack["text"].as_str().unwrap().contains(&link));
    assert!(slack["text"].as_str().unwrap().contains("svc=api"));

    let feishu = by("feishu").json();
    assert_eq!(feishu["msg_type"], "text");
    let ts: i64 = feishu["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        feishu["sign"],
        shared::outbound::sign::feishu_sign("SEC", ts)
    );
    assert!(feishu["content"]["text"]
        .as_str()
        .unwrap()
        .contains("incident opened"));

    let ding = by("dingtalk");
    assert_eq!(ding.json()["msgtype"], "markdown");
    let query: std::collections::HashMap<String, String> =
        form_urlencoded::parse(ding.target.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    let ts: i64 = query["timestamp"].parse().unwrap();
    assert_eq!(
        query["sign"],
        shared::outbound::sign::dingtalk_sign("SEC", ts)
    );
    assert_eq!(query["access_token"], "t");

    let wecom = by("wecom").json();
    assert_eq!(wecom["msgtype"], "markdown");
    assert!(wecom["markdown"]["content"]
        .as_str()
        .unwrap()
        .contains("channel: "));
}

#[tokio::test]
async fn a_flapping_key_marks_its_incidents_and_only_i_m_flapping_is_delivered() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(
        &app,
        json!({"name": "flappy", "flapping": {"enabled": true, "max_changes": 3, "window_minutes": 60, "mute_minutes": 120}}),
    )
    .await;
    let all = [
        "i_new",
        "a_merge",
        "i_ack",
        "i_rslv",
        "i_m_flapping",
        "a_new",
        "a_close",
    ];
    webhook(
        &app,
        json!({"name": "w", "url": rx.url, "event_types": all}),
    )
    .await;
    let mut incidents = Vec::new();
    for i in 0..4 {
        incidents.push(fire(&app, &ch, "flappy", T0 + i * 10).await);
        recover(&app, &ch, "flappy", T0 + i * 10 + 1).await;
    }
    // Another key in the same channel is not affected.
    let calm = fire(&app, &ch, "calm", T0).await;
    pump.run().await;
    for (i, id) in incidents.iter().enumerate() {
        let inc = api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await;
        // The third opening within the window marks; the fourth is muted.
        assert_eq!(inc["flapping"], i >= 2, "incident {i}");
        let types = timeline_types(&app, id).await;
        assert_eq!(
            types.contains(&"i_m_flapping".to_string()),
            i >= 2,
            "{types:?}"
        );
    }
    let bodies = rx.bodies();
    let of = |id: &str| -> Vec<String> {
        bodies
            .iter()
            .filter(|b| b["incident"]["incident_id"] == id || b["alert"]["incident_id"] == id)
            .map(|b| b["event_type"].as_str().unwrap().to_string())
            .collect()
    };
    let mut first = of(&incidents[0]);
    first.sort();
    assert_eq!(first, ["a_close", "a_new", "i_new", "i_rslv"]);
    for id in &incidents[2..] {
        assert_eq!(of(id), ["i_m_flapping"], "marked incident {id}");
    }
    assert!(of(&calm).contains(&"i_new".to_string()));
}

#[tokio::test]
async fn storm_thresholds_are_recorded_once_each() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(
        &app,
        json!({"name": "storm", "storm_thresholds": [3, 2],
               "grouping": {"method": "rules", "equals": [["labels.svc"]]}}),
    )
    .await;
    assert_eq!(ch.storm_thresholds, vec![2, 3]);
    webhook(
        &app,
        json!({"name": "w", "url": rx.url, "event_types": ["i_storm"]}),
    )
    .await;
    let id = fire(&app, &ch, "k0", T0).await;
    for i in 1..5 {
        fire(&app, &ch, &format!("k{i}"), T0).await;
        pump.run().await;
    }
    pump.run().await;
    let inc = api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await;
    assert_eq!(inc["alert_count"], 5);
    assert_eq!(inc["storm_level"], 3);
    let tl = api_ok(
        &app,
        "GET",
        &format!("/api/incidents/{id}/timeline?limit=100"),
        None,
    )
    .await;
    let storms: Vec<i64> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "i_storm")
        .map(|i| i["detail"]["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(storms, [2, 3]);
    let delivered: Vec<i64> = rx
        .bodies()
        .iter()
        .map(|b| b["detail"]["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered, [2, 3]);
    // Settings are checked.
    let out = api(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"name": "x", "storm_thresholds": [1]})),
    )
    .await;
    assert_eq!(out.status, 400);
    let out = api(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"name": "x", "flapping": {"max_change": 3}})),
    )
    .await;
    assert_eq!(out.status, 400);
}

#[tokio::test]
async fn a_hanging_or_resetting_receiver_does_not_hold_up_other_webhooks() {
    let app = test_app_with_stream().await;
    let hanging = Receiver::start(Behaviour::Hang(Duration::from_secs(10))).await;
    let resetting = Receiver::start(Behaviour::Reset).await;
    let fine = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    // Slow enough that the hang's 15 s stay well inside the 24 hours (86 s).
    pump.notifier.schedule.speedup = 1_000;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let slow = webhook(&app, json!({"name": "slow", "url": hanging.url})).await;
    let reset = webhook(&app, json!({"name": "reset", "url": resetting.url})).await;
    webhook(&app, json!({"name": "fine", "url": fine.url})).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(fire(&app, &ch, &format!("k{i}"), T0).await);
    }
    let records = pump.records().await;
    let started = Instant::now();
    let report = pump.notifier.process(&records).await;
    let took = started.elapsed();
    // The healthy receiver got everything while the other two were failing.
    let got = fine.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert!(
            r.at.duration_since(started) < Duration::from_secs(3),
            "a healthy delivery waited {:?}",
            r.at.duration_since(started)
        );
    }
    // The batch cost about one delivery's budget (3 attempts of 5 s), not one per incident.
    assert!(took < Duration::from_secs(25), "batch took {took:?}");
    assert!(report.failed.is_empty());
    assert_eq!(report.delivered, 3);
    // Nothing is lost: the other two receivers' deliveries wait for a retry.
    assert_eq!(report.pending, 6);
    for hook in [&slow, &reset] {
        let history = deliveries(&app, hook, "status=pending").await;
        assert_eq!(history.len(), 3, "{history:?}");
        assert!(history.iter().any(|d| d["attempts"] == 3));
        assert!(history.iter().all(|d| d["next_attempt_at"].is_i64()));
    }
    let slow_history = deliveries(&app, &slow, "").await;
    assert!(slow_history.iter().any(|d| d["error"]
        .as_str()
        .unwrap()
        .contains("no answer within 5000 ms")));
}

/// SPEC 11 "Delivery": a receiver that refuses connections for a while, then
/// answers, receives every change of an incident, in order, each body with
/// the incident as it was after its change; the history goes `pending` ->
/// `succeeded`. The schedule runs 10,000 times faster (an hour is 0.36 s).
#[tokio::test]
async fn a_receiver_down_for_a_while_receives_every_change_in_order() {
    let app = test_app_with_stream().await;
    let port = Receiver::free_port();
    let mut pump = Pump::new(&app).await;
    pump.notifier.schedule.speedup = 10_000;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let hook = webhook(
        &app,
        json!({"name": "down", "url": format!("http://127.0.0.1:{port}/hook")}),
    )
    .await;
    let id = fire(&app, &ch, "k", T0).await;
    api_ok(&app, "POST", &format!("/api/incidents/{id}/ack"), None).await;
    api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    let reports = pump.run().await;
    assert!(reports.iter().all(|r| r.failed.is_empty()));
    let pending = deliveries(&app, &hook, "status=pending").await;
    assert_eq!(pending.len(), 3, "{pending:?}");
    let due: Vec<&Value> = pending
        .iter()
        .filter(|d| d["next_attempt_at"].is_i64())
        .collect();
    assert_eq!(due.len(), 1, "only the first waits for a time: {pending:?}");
    assert_eq!(due[0]["event_type"], "i_new");
    assert_eq!(due[0]["attempts"], 3);
    // Scheduled runs while it is still down lose nothing.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        pump.retry_due().await;
    }
    assert_eq!(deliveries(&app, &hook, "status=pending").await.len(), 3);
    assert!(deliveries(&app, &hook, "status=failed").await.is_empty());

    let rx = Receiver::start_at(port, Behaviour::Status(200)).await;
    assert!(
        pump.settle(Duration::from_millis(20), Duration::from_secs(8))
            .await
    );
    assert_eq!(rx.types(), ["i_new", "i_ack", "i_rslv"]);
    let states: Vec<Value> = rx
        .bodies()
        .iter()
        .map(|b| b["incident"]["status"].clone())
        .collect();
    assert_eq!(
        states,
        [json!("Triggered"), json!("Processing"), json!("Closed")]
    );
    let history = deliveries(&app, &hook, "").await;
    assert_eq!(history.len(), 3);
    assert!(
        history.iter().all(|d| d["status"] == "succeeded"),
        "{history:?}"
    );
    assert!(history.iter().all(|d| d["next_attempt_at"].is_null()));
    let first = history.iter().find(|d| d["event_type"] == "i_new").unwrap();
    assert!(first["attempts"].as_i64().unwrap() > 3, "{first:?}");
}

/// A receiver that hangs costs its own lane one attempt's timeout; another
/// webhook's due retry in the same scheduled run is sent at once.
#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_webhooks_retries() {
    let app = test_app_with_stream().await;
    let (hang_port, ok_port) = (Receiver::free_port(), Receiver::free_port());
    let mut pump = Pump::new(&app).await;
    // Slow enough that a 5 s timeout stays well inside the 24 hours (86 s).
    pump.notifier.schedule.speedup = 1_000;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let slow = webhook(
        &app,
        json!({"name": "slow", "url": format!("http://127.0.0.1:{hang_port}/hook"), "event_types": ["i_new"]}),
    )
    .await;
    let fast = webhook(
        &app,
        json!({"name": "fast", "url": format!("http://127.0.0.1:{ok_port}/hook"), "event_types": ["i_new"]}),
    )
    .await;
    fire(&app, &ch, "k", T0).await;
    pump.run().await;
    for hook in [&slow, &fast] {
        assert_eq!(deliveries(&app, hook, "status=pending").await.len(), 1);
    }
    let hanging = Receiver::start_at(hang_port, Behaviour::Hang(Duration::from_secs(10))).await;
    let fine = Receiver::start_at(ok_port, Behaviour::Status(200)).await;
    // Both become due on the shortened schedule (within a few seconds).
    for _ in 0..300 {
        let due = pump.notifier.store.due_lanes(now_ms(), 10).await.unwrap();
        if due.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let report = pump.retry_due().await;
    let took = started.elapsed();
    assert_eq!((report.lanes, report.delivered, report.pending), (2, 1, 1));
    let got = fine.received();
    assert_eq!(got.len(), 1);
    let waited = got[0].at.duration_since(started);
    assert!(
        waited < Duration::from_secs(2),
        "the healthy retry waited {waited:?}"
    );
    assert!(
        took >= Duration::from_millis(4900),
        "the hang was tried: {took:?}"
    );
    assert_eq!(hanging.received().len(), 1);
    assert_eq!(deliveries(&app, &fast, "status=succeeded").await.len(), 1);
    let still = deliveries(&app, &slow, "status=pending").await;
    assert_eq!(still.len(), 1);
    assert!(still[0]["error"]
        .as_str()
        .unwrap()
        .contains("no answer within 5000 ms"));
}

/// A disabled webhook receives nothing: not its waiting retries (they fail,
/// saying why), not a resend. Enabled again, a resend is delivered.
#[tokio::test]
async fn a_disabled_webhook_receives_no_retry_and_no_resend() {
    let app = test_app_with_stream().await;
    let port = Receiver::free_port();
    let mut pump = Pump::new(&app).await;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let hook = webhook(
        &app,
        json!({"name": "paused", "url": format!("http://127.0.0.1:{port}/hook"), "event_types": ["i_new"]}),
    )
    .await;
    fire(&app, &ch, "k", T0).await;
    pump.run().await;
    assert_eq!(deliveries(&app, &hook, "status=pending").await.len(), 1);
    api_ok(
        &app,
        "PATCH",
        &format!("/api/webhooks/{hook}"),
        Some(json!({"enabled": false})),
    )
    .await;
    let rx = Receiver::start_at(port, Behaviour::Status(200)).await;
    assert!(
        pump.settle(Duration::from_millis(10), Duration::from_secs(5))
            .await
    );
    assert!(rx.received().is_empty());
    let failed = deliveries(&app, &hook, "status=failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0]["error"].as_str().unwrap().contains("disabled"));

    let delivery = failed[0]["delivery_id"].as_str().unwrap();
    let resend = format!("/api/webhooks/{hook}/deliveries/{delivery}/resend");
    api_ok(&app, "POST", &resend, None).await;
    pump.run().await;
    assert!(rx.received().is_empty(), "a resend to a disabled webhook");

    api_ok(
        &app,
        "PATCH",
        &format!("/api/webhooks/{hook}"),
        Some(json!({"enabled": true})),
    )
    .await;
    api_ok(&app, "POST", &resend, None).await;
    pump.run().await;
    assert_eq!(rx.types(), ["i_new"]);
}

/// SPEC 15: literal addresses that are never targets, and loopback/private
/// ones unless the deployment allows them, are refused at save naming `url`
/// (never echoing it), and nothing is written.
#[tokio::test]
async fn refused_target_addresses_at_save() {
    let mut app = test_app_with_stream().await;
    let never = [
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:80/x",
        "http://[fe80::1]/x",
        "http://224.0.0.1/x",
        "http://[ff02::1]/x",
        "http://255.255.255.255/x",
        "http://[::ffff:169.254.169.254]/x",
        "http://2852039166/x",
    ];
    let private = [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.0.10/x",
        "http://[::1]:9/x",
        "http://[fd00::1]/x",
    ];
    let refused = |out: shared::intake::http::Outbound| {
        assert_eq!(out.status, 400, "{}", out.body);
        let error = &out.json()["error"];
        assert_eq!(error["code"], "InvalidParameter");
        let message = error["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("url: "), "{message}");
        assert!(!message.contains("169.254.169.254") && !message.contains("10.1.2.3"));
    };
    for allowed in [false, true] {
        app.webhook_targets = if allowed {
            shared::outbound::target::Targets::PublicAndPrivate
        } else {
            shared::outbound::target::Targets::Public
        };
        for url in never
            .iter()
            .chain(if allowed { &[][..] } else { &private[..] })
        {
            refused(
                api(
                    &app,
                    "POST",
                    "/api/webhooks",
                    Some(json!({"name": "x", "url": url})),
                )
                .await,
            );
        }
    }
    let listed = api_ok(&app, "GET", "/api/webhooks", None).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "nothing written"
    );

    // Allowed: private targets are saved; a PATCH to a refused one is not.
    let id = webhook(&app, json!({"name": "lan", "url": private[0]})).await;
    for url in private {
        api_ok(
            &app,
            "PATCH",
            &format!("/api/webhooks/{id}"),
            Some(json!({"url": url})),
        )
        .await;
    }
    let patch = api(
        &app,
        "PATCH",
        &format!("/api/webhooks/{id}"),
        Some(json!({"url": never[0]})),
    )
    .await;
    refused(patch);
    let got = api_ok(&app, "GET", &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(got["url"], *private.last().unwrap());
}

/// SPEC 15: a name is checked after resolving it. `localhost` resolves to
/// loopback, which this deployment does not allow: the delivery fails at
/// once with the reason in its history, and the receiver gets nothing.
#[tokio::test]
async fn a_name_that_resolves_to_a_refused_address_fails_its_delivery() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    pump.notifier.sender = shared::outbound::service::Sender::new(
        Default::default(),
        shared::outbound::target::Targets::Public,
    );
    let ch = channel(&app, json!({"name": "ops"})).await;
    let url = rx.url.replace("127.0.0.1", "localhost");
    let hook = webhook(&app, json!({"name": "sneaky", "url": url})).await;
    fire(&app, &ch, "k", T0).await;
    pump.run().await;
    assert!(rx.received().is_empty());
    let failed = deliveries(&app, &hook, "status=failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["attempts"], 1, "a refusal is not retried");
    assert_eq!(failed[0]["http_status"], Value::Null);
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("loopback and private addresses are refused"),
        "{error}"
    );
}

/// SPEC 15: a webhook's secret, header values and URL query values are
/// never shown back (POST and PATCH answers, GET one, GET list); sending a
/// view back unchanged keeps them, and deliveries still carry them.
#[tokio::test]
async fn webhook_views_mask_header_values_query_values_and_the_secret() {
    let app = test_app_with_stream().await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let ch = channel(&app, json!({"name": "ops"})).await;
    let secrets = ["tok-SECRET-1", "Bearer hdr-SECRET-2", "sig-SECRET-3"];
    let made = api_ok(
        &app,
        "POST",
        "/api/webhooks",
        Some(
            json!({"name": "masked", "url": format!("{}?access_token={}", rx.url, secrets[0]),
                    "headers": {"Authorization": secrets[1]}, "secret": secrets[2],
                    "event_types": ["i_new"]}),
        ),
    )
    .await;
    let id = made["webhook_id"].as_str().unwrap().to_string();
    let shown = |v: &Value| {
        let text = v.to_string();
        for s in secrets {
            assert!(!text.contains(s), "{s} shown in {text}");
        }
    };
    shown(&made);
    assert_eq!(made["url"], format!("{}?access_token=***", rx.url));
    assert_eq!(made["headers"], json!({"Authorization": "***"}));
    let one = api_ok(&app, "GET", &format!("/api/webhooks/{id}"), None).await;
    shown(&one);
    shown(&api_ok(&app, "GET", "/api/webhooks", None).await);

    // The view sent back whole (a rename) keeps the real values.
    let mut back = one.clone();
    for field in ["webhook_id", "created_at", "has_secret"] {
        back.as_object_mut().unwrap().remove(field);
    }
    back["name"] = json!("renamed");
    let patched = api_ok(&app, "PATCH", &format!("/api/webhooks/{id}"), Some(back)).await;
    shown(&patched);
    assert_eq!(patched["name"], "renamed");

    fire(&app, &ch, "k", T0).await;
    pump.run().await;
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .target
            .ends_with(&format!("access_token={}", secrets[0])),
        "{}",
        got[0].target
    );
    assert_eq!(got[0].header("authorization"), Some(secrets[1]));
    assert!(
        got[0].header("x-alert-intake-signature").is_some(),
        "the secret is kept"
    );
}
