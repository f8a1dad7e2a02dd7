//! What the push path costs in DynamoDB, and how fast it runs against
//! DynamoDB Local. Run with `make bench` (starts DynamoDB Local itself).
//!
//! 1. Requests and consumed capacity per event, for each engine path, read
//!    from the store's meter (DynamoDB's own ConsumedCapacity figures).
//! 2. Events per second through the push handler at concurrency 32, next to
//!    the rate of the bare DynamoDB requests those events need, issued
//!    directly against the same DynamoDB Local in the same run.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use integration_tests::*;
use serde_json::json;
use shared::app::App;
use shared::domain::event::{EventStatus, StandardEvent};
use shared::model::{Channel, Grouping, GroupingMethod};
use shared::store::items::{key, s};
use shared::store::now_ms;
use tokio::sync::Semaphore;

const SAMPLES: usize = 40;
const CONCURRENCY: usize = 32;
const EVENTS: usize = 2000;
const ROUNDS: usize = 5;

fn event(key: &str, status: EventStatus, t: i64, labels: &[(&str, &str)]) -> StandardEvent {
    StandardEvent {
        title: format!("disk full on {key}"),
        event_status: status,
        alert_key: key.to_string(),
        description: "used 95% of /data".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        event_time_ms: t,
    }
}

struct Row {
    path: &'static str,
    requests: f64,
    units: f64,
    /// Of `units`, the write units (index writes included).
    writes: f64,
    /// Of `units`, those spent on secondary indexes.
    on_indexes: f64,
    /// The write units as AWS bills them (DynamoDB Local under-reports transactions).
    billed: f64,
}

/// The meter's (requests, units, write units, index units, billed write units) now.
type Reading = (u64, f64, f64, f64, f64);

fn reading(app: &App) -> Reading {
    let (requests, units) = app.store.meter.snapshot();
    let (writes, on_indexes) = app.store.meter.writes();
    (
        requests,
        units,
        writes,
        on_indexes,
        app.store.meter.billed_writes(),
    )
}

/// Sums of meter differences over samples, averaged into a row.
#[derive(Default)]
struct Tally {
    requests: u64,
    units: f64,
    writes: f64,
    on_indexes: f64,
    billed: f64,
    samples: usize,
}

impl Tally {
    fn add(&mut self, before: Reading, after: Reading) {
        self.requests += after.0 - before.0;
        self.units += after.1 - before.1;
        self.writes += after.2 - before.2;
        self.on_indexes += after.3 - before.3;
        self.billed += after.4 - before.4;
        self.samples += 1;
    }

    fn row(&self, path: &'static str) -> Row {
        let n = self.samples.max(1) as f64;
        Row {
            path,
            requests: self.requests as f64 / n,
            units: self.units / n,
            writes: self.writes / n,
            on_indexes: self.on_indexes / n,
            billed: self.billed / n,
        }
    }
}

fn print_rows(rows: &[Row]) {
    println!("| path | requests | capacity units | of which write units | of which on indexes | write units as AWS bills |\n| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            row.path, row.requests, row.units, row.writes, row.on_indexes, row.billed
        );
    }
}

/// Average cost of `apply` over SAMPLES keys, after `prepare` ran for each key unmetered.
async fn measure<P, PF, A, AF>(app: &App, path: &'static str, prepare: P, apply: A) -> Row
where
    P: Fn(usize) -> PF,
    PF: std::future::Future<Output = ()>,
    A: Fn(usize) -> AF,
    AF: std::future::Future<Output = &'static str>,
{
    let mut tally = Tally::default();
    for i in 0..SAMPLES {
        prepare(i).await;
        let before = reading(app);
        let outcome = apply(i).await;
        tally.add(before, reading(app));
        assert_eq!(outcome, expected_outcome(path), "{path}");
    }
    tally.row(path)
}

fn expected_outcome(path: &str) -> &'static str {
    match path {
        "duplicate" => "deduplicated",
        "unchanged (labels refreshed)" => "refreshed",
        "status change" => "updated",
        "new alert, new incident (no grouping)" | "new alert, new incident (rules)" => {
            "new_incident"
        }
        "new alert into open incident (rules)" => "merged",
        "new alert, new incident (no grouping), via a shared integration" => "new_incident",
        _ => "recovered",
    }
}

fn outcome_name(o: shared::engine::Outcome) -> &'static str {
    match serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .as_deref()
    {
        Some("deduplicated") => "deduplicated",
        Some("refreshed") => "refreshed",
        Some("updated") => "updated",
        Some("new_incident") => "new_incident",
        Some("merged") => "merged",
        Some("recovered") => "recovered",
        _ => "other",
    }
}

async fn cost_table(app: &App) -> Vec<Row> {
    let plain = Channel {
        channel_id: "plain".into(),
        name: "plain".into(),
        grouping: Grouping::default(),
        auto_close: true,
        created_at: 0,
        storm_thresholds: Vec::new(),
        flapping: Default::default(),
    };
    let rules = Channel {
        channel_id: "rules".into(),
        grouping: Grouping {
            method: GroupingMethod::Rules,
            equals: vec![vec!["labels.group".into()]],
            ..Default::default()
        },
        ..plain.clone()
    };
    let (plain, rules) = (Arc::new(plain), Arc::new(rules));
    let t0 = 1_763_000_000_000i64;
    let now = now_ms();
    let apply = |ch: Arc<Channel>, ev: StandardEvent| {
        let app = app.clone();
        async move {
            outcome_name(
                app.store
                    .apply_event(&ch, &ev, now)
                    .await
                    .expect("apply")
                    .outcome,
            )
        }
    };
    let labels = [("group", "g")];
    let mut rows = Vec::new();

    rows.push(
        measure(
            app,
            "new alert, new incident (no grouping)",
            |_| async {},
            |i| {
                apply(
                    plain.clone(),
                    event(&format!("n{i}"), EventStatus::Warning, t0, &labels),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "duplicate",
            |_| async {},
            |i| {
                apply(
                    plain.clone(),
                    event(&format!("n{i}"), EventStatus::Warning, t0 + 1, &labels),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "unchanged (labels refreshed)",
            |_| async {},
            |i| {
                apply(
                    plain.clone(),
                    event(
                        &format!("n{i}"),
                        EventStatus::Warning,
                        t0 + 2,
                        &[("group", "g"), ("x", "1")],
                    ),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "status change",
            |_| async {},
            |i| {
                apply(
                    plain.clone(),
                    event(&format!("n{i}"), EventStatus::Critical, t0 + 3, &labels),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "recovery that closes the incident",
            |_| async {},
            |i| {
                apply(
                    plain.clone(),
                    event(&format!("n{i}"), EventStatus::Ok, t0 + 4, &labels),
                )
            },
        )
        .await,
    );
    // Rules grouping: one group per sample, two alerts in it.
    rows.push(
        measure(
            app,
            "new alert, new incident (rules)",
            |_| async {},
            |i| {
                apply(
                    rules.clone(),
                    event(
                        &format!("r{i}a"),
                        EventStatus::Warning,
                        t0,
                        &[("group", &format!("g{i}"))],
                    ),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "new alert into open incident (rules)",
            |_| async {},
            |i| {
                apply(
                    rules.clone(),
                    event(
                        &format!("r{i}b"),
                        EventStatus::Warning,
                        t0,
                        &[("group", &format!("g{i}"))],
                    ),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "recovery, incident stays open (rules)",
            |_| async {},
            |i| {
                apply(
                    rules.clone(),
                    event(
                        &format!("r{i}a"),
                        EventStatus::Ok,
                        t0 + 1,
                        &[("group", &format!("g{i}"))],
                    ),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "recovery that closes the incident (rules)",
            |_| async {},
            |i| {
                apply(
                    rules.clone(),
                    event(
                        &format!("r{i}b"),
                        EventStatus::Ok,
                        t0 + 1,
                        &[("group", &format!("g{i}"))],
                    ),
                )
            },
        )
        .await,
    );
    // Through a shared integration: a new alert also records its channel for
    // the key's `Ok` (one more item in the transaction), and an `Ok` reads it.
    let via = |ch: Arc<Channel>, ev: StandardEvent| {
        let app = app.clone();
        async move {
            outcome_name(
                app.store
                    .apply_event_via(
                        &ch,
                        &ev,
                        now,
                        Some("shared-bench"),
                        &shared::store::alerts::EventRules::default(),
                    )
                    .await
                    .expect("apply")
                    .outcome,
            )
        }
    };
    rows.push(
        measure(
            app,
            "new alert, new incident (no grouping), via a shared integration",
            |_| async {},
            |i| {
                via(
                    plain.clone(),
                    event(&format!("s{i}"), EventStatus::Warning, t0, &labels),
                )
            },
        )
        .await,
    );
    rows.push(
        measure(
            app,
            "route memory read, per Ok via a shared integration",
            |_| async {},
            |i| {
                let app = app.clone();
                async move {
                    let channels = app
                        .store
                        .remembered_channels("shared-bench", &format!("s{i}"))
                        .await
                        .expect("read");
                    assert_eq!(channels, vec!["plain".to_string()]);
                    "recovered"
                }
            },
        )
        .await,
    );
    rows
}

/// One scenario of the rules table: a fresh channel and integration, its
/// rules made by `setup`, one warm-up push (the instance caches the channel,
/// its rules and the integration's), then SAMPLES pushes of one new alert
/// each, metered whole (key lookup and limiter included).
async fn rules_row(
    app: &App,
    path: &'static str,
    expected: &str,
    setup: impl AsyncFnOnce(&App, &Setup, &str),
    labels: impl Fn(usize) -> serde_json::Value,
) -> Row {
    let s = standard_setup(app).await;
    let integration_id = app
        .store
        .find_integration_by_key(&s.integration_key)
        .await
        .expect("lookup")
        .expect("integration")
        .integration_id;
    setup(app, &s, &integration_id).await;
    let body = |key: String, labels: serde_json::Value| json!({"title_rule": "disk full", "event_status": "Critical", "alert_key": key, "labels": labels});
    push_ok(app, &s.integration_key, &body("warm-up".into(), labels(0))).await;
    let mut tally = Tally::default();
    for i in 0..SAMPLES {
        let before = reading(app);
        let data = push_ok(app, &s.integration_key, &body(format!("k{i}"), labels(i))).await;
        tally.add(before, reading(app));
        assert_eq!(data["outcome"], expected, "{path}: {data}");
    }
    tally.row(path)
}

/// List prices, us-east-1, on demand (USD).
const USD_PER_MILLION_WRITE_UNITS: f64 = 0.625;
const USD_PER_MILLION_READ_UNITS: f64 = 0.125;
const USD_PER_MILLION_HTTP_API_REQUESTS: f64 = 1.00;
const USD_PER_MILLION_LAMBDA_REQUESTS: f64 = 0.20;
const USD_PER_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
/// The push functions' MemorySize in infra/template.yaml.
const LAMBDA_MEMORY_GB: f64 = 256.0 / 1024.0;

/// The mix, one event per push through the whole handler (key
/// lookup, limiter, rules, engine): per 10 events, 5 duplicates, 2 unchanged
/// (labels refreshed), 2 new alerts merged into an open incident, 1
/// recovery. One instance, pushes back to back, so its limiter leases run
/// busy; `idle` prices the same mix with one limiter write per push.
async fn mix(app: &App) {
    const BLOCKS: usize = 20;
    let mut app = app.clone();
    app.channel_cache_ttl = std::time::Duration::from_secs(600);
    let app = &app;
    let setup = channel_with_integration(
        app,
        "standard",
        json!({"name": "mix", "grouping": {"method": "rules", "equals": [["labels.group"]]}}),
    )
    .await;
    let key = setup.integration_key.as_str();
    let body = |alert_key: &str, status: &str, labels: serde_json::Value| json!({"title_rule": "disk full", "event_status": status, "alert_key": alert_key, "labels": labels});
    let mut tally = Tally::default();
    let mut handler_ms = Vec::new();
    let mut limiter_requests = 0;
    for b in 0..BLOCKS {
        let group = json!({"group": format!("g{b}")});
        let (first, second) = (format!("m{b}-a"), format!("m{b}-b"));
        push_ok(app, key, &body(&first, "Warning", group.clone())).await;
        push_ok(app, key, &body(&second, "Warning", group.clone())).await;
        let mut pushes: Vec<(serde_json::Value, &str)> = Vec::new();
        for _ in 0..5 {
            pushes.push((body(&first, "Warning", group.clone()), "deduplicated"));
        }
        for i in 0..2 {
            let labels = json!({"group": format!("g{b}"), "seen": i.to_string()});
            pushes.push((body(&first, "Warning", labels), "refreshed"));
        }
        for i in 0..2 {
            pushes.push((
                body(&format!("m{b}-new{i}"), "Warning", group.clone()),
                "merged",
            ));
        }
        pushes.push((body(&second, "Ok", group.clone()), "recovered"));
        for (push_body, expected) in pushes {
            let before = reading(app);
            let limiter_before = app.store.meter.limiter_requests.load(Relaxed);
            let started = Instant::now();
            let data = push_ok(app, key, &push_body).await;
            handler_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            tally.add(before, reading(app));
            limiter_requests += app.store.meter.limiter_requests.load(Relaxed) - limiter_before;
            assert_eq!(data["outcome"], expected, "{data}");
        }
    }
    let row = tally.row("the mix, per event");
    handler_ms.sort_by(f64::total_cmp);
    let median_ms = handler_ms[handler_ms.len() / 2];
    let billed_ms = median_ms.ceil();
    let reads = row.units - row.writes;
    let price = |writes: f64| {
        let dynamodb = writes * USD_PER_MILLION_WRITE_UNITS + reads * USD_PER_MILLION_READ_UNITS;
        let lambda = USD_PER_MILLION_LAMBDA_REQUESTS
            + LAMBDA_MEMORY_GB * billed_ms / 1000.0 * USD_PER_GB_SECOND_ARM64 * 1e6;
        (
            dynamodb,
            lambda,
            dynamodb + lambda + USD_PER_MILLION_HTTP_API_REQUESTS,
        )
    };
    println!("\n## The mix (50 % duplicates, 20 % unchanged, 20 % new alerts merged, 10 % recoveries), one event per push, whole request, {} events\n", tally.samples);
    let (reported, billed) = (row.writes, row.billed);
    print_rows(&[row]);
    // An idle instance leases one token per push: one limiter write (1 unit) per push.
    let limiter_per_event = limiter_requests as f64 / tally.samples as f64;
    let idle = billed - limiter_per_event + 1.0;
    println!("\nlimiter requests per push here: {limiter_per_event:.2}");
    println!("\nhandler time per push, median: {median_ms:.1} ms (billed as {billed_ms:.0} ms; DynamoDB Local, in process)");
    let columns = [reported, billed, idle].map(|writes| (writes, price(writes)));
    println!("\n| per million events, us-east-1 list prices | write units as DynamoDB Local reports them | as AWS bills them | as AWS bills them, one limiter write per push (idle instances) |\n| --- | ---: | ---: | ---: |");
    // (write units, (DynamoDB $, Lambda $, all in $)) per column.
    type Column = (f64, (f64, f64, f64));
    let line = |name: &str, cell: &dyn Fn(&Column) -> String| {
        let cells: Vec<String> = columns.iter().map(cell).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    line("DynamoDB write units", &|c| format!("{:.2} M", c.0));
    line("DynamoDB read units", &|_| format!("{reads:.2} M"));
    line("DynamoDB", &|c| format!("${:.2}", c.1 .0));
    line(&format!("Lambda arm64, 256 MB, {billed_ms:.0} ms"), &|c| {
        format!("${:.2}", c.1 .1)
    });
    line("API Gateway HTTP API", &|_| {
        format!("${USD_PER_MILLION_HTTP_API_REQUESTS:.2}")
    });
    line("all in", &|c| format!("${:.2}", c.1 .2));
    println!(
        "\nFIGURE mix: {reported:.2} write units per event as reported, {billed:.2} as AWS bills; ${:.2} per million events all in as AWS bills (${:.2} with idle limiters)",
        columns[1].1 .2, columns[2].1 .2
    );
}

/// SPEC 7 on the push path, per push of one event, instance caches warm.
async fn rules_table(app: &App) -> Vec<Row> {
    let mut app = app.clone();
    app.channel_cache_ttl = std::time::Duration::from_secs(600);
    let app = &app;
    let rules = |s: &Setup, kind: &str| format!("/api/channels/{}/{kind}-rules", s.channel_id);
    let now = now_ms() / 1000;
    let any = |i: usize| json!({"host": format!("h{i}"), "group": "g"});
    let mut rows = Vec::new();
    rows.push(
        rules_row(
            app,
            "new alert, channel without rules",
            "new_incident",
            async |_, _, _| {},
            any,
        )
        .await,
    );
    rows.push(
        rules_row(
            app,
            "new alert dropped by a drop rule",
            "dropped",
            async |app, s, _| {
                api_ok(app, "POST", &rules(s, "drop"), Some(json!({"name": "all"}))).await;
            },
            any,
        )
        .await,
    );
    rows.push(
        rules_row(
            app,
            "new alert dropped by the pipeline",
            "dropped",
            async |app, _, id| {
                api_ok(
                    app,
                    "PUT",
                    &format!("/api/integrations/{id}/pipeline"),
                    Some(json!({"rules": [{"kind": "drop"}]})),
                )
                .await;
            },
            any,
        )
        .await,
    );
    rows.push(rules_row(app, "new alert, silence `drop`", "silenced", async |app, s, _| {
        api_ok(app, "POST", &rules(s, "silence"), Some(json!({"name": "all", "action": "drop", "time": {"start": now - 60, "end": now + 86_400}}))).await;
    }, any).await);
    rows.push(
        rules_row(
            app,
            "new alert, silence `mark` (stored, no incident)",
            "silenced",
            async |app, s, _| {
                api_ok(
                    app,
                    "POST",
                    &rules(s, "silence"),
                    Some(json!({"name": "all", "time": {"start": now - 60, "end": now + 86_400}})),
                )
                .await;
            },
            any,
        )
        .await,
    );
    let inhibit = |action: &'static str| {
        async move |app: &App, s: &Setup, _: &str| {
            api_ok(
                app,
                "POST",
                &rules(s, "inhibit"),
                Some(json!({"name": "h", "action": action,
            "source_if": [[{"key": "labels.role", "oper": "IN", "vals": ["source"]}]],
            "target_if": [[{"key": "labels.role", "oper": "NOTIN", "vals": ["source"]}]],
            "equals": ["labels.group"]})),
            )
            .await;
        }
    };
    rows.push(
        rules_row(
            app,
            "new alert, inhibit rule, no source open",
            "new_incident",
            inhibit("mark"),
            any,
        )
        .await,
    );
    rows.push(rules_row(app, "new alert, inhibit `mark` with an active source", "inhibited", async |app, s, id| {
        inhibit("mark")(app, s, id).await;
        push_ok(app, &s.integration_key, &json!({"title_rule": "host down", "event_status": "Critical", "alert_key": "source", "labels": {"role": "source", "group": "g"}})).await;
    }, any).await);
    rows.push(
        rules_row(
            app,
            "new alert, enrichment `map`, row cached",
            "new_incident",
            async |app, _, id| {
                let t = api_ok(
                    app,
                    "POST",
                    "/api/mapping-tables",
                    Some(
                        json!({"name": "t", "source_labels": ["group"], "result_labels": ["team"]}),
                    ),
                )
                .await;
                let t = t["table_id"].as_str().expect("table_id").to_string();
                let mut req = shared::intake::http::Inbound::new(
                    "PUT",
                    &format!("/api/mapping-tables/{t}/rows"),
                )
                .header("authorization", &format!("Bearer {APP_KEY}"))
                .header("content-type", "text/csv");
                req.body = b"group,team\ng,core\n".to_vec();
                assert_eq!(shared::api::handle_api(app, req).await.status, 200);
                api_ok(
                    app,
                    "PUT",
                    &format!("/api/integrations/{id}/enrichment"),
                    Some(json!({"rules": [{"kind": "map", "table_id": t}]})),
                )
                .await;
            },
            any,
        )
        .await,
    );
    rows.push(
        rules_row(
            app,
            "new alert, enrichment `map`, a row not cached yet",
            "new_incident",
            async |app, _, id| {
                let t = api_ok(
                    app,
                    "POST",
                    "/api/mapping-tables",
                    Some(
                        json!({"name": "t", "source_labels": ["host"], "result_labels": ["team"]}),
                    ),
                )
                .await;
                let t = t["table_id"].as_str().expect("table_id").to_string();
                api_ok(
                    app,
                    "PUT",
                    &format!("/api/integrations/{id}/enrichment"),
                    Some(json!({"rules": [{"kind": "map", "table_id": t}]})),
                )
                .await;
            },
            any,
        )
        .await,
    );
    rows
}

/// Push `bodies` through the handler at CONCURRENCY; events per second.
async fn handler_rate(app: &App, key: &str, bodies: Vec<serde_json::Value>) -> f64 {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let key = Arc::new(key.to_string());
    let started = Instant::now();
    let mut tasks = Vec::new();
    let n = bodies.len();
    for body in bodies {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let (app, key) = (app.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let out = push(&app, &key, &body).await;
            drop(permit);
            assert_eq!(out.status, 200, "{}", out.body);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The same DynamoDB requests, issued directly: `requests(i)` runs event i's.
async fn bare_rate<F, Fut>(n: usize, requests: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let fut = requests(i);
        tasks.push(tokio::spawn(async move {
            fut.await;
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let app = test_app().await;
    println!("## DynamoDB cost per event (average of {SAMPLES}; capacity units as DynamoDB reports them)\n");
    let mut rows = cost_table(&app).await;
    // Per push request, before any event: one strongly consistent read of the key.
    let s0 = standard_setup(&app).await;
    let mut lookup = Tally::default();
    let before = reading(&app);
    app.store
        .find_integration_by_key(&s0.integration_key)
        .await
        .expect("lookup");
    lookup.add(before, reading(&app));
    rows.push(lookup.row("per push request: integration key lookup"));
    print_rows(&rows);
    println!("\n(channel settings: one more read per request when the instance's cache (CHANNEL_CACHE_SECONDS) is cold)");

    println!("\n## Rules on the push path (SPEC 7): per push of one event, whole request, instance caches warm (average of {SAMPLES})\n");
    print_rows(&rules_table(&app).await);

    mix(&app).await;

    // What the rate limiter adds to an accepted push: a busy instance (500
    // checks back to back, leases growing to 16) and an idle one (one check
    // every other second: a lease of one token each time).
    let limit = shared::rules::ratelimit::RateLimit {
        per_second: 1_000_000,
        per_minute: 1_000_000,
    };
    println!("\n## Rate limiter, per accepted push\n\n| instance | requests | capacity units | latency p50 | latency p99 |\n| --- | ---: | ---: | ---: | ---: |");
    let start = now_ms();
    for (name, at) in [
        ("busy: 500 checks back to back", None),
        ("idle: one check every other second", Some(start + 10_000)),
    ] {
        let mut latencies = Vec::new();
        let (r0, u0) = app.store.meter.snapshot();
        for i in 0..500i64 {
            let now = at.map_or_else(now_ms, |t| t + i * 2000);
            let started = Instant::now();
            let refused = app
                .store
                .admit_request("bench", &limit, now)
                .await
                .expect("admit");
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(refused.is_none());
        }
        let (r1, u1) = app.store.meter.snapshot();
        latencies.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} ms | {:.2} ms |",
            (r1 - r0) as f64 / 500.0,
            (u1 - u0) / 500.0,
            latencies[250],
            latencies[495]
        );
    }

    // Throughput: the handler vs the bare requests, same DynamoDB Local, same run.
    let mut handler = app.clone();
    handler.channel_cache_ttl = std::time::Duration::from_secs(60);
    // standard_setup makes the integration effectively unlimited: the limiter
    // still checks and counts every push, it just never refuses one here.
    let setup = standard_setup(&handler).await;
    let t0 = 1_763_000_000i64;
    let new_alerts = |round: usize, n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| json!({"title_rule": format!("disk full on n{i}"), "event_status": "Warning", "alert_key": format!("tn{round}-{i}"), "description": "used 95% of /data", "labels": {"host": format!("h{i}")}, "event_time": t0}))
            .collect()
    };
    let dup = |round: usize, i: usize| json!({"title_rule": format!("disk full on n{}", i % 64), "event_status": "Warning", "alert_key": format!("td{round}-{}", i % 64), "description": "used 95% of /data", "labels": {"host": format!("h{}", i % 64)}, "event_time": t0 + 1 + i as i64});
    // Bare floors: the requests those events need, with the same shapes (the
    // same conditions, returned items and item sizes), issued directly.
    let client = app.store.client().clone();
    let table = app.store.table().to_string();
    let ikey = key(
        format!(
            "IKEY#{}",
            shared::hashing::sha256_hex(&setup.integration_key)
        ),
        "IKEY",
    );
    let sample_new = event("bare", EventStatus::Warning, t0 * 1000, &[("host", "h1")]);
    let fp = shared::engine::fingerprint(&sample_new);
    let head_template = shared::engine::next_head(
        None,
        "bare",
        &sample_new,
        &fp,
        shared::engine::Decision::Open,
        Some(shared::engine::NewAlert {
            alert_id: "0123456789abcdef0123456789abcdef",
            incident_id: "0123456789abcdef0123456789abcdef",
        }),
        t0 * 1000,
    )
    .expect("head");
    for k in 0..64 {
        let mut head = head_template.clone();
        head.alert_key = format!("dup{k}");
        let item = shared::store::items::head_to_item(&head);
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .expect("seed head");
    }
    // Event times keep growing across rounds, so every floor duplicate really
    // passes its condition and writes (a failed condition is cheaper).
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(t0 * 1000 + 1));
    let bare = |with_tx: bool| {
        let clock = clock.clone();
        let (client, table, ikey, head_template, fp, sample_new) = (
            client.clone(),
            table.clone(),
            ikey.clone(),
            head_template.clone(),
            fp.clone(),
            sample_new.clone(),
        );
        move |i: usize| {
            let t = clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (client, table, ikey, mut head, fp, sample_new) = (
                client.clone(),
                table.clone(),
                ikey.clone(),
                head_template.clone(),
                fp.clone(),
                sample_new.clone(),
            );
            async move {
                use aws_sdk_dynamodb::types::{
                    ReturnValue, ReturnValuesOnConditionCheckFailure as OnFail,
                };
                use shared::store::items::{
                    first_event_value, head_to_item, live_record, n, new_incident_item, NewIncident,
                };
                let _ = client
                    .get_item()
                    .table_name(&table)
                    .set_key(Some(ikey))
                    .consistent_read(true)
                    .send()
                    .await;
                // The rate limiter's counter, as every accepted push writes it.
                let (minute, second) = shared::rules::ratelimit::windows(now_ms());
                let _ = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(key(format!("RL#bare#{minute}"), "RL")))
                    .update_expression("ADD m :one, #s :one SET expires_at = :expires")
                    .condition_expression("(attribute_not_exists(m) OR m < :pm) AND (attribute_not_exists(#s) OR #s < :ps)")
                    .expression_attribute_names("#s", format!("s{second}"))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":pm", n(1_000_000))
                    .expression_attribute_values(":ps", n(1_000_000))
                    .expression_attribute_values(":expires", n((minute + 2) * 60))
                    .return_values_on_condition_check_failure(OnFail::AllOld)
                    .send()
                    .await;
                head.alert_key = if with_tx {
                    format!("new{t}")
                } else {
                    format!("dup{}", i % 64)
                };
                // The look at the head (eventually consistent); only a
                // duplicate goes on to the conditional duplicate write.
                let _ = client
                    .get_item()
                    .table_name(&table)
                    .set_key(Some(key(format!("AK#bare#{}", head.alert_key), "HEAD")))
                    .send()
                    .await;
                if !with_tx {
                    let _ = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(key(format!("AK#bare#{}", head.alert_key), "HEAD")))
                    .condition_expression(
                        "active = :true AND last_content = :content AND last_time < :t",
                    )
                    .update_expression(
                        "SET last_time = :t, recent_contents = :contents, last_event_at = :now \
                         ADD event_count :one, duplicate_count :one, version :one",
                    )
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":content", s(&fp.content))
                    .expression_attribute_values(":t", n(t))
                    .expression_attribute_values(
                        ":contents",
                        AttributeValue::M(std::collections::HashMap::from([(
                            fp.content.clone(),
                            n(t0 * 1000),
                        )])),
                    )
                    .expression_attribute_values(":now", n(t0))
                    .expression_attribute_values(":one", n(1))
                    .return_values(ReturnValue::AllNew)
                    .return_values_on_condition_check_failure(OnFail::AllOld)
                    .send()
                    .await;
                }
                if with_tx {
                    let incident = new_incident_item(&NewIncident {
                        incident_id: &format!("bare{t}"),
                        channel_id: "bare",
                        title: &sample_new.title,
                        labels: &sample_new.labels,
                        severity: EventStatus::Warning,
                        now_ms: t0 * 1000,
                        merge_deadline_ms: 0,
                        group_key: None,
                    });
                    let put = |item| {
                        TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(&table)
                                    .set_item(Some(item))
                                    .build()
                                    .expect("put"),
                            )
                            .build()
                    };
                    let items = vec![
                        put(head_to_item(&head)),
                        put(live_record(
                            &head,
                            Some(first_event_value(&sample_new, 1)),
                            None,
                        )),
                        put(incident),
                    ];
                    let _ = client
                        .transact_write_items()
                        .set_transact_items(Some(items))
                        .send()
                        .await;
                }
            }
        }
    };
    // Warm the JVM and the connection pools, then alternate handler and floor
    // over ROUNDS rounds and keep the medians: DynamoDB Local's speed drifts.
    handler_rate(&handler, &setup.integration_key, new_alerts(99, 300)).await;
    bare_rate(300, bare(true)).await;
    let (mut new_rates, mut new_floors, mut dup_rates, mut dup_floors) =
        (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        new_rates
            .push(handler_rate(&handler, &setup.integration_key, new_alerts(round, EVENTS)).await);
        new_floors.push(bare_rate(EVENTS, bare(true)).await);
        bare_rate(64, bare(false)).await;
        // The 64 keys exist before timing, so every timed event is a duplicate.
        handler_rate(
            &handler,
            &setup.integration_key,
            (0..64).map(|i| dup(round, i)).collect(),
        )
        .await;
        dup_rates.push(
            handler_rate(
                &handler,
                &setup.integration_key,
                (64..64 + EVENTS).map(|i| dup(round, i)).collect(),
            )
            .await,
        );
        dup_floors.push(bare_rate(EVENTS, bare(false)).await);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| format!("{:.2}", x / y))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let spread = format!(
        "per-round ratios: new alert [{}], duplicate [{}]",
        ratios(&new_rates, &new_floors),
        ratios(&dup_rates, &dup_floors)
    );
    let (new_rate, new_floor, dup_rate, dup_floor) = (
        median(new_rates),
        median(new_floors),
        median(dup_rates),
        median(dup_floors),
    );
    println!("\n## Throughput at concurrency {CONCURRENCY}, {EVENTS} events a run, median of {ROUNDS} alternating runs, DynamoDB Local\n");
    println!("| workload | handler events/s | bare requests floor events/s | ratio |\n| --- | ---: | ---: | ---: |");
    println!("| new alert per event (GetItem, limiter UpdateItem, eventually consistent GetItem, 3-item transaction) | {new_rate:.0} | {new_floor:.0} | {:.2} |", new_rate / new_floor);
    println!("| duplicate per event (GetItem, limiter UpdateItem, eventually consistent GetItem, conditional UpdateItem) | {dup_rate:.0} | {dup_floor:.0} | {:.2} |", dup_rate / dup_floor);
    println!("\n{spread}");
}
