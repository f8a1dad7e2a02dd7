//! `make bench`: what on-call escalation asks of DynamoDB, from the store's
//! meter (DynamoDB Local's ConsumedCapacity; billed write units count a
//! transaction's writes twice, as AWS bills them). The tick runs on its own
//! store, so its requests are metered apart from the pushes.
//!
//! - a push that opens an incident, on a channel with and without
//!   escalation rules (the chain starts in the same transaction);
//! - a tick with nothing due (what every minute costs when all is quiet);
//! - a tick paging level 1, then level 2, of INCIDENTS incidents (email to
//!   a local SMTP server and IM), per paged incident.

use std::sync::Arc;

use integration_tests::smtp::SmtpSink;
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::outbound::email::{Mailer, SmtpConfig};
use shared::outbound::escalate::{Escalator, TickReport};
use shared::store::{client_from_env, now_ms, Store};

const INCIDENTS: usize = 50;
const MINUTE: i64 = 60_000;

/// (requests, units, billed write units) of a store now.
fn reading(store: &Store) -> (u64, f64, f64) {
    let (requests, units) = store.meter.snapshot();
    (requests, units, store.meter.billed_writes())
}

fn per(before: (u64, f64, f64), after: (u64, f64, f64), n: usize) -> (f64, f64, f64) {
    let n = n.max(1) as f64;
    (
        (after.0 - before.0) as f64 / n,
        (after.1 - before.1) / n,
        (after.2 - before.2) / n,
    )
}

fn row(what: &str, (requests, units, billed): (f64, f64, f64)) {
    println!("| {what} | {requests:.2} | {units:.2} | {billed:.2} |");
}

async fn member(app: &App, name: &str, slack: &str) -> String {
    let made = api_ok(
        app,
        "POST",
        "/api/members",
        Some(
            json!({"name": name, "email": format!("{}@example.com", name.to_lowercase()),
                    "im": {"slack_user_id": slack}}),
        ),
    )
    .await;
    made["member_id"].as_str().expect("member_id").to_string()
}

/// Pushes `n` new incidents; the push side's cost per incident.
async fn open_incidents(app: &App, key: &str, prefix: &str, n: usize) -> (f64, f64, f64) {
    let before = reading(&app.store);
    for i in 0..n {
        let body = json!({"event_status": "Critical", "alert_key": format!("{prefix}-{i}"),
                          "title_rule": format!("{prefix} {i}")});
        let data: Value = push_ok(app, key, &body).await;
        assert_eq!(data["outcome"], "new_incident", "{data}");
    }
    per(before, reading(&app.store), n)
}

async fn tick(escalator: &Escalator, app: &App, at_ms: i64) -> TickReport {
    escalator.tick(app, at_ms).await.expect("tick")
}

#[tokio::main]
async fn main() {
    let app = test_app().await;
    let sink = SmtpSink::start();
    let escalator = Escalator {
        mailer: Some(Arc::new(
            Mailer::new(
                SmtpConfig::from_url(&sink.url(), None).expect("SMTP URL"),
                "On-call <oncall@example.com>",
            )
            .expect("mailer"),
        )),
        public_base_url: "https://oncall.example".into(),
    };
    let ticker = App::new(Store::new(client_from_env().await, app.store.table()));

    let alice = member(&app, "Alice", "U0ALICE").await;
    let bob = member(&app, "Bob", "U0BOB").await;
    api_ok(
        &app,
        "POST",
        "/api/webhooks",
        Some(
            json!({"name": "pager room", "kind": "slack", "url": "http://127.0.0.1:9/slack",
                    "event_types": ["i_assign", "i_escalate"]}),
        ),
    )
    .await;
    let plain = standard_setup(&app).await;
    let paged = standard_setup(&app).await;
    api_ok(
        &app,
        "PUT",
        &format!("/api/channels/{}/escalation", paged.channel_id),
        Some(json!({"rules": [{"name": "default", "levels": [
            {"targets": {"member_ids": [alice]}, "notify": ["email", "im"], "escalate_after_minutes": 1},
            {"targets": {"member_ids": [bob]}, "notify": ["email", "im"], "escalate_after_minutes": 10}
        ]}]})),
    )
    .await;

    let without = open_incidents(&app, &plain.integration_key, "plain", INCIDENTS).await;
    let with = open_incidents(&app, &paged.integration_key, "paged", INCIDENTS).await;
    let t0 = now_ms();

    let before = reading(&ticker.store);
    let quiet_ticks = 20;
    for i in 0..quiet_ticks {
        // Before the incidents opened: nothing is due.
        tick(&escalator, &ticker, t0 - 3_600_000 + i).await;
    }
    let quiet = per(before, reading(&ticker.store), quiet_ticks as usize);

    let before = reading(&ticker.store);
    let first = tick(&escalator, &ticker, t0).await;
    let level_one = per(before, reading(&ticker.store), first.pages);
    assert_eq!(first.pages, INCIDENTS, "{first:?}");
    assert_eq!(first.emails_sent, INCIDENTS, "{first:?}");

    let before = reading(&ticker.store);
    let second = tick(&escalator, &ticker, t0 + MINUTE + 1_000).await;
    let level_two = per(before, reading(&ticker.store), second.pages);
    assert_eq!(second.pages, INCIDENTS, "{second:?}");

    let before = reading(&ticker.store);
    let waiting = tick(&escalator, &ticker, t0 + 2 * MINUTE).await;
    let not_due = per(before, reading(&ticker.store), 1);
    assert_eq!(waiting.pages, 0);
    assert_eq!(sink.messages().len(), 2 * INCIDENTS);

    println!("## On-call escalation: DynamoDB requests (DynamoDB Local, {INCIDENTS} incidents, email to a local SMTP server and IM)\n");
    println!("| what | requests | capacity units | billed write units |");
    println!("| --- | ---: | ---: | ---: |");
    row(
        "push opening an incident, channel without escalation rules",
        without,
    );
    row(
        "push opening an incident, channel with escalation rules (chain started)",
        with,
    );
    row("tick with nothing due (every minute when quiet)", quiet);
    row(
        "tick paging level 1, per incident (1 member: email + IM)",
        level_one,
    );
    row(
        "tick paging level 2, per incident (1 member: email + IM)",
        level_two,
    );
    row(
        &format!("tick with {INCIDENTS} chains waiting, none due"),
        not_due,
    );
}
