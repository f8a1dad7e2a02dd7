//! `make bench`: end-to-end webhook delivery against DynamoDB Local and a
//! local receiver. A pump reads the table's stream every 50 ms and hands the
//! records to the notify core, as `make run`'s pump and Lambda's event source
//! do; 200 incidents are pushed through the real push handler, one every
//! 20 ms. Reports push answered -> receiver got its `i_new` (median, p99),
//! and the notify side's DynamoDB requests per delivered event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::receiver::{Behaviour, Receiver};
use integration_tests::*;
use serde_json::json;
use shared::outbound::notify::Notifier;
use shared::outbound::service::{Policy, Sender};
use shared::outbound::stream::{records, LocalStream};
use shared::store::{client_from_env, Store};

const INCIDENTS: usize = 200;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let app = test_app_with_stream().await;
    let setup = standard_setup(&app).await;
    let rx = Receiver::start(Behaviour::Status(200)).await;
    api_ok(
        &app,
        "POST",
        "/api/webhooks",
        Some(json!({"name": "bench", "url": rx.url, "secret": "s", "event_types": ["i_new"]})),
    )
    .await;
    // The notify side has its own store, so its DynamoDB requests are metered apart.
    let notify_store = Store::new(client_from_env().await, app.store.table());
    let notifier = Notifier {
        store: notify_store.clone(),
        sender: Sender::new(
            Policy::default(),
            shared::outbound::target::Targets::PublicAndPrivate,
        ),
        ctx: Default::default(),
        schedule: Default::default(),
    };
    let mut stream = LocalStream::open(app.store.client(), app.store.table(), false)
        .await
        .expect("stream");
    stream.poll().await.expect("first poll");
    let stop = Arc::new(AtomicBool::new(false));
    let pump = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut delivered = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let batch = records(&stream.poll().await.expect("poll"));
                for chunk in batch.chunks(100) {
                    delivered += notifier.process(chunk).await.delivered;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            delivered
        })
    };

    let mut answered: Vec<(String, Instant)> = Vec::new();
    for i in 0..INCIDENTS {
        let body = json!({"event_status": "Critical", "alert_key": format!("bench-{i}"), "title_rule": format!("bench {i}")});
        let data = push_ok(&app, &setup.integration_key, &body).await;
        let incident = data["incident_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no incident id in {data}"));
        answered.push((incident, Instant::now()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.received().len() < INCIDENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let delivered = pump.await.expect("pump");
    let got = rx.received();
    let mut latencies: Vec<f64> = answered
        .iter()
        .filter_map(|(incident, at)| {
            let r = got
                .iter()
                .find(|r| r.json()["incident"]["incident_id"] == incident.as_str())?;
            Some(r.at.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (requests, units) = notify_store.meter.snapshot();
    println!("## Webhook delivery, end to end (DynamoDB Local, local receiver, stream polled every 50 ms)\n");
    println!("| measure | value |\n| --- | ---: |");
    println!("| incidents pushed | {INCIDENTS} |");
    println!("| delivered (i_new) | {} |", latencies.len());
    println!(
        "| push answered -> receiver got it, median | {:.0} ms |",
        percentile(&latencies, 0.5)
    );
    println!(
        "| push answered -> receiver got it, p99 | {:.0} ms |",
        percentile(&latencies, 0.99)
    );
    println!(
        "| notify DynamoDB requests per delivered event | {:.2} |",
        requests as f64 / delivered.max(1) as f64
    );
    println!(
        "| notify capacity units per delivered event | {:.2} |",
        units / delivered.max(1) as f64
    );
}
