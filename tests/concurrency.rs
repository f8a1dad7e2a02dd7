//! SPEC section 5 "Concurrency", against DynamoDB Local through the real push
//! handler: 1,000 events over 20 keys in 5 merge groups, every one delivered
//! twice, at a concurrency of 64 spread over four app instances (as four Lambda
//! instances would be), with the first events of every key fired at the same
//! instant and recoveries racing triggers. Then: the invariants hold, every
//! counter matches a recount, and the order-independent state equals the same
//! events applied one by one.

use std::collections::BTreeMap;
use std::sync::Arc;

use integration_tests::invariants::{check, Projection};
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use tokio::sync::{Barrier, Semaphore};

const KEYS: usize = 20;
const GROUPS: usize = 5;
const EVENTS_PER_KEY: usize = 50;
const CONCURRENCY: usize = 64;
const INSTANCES: usize = 4;

/// The two heavy runs take turns: together they would double the load on
/// DynamoDB Local and test its speed on two cores, not the invariants.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Event {
    key: usize,
    time_ms: i64,
    body: Value,
}

/// Per key, a timeline of distinct event times mixing duplicates, label-only
/// changes, status changes and recoveries.
fn workload(seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for key in 0..KEYS {
        let mut status = "Warning";
        let mut title = "disk";
        let mut note = 0;
        for j in 0..EVENTS_PER_KEY {
            if j > 0 {
                match rng.below(100) {
                    0..=29 => {}
                    30..=44 => note = rng.below(3),
                    45..=62 => status = "Ok",
                    _ => {
                        status = ["Warning", "Critical", "Info"][rng.below(3) as usize];
                        title = ["disk", "cpu", "memory"][rng.below(3) as usize];
                    }
                }
            }
            let time_ms = 1_763_000_000_000 + (j as i64) * 1000 + key as i64;
            let body = json!({
                "title_rule": format!("[TPL]{title} on ${{host}}"),
                "event_status": status,
                "alert_key": format!("key-{key}"),
                "labels": {"host": format!("h{key}"), "group": format!("g{}", key % GROUPS), "note": note.to_string()},
                "event_time": time_ms,
            });
            out.push(Event { key, time_ms, body });
        }
    }
    out
}

async fn grouped_setup(app: &App) -> Setup {
    channel_with_integration(
        app,
        "standard",
        json!({"name": "grouped", "grouping": {"method": "rules", "equals": [["labels.group"]], "window_minutes": 0}}),
    )
    .await
}

/// Fire every event twice over four instances, at a concurrency of 64: the
/// first event of every key (both copies) at once, the rest shuffled within
/// windows. Answers how many pushes got each outcome.
async fn fire_concurrently(
    app: &App,
    integration_key: &str,
    events: &[Event],
) -> BTreeMap<String, i64> {
    let mut instances = vec![Arc::new(app.clone())];
    for n in 1..INSTANCES {
        let mut instance = another_instance(app).await;
        // Stale looks at heads: one instance sees none, one sees each key's
        // head as it first saw it (older versions once others write); their
        // guesses must be caught by the conditional writes.
        instance.store.stale_looks = match n {
            1 => shared::store::StaleLooks::Nothing,
            3 => shared::store::StaleLooks::Frozen,
            _ => shared::store::StaleLooks::Off,
        };
        instances.push(Arc::new(instance));
    }
    let key = Arc::new(integration_key.to_string());

    // Every delivery twice; the first event of every key, both copies, fired together.
    let mut first_wave = Vec::new();
    let mut rest = Vec::new();
    for (i, e) in events.iter().enumerate() {
        for copy in 0..2 {
            if e.time_ms - (e.key as i64) == 1_763_000_000_000 {
                first_wave.push((i, copy));
            } else {
                rest.push((i, copy));
            }
        }
    }
    // Roughly in time order, as a monitoring system sends, but shuffled within
    // windows of 120 deliveries (3 events per key): the copies of an event, a
    // key's trigger and its recovery, and neighbouring keys all race.
    rest.sort_by_key(|&(i, copy)| (events[i].time_ms, copy));
    let mut rng = Rng(42);
    for window in rest.chunks_mut(120) {
        for i in (1..window.len()).rev() {
            window.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }

    let events = Arc::new(events.to_vec());
    let outcomes = Arc::new(std::sync::Mutex::new(BTreeMap::<String, i64>::new()));
    let barrier = Arc::new(Barrier::new(first_wave.len()));
    let mut tasks = Vec::new();
    for (n, (i, _)) in first_wave.iter().copied().enumerate() {
        let (app, key, events, outcomes, barrier) = (
            instances[n % INSTANCES].clone(),
            key.clone(),
            events.clone(),
            outcomes.clone(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let out = push(&app, &key, &events[i].body).await;
            assert_eq!(out.status, 200, "{}", out.body);
            let outcome = out.json()["data"]["outcome"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            *outcomes.lock().unwrap().entry(outcome).or_default() += 1;
        }));
    }
    for t in tasks.drain(..) {
        t.await.expect("task");
    }
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    for (n, (i, _)) in rest.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (app, key, events, outcomes) = (
            instances[n % INSTANCES].clone(),
            key.clone(),
            events.clone(),
            outcomes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let out = push(&app, &key, &events[i].body).await;
            drop(permit);
            assert_eq!(out.status, 200, "{}", out.body);
            let outcome = out.json()["data"]["outcome"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            *outcomes.lock().unwrap().entry(outcome).or_default() += 1;
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let outcomes = outcomes.lock().unwrap().clone();
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicated_stream_matches_one_by_one() {
    let _turn = HEAVY.lock().await;
    let events = workload(0x9e37_79b9_7f4a_7c15);
    assert!(events.len() >= 1000);

    // --- concurrent run ---
    let app = test_app().await;
    let setup = grouped_setup(&app).await;
    let outcomes = fire_concurrently(&app, &setup.integration_key, &events).await;
    let (concurrent, totals) = check(&app).await;

    // Every applied event is counted exactly once; retries and stale events not at all.
    let counted: i64 = [
        "new_incident",
        "merged",
        "updated",
        "refreshed",
        "deduplicated",
        "recovered",
    ]
    .iter()
    .map(|o| outcomes.get(*o).copied().unwrap_or(0))
    .sum();
    assert_eq!(totals.event_count, counted, "outcomes {outcomes:?}");
    let opened = outcomes.get("new_incident").copied().unwrap_or(0);
    let merged = outcomes.get("merged").copied().unwrap_or(0);
    assert_eq!(
        totals.incidents, opened,
        "one incident per new_incident answer"
    );
    assert_eq!(totals.incident_alert_count, opened + merged);
    assert_eq!(totals.alerts, opened + merged);
    assert!(
        outcomes.get("already_applied").copied().unwrap_or(0) > 0,
        "retries were recognised: {outcomes:?}"
    );
    assert_eq!(outcomes.values().sum::<i64>(), 2 * events.len() as i64);
    assert!(
        counted * 3 > events.len() as i64,
        "most events should apply, not go stale: {outcomes:?}"
    );

    // At most one open incident per group, holding exactly that group's open keys.
    let expected = expected_projection(&events);
    assert_eq!(concurrent, expected, "concurrent state vs the final events");

    // --- the same events, one by one, on a fresh table ---
    let sequential_app = test_app().await;
    let seq_setup = grouped_setup(&sequential_app).await;
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by_key(|e| (e.time_ms, e.key));
    for e in ordered {
        let out = push(&sequential_app, &seq_setup.integration_key, &e.body).await;
        assert_eq!(out.status, 200, "{}", out.body);
    }
    let (sequential, _) = check(&sequential_app).await;
    assert_eq!(
        concurrent, sequential,
        "concurrent and one-by-one runs disagree"
    );
    eprintln!("outcomes: {outcomes:?}; totals: {totals:?}");
}

/// SPEC 7 "Concurrency": silence marks and inhibitions race the sources
/// opening and closing, and marks lift while other instances repeat the same
/// key. One open alert per key, exact counters, every incident counting its
/// members, and the alerts' own state still what the newest events say.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_with_silence_and_inhibit_rules_racing() {
    let _turn = HEAVY.lock().await;
    let events = workload(0x2545_f491_4f6c_dd1d);
    let app = test_app().await;
    let setup = grouped_setup(&app).await;
    let rules = format!("/api/channels/{}", setup.channel_id);
    let now = shared::store::now_ms() / 1000;
    api_ok(
        &app,
        "POST",
        &format!("{rules}/silence-rules"),
        Some(json!({
        "name": "note 1 is maintenance", "time": {"start": now - 60, "end": now + 86_400},
        "if": [[{"key": "labels.note", "oper": "IN", "vals": ["1"]}]]})),
    )
    .await;
    api_ok(
        &app,
        "POST",
        &format!("{rules}/inhibit-rules"),
        Some(json!({
        "name": "h0 and h1 mute their group",
        "source_if": [[{"key": "labels.host", "oper": "IN", "vals": ["h0", "h1"]}]],
        "target_if": [[{"key": "labels.host", "oper": "NOTIN", "vals": ["h0", "h1"]}]],
        "equals": ["labels.group"]})),
    )
    .await;
    let outcomes = fire_concurrently(&app, &setup.integration_key, &events).await;
    let (state, totals) = check(&app).await;
    let count = |names: &[&str]| -> i64 {
        names
            .iter()
            .map(|o| outcomes.get(*o).copied().unwrap_or(0))
            .sum()
    };
    assert_eq!(
        totals.event_count,
        count(&[
            "new_incident",
            "merged",
            "updated",
            "refreshed",
            "deduplicated",
            "recovered",
            "silenced",
            "inhibited"
        ]),
        "every applied event counted once: {outcomes:?}"
    );
    assert_eq!(totals.incidents, count(&["new_incident"]), "{outcomes:?}");
    assert_eq!(
        totals.incident_alert_count,
        count(&["new_incident", "merged"]),
        "{outcomes:?}"
    );
    assert!(
        count(&["silenced"]) > 0 && count(&["inhibited"]) > 0,
        "the rules took part: {outcomes:?}"
    );
    assert_eq!(
        state.alerts,
        expected_projection(&events).alerts,
        "alerts vs the final events"
    );
    eprintln!("with rules: outcomes {outcomes:?}; totals {totals:?}");
}

/// What the newest event of each key says the state must be.
fn expected_projection(events: &[Event]) -> Projection {
    let mut last: BTreeMap<usize, &Event> = BTreeMap::new();
    for e in events {
        let entry = last.entry(e.key).or_insert(e);
        if e.time_ms > entry.time_ms {
            *entry = e;
        }
    }
    let mut alerts = BTreeMap::new();
    let mut groups: BTreeMap<usize, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (key, e) in last {
        let status = e.body["event_status"].as_str().unwrap().to_string();
        let name = format!("key-{key}");
        if status == "Ok" {
            alerts.insert(name, None);
        } else {
            let labels: BTreeMap<String, String> = e.body["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let title = e.body["title_rule"]
                .as_str()
                .unwrap()
                .replace("[TPL]", "")
                .replace("${host}", &labels["host"]);
            alerts.insert(name.clone(), Some((status, title, labels)));
            groups.entry(key % GROUPS).or_default().insert(name);
        }
    }
    Projection {
        alerts,
        open_incidents: groups.into_values().collect(),
    }
}

/// When other instances keep winning, an event gives up after its attempt
/// budget with `InternalError` and leaves nothing half-written; re-sending
/// what failed converges to the state the newest event asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exhausted_retries_answer_500_and_write_nothing_partial() {
    let app = test_app().await;
    let setup = grouped_setup(&app).await;
    let mut starved = another_instance(&app).await;
    starved.store.max_attempts = 1;
    let starved = Arc::new(starved);
    let key = Arc::new(setup.integration_key.clone());
    // 48 different events for one key at once: opens, status changes, recoveries.
    let bodies: Vec<Value> = (0..48i64)
        .map(|i| {
            let status = ["Warning", "Critical", "Ok", "Info"][(i % 4) as usize];
            json!({"title_rule": format!("t{}", i % 3), "event_status": status, "alert_key": "hot",
                   "labels": {"group": "g0"}, "event_time": 1_763_000_000 + i})
        })
        .collect();
    let barrier = Arc::new(Barrier::new(bodies.len()));
    let mut tasks = Vec::new();
    for body in bodies.clone() {
        let (app, key, barrier) = (starved.clone(), key.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (push(&app, &key, &body).await, body)
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        let (out, body) = t.await.expect("task");
        match out.status {
            200 => {}
            500 => {
                assert_eq!(out.json()["error"]["code"], "InternalError");
                failed.push(body);
            }
            other => panic!("unexpected {other}: {}", out.body),
        }
    }
    eprintln!("{} of 48 gave up after one attempt", failed.len());
    assert!(
        !failed.is_empty(),
        "one attempt under this contention should lose sometimes"
    );
    // Nothing half-written: every counter still matches a recount.
    check(&app).await;
    // The sender re-sends what failed, with the normal budget.
    failed.sort_by_key(|b| b["event_time"].as_i64());
    for body in &failed {
        let out = push(&app, &key, body).await;
        assert_eq!(out.status, 200, "{}", out.body);
    }
    let (state, _) = check(&app).await;
    // The newest event (i = 47, Info) decides: the alert is open with its content.
    let (status, title, _) = state.alerts["hot"].clone().expect("open");
    assert_eq!((status.as_str(), title.as_str()), ("Info", "t2"));
}

/// A listing of several statuses reads one index partition per status; an
/// incident that moves between them in the meantime is listed by both. The
/// list must still answer (BatchGetItem refuses a repeated key) and show the
/// incident once. One task flips an incident between Closed and Triggered
/// while another lists both statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_two_statuses_while_an_incident_flips_between_them() {
    let app = test_app().await;
    let s = standard_setup(&app).await;
    let opened = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "flip", "event_status": "Critical", "alert_key": "flip"}),
    )
    .await;
    let incident = opened["incident_id"]
        .as_str()
        .expect("incident")
        .to_string();
    let flipper = {
        let (app, incident) = (app.clone(), incident.clone());
        tokio::spawn(async move {
            for _ in 0..60 {
                api_ok(
                    &app,
                    "POST",
                    &format!("/api/incidents/{incident}/resolve"),
                    None,
                )
                .await;
                api_ok(
                    &app,
                    "POST",
                    &format!("/api/incidents/{incident}/reopen"),
                    Some(json!({"reason": "flip"})),
                )
                .await;
            }
        })
    };
    let path = format!(
        "/api/incidents?channel_id={}&status=Triggered,Closed",
        s.channel_id
    );
    while !flipper.is_finished() {
        let listed = api_ok(&app, "GET", &path, None).await;
        let ids: Vec<&str> = listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["incident_id"].as_str())
            .collect();
        assert!(ids.len() <= 1, "listed more than once: {ids:?}");
    }
    flipper.await.expect("flipper");
}
