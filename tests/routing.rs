//! Shared integrations and rate limits against DynamoDB Local: route order,
//! fallthrough, default, no route, regex and wildcard values, NOTIN on a
//! missing label, fan-out to two channels, any integration kind, and a burst
//! of 300 concurrent pushes against the per-second limit.

use std::sync::Arc;

use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::intake::integrations::IntegrationKind;
use shared::rules::ratelimit::{RateLimit, MAX_LEASE};

async fn channel(app: &App, name: &str) -> String {
    api_ok(app, "POST", "/api/channels", Some(json!({ "name": name }))).await["channel_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn shared_integration(app: &App, kind: &str, routes: Value, rate_limit: Value) -> String {
    let made = api_ok(
        app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "shared", "kind": kind, "routes": routes, "rate_limit": rate_limit})),
    )
    .await;
    assert!(made["channel_id"].is_null());
    made["integration_key"].as_str().unwrap().to_string()
}

fn event(key: &str, title: &str, labels: Value) -> Value {
    json!({"title_rule": title, "event_status": "Critical", "alert_key": key, "labels": labels, "event_time": 1_763_600_000})
}

/// The channels of the incidents this push opened.
fn channels_of(data: &Value) -> Vec<String> {
    match data.get("results") {
        Some(results) => results
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["channel_id"].as_str().unwrap().to_string())
            .collect(),
        None => vec![data["channel_id"].as_str().unwrap().to_string()],
    }
}

#[tokio::test]
async fn route_cases_in_order_with_fallthrough_default_and_notin() {
    let app = test_app().await;
    let (a, b, c, d, w) = (
        channel(&app, "a").await,
        channel(&app, "b").await,
        channel(&app, "c").await,
        channel(&app, "d").await,
        channel(&app, "web").await,
    );
    let routes = json!({
        "cases": [
            {"if": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]], "channel_ids": [a], "fallthrough": true},
            {"if": [[{"key": "title", "oper": "IN", "vals": ["/disk/"]}]], "channel_ids": [b]},
            {"if": [[{"key": "labels.host", "oper": "IN", "vals": ["web-??"]}],
                    [{"key": "labels.host", "oper": "IN", "vals": ["edge-*"]}]], "channel_ids": [w]},
            {"if": [[{"key": "labels.team", "oper": "NOTIN", "vals": ["db"]}]], "channel_ids": [c]}
        ],
        "default": {"channel_ids": [d]}
    });
    let key = shared_integration(&app, "standard", routes, UNLIMITED.clone()).await;

    // env=prod matches case 0 and falls through to case 1 (title), which stops.
    let fan = push_ok(
        &app,
        &key,
        &event("k1", "disk full", json!({"env": "prod", "team": "db"})),
    )
    .await;
    assert_eq!(channels_of(&fan), [a.clone(), b.clone()]);
    let results = fan["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["outcome"] == "new_incident"));
    assert_ne!(
        results[0]["incident_id"], results[1]["incident_id"],
        "each channel gets its own incident"
    );
    assert_ne!(
        results[0]["alert_id"], results[1]["alert_id"],
        "and its own alert"
    );
    assert_eq!(fan["alert_key"], "k1");

    // env=prod without a disk title: case 0, falls through, case 1 no; case 2 no; case 3 (team db: NOTIN false) no.
    assert_eq!(
        channels_of(
            &push_ok(
                &app,
                &key,
                &event("k2", "cpu", json!({"env": "prod", "team": "db"}))
            )
            .await
        ),
        vec![a.clone()]
    );
    // Wildcards: `?` is one character, `*` any run; lists of lists are ORed.
    assert_eq!(
        channels_of(
            &push_ok(
                &app,
                &key,
                &event("k3", "cpu", json!({"host": "web-01", "team": "db"}))
            )
            .await
        ),
        vec![w.clone()]
    );
    assert_eq!(
        channels_of(
            &push_ok(
                &app,
                &key,
                &event("k4", "cpu", json!({"host": "edge-lon-3", "team": "db"}))
            )
            .await
        ),
        vec![w.clone()]
    );
    assert_eq!(
        channels_of(
            &push_ok(
                &app,
                &key,
                &event("k5", "cpu", json!({"host": "web-001", "team": "db"}))
            )
            .await
        ),
        vec![d.clone()]
    );
    // NOTIN on a missing label matches.
    assert_eq!(
        channels_of(&push_ok(&app, &key, &event("k6", "cpu", json!({}))).await),
        vec![c.clone()]
    );
    // Nothing matches: the default route.
    assert_eq!(
        channels_of(&push_ok(&app, &key, &event("k7", "cpu", json!({"team": "db"}))).await),
        vec![d.clone()]
    );

    // A recovery follows the same routes and closes both fanned-out alerts.
    let mut ok = event("k1", "disk full", json!({"env": "prod", "team": "db"}));
    ok["event_status"] = json!("Ok");
    ok["event_time"] = json!(1_763_600_100);
    let rec = push_ok(&app, &key, &ok).await;
    assert!(rec["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["outcome"] == "recovered"));
    for ch in [&a, &b] {
        let closed = incidents(&app, &format!("channel_id={ch}&status=Closed")).await;
        assert_eq!(closed.len(), 1, "channel {ch}");
    }
    assert_eq!(
        incidents(&app, &format!("channel_id={a}&status=Triggered"))
            .await
            .len(),
        1,
        "k2 still open in a"
    );
}

#[tokio::test]
async fn no_route_and_no_default_is_refused_and_writes_nothing() {
    let app = test_app().await;
    let a = channel(&app, "a").await;
    let routes = json!({"cases": [{"if": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]], "channel_ids": [a]}]});
    let key = shared_integration(&app, "standard", routes, UNLIMITED.clone()).await;
    let before = table_dump(&app).await;
    let out = push(&app, &key, &event("k", "t", json!({"env": "dev"}))).await;
    assert_eq!(out.status, 400, "{}", out.body);
    let err = out.json()["error"].clone();
    assert_eq!(err["code"], "InvalidParameter");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("no route matched"),
        "{err}"
    );
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn routes_work_for_vendor_kinds_and_refuse_the_whole_payload_if_one_alert_has_no_route() {
    let app = test_app().await;
    let (payments, other) = (
        channel(&app, "payments").await,
        channel(&app, "other").await,
    );
    let routes = json!({"cases": [
        {"if": [[{"key": "labels.pod_name", "oper": "IN", "vals": ["*-x2k4q"]}]], "channel_ids": [payments]},
        {"if": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]], "channel_ids": [other]}
    ]});
    let key = shared_integration(&app, "aliyun-prometheus", routes, UNLIMITED.clone()).await;
    let firing = fixture("aliyun-prometheus/firing.json");
    let out = push_raw(
        &app,
        IntegrationKind::AliyunPrometheus,
        &key,
        "application/json",
        &firing,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let data = out.json()["data"].clone();
    assert_eq!(
        data["alert_keys"],
        json!(["3f9a1c2b7d4e8f01", "77c0e5a9b1d2f3e4"])
    );
    assert_eq!(channels_of(&data), [payments.clone(), other.clone()]);

    // The second alert downgraded to warning matches no case: the whole push is refused.
    let mut v: Value = serde_json::from_str(&firing).unwrap();
    v["alerts"][1]["labels"]["severity"] = json!("warning");
    v["alerts"][1]["fingerprint"] = json!("new-fingerprint");
    let before = table_dump(&app).await;
    let out = push_raw(
        &app,
        IntegrationKind::AliyunPrometheus,
        &key,
        "application/json",
        &v.to_string(),
    )
    .await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert_eq!(table_dump(&app).await, before);
}

#[tokio::test]
async fn shared_integration_validation() {
    let app = test_app().await;
    let a = channel(&app, "a").await;
    for (body, field) in [
        (
            json!({"name": "x", "kind": "standard", "routes": {"cases": []}}),
            "routes",
        ),
        (
            json!({"name": "x", "kind": "standard", "routes": {"default": {"channel_ids": ["missing"]}}}),
            "routes",
        ),
        (
            json!({"name": "x", "kind": "standard", "channel_id": a, "routes": {"default": {"channel_ids": [a]}}}),
            "routes",
        ),
        (
            json!({"name": "x", "kind": "standard", "routes": {"cases": [{"if": [[{"key": "title", "oper": "IN", "vals": ["/(/"]}]], "channel_ids": [a]}]}}),
            "routes.cases[0].if[0][0].vals[0]",
        ),
        (
            json!({"name": "x", "kind": "standard", "channel_id": a, "rate_limit": {"per_second": 0}}),
            "rate_limit.per_second",
        ),
    ] {
        let out = api(&app, "POST", "/api/integrations", Some(body)).await;
        assert_eq!(out.status, 400, "{}", out.body);
        assert!(
            out.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            out.body
        );
    }
}

/// 300 concurrent pushes at the default limits (100 per second, 1000 per
/// minute). Fixed one-second windows on the server's clock: within one
/// calendar second about 100 are accepted, so a burst that straddles a
/// second boundary may see up to 200 accepted within one second of wall time.
/// A push is refused only once a window is known to hold the limit; tokens
/// other instances used and have not reported yet are the overshoot, at most
/// `MAX_LEASE - 1` per instance. The test asserts those bounds and no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_of_300_is_held_to_the_limit_across_instances() {
    let app = test_app().await;
    let setup_app = app.clone();
    let ch = channel(&setup_app, "burst").await;
    let made = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "b", "kind": "standard", "channel_id": ch})),
    )
    .await;
    let key = Arc::new(made["integration_key"].as_str().unwrap().to_string());
    let mut instances = vec![Arc::new(app.clone())];
    for _ in 1..4 {
        instances.push(Arc::new(another_instance(&app).await));
    }
    // Warm every instance's connection pool, so the burst measures the
    // limiter, not TCP set-up; then start on a fresh calendar second.
    let mut warm = Vec::new();
    for inst in &instances {
        for _ in 0..75 {
            let inst = inst.clone();
            warm.push(tokio::spawn(async move {
                inst.store.app_key_is_valid("warm-up").await.unwrap()
            }));
        }
    }
    for w in warm {
        w.await.unwrap();
    }
    let ms_into_second = shared::store::now_ms() % 1000;
    tokio::time::sleep(std::time::Duration::from_millis(
        (1000 - ms_into_second) as u64 + 5,
    ))
    .await;
    let start_second = shared::store::now_ms() / 1000;
    let barrier = Arc::new(tokio::sync::Barrier::new(300));
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (app, key, barrier) = (instances[i % 4].clone(), key.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let body = json!({"title_rule": "burst", "event_status": "Info", "alert_key": format!("b{}", i % 10), "event_time": 1_763_600_000 + i});
            push(&app, &key, &body).await
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for t in tasks {
        let out = t.await.unwrap();
        match out.status {
            200 => accepted += 1,
            429 => {
                refused += 1;
                assert_eq!(out.json()["error"]["code"], "RequestTooFrequently");
                let retry_after = out
                    .headers
                    .iter()
                    .find(|(k, _)| k == "retry-after")
                    .map(|(_, v)| v.clone());
                assert!(retry_after
                    .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))));
            }
            other => panic!("unexpected status {other}: {}", out.body),
        }
    }
    let took = started.elapsed();
    let spanned = (shared::store::now_ms() / 1000 - start_second + 1) as usize;
    eprintln!(
        "burst: {accepted} accepted, {refused} refused in {took:?}, {spanned} calendar second(s)"
    );
    assert_eq!(accepted + refused, 300);
    let unused_at_most = instances.len() * (MAX_LEASE as usize - 1);
    assert!(
        accepted <= (100 + unused_at_most) * spanned && (refused == 0 || accepted >= 100),
        "{accepted} accepted over {spanned} windows"
    );
    // The server's own account: each admitted request counted once in the
    // one-second window of the instance that admitted it (plus tokens leased
    // and not used), and no window holds more than the limit.
    let integration_id = made["integration_id"].as_str().unwrap();
    let mut per_second = Vec::new();
    for item in scan_all(&app).await {
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        if !pk.starts_with(&format!("RL#{integration_id}#")) {
            continue;
        }
        for (name, value) in &item {
            if name.starts_with('s') && name[1..].parse::<u32>().is_ok() {
                per_second.push(value.as_n().unwrap().parse::<usize>().unwrap());
            }
        }
    }
    eprintln!("counted per one-second window: {per_second:?}");
    let counted = per_second.iter().sum::<usize>();
    assert!(
        counted >= accepted && counted - accepted <= unused_at_most * per_second.len(),
        "{counted} counted for {accepted} accepted"
    );
    assert!(
        per_second.iter().all(|&n| n <= 100 + unused_at_most),
        "{per_second:?}"
    );
}

/// The limiter itself, at one instant, from many tasks: exactly the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limiter_is_exact_within_a_window() {
    let app = test_app().await;
    let now = 1_763_626_845_000; // second 45 of its minute
    let per_second = RateLimit {
        per_second: 100,
        per_minute: 1000,
    };
    // Five bursts, each on its own integration: a race shows in some of them.
    for burst in 0..5 {
        let integration = format!("burst-{burst}");
        let mut tasks = Vec::new();
        for _ in 0..300 {
            let (store, integration) = (app.store.clone(), integration.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .admit_request(&integration, &per_second, now)
                    .await
                    .unwrap()
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            match t.await.unwrap() {
                None => admitted += 1,
                Some(minute_full) => assert!(!minute_full, "the per-second limit refused these"),
            }
        }
        // Tokens taken from the lease while its report is on the way are
        // the only ones the exact count does not see yet.
        assert!(
            (100..100 + MAX_LEASE as usize).contains(&admitted),
            "burst {burst}: {admitted} admitted"
        );
    }

    // The per-minute limit, across seconds of one minute.
    let per_minute = RateLimit {
        per_second: 1000,
        per_minute: 150,
    };
    let mut admitted = 0;
    let mut minute_refusals = 0;
    for i in 0..300 {
        match app
            .store
            .admit_request("minute", &per_minute, now + (i % 10) * 1000)
            .await
            .unwrap()
        {
            None => admitted += 1,
            Some(true) => minute_refusals += 1,
            Some(false) => panic!("per-second limit cannot be reached here"),
        }
    }
    assert_eq!((admitted, minute_refusals), (150, 150));
    // The next minute starts afresh.
    assert_eq!(
        app.store
            .admit_request("minute", &per_minute, now + 60_000)
            .await
            .unwrap(),
        None
    );
}

/// A busy instance leases its tokens in blocks: far fewer counter writes than
/// pushes, and still exactly the per-second limit (the last tokens of a
/// window go one at a time). Two instances sharing the counter, pushing in
/// turn until both are refused, admit the limit between them, and at most
/// what the other has used unreported (`MAX_LEASE - 1`) more.
#[tokio::test]
async fn a_busy_instance_leases_tokens_in_blocks_and_keeps_the_limit() {
    let app = test_app().await;
    let now = 1_763_626_845_000;
    let limit = RateLimit {
        per_second: 100,
        per_minute: 1000,
    };
    let (requests_before, _) = app.store.meter.snapshot();
    for i in 0..100 {
        let refused = app.store.admit_request("busy", &limit, now).await.unwrap();
        assert_eq!(refused, None, "push {i} of the first 100");
    }
    let (requests_after, _) = app.store.meter.snapshot();
    let writes = requests_after - requests_before;
    eprintln!(
        "FIGURE limiter: 100 pushes in one second from one instance took {writes} counter writes"
    );
    assert!(writes <= 20, "{writes} writes for 100 pushes");
    assert_eq!(
        app.store.admit_request("busy", &limit, now).await.unwrap(),
        Some(false),
        "the 101st push of the second is refused by the per-second limit"
    );

    let first = app.store.clone();
    let second = shared::store::Store::new(app.store.client().clone(), app.store.table());
    let mut admitted = 0;
    for i in 0..400 {
        let instance = if i % 2 == 0 { &first } else { &second };
        if instance
            .admit_request("shared", &limit, now + 1000)
            .await
            .unwrap()
            .is_none()
        {
            admitted += 1;
        }
    }
    eprintln!("FIGURE limiter: two instances in turn admitted {admitted} at a limit of 100");
    assert!(
        (100..100 + MAX_LEASE).contains(&admitted),
        "{admitted} admitted"
    );
}

/// SPEC 16: never refused below the limit. Four instances (separate lease
/// states) share one integration's 20 per second. In a first second each
/// takes a few pushes, so its next lease is a block; in the next second they
/// take 19 pushes between them, unevenly: the busy one exhausts its blocks
/// while the others hold leased tokens they never use. All 19 are accepted.
/// A round that straddles a second boundary proves nothing and is repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_instances_below_the_limit_are_never_refused() {
    let app = test_app().await;
    let ch = channel(&app, "limited").await;
    let mut proven = 0;
    for round in 0..10 {
        let made = api_ok(
            &app,
            "POST",
            "/api/integrations",
            Some(json!({
            "name": format!("limited {round}"), "kind": "standard", "channel_id": ch,
            "rate_limit": {"per_second": 20, "per_minute": 1200}})),
        )
        .await;
        let key = Arc::new(made["integration_key"].as_str().unwrap().to_string());
        let mut instances = Vec::new();
        for _ in 0..4 {
            instances.push(Arc::new(another_instance(&app).await));
        }
        let run = |shares: [usize; 4], second: usize| {
            let tasks: Vec<_> = instances
                .iter()
                .zip(shares)
                .enumerate()
                .map(|(i, (inst, n))| {
                    let (inst, key) = (inst.clone(), key.clone());
                    tokio::spawn(async move {
                        let mut statuses = Vec::new();
                        for j in 0..n {
                            let body = json!({"title_rule": "t", "event_status": "Info",
                                "alert_key": format!("k{second}-{i}-{j}"), "event_time": 1_763_600_000});
                            statuses.push(push(&inst, &key, &body).await.status);
                        }
                        statuses
                    })
                })
                .collect();
            async move {
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.unwrap());
                }
                all
            }
        };
        // Start just after a second begins.
        let into = shared::store::now_ms() % 1000;
        tokio::time::sleep(std::time::Duration::from_millis((1000 - into) as u64 + 5)).await;
        let first_second = shared::store::now_ms() / 1000;
        let warm = run([4, 4, 4, 4], 0).await;
        let into = shared::store::now_ms() % 1000;
        if shared::store::now_ms() / 1000 != first_second {
            eprintln!("round {round}: the warm-up took more than its second; again");
            continue;
        }
        assert!(warm.iter().all(|s| *s == 200), "warm-up {warm:?}");
        tokio::time::sleep(std::time::Duration::from_millis((1000 - into) as u64 + 5)).await;
        let second = shared::store::now_ms() / 1000;
        let statuses = run([10, 3, 3, 3], 1).await;
        if shared::store::now_ms() / 1000 != second {
            eprintln!("round {round}: the 19 pushes straddled a second boundary; again");
            continue;
        }
        assert!(
            statuses.iter().all(|s| *s == 200),
            "19 pushes within one second at a limit of 20: {statuses:?}"
        );
        proven += 1;
        if proven == 2 {
            break;
        }
    }
    assert!(proven > 0, "no round fitted in one calendar second");
}
