//! SPEC section 7 against DynamoDB Local through the real handlers: every
//! rule kind and condition value form, the stage order, recoveries through
//! every rule, silence marks that lift, quick silence, inhibition, a mapping
//! table of 50,000 rows, and refusals that save nothing.

use std::sync::atomic::{AtomicI64, Ordering};

use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;

/// Event times: increasing, a little in the past (times ahead of the clock are clamped).
static CLOCK: AtomicI64 = AtomicI64::new(0);

fn now_s() -> i64 {
    shared::store::now_ms() / 1000
}

fn tick() -> i64 {
    let _ = CLOCK.compare_exchange(0, now_s() - 3600, Ordering::SeqCst, Ordering::SeqCst);
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

fn fire(key: &str, title: &str, labels: Value) -> Value {
    json!({"title_rule": title, "event_status": "Critical", "alert_key": key,
           "labels": labels, "event_time": tick()})
}

fn ok(key: &str) -> Value {
    json!({"title_rule": "resolved", "event_status": "Ok", "alert_key": key, "event_time": tick()})
}

async fn add_rule(app: &App, channel: &str, kind: &str, body: Value) -> Value {
    api_ok(
        app,
        "POST",
        &format!("/api/channels/{channel}/{kind}-rules"),
        Some(body),
    )
    .await
}

fn outcome(data: &Value) -> &str {
    data["outcome"].as_str().unwrap_or_default()
}

/// Items of the table that are alert heads (one per key ever stored).
async fn heads(app: &App) -> usize {
    scan_all(app)
        .await
        .iter()
        .filter(|i| sk_of(i) == "HEAD")
        .count()
}

#[tokio::test]
async fn drop_rules_take_every_condition_value_form_and_never_a_recovery() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let cases = [
        (
            json!({"key": "labels.ip", "oper": "IN", "vals": ["cidr:10.0.0.0/8"]}),
            json!({"ip": "10.2.3.4"}),
            json!({"ip": "11.2.3.4"}),
        ),
        (
            json!({"key": "labels.ip", "oper": "IN", "vals": ["cidr:fd00::/8"]}),
            json!({"ip": "fd12::1"}),
            json!({"ip": "fe12::1"}),
        ),
        (
            json!({"key": "labels.load", "oper": "IN", "vals": ["num:gt:5"]}),
            json!({"load": "5.5"}),
            json!({"load": "5"}),
        ),
        (
            json!({"key": "labels.load", "oper": "IN", "vals": ["num:le:1"]}),
            json!({"load": " 1 "}),
            json!({"load": "high"}),
        ),
        (
            json!({"key": "labels.canary", "oper": "IN", "vals": ["*"]}),
            json!({"canary": "yes"}),
            json!({}),
        ),
        (
            json!({"key": "labels.owner", "oper": "NOTIN", "vals": ["*"]}),
            json!({}),
            json!({"owner": "x"}),
        ),
        (
            json!({"key": "labels.env", "oper": "IN", "vals": ["dev-*"]}),
            json!({"env": "dev-7"}),
            json!({"env": "prod-7"}),
        ),
        (
            json!({"key": "labels.env", "oper": "IN", "vals": ["/^stag/"]}),
            json!({"env": "staging"}),
            json!({"env": "prestage"}),
        ),
    ];
    for (i, (condition, dropped, kept)) in cases.into_iter().enumerate() {
        let rule = add_rule(
            &app,
            &s.channel_id,
            "drop",
            json!({"name": format!("case {i}"), "if": [[condition]]}),
        )
        .await;
        let before = heads(&app).await;
        let data = push_ok(
            &app,
            &s.integration_key,
            &fire(&format!("d{i}"), "noisy", dropped),
        )
        .await;
        assert_eq!(outcome(&data), "dropped", "case {i}");
        assert!(data["alert_id"].is_null() && data["incident_id"].is_null());
        assert_eq!(
            heads(&app).await,
            before,
            "case {i}: a dropped event stores nothing"
        );
        let data = push_ok(
            &app,
            &s.integration_key,
            &fire(&format!("k{i}"), "kept", kept),
        )
        .await;
        assert_eq!(outcome(&data), "new_incident", "case {i}");
        let id = rule["rule_id"].as_str().unwrap();
        api_ok(
            &app,
            "DELETE",
            &format!("/api/channels/{}/drop-rules/{id}", s.channel_id),
            None,
        )
        .await;
    }
    // Keys and the integration: alert_key and integration_id are fields too.
    let integration = api_ok(&app, "GET", "/api/channels", None).await;
    assert!(integration["items"].as_array().unwrap().len() == 1);
    add_rule(&app, &s.channel_id, "drop", json!({"name": "by key", "if": [[{"key": "alert_key", "oper": "IN", "vals": ["k0", "late-*"]}]]})).await;
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &fire("late-1", "x", json!({}))).await),
        "dropped"
    );
    // k0 is open from before the rule: its recovery is never dropped.
    let data = push_ok(&app, &s.integration_key, &ok("k0")).await;
    assert_eq!(outcome(&data), "recovered");
    let disabled = add_rule(
        &app,
        &s.channel_id,
        "drop",
        json!({"name": "everything, off", "enabled": false}),
    )
    .await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &fire("other", "x", json!({}))).await),
        "new_incident"
    );
    let all = add_rule(&app, &s.channel_id, "drop", json!({"name": "everything"})).await;
    assert_eq!(all["position"], 2, "appended at the end: {all}");
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &fire("other2", "x", json!({}))).await),
        "dropped"
    );
    // Move it first, then list: positions follow.
    let id = all["rule_id"].as_str().unwrap();
    api_ok(
        &app,
        "PATCH",
        &format!("/api/channels/{}/drop-rules/{id}", s.channel_id),
        Some(json!({"position": 0})),
    )
    .await;
    let list = api_ok(
        &app,
        "GET",
        &format!("/api/channels/{}/drop-rules", s.channel_id),
        None,
    )
    .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["everything", "by key", "everything, off"]);
}

#[tokio::test]
async fn a_silence_marks_the_alert_out_of_incidents_and_the_mark_lifts_after_its_window() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let now = now_s();
    let rule = add_rule(
        &app,
        &s.channel_id,
        "silence",
        json!({
            "name": "maintenance", "if": [[{"key": "labels.host", "oper": "IN", "vals": ["db-*"]}]],
            "time": {"start": now - 60, "end": now + 3600}
        }),
    )
    .await;
    assert_eq!(rule["action"], "mark");
    assert_eq!(rule["active"], true);
    let rule_id = rule["rule_id"].as_str().unwrap();
    let body = |t: i64| json!({"title_rule": "disk full", "event_status": "Critical", "alert_key": "db", "labels": {"host": "db-01"}, "event_time": t});
    let first = push_ok(&app, &s.integration_key, &body(tick())).await;
    assert_eq!(outcome(&first), "silenced");
    let alert_id = first["alert_id"].as_str().unwrap().to_string();
    assert!(first["incident_id"].is_null());
    let alert = api_ok(&app, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    assert_eq!(
        (alert["silenced"].clone(), alert["silenced_by"].clone()),
        (json!(true), json!(rule_id))
    );
    assert!(alert["incident_id"].is_null());
    assert!(incidents(&app, "").await.is_empty());
    // Repeats and changes while the silence applies keep it marked.
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &body(tick())).await),
        "silenced"
    );
    let mut changed = body(tick());
    changed["description"] = json!("now worse");
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &changed).await),
        "silenced"
    );
    // Another host is not silenced.
    let web = push_ok(
        &app,
        &s.integration_key,
        &fire("web", "disk full", json!({"host": "web-01"})),
    )
    .await;
    assert_eq!(outcome(&web), "new_incident");
    // The window ends; the outage goes on: the next repeat lifts the mark and pages.
    api_ok(
        &app,
        "PATCH",
        &format!("/api/channels/{}/silence-rules/{rule_id}", s.channel_id),
        Some(json!({"time": {"start": now - 60, "end": now - 1}})),
    )
    .await;
    let listed = api_ok(
        &app,
        "GET",
        &format!("/api/channels/{}/silence-rules", s.channel_id),
        None,
    )
    .await;
    assert_eq!(
        listed["items"][0]["active"], false,
        "an expired one-time rule stays listed, inactive"
    );
    let mut repeat = changed.clone();
    repeat["event_time"] = json!(tick());
    let lifted = push_ok(&app, &s.integration_key, &repeat).await;
    assert_eq!(outcome(&lifted), "new_incident");
    assert_eq!(
        lifted["alert_id"],
        json!(alert_id),
        "the same alert, now in an incident"
    );
    let incident_id = lifted["incident_id"].as_str().unwrap();
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(
        (
            incident["alert_count"].clone(),
            incident["active_alert_count"].clone()
        ),
        (json!(1), json!(1))
    );
    let alert = api_ok(&app, "GET", &format!("/api/alerts/{alert_id}"), None).await;
    assert_eq!(alert["silenced"], false);
    assert_eq!(alert["incident_id"], json!(incident_id));
    assert_eq!(alert["event_count"], 4);
    // It kept its history when its record moved into the incident: the
    // first event (held on the record) and the change (the lifting repeat
    // is a duplicate of it, counted, not stored).
    let history: Vec<&str> = alert["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["description"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(history, ["", "now worse"], "{alert}");
    // It recovers and closes its incident like any alert.
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &ok("db")).await),
        "recovered"
    );
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(incident["status"], "Closed");
}

#[tokio::test]
async fn a_silenced_alert_recovers_and_a_drop_silence_stores_nothing() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let now = now_s();
    add_rule(
        &app,
        &s.channel_id,
        "silence",
        json!({"name": "all day, every day", "time": {"start": now - 60, "end": now + 3600}}),
    )
    .await;
    let marked = push_ok(&app, &s.integration_key, &fire("a", "x", json!({}))).await;
    assert_eq!(outcome(&marked), "silenced");
    let data = push_ok(&app, &s.integration_key, &ok("a")).await;
    assert_eq!(
        outcome(&data),
        "recovered",
        "a silenced alert still recovers"
    );
    let alert = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", marked["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(
        (alert["active"].clone(), alert["silenced"].clone()),
        (json!(false), json!(true))
    );

    // Weekly windows that together cover every minute of every day, in a time zone.
    let channel = api_ok(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"name": "night"})),
    )
    .await;
    let c = channel["channel_id"].as_str().unwrap();
    let integ = api_ok(&app, "POST", "/api/integrations", Some(json!({"name": "n", "kind": "standard", "channel_id": c, "rate_limit": UNLIMITED.clone()}))).await;
    let key = integ["integration_key"].as_str().unwrap();
    let opened = push_ok(&app, key, &fire("before", "x", json!({}))).await;
    assert_eq!(outcome(&opened), "new_incident");
    add_rule(
        &app,
        c,
        "silence",
        json!({"name": "always", "action": "drop", "time": {
        "weekly": [{"days": [1,2,3,4,5,6,7], "start": "00:00", "end": "12:00"},
                   {"days": [1,2,3,4,5,6,7], "start": "12:00", "end": "00:00"}],
        "timezone": "Asia/Shanghai"}}),
    )
    .await;
    let before = heads(&app).await;
    let data = push_ok(&app, key, &fire("during", "x", json!({}))).await;
    assert_eq!(outcome(&data), "silenced");
    assert!(data["alert_id"].is_null());
    assert_eq!(heads(&app).await, before, "drop stores nothing");
    // An instance whose look at the head is stale (sees no alert for
    // "before") would take its events for new alerts, which the silence
    // drops: the answer that writes nothing is confirmed by a strong read,
    // so they update and repeat the open alert as they should.
    let mut stale = another_instance(&app).await;
    stale.store.stale_looks = shared::store::StaleLooks::Nothing;
    let mut changed = fire("before", "x", json!({}));
    changed["description"] = json!("worse");
    assert_eq!(outcome(&push_ok(&stale, key, &changed).await), "updated");
    changed["event_time"] = json!(tick());
    assert_eq!(
        outcome(&push_ok(&stale, key, &changed).await),
        "deduplicated"
    );
    // The alert opened before the rule still recovers.
    assert_eq!(
        outcome(&push_ok(&app, key, &ok("before")).await),
        "recovered"
    );
}

#[tokio::test]
async fn quick_silence_is_replaced_when_repeated_and_gone_once_expired() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let first = push_ok(
        &app,
        &s.integration_key,
        &fire("a", "disk", json!({"host": "h*1", "dc": "x"})),
    )
    .await;
    let incident_id = first["incident_id"].as_str().unwrap();
    let path = format!("/api/incidents/{incident_id}/silence");
    let made = api_ok(&app, "POST", &path, Some(json!({"minutes": 60}))).await;
    let rule_id = made["rule_id"].as_str().unwrap().to_string();
    assert_eq!(made["action"], "mark");
    assert_eq!(made["incident_id"], json!(incident_id));
    let again = api_ok(&app, "POST", &path, Some(json!({"minutes": 5}))).await;
    assert_eq!(again["rule_id"], json!(rule_id));
    let list = api_ok(
        &app,
        "GET",
        &format!("/api/channels/{}/silence-rules", s.channel_id),
        None,
    )
    .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "repeating replaces: {list}");
    let end = items[0]["time"]["end"].as_i64().unwrap();
    assert!(
        (end - now_s() - 300).abs() <= 5,
        "the second call's 5 minutes"
    );
    // Same severity and the very labels: silenced; a wildcard-looking value matches only itself.
    let twin = push_ok(
        &app,
        &s.integration_key,
        &fire("b", "other title", json!({"host": "h*1", "dc": "x"})),
    )
    .await;
    assert_eq!(outcome(&twin), "silenced");
    let near = push_ok(
        &app,
        &s.integration_key,
        &fire("c", "other", json!({"host": "hx1", "dc": "x"})),
    )
    .await;
    assert_eq!(outcome(&near), "new_incident");
    for bad in [
        json!({"minutes": 0}),
        json!({"minutes": 10081}),
        json!({}),
        json!({"minutes": 5, "mins": 1}),
    ] {
        let out = api(&app, "POST", &path, Some(bad)).await;
        assert_eq!(out.status, 400, "{}", out.body);
    }
    // Expired: DynamoDB's TTL deletes late, so reads skip it from the second it ends.
    let channel_id = s.channel_id.clone();
    let rules = app
        .store
        .list_rules(
            &channel_id,
            shared::rules::channel::RuleKind::Silence,
            now_s(),
        )
        .await
        .unwrap();
    app.store
        .put_rule(&channel_id, &rules[0], Some(now_s() - 1))
        .await
        .unwrap();
    let list = api_ok(
        &app,
        "GET",
        &format!("/api/channels/{channel_id}/silence-rules"),
        None,
    )
    .await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    let later = push_ok(
        &app,
        &s.integration_key,
        &fire("d", "x", json!({"host": "h*1", "dc": "x"})),
    )
    .await;
    assert_eq!(outcome(&later), "new_incident");
}

async fn inhibit_setup(app: &App, action: &str, equals: Value) -> Setup {
    let s = standard_setup(app).await;
    add_rule(
        app,
        &s.channel_id,
        "inhibit",
        json!({
            "name": "host down mutes the rest", "action": action,
            "source_if": [[{"key": "labels.check", "oper": "IN", "vals": ["host_down"]}]],
            "target_if": [[{"key": "labels.check", "oper": "NOTIN", "vals": ["host_down"]}]],
            "equals": equals,
        }),
    )
    .await;
    s
}

#[tokio::test]
async fn inhibition_needs_an_open_unacknowledged_source_with_equal_values() {
    let app = test_app().await;
    let s = inhibit_setup(&app, "mark", json!(["labels.host", "labels.zone"])).await;
    let source = push_ok(
        &app,
        &s.integration_key,
        &fire(
            "down-a",
            "host a down",
            json!({"check": "host_down", "host": "a"}),
        ),
    )
    .await;
    assert_eq!(outcome(&source), "new_incident");
    let source_alert = source["alert_id"].as_str().unwrap();
    // Same host, both without a zone (missing equals empty): inhibited.
    let target = push_ok(
        &app,
        &s.integration_key,
        &fire("cpu-a", "cpu", json!({"check": "cpu", "host": "a"})),
    )
    .await;
    assert_eq!(outcome(&target), "inhibited");
    assert!(target["incident_id"].is_null());
    let alert = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", target["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(
        (alert["inhibited"].clone(), alert["inhibited_by"].clone()),
        (json!(true), json!(source_alert))
    );
    // Values differ: not inhibited.
    let other_host = push_ok(
        &app,
        &s.integration_key,
        &fire("cpu-b", "cpu", json!({"check": "cpu", "host": "b"})),
    )
    .await;
    assert_eq!(outcome(&other_host), "new_incident");
    let other_zone = push_ok(
        &app,
        &s.integration_key,
        &fire(
            "disk-a",
            "disk",
            json!({"check": "disk", "host": "a", "zone": "z1"}),
        ),
    )
    .await;
    assert_eq!(outcome(&other_zone), "new_incident");
    // A repeat while the source is active stays inhibited.
    assert_eq!(
        outcome(
            &push_ok(
                &app,
                &s.integration_key,
                &fire("cpu-a", "cpu", json!({"check": "cpu", "host": "a"}))
            )
            .await
        ),
        "inhibited"
    );
    // The inhibited alert still recovers.
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &ok("cpu-a")).await),
        "recovered"
    );
    // Acknowledged sources do not inhibit.
    api_ok(
        &app,
        "POST",
        &format!(
            "/api/incidents/{}/ack",
            source["incident_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let after_ack = push_ok(
        &app,
        &s.integration_key,
        &fire("mem-a", "mem", json!({"check": "mem", "host": "a"})),
    )
    .await;
    assert_eq!(outcome(&after_ack), "new_incident");
}

/// Inhibition is an index, not a scan: with 1,500 open source alerts in the
/// channel (each ~1.2 KB, so an unindexed first page of 1 MB would hold
/// fewer than all of them), the one that agrees with the target is found,
/// with one Query for the one rule plus one BatchGetItem of its incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_finds_its_source_among_1500_open_alerts_with_one_query_per_rule() {
    let app = test_app().await;
    let s = inhibit_setup(&app, "mark", json!(["labels.host"])).await;
    let padding = "x".repeat(1_000);
    let mut hosts: Vec<String> = (0..1_500).map(|i| format!("host-{i:04}")).collect();
    // The one source that matters is neither first nor last.
    hosts.insert(737, "the-host".to_string());
    for chunk in hosts.chunks(50) {
        let mut pushes = tokio::task::JoinSet::new();
        for host in chunk {
            let (app, key) = (app.clone(), s.integration_key.clone());
            let body = json!({"title_rule": "host down", "event_status": "Critical",
                "alert_key": format!("down-{host}"), "description": padding,
                "labels": {"check": "host_down", "host": host}, "event_time": tick()});
            pushes.spawn(async move { outcome(&push_ok(&app, &key, &body).await).to_string() });
        }
        while let Some(result) = pushes.join_next().await {
            assert_eq!(result.expect("push task"), "new_incident");
        }
    }
    let (watched, requests) = recorded_instance(&app).await;
    let target = push_ok(
        &watched,
        &s.integration_key,
        &fire(
            "cpu-the-host",
            "cpu",
            json!({"check": "cpu", "host": "the-host"}),
        ),
    )
    .await;
    assert_eq!(outcome(&target), "inhibited");
    let sent = requests.take();
    let count = |op: &str| sent.iter().filter(|r| r.starts_with(op)).count();
    let inhibit_queries = sent
        .iter()
        .filter(|r| r.starts_with("DynamoDB_20120810.Query") && r.contains("INH#"))
        .count();
    println!(
        "inhibit check: {inhibit_queries} Query, {} BatchGetItem",
        count("DynamoDB_20120810.BatchGetItem")
    );
    assert_eq!(inhibit_queries, 1, "one Query per inhibit rule: {sent:#?}");
    assert_eq!(count("DynamoDB_20120810.BatchGetItem"), 1, "{sent:#?}");
    // No source that disagrees inhibits: another host's target opens an incident.
    let other = push_ok(
        &app,
        &s.integration_key,
        &fire(
            "cpu-nobody",
            "cpu",
            json!({"check": "cpu", "host": "nobody"}),
        ),
    )
    .await;
    assert_eq!(outcome(&other), "new_incident");
}

#[tokio::test]
async fn an_inhibited_alert_pages_once_its_source_recovers_and_drop_stores_nothing() {
    let app = test_app().await;
    let s = inhibit_setup(&app, "mark", json!(["labels.host"])).await;
    push_ok(
        &app,
        &s.integration_key,
        &fire(
            "down",
            "host down",
            json!({"check": "host_down", "host": "a"}),
        ),
    )
    .await;
    let target = fire("cpu", "cpu", json!({"check": "cpu", "host": "a"}));
    let first = push_ok(&app, &s.integration_key, &target).await;
    assert_eq!(outcome(&first), "inhibited");
    assert_eq!(
        outcome(&push_ok(&app, &s.integration_key, &ok("down")).await),
        "recovered"
    );
    let mut repeat = target.clone();
    repeat["event_time"] = json!(tick());
    let lifted = push_ok(&app, &s.integration_key, &repeat).await;
    assert_eq!(
        outcome(&lifted),
        "new_incident",
        "the source is gone: the repeat pages"
    );
    assert_eq!(lifted["alert_id"], first["alert_id"]);
    // An inhibited alert is never a source; an alert never inhibits itself.
    let d = inhibit_setup(&app, "drop", json!(["labels.host"])).await;
    push_ok(
        &app,
        &d.integration_key,
        &fire(
            "down",
            "host down",
            json!({"check": "host_down", "host": "a"}),
        ),
    )
    .await;
    let before = heads(&app).await;
    let data = push_ok(
        &app,
        &d.integration_key,
        &fire("cpu", "cpu", json!({"check": "cpu", "host": "a"})),
    )
    .await;
    assert_eq!(outcome(&data), "inhibited");
    assert!(data["alert_id"].is_null());
    assert_eq!(heads(&app).await, before);
    let again = push_ok(
        &app,
        &d.integration_key,
        &fire(
            "down",
            "host down",
            json!({"check": "host_down", "host": "a"}),
        ),
    )
    .await;
    assert_eq!(outcome(&again), "deduplicated");
}

#[tokio::test]
async fn recoveries_get_through_pipeline_drop_silence_and_inhibit() {
    let app = test_app().await;
    let made = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "c"}))).await;
    let c = made["channel_id"].as_str().unwrap();
    let integ = api_ok(&app, "POST", "/api/integrations", Some(json!({"name": "i", "kind": "standard", "channel_id": c, "rate_limit": UNLIMITED.clone()}))).await;
    let (id, key) = (
        integ["integration_id"].as_str().unwrap(),
        integ["integration_key"].as_str().unwrap(),
    );
    let opened = push_ok(&app, key, &fire("k", "x", json!({"host": "a"}))).await;
    assert_eq!(outcome(&opened), "new_incident");
    let now = now_s();
    api_ok(
        &app,
        "PUT",
        &format!("/api/integrations/{id}/pipeline"),
        Some(json!({"rules": [{"kind": "drop"}]})),
    )
    .await;
    add_rule(&app, c, "drop", json!({"name": "all"})).await;
    add_rule(
        &app,
        c,
        "silence",
        json!({"name": "all", "action": "drop", "time": {"start": now - 10, "end": now + 3600}}),
    )
    .await;
    add_rule(&app, c, "inhibit", json!({"name": "all", "action": "drop", "source_if": [[{"key": "title", "oper": "IN", "vals": ["*"]}]], "target_if": [[{"key": "title", "oper": "IN", "vals": ["*"]}]], "equals": ["labels.host"]})).await;
    assert_eq!(
        outcome(&push_ok(&app, key, &fire("new", "x", json!({"host": "a"}))).await),
        "dropped"
    );
    let data = push_ok(&app, key, &ok("k")).await;
    assert_eq!(outcome(&data), "recovered");
    let incident = api_ok(
        &app,
        "GET",
        &format!("/api/incidents/{}", opened["incident_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(incident["status"], "Closed");
}

async fn put_rows(app: &App, table_id: &str, csv: String) -> shared::intake::http::Outbound {
    let mut req =
        shared::intake::http::Inbound::new("PUT", &format!("/api/mapping-tables/{table_id}/rows"))
            .header("authorization", &format!("Bearer {APP_KEY}"))
            .header("content-type", "text/csv");
    req.body = csv.into_bytes();
    call_api(app, req).await
}

#[tokio::test]
async fn stages_run_in_order_enrichment_pipeline_routing_then_drop() {
    let app = test_app().await;
    let mut ids = Vec::new();
    for name in ["alice's", "others"] {
        let c = api_ok(&app, "POST", "/api/channels", Some(json!({"name": name}))).await;
        ids.push(c["channel_id"].as_str().unwrap().to_string());
    }
    let table = api_ok(
        &app,
        "POST",
        "/api/mapping-tables",
        Some(
            json!({"name": "cmdb", "source_labels": ["host"], "result_labels": ["owner", "tier"]}),
        ),
    )
    .await;
    let table_id = table["table_id"].as_str().unwrap();
    let out = put_rows(
        &app,
        table_id,
        "host,owner,tier\ndb-01,alice,gold\nweb-01,bob,\n".into(),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let integ = api_ok(&app, "POST", "/api/integrations", Some(json!({
        "name": "shared", "kind": "standard", "rate_limit": UNLIMITED.clone(),
        "routes": {"cases": [{"if": [[{"key": "labels.owner", "oper": "IN", "vals": ["alice"]}]], "channel_ids": [ids[0]]}],
                   "default": {"channel_ids": [ids[1]]}}}))).await;
    let (id, key) = (
        integ["integration_id"].as_str().unwrap(),
        integ["integration_key"].as_str().unwrap(),
    );
    let enrichment = api_ok(&app, "PUT", &format!("/api/integrations/{id}/enrichment"), Some(json!({"rules": [
        {"kind": "extract", "source": "title", "pattern": "/on (?P<value>[a-z]+-\\d+)/", "label": "host"},
        {"kind": "map", "table_id": table_id},
        {"kind": "compose", "label": "summary", "template": "[TPL]${owner}/${tier}"},
        {"kind": "drop_labels", "labels": ["secret"]},
        {"kind": "compose", "label": "env", "template": "never", "if": [[{"key": "labels.env", "oper": "IN", "vals": ["*"]}]]},
    ]}))).await;
    assert!(
        enrichment["rules"][0]["rule_id"].is_string(),
        "every rule gets an id"
    );
    api_ok(&app, "PUT", &format!("/api/integrations/{id}/pipeline"), Some(json!({"rules": [
        {"kind": "title_reset", "title": "[TPL]${owner}: ${host}", "if": [[{"key": "labels.owner", "oper": "IN", "vals": ["*"]}]]},
        {"kind": "severity_reset", "severity": "Info", "if": [[{"key": "labels.tier", "oper": "NOTIN", "vals": ["gold"]}]]},
        {"kind": "drop", "if": [[{"key": "title", "oper": "IN", "vals": ["/^ignore/"]}]]},
    ]}))).await;
    // The channel of bob's events drops what the pipeline made Info.
    add_rule(
        &app,
        &ids[1],
        "drop",
        json!({"name": "info", "if": [[{"key": "severity", "oper": "IN", "vals": ["Info"]}]]}),
    )
    .await;

    let data = push_ok(
        &app,
        key,
        &fire(
            "k1",
            "CPU high on db-01",
            json!({"secret": "s", "env": "prod"}),
        ),
    )
    .await;
    assert_eq!(
        (outcome(&data), data["channel_id"].as_str().unwrap()),
        ("new_incident", ids[0].as_str())
    );
    let alert = api_ok(
        &app,
        "GET",
        &format!("/api/alerts/{}", data["alert_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(alert["title"], "alice: db-01");
    assert_eq!(alert["severity"], "Critical");
    assert_eq!(
        alert["labels"],
        json!({"host": "db-01", "owner": "alice", "tier": "gold", "summary": "alice/gold", "env": "prod"})
    );
    // bob's row has no tier: the pipeline makes it Info, routing sends it to the default channel, whose drop rule takes it.
    let data = push_ok(&app, key, &fire("k2", "CPU high on web-01", json!({}))).await;
    assert_eq!(
        (outcome(&data), data["channel_id"].as_str().unwrap()),
        ("dropped", ids[1].as_str())
    );
    // Each pipeline rule sees the one before: no owner, no title reset, so the drop sees the sender's title.
    let data = push_ok(&app, key, &fire("k3", "ignore me on zz-99", json!({}))).await;
    assert_eq!(outcome(&data), "dropped", "pipeline drop");
    assert!(data.get("channel_id").is_none() || data["channel_id"].is_null());
    // Enrichment applies to the Ok: it routes by the enriched owner (and by route memory).
    let data = push_ok(&app, key, &json!({"title_rule": "CPU high on db-01", "event_status": "Ok", "alert_key": "k1", "event_time": tick()})).await;
    assert_eq!(
        (outcome(&data), data["channel_id"].as_str().unwrap()),
        ("recovered", ids[0].as_str())
    );
    let got = api_ok(
        &app,
        "GET",
        &format!("/api/integrations/{id}/pipeline"),
        None,
    )
    .await;
    assert_eq!(got["rules"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_mapping_table_of_50000_rows_uploads_pages_and_costs_one_read_per_lookup() {
    let mut app = test_app().await;
    let table = api_ok(
        &app,
        "POST",
        "/api/mapping-tables",
        Some(json!({"name": "cmdb", "source_labels": ["host", "dc"], "result_labels": ["team"]})),
    )
    .await;
    let table_id = table["table_id"].as_str().unwrap().to_string();
    let mut csv = String::from("host,dc,team\n");
    for i in 0..50_000 {
        csv.push_str(&format!("host-{i:05},dc{},team-{}\n", i % 3, i % 97));
    }
    let started = std::time::Instant::now();
    let out = put_rows(&app, &table_id, csv.clone()).await;
    let upload = started.elapsed();
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.json()["data"]["row_count"], 50_000);
    eprintln!(
        "mapping upload: 50,000 rows ({} KB of CSV) in {:.1} s against DynamoDB Local",
        csv.len() / 1024,
        upload.as_secs_f64()
    );
    // A bad row is refused with its line number; the old rows stay.
    let bad = "host,dc,team\nh1,dc0,t\nh2,,t\n".to_string();
    let out = put_rows(&app, &table_id, bad).await;
    assert_eq!(out.status, 400);
    assert!(out.body.contains("line 3"), "{}", out.body);
    let page = api_ok(
        &app,
        "GET",
        &format!("/api/mapping-tables/{table_id}/rows?limit=100"),
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = api_ok(
        &app,
        "GET",
        &format!("/api/mapping-tables/{table_id}/rows?limit=100&cursor={next}"),
        None,
    )
    .await;
    assert_ne!(page["items"][0], page2["items"][0]);
    assert_eq!(
        api_ok(
            &app,
            "GET",
            &format!("/api/mapping-tables/{table_id}"),
            None
        )
        .await["row_count"],
        50_000
    );

    let s = standard_setup(&app).await;
    let integ_id = api_ok(
        &app,
        "GET",
        &format!("/api/channels/{}", s.channel_id),
        None,
    )
    .await;
    assert!(integ_id["channel_id"].is_string());
    // The integration is the only one: find it through a push's effect instead of a list route.
    let key = s.integration_key.clone();
    let integration_id = app
        .store
        .find_integration_by_key(&key)
        .await
        .unwrap()
        .unwrap()
        .integration_id;
    api_ok(
        &app,
        "PUT",
        &format!("/api/integrations/{integration_id}/enrichment"),
        Some(json!({"rules": [{"kind": "map", "table_id": table_id}]})),
    )
    .await;
    // Cached as in production (CHANNEL_CACHE_SECONDS=10): count reads per push.
    app.channel_cache_ttl = std::time::Duration::from_secs(10);
    // The limiter's requests are left out: its leases serve some pushes
    // without one, which would blur the one read a new row costs.
    let requests = || {
        app.store.meter.requests.load(Ordering::Relaxed)
            - app.store.meter.limiter_requests.load(Ordering::Relaxed)
    };
    let mut costs = Vec::new();
    for (i, host) in ["host-04242", "host-04242", "host-00001"]
        .iter()
        .enumerate()
    {
        let before = requests();
        let data = push_ok(
            &app,
            &key,
            &fire(
                &format!("m{i}"),
                "x",
                json!({"host": host, "dc": if *host == "host-04242" { "dc0" } else { "dc1" }}),
            ),
        )
        .await;
        costs.push(requests() - before);
        let alert = api_ok(
            &app,
            "GET",
            &format!("/api/alerts/{}", data["alert_id"].as_str().unwrap()),
            None,
        )
        .await;
        let team = if *host == "host-04242" {
            format!("team-{}", 4242 % 97)
        } else {
            "team-1".to_string()
        };
        assert_eq!(alert["labels"]["team"], json!(team));
    }
    eprintln!("requests per new-alert push with one map rule, limiter aside: first {} (table + row + integration read), same row again {}, another row {}", costs[0], costs[1], costs[2]);
    assert_eq!(
        costs[1] + 1,
        costs[2],
        "another row costs exactly one read more than a cached one"
    );
    assert!(
        costs[0] > costs[2],
        "the first push also reads the table and the integration's rules"
    );
    api_ok(
        &app,
        "DELETE",
        &format!("/api/mapping-tables/{table_id}"),
        None,
    )
    .await;
    let out = api(
        &app,
        "GET",
        &format!("/api/mapping-tables/{table_id}"),
        None,
    )
    .await;
    assert_eq!(out.status, 404);
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field_and_nothing_is_saved() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let integration_id = app
        .store
        .find_integration_by_key(&s.integration_key)
        .await
        .unwrap()
        .unwrap()
        .integration_id;
    let c = &s.channel_id;
    let now = now_s();
    let cases: Vec<(String, Value, &str)> = vec![
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": "x", "if": [[{"key": "title", "oper": "IN", "vals": ["/(/"]}]]}),
            "if[0][0].vals[0]",
        ),
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": "x", "if": [[{"key": "labels.ip", "oper": "IN", "vals": ["cidr:10.0.0.0/33"]}]]}),
            "if[0][0].vals[0]",
        ),
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": "x", "if": [[{"key": "labels.n", "oper": "IN", "vals": ["num:gt:five"]}]]}),
            "if[0][0].vals[0]",
        ),
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": "x", "if": [[{"key": "host", "oper": "IN", "vals": ["a"]}]]}),
            "if[0][0].key",
        ),
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": ""}),
            "name",
        ),
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": "x", "enabeld": true}),
            "enabeld",
        ),
        (
            format!("/api/channels/{c}/drop-rules"),
            json!({"name": "x", "rule_id": "abc"}),
            "rule_id",
        ),
        (
            format!("/api/channels/{c}/silence-rules"),
            json!({"name": "x", "time": {"weekly": [{"days": [1], "start": "22:00", "end": "06:00"}], "timezone": "Mars/Olympus"}}),
            "time.timezone",
        ),
        (
            format!("/api/channels/{c}/silence-rules"),
            json!({"name": "x", "time": {"start": now, "end": now - 1}}),
            "time.end",
        ),
        (
            format!("/api/channels/{c}/silence-rules"),
            json!({"name": "x", "action": "mute", "time": {"start": now, "end": now + 1}}),
            "action",
        ),
        (
            format!("/api/channels/{c}/silence-rules"),
            json!({"name": "x", "time": {"start": now, "end": now + 1}, "incident_id": "abc"}),
            "incident_id",
        ),
        (
            format!("/api/channels/{c}/inhibit-rules"),
            json!({"name": "x", "source_if": [[{"key": "title", "oper": "IN", "vals": ["a"]}]], "target_if": [[{"key": "title", "oper": "IN", "vals": ["b"]}]], "equals": ["host"]}),
            "equals[0]",
        ),
        (
            format!("/api/channels/{c}/inhibit-rules"),
            json!({"name": "x", "source_if": [[{"key": "title", "oper": "IN", "vals": ["a"]}]], "target_if": [[{"key": "title", "oper": "IN", "vals": ["b"]}]], "equals": []}),
            "equals",
        ),
        (
            format!("/api/channels/{c}/inhibit-rules"),
            json!({"name": "x", "source_if": [], "target_if": [[{"key": "title", "oper": "IN", "vals": ["b"]}]], "equals": ["title"]}),
            "source_if",
        ),
    ];
    for (path, body, field) in cases {
        let out = api(&app, "POST", &path, Some(body.clone())).await;
        assert_eq!(out.status, 400, "{path} {body}: {}", out.body);
        let message = out.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.starts_with(field)
                || message.contains(&format!("`{field}`"))
                || message.contains(field),
            "{body}: {message} should name {field}"
        );
        assert!(
            !message.contains("Mars") && !message.contains("five"),
            "never echoes the value: {message}"
        );
        let list = api_ok(&app, "GET", &path, None).await;
        assert!(
            list["items"].as_array().unwrap().is_empty(),
            "nothing saved for {body}"
        );
    }
    let list_cases: Vec<(&str, Value, &str)> = vec![
        (
            "enrichment",
            json!({"rules": [{"kind": "extract", "source": "title", "label": "x"}]}),
            "rules[0].pattern",
        ),
        (
            "enrichment",
            json!({"rules": [{"kind": "extract", "source": "title", "pattern": "no slashes", "label": "x"}]}),
            "rules[0].pattern",
        ),
        (
            "enrichment",
            json!({"rules": [{"kind": "map", "table_id": "nosuchtable"}]}),
            "rules[0].table_id",
        ),
        (
            "enrichment",
            json!({"rules": [{"kind": "compose", "label": "bad-name", "template": "x"}]}),
            "rules[0].label",
        ),
        (
            "enrichment",
            json!({"rules": [{"kind": "drop_labels", "labels": ["a"], "template": "x"}]}),
            "rules[0].template",
        ),
        (
            "pipeline",
            json!({"rules": [{"kind": "severity_reset", "severity": "Ok"}]}),
            "rules[0].severity",
        ),
        (
            "pipeline",
            json!({"rules": [{"kind": "title_reset"}]}),
            "rules[0].title",
        ),
        (
            "pipeline",
            json!({"rules": [{"kind": "rewrite"}]}),
            "rules[0].kind",
        ),
    ];
    for (list, body, field) in list_cases {
        let path = format!("/api/integrations/{integration_id}/{list}");
        let out = api(&app, "PUT", &path, Some(body.clone())).await;
        assert_eq!(out.status, 400, "{body}: {}", out.body);
        let message = out.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            message.starts_with(field),
            "{body}: {message} should name {field}"
        );
        assert!(api_ok(&app, "GET", &path, None).await["rules"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    // At most 50 of a kind.
    for i in 0..50 {
        add_rule(
            &app,
            c,
            "drop",
            json!({"name": format!("r{i}"), "enabled": false}),
        )
        .await;
    }
    let out = api(
        &app,
        "POST",
        &format!("/api/channels/{c}/drop-rules"),
        Some(json!({"name": "one too many"})),
    )
    .await;
    assert_eq!(out.status, 400, "{}", out.body);
    // Mapping tables and rows.
    for (body, field) in [
        (
            json!({"name": "t", "source_labels": [], "result_labels": ["a"]}),
            "source_labels",
        ),
        (
            json!({"name": "t", "source_labels": ["a", "b", "c", "d"], "result_labels": ["e"]}),
            "source_labels",
        ),
        (
            json!({"name": "t", "source_labels": ["a"], "result_labels": ["a"]}),
            "result_labels[0]",
        ),
    ] {
        let out = api(&app, "POST", "/api/mapping-tables", Some(body)).await;
        assert_eq!(out.status, 400);
        assert!(
            out.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{}",
            out.body
        );
    }
    let t = api_ok(
        &app,
        "POST",
        "/api/mapping-tables",
        Some(json!({"name": "t", "source_labels": ["host"], "result_labels": ["team"]})),
    )
    .await;
    let t = t["table_id"].as_str().unwrap();
    for (csv, line) in [
        ("host,owner\nh,x\n", "line 1"),
        ("host,team\nh,x,y\n", "line 2"),
        ("host,team\nh,x\nh,y\n", "line 3"),
    ] {
        let out = put_rows(&app, t, csv.into()).await;
        assert_eq!(out.status, 400);
        assert!(out.body.contains(line), "{}", out.body);
    }
    assert_eq!(
        api_ok(&app, "GET", &format!("/api/mapping-tables/{t}"), None).await["row_count"],
        0
    );
}

/// SPEC 15: all the patterns of a channel's rules (every kind) compile to at
/// most the channel's regex budget; a rule that would pass it is refused at
/// save (create or PATCH) naming the rule, and nothing is written.
#[tokio::test]
async fn a_channels_rules_stay_within_the_regex_budget() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    // `\w{20}` compiles to about 344 KiB (Unicode word characters); the
    // budget is 4 MiB, so 11 fit in a channel and 12 do not.
    let heavy = |n: usize| json!([{"key": "title", "oper": "IN", "vals": vec!["/\\w{20}/"; n]}]);
    let time = json!({"start": now_s() - 60, "end": now_s() + 3600});
    let rules = |kind: &str| format!("/api/channels/{}/{kind}-rules", s.channel_id);
    let drop = add_rule(
        &app,
        &s.channel_id,
        "drop",
        json!({"name": "d", "if": [heavy(6)]}),
    )
    .await;
    let drop_id = drop["rule_id"].as_str().unwrap();
    let refused = |out: shared::intake::http::Outbound, place: &str| {
        assert_eq!(out.status, 400, "{}", out.body);
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(place), "{message}");
        assert!(message.contains("budget"), "{message}");
    };
    let before = table_dump(&app).await;
    let out = api(
        &app,
        "POST",
        &rules("silence"),
        Some(json!({"name": "s", "if": [heavy(6)], "time": time})),
    )
    .await;
    refused(out, "silence-rules (the new rule): ");
    let out = api(
        &app,
        "PATCH",
        &format!("{}/{drop_id}", rules("drop")),
        Some(json!({"if": [heavy(12)]})),
    )
    .await;
    refused(out, &format!("drop-rules/{drop_id}: "));
    assert_eq!(table_dump(&app).await, before, "nothing written");
    // Within the budget: a rule of another kind, and a PATCH that replaces
    // the rule's own patterns (they are not counted twice).
    add_rule(
        &app,
        &s.channel_id,
        "silence",
        json!({"name": "s", "if": [heavy(5)], "time": time}),
    )
    .await;
    api_ok(
        &app,
        "PATCH",
        &format!("{}/{drop_id}", rules("drop")),
        Some(json!({"if": [heavy(5)]})),
    )
    .await;
    // Exact values cost nothing, however many.
    let exact = json!([{"key": "title", "oper": "IN", "vals": vec!["disk full"; 100]}]);
    add_rule(
        &app,
        &s.channel_id,
        "drop",
        json!({"name": "e", "if": [exact]}),
    )
    .await;
}

/// SPEC 15: the same budget over one integration's routes, enrichment and
/// pipeline together; refused at save naming the list (or `routes`),
/// nothing written.
#[tokio::test]
async fn an_integrations_routes_and_rules_stay_within_the_regex_budget() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let heavy = |n: usize| json!([[{"key": "title", "oper": "IN", "vals": vec!["/\\w{20}/"; n]}]]);
    let refused = |out: shared::intake::http::Outbound, place: &str| {
        assert_eq!(out.status, 400, "{}", out.body);
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(place), "{message}");
        assert!(message.contains("budget"), "{message}");
    };
    // Routes at creation.
    let before = table_dump(&app).await;
    let out = api(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "shared", "kind": "standard",
                    "routes": {"cases": [{"if": heavy(12), "channel_ids": [s.channel_id]}]}})),
    )
    .await;
    refused(out, "routes: ");
    assert_eq!(table_dump(&app).await, before, "nothing written");
    let made = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "shared", "kind": "standard",
                    "routes": {"cases": [{"if": heavy(4), "channel_ids": [s.channel_id]}]}})),
    )
    .await;
    let id = made["integration_id"].as_str().unwrap();
    // Enrichment: 4 more fit (8 with the routes' 4); then the pipeline's 4 do not.
    let extract = json!({"kind": "extract", "source": "title", "pattern": "/(?P<value>\\w{20})/", "label": "word"});
    api_ok(
        &app,
        "PUT",
        &format!("/api/integrations/{id}/enrichment"),
        Some(json!({"rules": vec![extract; 4]})),
    )
    .await;
    let before = table_dump(&app).await;
    let out = api(
        &app,
        "PUT",
        &format!("/api/integrations/{id}/pipeline"),
        Some(json!({"rules": [{"kind": "drop", "if": heavy(4)}]})),
    )
    .await;
    refused(out, "pipeline: ");
    assert_eq!(table_dump(&app).await, before, "nothing written");
    api_ok(
        &app,
        "PUT",
        &format!("/api/integrations/{id}/pipeline"),
        Some(json!({"rules": [{"kind": "drop", "if": heavy(3)}]})),
    )
    .await;
}
