//! `make run`'s stand-in for Lambda's stream event source: reads the table's
//! stream in DynamoDB Local and invokes the notify function through `cargo
//! lambda watch` (`POST /2015-03-31/functions/notify/invocations`), 100
//! records at a time, in stream order. Every few seconds it also sends the
//! notify function the scheduled event that EventBridge sends every minute
//! in AWS, so deliveries waiting for a retry are tried under `make run` too,
//! and the escalation function its tick (`.../functions/escalate/invocations`).
//!
//! Usage: `TABLE_NAME=... AWS_ENDPOINT_URL_DYNAMODB=... stream-pump INVOKE_URL`

use std::time::Duration;

use serde_json::json;
use shared::outbound::kinds::OutRequest;
use shared::outbound::service::{Attempt, Policy, Sender};
use shared::outbound::stream::LocalStream;

/// Tries per batch before it is skipped (Lambda would send it to the on-failure queue).
const TRIES: u32 = 5;
/// How often the scheduled run is invoked (every minute in AWS).
const RUN_EVERY: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), String> {
    shared::runtime::init_tracing();
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: stream-pump INVOKE_URL (http://127.0.0.1:9000/2015-03-31/functions/notify/invocations)")?;
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let client = shared::store::client_from_env().await;
    let mut stream = LocalStream::open(&client, &table, false)
        .await
        .map_err(|e| e.message().to_string())?;
    // A batch may take a few deliveries' budgets.
    let invoker = Sender::new(
        Policy {
            timeout: Duration::from_secs(120),
            attempts: 1,
            backoff: Duration::ZERO,
        },
        shared::outbound::target::Targets::Any,
    );
    tracing::info!("stream pump: feeding the notify function");
    // The escalation function sits beside notify on the same invoke endpoint.
    let escalate_url = url.replace("/functions/notify/", "/functions/escalate/");
    let mut last_run = std::time::Instant::now();
    loop {
        if last_run.elapsed() >= RUN_EVERY {
            last_run = std::time::Instant::now();
            let scheduled = OutRequest {
                url: url.clone(),
                headers: vec![("content-type".into(), "application/json".into())],
                body:
                    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
                        .to_string()
                        .into_bytes(),
            };
            let answer = invoker.attempt(&scheduled).await;
            if !answer.succeeded() {
                tracing::warn!(?answer, "the scheduled delivery run failed");
            }
            let tick = OutRequest {
                url: escalate_url.clone(),
                ..scheduled
            };
            let answer = invoker.attempt(&tick).await;
            if !answer.succeeded() {
                tracing::warn!(?answer, "the escalation tick failed");
            }
        }
        match stream.poll().await {
            Ok(records) => {
                for chunk in records.chunks(100) {
                    let request = OutRequest {
                        url: url.clone(),
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: json!({ "Records": chunk }).to_string().into_bytes(),
                    };
                    for attempt in 1..=TRIES {
                        match invoker.attempt(&request).await {
                            Attempt::Answered(s) if (200..300).contains(&s) => break,
                            other => {
                                tracing::warn!(
                                    ?other,
                                    attempt,
                                    records = chunk.len(),
                                    "notify invocation failed"
                                );
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = e.message(), "reading the stream failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
