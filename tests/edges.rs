//! The guarantees of SPEC section 5 at their edges, against DynamoDB Local:
//! clock skew, ties, the item-size budget, a resolve of thousands of alerts,
//! recoveries through routes, one push of 1,000 alerts, a storm of merges
//! from 64 instances, the group pointer at a window edge, append-only history.

use std::time::Instant;

use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::domain::event::{EventStatus, StandardEvent};
use shared::intake::integrations::IntegrationKind;
use shared::model::Channel;
use shared::store::now_ms;

fn outcome(data: &Value) -> &str {
    data["outcome"].as_str().unwrap_or_default()
}

async fn alert(app: &App, alert_id: &str) -> Value {
    api_ok(app, "GET", &format!("/api/alerts/{alert_id}"), None).await
}

async fn incident(app: &App, id: &str) -> Value {
    api_ok(app, "GET", &format!("/api/incidents/{id}"), None).await
}

/// Heads of the table: (alert_key, active, incident_id), placeholders excluded.
async fn heads(app: &App) -> Vec<(String, bool, String)> {
    scan_all(app)
        .await
        .iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("HEAD"))
        .filter(|i| !i["alert_id"].as_s().unwrap().is_empty())
        .map(|i| {
            (
                i["alert_key"].as_s().unwrap().clone(),
                *i["active"].as_bool().unwrap(),
                i["incident_id"].as_s().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_event_time_more_than_a_minute_ahead_is_the_time_of_receipt() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let now_s = now_ms() / 1000;
    // An Ok stamped 9 minutes ahead (a sender's clock error) for a key never seen...
    let ok = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "disk", "event_status": "Ok", "alert_key": "skew", "event_time": now_s + 540}),
    )
    .await;
    assert_eq!(outcome(&ok), "ignored");
    // ...must not make the real firing a second later stale.
    let fire = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "disk", "event_status": "Critical", "alert_key": "skew", "event_time": now_s + 1}),
    )
    .await;
    assert_eq!(outcome(&fire), "new_incident", "{fire}");
    // 30 s ahead is within the allowed skew and kept as sent.
    let a = alert(&app, fire["alert_id"].as_str().unwrap()).await;
    assert_eq!(a["events"][0]["event_time"], json!(now_s + 1));
}

#[tokio::test]
async fn at_equal_time_a_recovery_is_final() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let t = now_ms() / 1000 - 100;
    let body = |status: &str, key: &str, at: i64| json!({"title_rule": "cpu", "event_status": status, "alert_key": key, "event_time": at});
    // Ok at T for an unseen key, then a (retried) firing at the same T.
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &body("Ok", "tie", t)).await),
        "ignored"
    );
    let late = push_ok(&app, &s.integration_key, &body("Critical", "tie", t)).await;
    assert_eq!(outcome(&late), "ignored", "{late}");
    // Firing at T, recovery at T+10, firing again stamped T+10: the recovery stands.
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &body("Critical", "tie2", t)).await),
        "new_incident"
    );
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &body("Ok", "tie2", t + 10)).await),
        "recovered"
    );
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &body("Warning", "tie2", t + 10)).await),
        "ignored"
    );
    assert!(heads(&app).await.iter().all(|(_, active, _)| !active));
    // One second later is a new firing.
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &body("Warning", "tie2", t + 11)).await),
        "new_incident"
    );
}

#[tokio::test]
async fn an_ok_that_adds_large_labels_still_lands() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let big = "😀".repeat(2048); // 2,048 characters of 4 bytes
    let labels = |prefix: &str| -> Value {
        (0..25)
            .map(|i| (format!("{prefix}{i}"), Value::String(big.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let fire = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "big", "event_status": "Warning", "alert_key": "big", "labels": labels("a")}),
    )
    .await;
    assert_eq!(outcome(&fire), "new_incident");
    let ok = push(
        &app,
        &s.integration_key,
        &json!({"title_rule": "big", "event_status": "Ok", "alert_key": "big", "labels": labels("b")}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(outcome(&ok.json()["data"]), "recovered");
    let a = alert(&app, fire["alert_id"].as_str().unwrap()).await;
    assert_eq!(a["active"], json!(false));
    let label_bytes: usize = a["labels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| k.len() + v.as_str().unwrap().len())
        .sum();
    assert!(
        label_bytes <= shared::domain::event::LABELS_MAX_BYTES,
        "{label_bytes}"
    );
    // Every item stays far below DynamoDB's 400 KB limit.
    for item in scan_all(&app).await {
        let bytes = shared::store::items::item_bytes(&item);
        assert!(bytes < 200 * 1024, "{} is {bytes} bytes", sk_of(&item));
    }
}

/// An Alertmanager-shaped body (the aliyun-prometheus integration) of `n`
/// firing alerts `first..first+n`, all with the same `service` label.
fn alertmanager_body(first: usize, n: usize, status: &str) -> String {
    let alerts: Vec<Value> = (first..first + n)
        .map(|i| {
            json!({
                "status": status,
                "labels": {"alertname": "Down", "service": "web", "i": i.to_string()},
                "startsAt": "2026-11-01T10:00:00Z",
                "fingerprint": format!("fp{i:05}"),
            })
        })
        .collect();
    json!({"status": status, "alerts": alerts}).to_string()
}

async fn grouped_aliyun(app: &App) -> Setup {
    channel_with_integration(
        app,
        "aliyun-prometheus",
        json!({"name": "web", "grouping": {"method": "rules", "equals": [["labels.service"]]}}),
    )
    .await
}

#[tokio::test]
async fn a_push_of_1000_alerts_answers_every_one_and_merges_exactly() {
    let app = test_app().await;
    let s = grouped_aliyun(&app).await;
    let started = Instant::now();
    let out = push_raw(
        &app,
        IntegrationKind::AliyunPrometheus,
        &s.integration_key,
        "application/json",
        &alertmanager_body(0, 1000, "firing"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(out.status, 200, "{}", out.body);
    let data = out.json()["data"].clone();
    let keys = data["alert_keys"].as_array().unwrap();
    let results = data["results"].as_array().unwrap();
    assert_eq!(keys.len(), 1000);
    assert_eq!(results.len(), 1000);
    for (i, (k, r)) in keys.iter().zip(results).enumerate() {
        assert_eq!(k, &json!(format!("fp{i:05}")), "payload order");
        assert_eq!(r["alert_key"], *k);
    }
    let new = results
        .iter()
        .filter(|r| r["outcome"] == "new_incident")
        .count();
    let merged = results.iter().filter(|r| r["outcome"] == "merged").count();
    assert_eq!((new, merged), (1, 999));
    let incidents = incidents(&app, "").await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["alert_count"], json!(1000));
    assert_eq!(incidents[0]["active_alert_count"], json!(1000));
    println!("FIGURE push of 1000 alerts into one group: {took:?}");
}

#[tokio::test]
async fn resolving_2000_alerts_closes_every_one_and_a_repeat_opens_anew() {
    let app = test_app().await;
    let s = grouped_aliyun(&app).await;
    for first in (0..2000).step_by(500) {
        let out = push_raw(
            &app,
            IntegrationKind::AliyunPrometheus,
            &s.integration_key,
            "application/json",
            &alertmanager_body(first, 500, "firing"),
        )
        .await;
        assert_eq!(out.status, 200, "{}", out.body);
    }
    let open = incidents(&app, "").await;
    assert_eq!(open.len(), 1);
    let id = open[0]["incident_id"].as_str().unwrap().to_string();
    assert_eq!(open[0]["alert_count"], json!(2000));

    let started = Instant::now();
    let resolved = api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    println!("FIGURE resolve of 2000 alerts: {:?}", started.elapsed());
    assert_eq!(resolved["status"], "Closed");
    let all = heads(&app).await;
    assert_eq!(all.len(), 2000);
    assert!(
        all.iter().all(|(_, active, _)| !active),
        "an alert stayed open"
    );

    // One of them fires again (a later start): a new alert in a new incident,
    // never a duplicate of the dead alert. (An identical re-send within 5
    // minutes is a retry of what was applied: `already_applied`.)
    let again = alertmanager_body(7, 1, "firing").replace("10:00:00Z", "10:07:00Z");
    let out = push_raw(
        &app,
        IntegrationKind::AliyunPrometheus,
        &s.integration_key,
        "application/json",
        &again,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let r = &out.json()["data"]["results"][0];
    assert_eq!(r["outcome"], "new_incident", "{r}");
    assert_ne!(r["incident_id"], json!(id));
    let closed = incident(&app, &id).await;
    assert_eq!(closed["status"], "Closed");
    assert_eq!(closed["alert_count"], json!(2000));
}

#[tokio::test]
async fn a_resolve_cut_short_leaves_no_dead_alert_behind_a_closed_incident() {
    // Resolve seals, sweeps, then closes: whatever the sweep did not reach
    // belongs to an incident that is not closed, and resolving again finishes.
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let fire = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "x", "event_status": "Warning", "alert_key": "k"}),
    )
    .await;
    let id = fire["incident_id"].as_str().unwrap();
    let resolved = api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    assert_eq!(resolved["status"], "Closed");
    // The repeat of a closed incident's alert is never a duplicate of it.
    let again = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "x", "event_status": "Warning", "alert_key": "k"}),
    )
    .await;
    assert_eq!(outcome(&again), "new_incident", "{again}");
    assert_ne!(again["alert_id"], fire["alert_id"]);
}

#[tokio::test]
async fn an_ok_reaches_every_channel_its_firing_went_to() {
    let app = test_app().await;
    let mut ids = Vec::new();
    for name in ["critical-team", "default-team"] {
        let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": name}))).await;
        ids.push(ch["channel_id"].as_str().unwrap().to_string());
    }
    let make = |default: bool| {
        let mut routes = json!({"cases": [{
            "if": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
            "channel_ids": [ids[0]],
        }]});
        if default {
            routes["default"] = json!({"channel_ids": [ids[1]]});
        }
        json!({"name": "shared", "kind": "standard", "routes": routes, "rate_limit": UNLIMITED.clone()})
    };
    for with_default in [true, false] {
        let integ = api_ok(&app, "POST", "/api/integrations", Some(make(with_default))).await;
        let key = integ["integration_key"].as_str().unwrap();
        let alert_key = format!("db-{with_default}");
        let fire = push_ok(
            &app,
            key,
            &json!({"title_rule": "db down", "event_status": "Critical", "alert_key": alert_key}),
        )
        .await;
        assert_eq!(fire["channel_id"], json!(ids[0]));
        let ok = push(
            &app,
            key,
            &json!({"title_rule": "db down", "event_status": "Ok", "alert_key": alert_key}),
        )
        .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let data = ok.json()["data"].clone();
        let results: Vec<Value> = match data["results"].as_array() {
            Some(r) => r.clone(),
            None => vec![data.clone()],
        };
        let in_critical = results
            .iter()
            .find(|r| r["channel_id"] == json!(ids[0]))
            .unwrap_or_else(|| panic!("the Ok did not reach the firing's channel: {data}"));
        assert_eq!(in_critical["outcome"], "recovered");
        let a = alert(&app, fire["alert_id"].as_str().unwrap()).await;
        assert_eq!(a["active"], json!(false));
    }
    // An Ok for a key that never fired, with no route for it: still refused.
    let integ = api_ok(&app, "POST", "/api/integrations", Some(make(false))).await;
    let out = push(
        &app,
        integ["integration_key"].as_str().unwrap(),
        &json!({"title_rule": "x", "event_status": "Ok", "alert_key": "never"}),
    )
    .await;
    assert_eq!(out.status, 400);
    assert!(out.body.contains("no route matched"), "{}", out.body);
    // The key lookup read on every push carries the routes' version, not the routes.
    for item in scan_all(&app).await {
        if item["sk"].as_s().unwrap() == "IKEY" {
            assert!(!item.contains_key("routes") && item.contains_key("routes_version"));
        }
    }
}

#[tokio::test]
async fn a_storm_of_merges_from_64_instances_answers_no_500_and_counts_exactly() {
    let app = test_app().await;
    let s = channel_with_integration(
        &app,
        "standard",
        json!({"name": "storm", "grouping": {"method": "rules", "equals": [["labels.service"]]}}),
    )
    .await;
    const ALERTS: usize = 1000;
    const INSTANCES: usize = 64;
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(another_instance(&app).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, instance) in instances.into_iter().enumerate() {
        let key = s.integration_key.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in (n..ALERTS).step_by(INSTANCES) {
                let out = push(
                    &instance,
                    &key,
                    &json!({"title_rule": format!("node {i} down"), "event_status": "Critical",
                            "alert_key": format!("node-{i}"), "labels": {"service": "storage"}}),
                )
                .await;
                statuses.push((out.status, out.body));
            }
            statuses
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        for (status, body) in t.await.unwrap() {
            if status != 200 {
                failures.push(format!("{status} {body}"));
            }
        }
    }
    let took = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} failed, first: {}",
        failures.len(),
        failures[0]
    );
    println!(
        "FIGURE storm: {ALERTS} alerts into one group from {INSTANCES} instances in {took:?} ({:.0} merges/s)",
        ALERTS as f64 / took.as_secs_f64()
    );
    let open = incidents(&app, "").await;
    assert_eq!(open.len(), 1, "exactly one incident for the group");
    assert_eq!(open[0]["alert_count"], json!(ALERTS));
    assert_eq!(open[0]["active_alert_count"], json!(ALERTS));
    let (_, totals) = invariants::check(&app).await;
    println!("{totals:?}");
}

fn event(key: &str, status: EventStatus, title: &str, t: i64) -> StandardEvent {
    StandardEvent {
        title: title.into(),
        event_status: status,
        alert_key: key.into(),
        description: String::new(),
        labels: [("service".to_string(), "api".to_string())].into(),
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

#[tokio::test]
async fn an_incident_the_group_moved_away_from_takes_no_more_alerts() {
    const T0: i64 = 1_763_600_000_000;
    const MINUTE: i64 = 60_000;
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"name": "w", "grouping": {"method": "rules", "equals": [["labels.service"]], "window_minutes": 10}}),
    )
    .await;
    let first = app
        .store
        .apply_event(&ch, &event("a", EventStatus::Warning, "a", T0), T0)
        .await
        .unwrap();
    let old = first.incident_id.clone().unwrap();
    // An instance whose clock is past the window opens the group's next incident.
    let second = app
        .store
        .apply_event(
            &ch,
            &event("b", EventStatus::Warning, "b", T0 + 11 * MINUTE),
            T0 + 11 * MINUTE,
        )
        .await
        .unwrap();
    let new = second.incident_id.clone().unwrap();
    assert_ne!(old, new);
    // An instance with a slow clock that still read the old pointer: put the
    // pointer back as it saw it, and merge at a time inside the old window.
    let pointer = scan_all(&app)
        .await
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap() == "GROUP")
        .unwrap();
    let mut stale = pointer.clone();
    stale.insert(
        "incident_id".into(),
        aws_sdk_dynamodb::types::AttributeValue::S(old.clone()),
    );
    app.store
        .client()
        .put_item()
        .table_name(app.store.table())
        .set_item(Some(stale))
        .send()
        .await
        .unwrap();
    let third = app
        .store
        .apply_event(
            &ch,
            &event("c", EventStatus::Warning, "c", T0 + 5 * MINUTE),
            T0 + 5 * MINUTE,
        )
        .await
        .unwrap();
    assert_ne!(
        third.incident_id.as_deref(),
        Some(old.as_str()),
        "merged into an incident the group left"
    );
    assert_eq!(incident(&app, &old).await["alert_count"], json!(1));
}

#[tokio::test]
async fn history_is_append_only_even_for_equal_time_and_content() {
    let app = test_app().await;
    let ch = channel(&app, json!({"name": "h"})).await;
    let t = 1_763_600_000_000;
    let now = now_ms();
    let warn = event("k", EventStatus::Warning, "same", t);
    let crit = event("k", EventStatus::Critical, "same", t);
    let opened = app.store.apply_event(&ch, &warn, now).await.unwrap();
    app.store.apply_event(&ch, &crit, now).await.unwrap();
    // The first content again at the same event time, after the retry window:
    // a new observation, stored beside the first, never over it.
    let later = now + shared::engine::RETRY_WINDOW_MS + 1;
    let again = app.store.apply_event(&ch, &warn, later).await.unwrap();
    assert_eq!(again.alert_id, opened.alert_id);
    let a = alert(&app, opened.alert_id.as_deref().unwrap()).await;
    let stored = a["events"].as_array().unwrap().len() as i64;
    assert_eq!(stored, 3, "{a}");
    let counted = a["event_count"].as_i64().unwrap()
        - a["duplicate_count"].as_i64().unwrap()
        - a["refresh_count"].as_i64().unwrap();
    assert_eq!(counted, stored);
}

#[tokio::test]
async fn repeats_racing_a_resolve_never_land_on_an_alert_of_the_closed_incident() {
    let app = test_app().await;
    let s = channel_with_integration(
        &app,
        "standard",
        json!({"name": "race", "grouping": {"method": "rules", "equals": [["labels.service"]]}}),
    )
    .await;
    const KEYS: usize = 300;
    let body = |i: usize, at: i64| {
        json!({"title_rule": format!("disk {i}"), "event_status": "Warning", "alert_key": format!("d{i}"),
               "labels": {"service": "disk"}, "event_time": at})
    };
    let t0 = now_ms() / 1000 - 600;
    for i in 0..KEYS {
        push_ok(&app, &s.integration_key, &body(i, t0)).await;
    }
    let open = incidents(&app, "").await;
    assert_eq!(open.len(), 1);
    let id = open[0]["incident_id"].as_str().unwrap().to_string();

    // Repeats of every key keep arriving from another instance while the resolve runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = another_instance(&app).await;
    let key = s.integration_key.clone();
    let flag = done.clone();
    let repeats = tokio::spawn(async move {
        let mut answered_after_close = Vec::new();
        let mut round = 1;
        loop {
            let closed_before = flag.load(std::sync::atomic::Ordering::SeqCst);
            for i in 0..KEYS {
                let data = push_ok(&other, &key, &body(i, t0 + round)).await;
                if closed_before {
                    answered_after_close.push(data);
                }
            }
            if closed_before {
                return answered_after_close;
            }
            round += 1;
        }
    });
    let resolved = api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(resolved["status"], "Closed");
    let after = repeats.await.unwrap();
    assert_eq!(after.len(), KEYS);
    for data in &after {
        assert_ne!(
            data["incident_id"],
            json!(id),
            "landed on the closed incident: {data}"
        );
    }
    // Every alert of the closed incident is closed.
    let closed = incident(&app, &id).await;
    for a in closed["alerts"].as_array().unwrap() {
        assert_eq!(a["active"], json!(false), "{a}");
    }
}
