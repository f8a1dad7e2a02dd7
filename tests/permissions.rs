//! SPEC section 16, "Permissions match the code": each function's IAM policy
//! in `infra/template.yaml` grants every DynamoDB action its code sends, and
//! a push function nothing more.
//!
//! Every handler the test helpers drive runs on a client whose requests are
//! recorded and refused as AWS would refuse them (`integration_tests::iam`),
//! so the whole suite fails on an action the template does not grant. The
//! tests here drive each function through its paths (the push paths all of
//! them, the silence and inhibit marks' lift included) and compare what was
//! sent with what is granted.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

use integration_tests::iam::{self, Function, Need};
use integration_tests::template::TEMPLATE;
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::intake::integrations::IntegrationKind;

static CLOCK: AtomicI64 = AtomicI64::new(0);

fn tick() -> i64 {
    let now = shared::store::now_ms() / 1000;
    let _ = CLOCK.compare_exchange(0, now - 3600, Ordering::SeqCst, Ordering::SeqCst);
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

fn fire(key: &str, labels: Value) -> Value {
    json!({"title_rule": format!("{key} is down"), "event_status": "Critical", "alert_key": key,
           "labels": labels, "event_time": tick()})
}

fn ok(key: &str) -> Value {
    json!({"title_rule": "resolved", "event_status": "Ok", "alert_key": key, "event_time": tick()})
}

fn outcome(data: &Value) -> String {
    data["outcome"].as_str().unwrap_or_default().to_string()
}

fn actions(needs: &BTreeSet<Need>) -> BTreeSet<String> {
    needs.iter().map(|n| n.action.clone()).collect()
}

/// Every path of the push handler: a new alert, a duplicate, a change, a
/// recovery, merges into a grouped incident, enrichment from a mapping
/// table, a vendor batch, the rate limit, and silence and inhibit marks that
/// are set and then lift (the lift's transaction deletes an item).
async fn drive_every_push_path(app: &App) {
    let s = standard_setup(app).await;
    let key = s.integration_key.as_str();
    assert_eq!(
        outcome(&push_ok(app, key, &fire("a", json!({}))).await),
        "new_incident"
    );
    let first = fire("b", json!({"host": "h1"}));
    push_ok(app, key, &first).await;
    push_ok(app, key, &first).await;
    let mut changed = fire("b", json!({"host": "h1"}));
    changed["description"] = json!("worse");
    push_ok(app, key, &changed).await;
    assert_eq!(outcome(&push_ok(app, key, &ok("b")).await), "recovered");
    push_ok(app, key, &ok("never-seen")).await;

    // Grouping: the second alert merges into the first one's incident.
    let grouped = channel_with_integration(
        app,
        "standard",
        json!({"name": "grouped", "grouping": {"method": "rules", "equals": [["labels.service"]]}}),
    )
    .await;
    for k in ["g1", "g2", "g3"] {
        push_ok(
            app,
            &grouped.integration_key,
            &fire(k, json!({"service": "api"})),
        )
        .await;
    }

    // Enrichment from a mapping table.
    let table = api_ok(
        app,
        "POST",
        "/api/mapping-tables",
        Some(json!(
        {"name": "cmdb", "source_labels": ["host"], "result_labels": ["owner"]})),
    )
    .await;
    let table_id = table["table_id"].as_str().expect("table_id");
    let mut rows =
        shared::intake::http::Inbound::new("PUT", &format!("/api/mapping-tables/{table_id}/rows"))
            .header("authorization", &format!("Bearer {APP_KEY}"))
            .header("content-type", "text/csv");
    rows.body = b"host,owner\nh1,alice\n".to_vec();
    assert_eq!(call_api(app, rows).await.status, 200);
    let integrations = api_ok(app, "GET", "/api/integrations", None).await;
    let integration_id = integrations["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|i| {
                i["integration_key"] == json!(key) || i["channel_id"] == json!(s.channel_id)
            })
        })
        .and_then(|i| i["integration_id"].as_str())
        .expect("the standard integration")
        .to_string();
    api_ok(
        app,
        "PUT",
        &format!("/api/integrations/{integration_id}/enrichment"),
        Some(json!({"rules": [{"kind": "map", "table_id": table_id}]})),
    )
    .await;
    push_ok(app, key, &fire("c", json!({"host": "h1"}))).await;

    // A vendor batch (Alertmanager webhook), several alerts in one push.
    let prom = channel_with_integration(app, "prometheus", json!({"name": "prom"})).await;
    let body = json!({"version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
        "alerts": (0..5).map(|i| json!({"status": "firing", "labels": {"alertname": "Up", "instance": format!("i{i}")},
            "annotations": {}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": format!("f{i}")})).collect::<Vec<_>>()});
    let out = push_raw(
        app,
        IntegrationKind::Prometheus,
        &prom.integration_key,
        "application/json",
        &body.to_string(),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);

    // The rate limit refuses (and so reads and writes its counter).
    let limited = api_ok(
        app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "limited", "kind": "standard",
        "channel_id": s.channel_id, "rate_limit": {"per_second": 1, "per_minute": 1}})),
    )
    .await;
    let limited_key = limited["integration_key"].as_str().expect("key");
    push(app, limited_key, &fire("r1", json!({}))).await;
    let refused = push(app, limited_key, &fire("r2", json!({}))).await;
    assert_eq!(refused.status, 429, "{}", refused.body);

    // A silence marks, then lifts when its window ends.
    let now = shared::store::now_ms() / 1000;
    let rule = api_ok(
        app,
        "POST",
        &format!("/api/channels/{}/silence-rules", s.channel_id),
        Some(json!({
        "name": "maintenance", "if": [[{"key": "labels.host", "oper": "IN", "vals": ["db-*"]}]],
        "time": {"start": now - 60, "end": now + 3600}})),
    )
    .await;
    let rule_id = rule["rule_id"].as_str().expect("rule_id");
    assert_eq!(
        outcome(&push_ok(app, key, &fire("s", json!({"host": "db-1"}))).await),
        "silenced"
    );
    assert_eq!(
        outcome(&push_ok(app, key, &fire("s", json!({"host": "db-1"}))).await),
        "silenced"
    );
    api_ok(
        app,
        "PATCH",
        &format!("/api/channels/{}/silence-rules/{rule_id}", s.channel_id),
        Some(json!({"time": {"start": now - 60, "end": now - 1}})),
    )
    .await;
    assert_eq!(
        outcome(&push_ok(app, key, &fire("s", json!({"host": "db-1"}))).await),
        "new_incident",
        "the mark lifts"
    );

    // An inhibit mark, lifted once its source recovers.
    let inhibited = standard_setup(app).await;
    api_ok(
        app,
        "POST",
        &format!("/api/channels/{}/inhibit-rules", inhibited.channel_id),
        Some(json!({
        "name": "host down mutes the rest", "action": "mark",
        "source_if": [[{"key": "labels.check", "oper": "IN", "vals": ["host_down"]}]],
        "target_if": [[{"key": "labels.check", "oper": "NOTIN", "vals": ["host_down"]}]],
        "equals": ["labels.host"]})),
    )
    .await;
    let ikey = inhibited.integration_key.as_str();
    push_ok(
        app,
        ikey,
        &fire("down", json!({"check": "host_down", "host": "a"})),
    )
    .await;
    assert_eq!(
        outcome(
            &push_ok(
                app,
                ikey,
                &fire("cpu", json!({"check": "cpu", "host": "a"}))
            )
            .await
        ),
        "inhibited"
    );
    push_ok(app, ikey, &ok("down")).await;
    assert_eq!(
        outcome(
            &push_ok(
                app,
                ikey,
                &fire("cpu", json!({"check": "cpu", "host": "a"}))
            )
            .await
        ),
        "new_incident",
        "the mark lifts"
    );
}

#[tokio::test]
async fn push_functions_are_granted_exactly_what_the_push_code_sends() {
    let app = test_app().await;
    drive_every_push_path(&app).await;
    let refused: Vec<String> = iam::denied()
        .into_iter()
        .filter(|d| d.starts_with("Push"))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");

    let sent = iam::sent(Function::Push);
    let sent_actions = actions(&sent);
    let sent_indexes: BTreeSet<String> = sent.iter().filter_map(|n| n.index.clone()).collect();
    assert!(
        sent_actions.contains("dynamodb:DeleteItem"),
        "the lift path was not driven: {sent_actions:?}"
    );
    for (id, (binary, grant)) in iam::grants() {
        if !Function::Push.owns(&binary) {
            continue;
        }
        let missing: Vec<_> = sent_actions.difference(&grant.actions).collect();
        let unused: Vec<_> = grant.actions.difference(&sent_actions).collect();
        let unused_indexes: Vec<_> = grant.indexes.difference(&sent_indexes).collect();
        assert!(
            missing.is_empty(),
            "{TEMPLATE}: {id} lacks {missing:?}, which the push code sends"
        );
        assert!(
            unused.is_empty() && unused_indexes.is_empty(),
            "{TEMPLATE}: {id} is granted {unused:?} (indexes {unused_indexes:?}), which the push code never sends"
        );
    }
}

#[tokio::test]
async fn the_recorder_breaks_transactions_into_their_parts() {
    let body = json!({"TransactItems": [
        {"Put": {}}, {"Update": {}}, {"Delete": {}}, {"ConditionCheck": {}}]});
    let got: Vec<String> = iam::needs("TransactWriteItems", &body)
        .into_iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem"
        ]
    );
    let query = iam::needs("Query", &json!({"IndexName": "gsi3"}));
    assert_eq!(query[0].to_string(), "dynamodb:Query on index gsi3");
}

/// A request the policy does not grant is refused, as in AWS, and the
/// handler's answer shows it: the emulation cannot pass vacuously.
#[tokio::test]
async fn a_request_outside_the_policy_is_refused() {
    let app = test_app().await;
    let notify = iam::as_function(&app, Function::Notify);
    let scan = notify
        .store
        .client()
        .scan()
        .table_name(notify.store.table())
        .send()
        .await;
    assert!(scan.is_err(), "the notify function may not Scan");
    assert!(iam::denied().contains(&"Notify: dynamodb:Scan (in Scan)".to_string()));
}
