//! SPEC 14, the escalation chain against DynamoDB Local: a chain opens with
//! its incident, the tick pages each level once (also when two instances
//! run the same tick), ack stops it, unack resumes it, close stops it,
//! reopen restarts it, and a blip inside the delay pages nobody. Time is
//! simulated: the tick takes `now`.

use std::collections::BTreeSet;

use integration_tests::iam::{self, Function};
use integration_tests::template::TEMPLATE;
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::outbound::escalate::{Escalator, TickReport};

const MINUTE: i64 = 60_000;

fn escalator() -> Escalator {
    Escalator {
        mailer: None,
        public_base_url: "http://console.test".into(),
    }
}

async fn tick(app: &App, now_ms: i64) -> TickReport {
    let app = iam::as_function(app, Function::Escalate);
    escalator().tick(&app, now_ms).await.expect("tick")
}

fn now_ms() -> i64 {
    shared::store::now_ms()
}

/// A member, by name; answers its id.
async fn member(app: &App, name: &str) -> String {
    let made = api_ok(
        app,
        "POST",
        "/api/members",
        Some(json!({"name": name, "email": format!("{}@example.com", name.to_lowercase())})),
    )
    .await;
    made["member_id"].as_str().expect("member_id").to_string()
}

/// Two levels: a member at once, another one minute later (IM only: these
/// tests are about the chain; email has its own in tests/oncall_api.rs).
fn two_levels(first: &str, second: &str, extra: Value) -> Value {
    let mut rule = json!({
        "name": "default",
        "levels": [
            {"targets": {"member_ids": [first]}, "notify": ["im"], "escalate_after_minutes": 1},
            {"targets": {"member_ids": [second]}, "notify": ["im"], "escalate_after_minutes": 10}
        ]
    });
    if let (Some(r), Some(e)) = (rule.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    json!({ "rules": [rule] })
}

/// A channel whose rule pages Alice, then Bob; `extra` adds to the rule.
async fn channel_with_escalation(app: &App, extra: Value) -> Setup {
    let (alice, bob) = (member(app, "Alice").await, member(app, "Bob").await);
    channel_with_rules(app, two_levels(&alice, &bob, extra)).await
}

async fn channel_with_rules(app: &App, rules: Value) -> Setup {
    let s = standard_setup(app).await;
    api_ok(
        app,
        "PUT",
        &format!("/api/channels/{}/escalation", s.channel_id),
        Some(rules),
    )
    .await;
    s
}

async fn open_incident(app: &App, s: &Setup, key: &str) -> String {
    let data = push_ok(
        app,
        &s.integration_key,
        &json!({"title_rule": format!("{key} down"), "event_status": "Critical", "alert_key": key}),
    )
    .await;
    data["incident_id"]
        .as_str()
        .expect("incident_id")
        .to_string()
}

/// The timeline's paging entries: (type, level).
async fn pages(app: &App, incident_id: &str) -> Vec<(String, i64)> {
    let data = api_ok(
        app,
        "GET",
        &format!("/api/incidents/{incident_id}/timeline?limit=100"),
        None,
    )
    .await;
    data["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| matches!(e["type"].as_str(), Some("i_assign" | "i_escalate")))
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["detail"]["level"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

async fn notifications(app: &App, incident_id: &str) -> Vec<Value> {
    let data = api_ok(
        app,
        "GET",
        &format!("/api/incidents/{incident_id}/notifications"),
        None,
    )
    .await;
    data["items"].as_array().expect("items").clone()
}

fn assign(level: i64) -> (String, i64) {
    ("i_assign".into(), level)
}

fn escalate(level: i64) -> (String, i64) {
    ("i_escalate".into(), level)
}

#[tokio::test]
async fn a_two_level_chain_pages_level_one_at_once_and_level_two_a_minute_later() {
    let app = test_app().await;
    let (alice, bob) = (member(&app, "Alice").await, member(&app, "Bob").await);
    let s = channel_with_rules(&app, two_levels(&alice, &bob, json!({}))).await;
    let id = open_incident(&app, &s, "db-1").await;
    let t0 = now_ms();

    let first = tick(&app, t0).await;
    assert_eq!((first.chains, first.pages), (1, 1));
    assert_eq!(pages(&app, &id).await, vec![assign(1)]);
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await;
    assert_eq!(incident["responders"][0]["member_id"], alice.as_str());
    assert_eq!(incident["responders"][0]["level"], 1);

    // Not yet due: nothing happens, nothing is read beyond the due index.
    let early = tick(&app, t0 + 30_000).await;
    assert_eq!((early.chains, early.pages), (0, 0));

    tick(&app, t0 + MINUTE + 1_000).await;
    assert_eq!(pages(&app, &id).await, vec![assign(1), escalate(2)]);
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await;
    assert_eq!(incident["responders"][0]["member_id"], bob.as_str());

    // Each level's member was notified once; without an IM webhook the
    // notification says why it failed.
    let notes = notifications(&app, &id).await;
    let who: Vec<(&str, i64)> = notes
        .iter()
        .map(|n| {
            (
                n["member_id"].as_str().unwrap_or_default(),
                n["level"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(who, vec![(alice.as_str(), 1), (bob.as_str(), 2)]);
    assert!(notes.iter().all(|n| n["status"] == "failed"));

    // After the last level (no repeat) the chain is exhausted: no more pages.
    tick(&app, t0 + 30 * MINUTE).await;
    tick(&app, t0 + 60 * MINUTE).await;
    assert_eq!(pages(&app, &id).await, vec![assign(1), escalate(2)]);
}

#[tokio::test]
async fn ack_stops_the_chain_unack_resumes_it_with_a_fresh_timer_and_reopen_restarts_it() {
    let app = test_app().await;
    let s = channel_with_escalation(&app, json!({})).await;
    let id = open_incident(&app, &s, "db-2").await;
    let t0 = now_ms();
    tick(&app, t0).await;

    api_ok(&app, "POST", &format!("/api/incidents/{id}/ack"), None).await;
    tick(&app, t0 + 5 * MINUTE).await;
    assert_eq!(pages(&app, &id).await, vec![assign(1)], "ack stops it");

    // Unack: level 1's full wait from now, then level 2.
    api_ok(&app, "POST", &format!("/api/incidents/{id}/unack"), None).await;
    let unacked = now_ms();
    tick(&app, unacked + 30_000).await;
    assert_eq!(pages(&app, &id).await, vec![assign(1)], "a fresh timer");
    tick(&app, unacked + MINUTE + 1_000).await;
    assert_eq!(pages(&app, &id).await, vec![assign(1), escalate(2)]);

    // Close stops it; reopen starts it again at level 1.
    api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    tick(&app, unacked + 20 * MINUTE).await;
    assert_eq!(pages(&app, &id).await, vec![assign(1), escalate(2)]);
    api_ok(&app, "POST", &format!("/api/incidents/{id}/reopen"), None).await;
    // (Simulated time runs ahead of the clock: the timeline sorts by it.)
    tick(&app, unacked + 21 * MINUTE).await;
    assert_eq!(
        pages(&app, &id).await,
        vec![assign(1), escalate(2), assign(1)]
    );
}

#[tokio::test]
async fn an_incident_that_closes_within_its_delay_pages_nobody() {
    let app = test_app().await;
    let s = channel_with_escalation(&app, json!({"delay_minutes": 5})).await;
    let id = open_incident(&app, &s, "blip").await;
    let t0 = now_ms();
    tick(&app, t0).await;
    tick(&app, t0 + 2 * MINUTE).await;
    // It recovers (the channel closes incidents whose alerts all recovered).
    push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "blip", "event_status": "Ok", "alert_key": "blip"}),
    )
    .await;
    let closed = api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await;
    assert_eq!(closed["status"], "Closed");
    tick(&app, t0 + 6 * MINUTE).await;
    tick(&app, t0 + 20 * MINUTE).await;
    assert!(pages(&app, &id).await.is_empty());
    assert!(notifications(&app, &id).await.is_empty());
}

#[tokio::test]
async fn no_matching_rule_means_no_chain_and_a_flapping_incident_pages_nobody() {
    let app = test_app().await;
    let s = channel_with_escalation(
        &app,
        json!({"if": [[{"key": "severity", "oper": "IN", "vals": ["Info"]}]]}),
    )
    .await;
    let id = open_incident(&app, &s, "critical-only").await;
    let report = tick(&app, now_ms() + MINUTE).await;
    assert_eq!(report.chains, 0, "no rule matched: no chain is due");
    assert!(pages(&app, &id).await.is_empty());
}

/// SPEC 14/16: two instances run the same ticks over many incidents at
/// once; every level is paged exactly once and notified once per member.
#[tokio::test]
async fn two_racing_ticks_page_each_level_once() {
    let app = test_app().await;
    let other = another_instance(&app).await;
    let s = channel_with_escalation(&app, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(open_incident(&app, &s, &format!("race-{i}")).await);
    }
    let t0 = now_ms();
    for at in [t0, t0 + MINUTE + 1_000, t0 + 2 * MINUTE] {
        let (a, b) = tokio::join!(tick(&app, at), tick(&other, at));
        assert!(a.pages + b.pages <= ids.len());
    }
    for id in &ids {
        assert_eq!(pages(&app, id).await, vec![assign(1), escalate(2)], "{id}");
        assert_eq!(notifications(&app, id).await.len(), 2, "{id}");
    }
}

#[tokio::test]
async fn escalation_rules_are_validated_and_refusals_write_nothing() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let alice = member(&app, "Alice").await;
    let path = format!("/api/channels/{}/escalation", s.channel_id);
    let refused = |body: Value| {
        let (app, path) = (&app, &path);
        async move {
            let out = api(app, "PUT", path, Some(body)).await;
            assert_eq!(out.status, 400, "{}", out.body);
            out.body
        }
    };
    let bad = json!({"rules": [{"name": "x", "levels": [
        {"targets": {"member_ids": [alice]}, "escalate_after_minutes": 0}]}]});
    assert!(refused(bad)
        .await
        .contains("rules[0].levels[0].escalate_after_minutes: must be 1 to 720"));
    let unknown = json!({"rules": [{"name": "x", "levels": [
        {"targets": {"member_ids": [alice, "nosuchmember"]}, "escalate_after_minutes": 5},
        {"targets": {"schedule_ids": ["nosuchschedule"]}, "escalate_after_minutes": 5}]}]});
    assert!(refused(unknown)
        .await
        .contains("rules[0].levels[0].targets.member_ids[1]: no such member"));
    let no_schedule = json!({"rules": [{"name": "x", "levels": [
        {"targets": {"schedule_ids": ["nosuchschedule"]}, "escalate_after_minutes": 5}]}]});
    assert!(refused(no_schedule)
        .await
        .contains("rules[0].levels[0].targets.schedule_ids[0]: no such schedule"));
    let read = api_ok(&app, "GET", &path, None).await;
    assert_eq!(read, json!({"rules": []}), "refusals write nothing");
    let missing = api(
        &app,
        "PUT",
        "/api/channels/nochannel/escalation",
        Some(two_levels(&alice, &alice, json!({}))),
    )
    .await;
    assert_eq!(missing.status, 404);

    // A member the rules name cannot be deleted; the refusal says where.
    api_ok(
        &app,
        "PUT",
        &path,
        Some(two_levels(&alice, &alice, json!({}))),
    )
    .await;
    let out = api(&app, "DELETE", &format!("/api/members/{alice}"), None).await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(
        out.body.contains(&format!(
            "channels/{}/escalation.rules[0].levels[0].targets.member_ids[0]",
            s.channel_id
        )),
        "{}",
        out.body
    );
    api_ok(&app, "PUT", &path, Some(json!({"rules": []}))).await;
    api_ok(&app, "DELETE", &format!("/api/members/{alice}"), None).await;
}

/// SPEC 16: the escalate function's policy grants exactly what a tick sends.
#[tokio::test]
async fn the_escalate_function_is_granted_exactly_what_a_tick_sends() {
    let app = test_app().await;
    let s = channel_with_escalation(&app, json!({})).await;
    let id = open_incident(&app, &s, "perm").await;
    let t0 = now_ms();
    tick(&app, t0).await;
    tick(&app, t0 + MINUTE + 1_000).await;
    assert_eq!(pages(&app, &id).await.len(), 2);
    let refused: Vec<String> = iam::denied()
        .into_iter()
        .filter(|d| d.starts_with("Escalate"))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    let sent: BTreeSet<String> = iam::sent(Function::Escalate)
        .iter()
        .map(|n| n.action.clone())
        .collect();
    for (id, (binary, grant)) in iam::grants() {
        if !Function::Escalate.owns(&binary) {
            continue;
        }
        let missing: Vec<_> = sent.difference(&grant.actions).collect();
        assert!(missing.is_empty(), "{TEMPLATE}: {id} lacks {missing:?}");
    }
}

/// SPEC 16: the notifications history is paged (at most 100, with a
/// cursor), whatever the size: a level of 20 members by email and IM,
/// repeated twice, is 120 notifications.
#[tokio::test]
async fn the_notifications_history_is_paged() {
    let app = test_app().await;
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(member(&app, &format!("M{i:02}")).await);
    }
    let s = channel_with_rules(
        &app,
        json!({"rules": [{"name": "all hands", "repeat": 2, "levels": [
            {"targets": {"member_ids": members}, "notify": ["email", "im"],
             "escalate_after_minutes": 1}]}]}),
    )
    .await;
    let id = open_incident(&app, &s, "big").await;
    let t0 = now_ms();
    for round in 0..3 {
        let report = tick(&app, t0 + round * (MINUTE + 1_000)).await;
        assert_eq!(report.pages, 1, "round {round}");
    }
    let path = format!("/api/incidents/{id}/notifications");
    let first = api_ok(&app, "GET", &path, None).await;
    let items = first["items"].as_array().expect("items");
    assert_eq!(items.len(), 100);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = api_ok(&app, "GET", &format!("{path}?cursor={cursor}"), None).await;
    let rest = second["items"].as_array().expect("items");
    assert_eq!(rest.len(), 20);
    assert!(second["next_cursor"].is_null());
    // Oldest first, nothing twice: each round's 40, in order.
    let rounds: Vec<i64> = items
        .iter()
        .chain(rest)
        .map(|n| n["at"].as_i64().unwrap_or_default())
        .collect();
    assert!(rounds.windows(2).all(|w| w[0] <= w[1]), "{rounds:?}");
    let small = api_ok(&app, "GET", &format!("{path}?limit=7"), None).await;
    assert_eq!(small["items"].as_array().map(Vec::len), Some(7));
    for bad in ["limit=0", "limit=101", "cursor=bm90LWEtY3Vyc29y"] {
        let out = api(&app, "GET", &format!("{path}?{bad}"), None).await;
        assert_eq!(out.status, 400, "{bad}: {}", out.body);
    }
}

/// A chain whose step keeps failing stays due, and must not hide the chains
/// behind it: 101 broken chains (a full page of the due index and one
/// more) ahead of 3 good ones, and one tick pages the 3.
#[tokio::test]
async fn chains_that_keep_failing_do_not_hide_the_ones_behind_them() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = test_app().await;
    let s = channel_with_escalation(&app, json!({})).await;
    let mut broken = Vec::new();
    for i in 0..101 {
        broken.push(open_incident(&app, &s, &format!("broken-{i}")).await);
    }
    let mut good = Vec::new();
    for i in 0..3 {
        good.push(open_incident(&app, &s, &format!("good-{i}")).await);
    }
    for id in &broken {
        // A chain this version cannot read: its step fails on every tick.
        app.store
            .client()
            .update_item()
            .table_name(app.store.table())
            .key("pk", AttributeValue::S(format!("INC#{id}")))
            .key("sk", AttributeValue::S("INCIDENT".into()))
            .update_expression("SET escalation = :bad")
            .expression_attribute_values(":bad", AttributeValue::S("not a chain".into()))
            .send()
            .await
            .expect("break the chain");
    }
    let report = tick(&app, now_ms()).await;
    assert_eq!(report.pages, 3, "{report:?}");
    for id in &good {
        assert_eq!(pages(&app, id).await, vec![assign(1)], "{id}");
    }
}
