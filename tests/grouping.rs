//! Channel grouping (SPEC section 5) against DynamoDB Local: `rules` with
//! ordered key groups and `strict`, tumbling and sliding windows, incident
//! title/labels from the first alert and the highest severity, a closed
//! incident never taking a new alert, and `auto_close` turned off. Windows are
//! driven through the store with explicit times, so no test waits a minute.

use integration_tests::*;
use serde_json::json;
use shared::app::App;
use shared::domain::event::{EventStatus, StandardEvent};
use shared::model::Channel;

const T0: i64 = 1_763_600_000_000;
const MINUTE: i64 = 60_000;

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

async fn channel(app: &App, grouping: serde_json::Value, auto_close: bool) -> Channel {
    let made = api_ok(
        app,
        "POST",
        "/api/channels",
        Some(json!({"name": "g", "grouping": grouping, "auto_close": auto_close})),
    )
    .await;
    app.store
        .get_channel(made["channel_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn apply(app: &App, ch: &Channel, e: StandardEvent, now: i64) -> (String, String) {
    let applied = app.store.apply_event(ch, &e, now).await.unwrap();
    (
        serde_json::to_value(applied.outcome)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string(),
        applied.incident_id.unwrap_or_default(),
    )
}

async fn incident(app: &App, id: &str) -> serde_json::Value {
    api_ok(app, "GET", &format!("/api/incidents/{id}"), None).await
}

#[tokio::test]
async fn rules_merge_by_the_first_matching_key_group() {
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"method": "rules", "equals": [["labels.service", "labels.env"], ["title"]], "strict": true}),
        true,
    )
    .await;
    let svc = [("service", "api"), ("env", "prod")];
    let (o1, i1) = apply(&app, &ch, ev("a", EventStatus::Warning, &svc, T0), T0).await;
    let (o2, i2) = apply(
        &app,
        &ch,
        ev(
            "b",
            EventStatus::Critical,
            &[("service", "api"), ("env", "prod"), ("x", "1")],
            T0,
        ),
        T0,
    )
    .await;
    assert_eq!((o1.as_str(), o2.as_str()), ("new_incident", "merged"));
    assert_eq!(i1, i2);
    // A different env: another group, another incident.
    let (o3, i3) = apply(
        &app,
        &ch,
        ev(
            "c",
            EventStatus::Info,
            &[("service", "api"), ("env", "dev")],
            T0,
        ),
        T0,
    )
    .await;
    assert_eq!(o3, "new_incident");
    assert_ne!(i3, i1);
    // strict: no env label, so group 1 does not apply; group 2 (title) does,
    // and the title is the key's own, so it stands alone.
    let (o4, i4) = apply(
        &app,
        &ch,
        ev("d", EventStatus::Info, &[("service", "api")], T0),
        T0,
    )
    .await;
    assert_eq!(o4, "new_incident");
    assert_ne!(i4, i1);

    let inc = incident(&app, &i1).await;
    assert_eq!(inc["title"], "a is unhappy", "title from the first alert");
    assert_eq!(
        inc["labels"],
        json!({"service": "api", "env": "prod"}),
        "labels from the first alert"
    );
    assert_eq!(inc["severity"], "Critical", "the highest of its alerts");
    assert_eq!(
        (
            inc["alert_count"].as_i64(),
            inc["active_alert_count"].as_i64()
        ),
        (Some(2), Some(2))
    );

    // The first alert recovers: still open; the second too: closed by itself.
    assert_eq!(
        apply(
            &app,
            &ch,
            ev("a", EventStatus::Ok, &svc, T0 + 1000),
            T0 + 1000
        )
        .await
        .0,
        "recovered"
    );
    let inc = incident(&app, &i1).await;
    assert_eq!(
        (inc["status"].as_str(), inc["active_alert_count"].as_i64()),
        (Some("Triggered"), Some(1))
    );
    assert_eq!(
        inc["severity"], "Critical",
        "severity does not go down while open"
    );
    apply(
        &app,
        &ch,
        ev("b", EventStatus::Ok, &svc, T0 + 2000),
        T0 + 2000,
    )
    .await;
    let inc = incident(&app, &i1).await;
    assert_eq!(
        (inc["status"].as_str(), inc["active_alert_count"].as_i64()),
        (Some("Closed"), Some(0))
    );

    // A closed incident never takes a new alert: the group opens a new one.
    let (o5, i5) = apply(
        &app,
        &ch,
        ev("e", EventStatus::Warning, &svc, T0 + 3000),
        T0 + 3000,
    )
    .await;
    assert_eq!(o5, "new_incident");
    assert_ne!(i5, i1);
}

#[tokio::test]
async fn non_strict_missing_values_group_together() {
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"method": "rules", "equals": [["labels.service"]], "strict": false}),
        true,
    )
    .await;
    let (_, i1) = apply(&app, &ch, ev("a", EventStatus::Warning, &[], T0), T0).await;
    let (o2, i2) = apply(&app, &ch, ev("b", EventStatus::Warning, &[], T0), T0).await;
    assert_eq!((o2.as_str(), i2.as_str()), ("merged", i1.as_str()));
}

#[tokio::test]
async fn tumbling_window_counts_from_the_incident_start() {
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"method": "rules", "equals": [["labels.service"]], "window_minutes": 10, "window_type": "tumbling"}),
        true,
    )
    .await;
    let l = [("service", "api")];
    let (_, first) = apply(&app, &ch, ev("a", EventStatus::Warning, &l, T0), T0).await;
    let (o, i) = apply(
        &app,
        &ch,
        ev("b", EventStatus::Warning, &l, T0 + 9 * MINUTE),
        T0 + 9 * MINUTE,
    )
    .await;
    assert_eq!((o.as_str(), i.as_str()), ("merged", first.as_str()));
    // 11 minutes after the start: outside the window although the last merge was 2 minutes ago.
    let (o, i) = apply(
        &app,
        &ch,
        ev("c", EventStatus::Warning, &l, T0 + 11 * MINUTE),
        T0 + 11 * MINUTE,
    )
    .await;
    assert_eq!(o, "new_incident");
    assert_ne!(i, first);
    // The old incident stays open with its two alerts; new ones go to the new incident.
    let (o, j) = apply(
        &app,
        &ch,
        ev("d", EventStatus::Warning, &l, T0 + 12 * MINUTE),
        T0 + 12 * MINUTE,
    )
    .await;
    assert_eq!((o.as_str(), j.as_str()), ("merged", i.as_str()));
    assert_eq!(incident(&app, &first).await["alert_count"], 2);
}

#[tokio::test]
async fn sliding_window_restarts_with_each_merge() {
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"method": "rules", "equals": [["labels.service"]], "window_minutes": 10, "window_type": "sliding"}),
        true,
    )
    .await;
    let l = [("service", "api")];
    let (_, first) = apply(&app, &ch, ev("a", EventStatus::Warning, &l, T0), T0).await;
    for (n, at) in [(1, 9), (2, 18), (3, 27)] {
        let t = T0 + at * MINUTE;
        let (o, i) = apply(
            &app,
            &ch,
            ev(&format!("k{n}"), EventStatus::Warning, &l, t),
            t,
        )
        .await;
        assert_eq!(
            (o.as_str(), i.as_str()),
            ("merged", first.as_str()),
            "merge {n} at minute {at}"
        );
    }
    let t = T0 + 38 * MINUTE;
    let (o, i) = apply(&app, &ch, ev("late", EventStatus::Warning, &l, t), t).await;
    assert_eq!(o, "new_incident", "11 minutes after the last merge");
    assert_ne!(i, first);
}

#[tokio::test]
async fn auto_close_off_keeps_the_incident_open_until_resolved() {
    let app = test_app().await;
    let ch = channel(&app, json!({"method": "none"}), false).await;
    let (_, id) = apply(&app, &ch, ev("a", EventStatus::Critical, &[], T0), T0).await;
    assert_eq!(
        apply(
            &app,
            &ch,
            ev("a", EventStatus::Ok, &[], T0 + 1000),
            T0 + 1000
        )
        .await
        .0,
        "recovered"
    );
    let inc = incident(&app, &id).await;
    assert_eq!(
        (inc["status"].as_str(), inc["active_alert_count"].as_i64()),
        (Some("Triggered"), Some(0))
    );
    assert_eq!(inc["alerts"][0]["active"], false);
    // The key fires again: a new alert, and (no grouping) a new incident.
    let (o, second) = apply(
        &app,
        &ch,
        ev("a", EventStatus::Critical, &[], T0 + 2000),
        T0 + 2000,
    )
    .await;
    assert_eq!(o, "new_incident");
    assert_ne!(second, id);
    let resolved = api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    assert_eq!(resolved["status"], "Closed");
    // Resolving the old incident leaves the new alert alone.
    assert_eq!(incident(&app, &second).await["alerts"][0]["active"], true);
}

#[tokio::test]
async fn resolve_closes_every_open_alert_of_a_grouped_incident() {
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"method": "rules", "equals": [["labels.service"]]}),
        true,
    )
    .await;
    let l = [("service", "api")];
    let mut id = String::new();
    for k in ["a", "b", "c"] {
        id = apply(&app, &ch, ev(k, EventStatus::Warning, &l, T0), T0)
            .await
            .1;
    }
    let resolved = api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    assert_eq!(
        (
            resolved["status"].as_str(),
            resolved["active_alert_count"].as_i64()
        ),
        (Some("Closed"), Some(0))
    );
    let inc = incident(&app, &id).await;
    assert!(inc["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["active"] == false));
    // Their keys now open new alerts, in a new incident of the same group.
    let (o, i) = apply(
        &app,
        &ch,
        ev("a", EventStatus::Warning, &l, T0 + 1000),
        T0 + 1000,
    )
    .await;
    assert_eq!(o, "new_incident");
    assert_ne!(i, id);
    let (o, j) = apply(
        &app,
        &ch,
        ev("b", EventStatus::Warning, &l, T0 + 1000),
        T0 + 1000,
    )
    .await;
    assert_eq!((o.as_str(), j.as_str()), ("merged", i.as_str()));
}

/// Alertmanager-style senders repeat the same content with the same start
/// time for as long as the alert fires. Inside the retry window a repeat is a
/// retry; past it, a duplicate while open, and a new alert once closed by hand.
#[tokio::test]
async fn repeats_with_a_constant_start_time_after_the_retry_window() {
    let app = test_app().await;
    let ch = channel(&app, json!({"method": "none"}), true).await;
    let e = ev("am", EventStatus::Critical, &[("alertname", "X")], T0);
    let (o, first) = apply(&app, &ch, e.clone(), T0).await;
    assert_eq!(o, "new_incident");
    assert_eq!(
        apply(&app, &ch, e.clone(), T0 + 1000).await.0,
        "already_applied"
    );
    let window = shared::engine::RETRY_WINDOW_MS;
    assert_eq!(
        apply(&app, &ch, e.clone(), T0 + window + 1000).await.0,
        "deduplicated"
    );
    api_ok(
        &app,
        "POST",
        &format!("/api/incidents/{first}/resolve"),
        None,
    )
    .await;
    let (o, second) = apply(&app, &ch, e.clone(), T0 + 2 * window + 2000).await;
    assert_eq!(
        o, "new_incident",
        "still firing after a manual close: a new alert"
    );
    assert_ne!(second, first);
}

/// A resolve cut short after closing the incident (a crash before the sweep):
/// the alert is still marked open. A state change for its key must not land
/// on it; it closes it and opens a new alert. Resolving again finishes the sweep.
#[tokio::test]
async fn interrupted_resolve_sweep_does_not_swallow_state_changes() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = test_app().await;
    let ch = channel(
        &app,
        json!({"method": "rules", "equals": [["labels.service"]]}),
        true,
    )
    .await;
    let l = [("service", "api")];
    let (_, first) = apply(&app, &ch, ev("a", EventStatus::Warning, &l, T0), T0).await;
    apply(&app, &ch, ev("b", EventStatus::Warning, &l, T0), T0).await;
    // Only the first half of a resolve: the incident is closed, the alerts are not.
    app.store
        .client()
        .update_item()
        .table_name(app.store.table())
        .set_key(Some(shared::store::items::key(
            format!("INC#{first}"),
            "INCIDENT",
        )))
        .update_expression("SET #st = :closed, active_alert_count = :zero")
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(":closed", AttributeValue::S("Closed".into()))
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let (o, second) = apply(
        &app,
        &ch,
        ev("a", EventStatus::Critical, &l, T0 + 1000),
        T0 + 1000,
    )
    .await;
    assert_eq!(o, "new_incident");
    assert_ne!(second, first);
    // Resolving the closed incident again closes b, and only b.
    api_ok(
        &app,
        "POST",
        &format!("/api/incidents/{first}/resolve"),
        None,
    )
    .await;
    let old = incident(&app, &first).await;
    assert!(old["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["active"] == false));
    assert_eq!(incident(&app, &second).await["alerts"][0]["active"], true);
    integration_tests::invariants::check(&app).await;
}
