//! Helpers for the integration tests: a fresh table in DynamoDB Local per
//! test, and shortcuts that go through the real handlers.
//!
//! DynamoDB Local is started by `make test` (scripts/test.sh), which exports
//! `AWS_ENDPOINT_URL_DYNAMODB`. Without it these tests fail loudly rather than
//! pass without a database.

pub mod http_front;
pub mod iam;
pub mod invariants;
pub mod openapi;
pub mod receiver;
pub mod smtp;
pub mod template;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

use serde_json::{json, Value};
use shared::app::App;
use shared::hashing::random_hex;
use shared::intake::http::{Inbound, Outbound};
use shared::intake::integrations::IntegrationKind;
use shared::store::{client_from_env, schema, Store};

pub const APP_KEY: &str = "test-app-key-0123456789";

pub static UNLIMITED: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"per_second": 1_000_000, "per_minute": 1_000_000}));

/// A sample payload from the repository's own fixtures (`shared/fixtures/`).
pub fn fixture(path: &str) -> String {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    let full = workspace.join("shared").join("fixtures").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

/// Sets local SDK credentials and a region where unset; fails without DynamoDB Local's endpoint.
pub fn ensure_local_credentials() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts DynamoDB Local"
    );
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", "us-east-1"),
    ] {
        if std::env::var(k).is_err() {
            std::env::set_var(k, v);
        }
    }
}

/// An app on a brand-new table without a stream, with the test app key
/// valid: for every test of what lands in the table. DynamoDB Local puts each
/// write to a streamed table behind one lock, so the concurrency and edge
/// suites ran seven times slower on one (and hundreds of tasks on one item
/// timed out); a stream changes nothing about conditional writes, which AWS
/// commits before it emits the record.
pub async fn test_app() -> App {
    test_app_with(false).await
}

/// [`test_app`] on a table with its stream, as deployed: for tests of what the
/// stream delivers (notify, webhooks).
pub async fn test_app_with_stream() -> App {
    test_app_with(true).await
}

async fn test_app_with(stream: bool) -> App {
    ensure_local_credentials();
    let client = client_from_env().await;
    let table = format!("t{}", random_hex(8).expect("randomness"));
    schema::create_table_with(&client, &table, stream)
        .await
        .expect("create table");
    let store = Store::new(client, table);
    store
        .put_app_key(APP_KEY, "tests", 0)
        .await
        .expect("app key");
    private_targets(App::new(store))
}

/// The tests' webhook receivers listen on 127.0.0.1, as under `make run`
/// (`ALLOW_PRIVATE_WEBHOOK_TARGETS=true`).
fn private_targets(mut app: App) -> App {
    app.webhook_targets = shared::outbound::target::Targets::PublicAndPrivate;
    app
}

/// The same table seen through another client, as another Lambda instance would.
pub async fn another_instance(app: &App) -> App {
    private_targets(App::new(Store::new(
        client_from_env().await,
        app.store.table(),
    )))
}

/// Every DynamoDB request an instance sends (`{X-Amz-Target} {JSON body}`),
/// for tests of what reaches the database rather than what the handler answers.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("request log lock"))
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or("?");
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        self.0
            .lock()
            .map_err(|_| "request log lock poisoned")?
            .push(format!("{target} {body}"));
        Ok(())
    }
}

/// Another instance on the same table whose DynamoDB requests are recorded.
pub async fn recorded_instance(app: &App) -> (App, RequestLog) {
    let log = RequestLog::default();
    let client = client_from_env().await;
    let config = client
        .config()
        .to_builder()
        .interceptor(log.clone())
        .build();
    let store = Store::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        app.store.table(),
    );
    (private_targets(App::new(store)), log)
}

/// Log lines written while a test runs, in the service's production format
/// (JSON, current span's fields on each line, level `info`). Install with
/// [`CapturedLogs::install`] on a current-thread runtime (`#[tokio::test]`).
#[derive(Clone, Debug, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

/// This thread's logs captured until the guard is dropped. A test binary
/// whose tests read the API span's fields calls this first in every test:
/// a test thread without a subscriber would let tracing cache the span's
/// callsite as disabled (`Interest::never`), for every thread, at times.
pub fn capture_logs() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let logs = CapturedLogs::default();
    let guard = logs.install();
    (logs, guard)
}

impl CapturedLogs {
    /// Captures this thread's logs until the guard is dropped.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(false)
            .without_time()
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log lock poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

pub async fn api(app: &App, method: &str, path: &str, body: Option<Value>) -> Outbound {
    let mut req = Inbound::new(method, path).header("authorization", &format!("Bearer {APP_KEY}"));
    if let Some(b) = body {
        req = req.json_body(b.to_string());
    }
    call_api(app, req).await
}

/// The management handler, with its answer checked against the OpenAPI
/// document (as every helper here does).
pub async fn call_api(app: &App, req: Inbound) -> Outbound {
    let app = &iam::as_function(app, iam::Function::Management);
    // Boxed, like the push handler below: a test that drives many paths in
    // one async fn would otherwise nest every handler's future in its own
    // type, past the compiler's layout query depth.
    let out = Box::pin(shared::api::handle_api(app, req.clone())).await;
    openapi::assert_conforms(&openapi::Exchange::of(&req, &out));
    out
}

/// A push handler, with its answer checked against the OpenAPI document.
pub async fn call_push(app: &App, kind: IntegrationKind, req: Inbound) -> Outbound {
    let app = &iam::as_function(app, iam::Function::Push);
    let out = Box::pin(shared::intake::push::handle_push(app, kind, req.clone())).await;
    openapi::assert_conforms(&openapi::Exchange::of(&req, &out));
    out
}

/// `data` of a successful API call; panics with the body otherwise.
pub async fn api_ok(app: &App, method: &str, path: &str, body: Option<Value>) -> Value {
    let out = api(app, method, path, body).await;
    assert_eq!(out.status, 200, "{method} {path}: {}", out.body);
    out.json()["data"].clone()
}

pub struct Setup {
    pub channel_id: String,
    pub integration_key: String,
}

pub async fn channel_with_integration(app: &App, kind: &str, channel: Value) -> Setup {
    let ch = api_ok(app, "POST", "/api/channels", Some(channel)).await;
    let channel_id = ch["channel_id"].as_str().expect("channel_id").to_string();
    let integ = api_ok(
        app,
        "POST",
        "/api/integrations",
        // Tests push far faster than the default limit; rate limits have their own tests.
        Some(json!({"name": format!("{kind} test"), "kind": kind, "channel_id": channel_id, "rate_limit": UNLIMITED.clone()})),
    )
    .await;
    Setup {
        channel_id,
        integration_key: integ["integration_key"].as_str().expect("key").to_string(),
    }
}

pub async fn standard_setup(app: &App) -> Setup {
    channel_with_integration(app, "standard", json!({"name": "ops"})).await
}

pub async fn push_raw(
    app: &App,
    kind: IntegrationKind,
    key: &str,
    content_type: &str,
    body: &str,
) -> Outbound {
    let req = Inbound::new(
        "POST",
        &format!("/event/push/alert/{}?integration_key={key}", kind.slug()),
    )
    .header("content-type", content_type);
    let mut req = req;
    req.body = body.as_bytes().to_vec();
    call_push(app, kind, req).await
}

pub async fn push(app: &App, key: &str, body: &Value) -> Outbound {
    push_raw(
        app,
        IntegrationKind::Standard,
        key,
        "application/json",
        &body.to_string(),
    )
    .await
}

/// Push and expect 200; returns `data`.
pub async fn push_ok(app: &App, key: &str, body: &Value) -> Value {
    let out = push(app, key, body).await;
    assert_eq!(out.status, 200, "{}", out.body);
    out.json()["data"].clone()
}

pub async fn incidents(app: &App, query: &str) -> Vec<Value> {
    let data = api_ok(app, "GET", &format!("/api/incidents?{query}"), None).await;
    data["items"].as_array().cloned().unwrap_or_default()
}

/// Every item in the table (tests only: the service itself never scans).
pub async fn scan_all(app: &App) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = app
            .store
            .client()
            .scan()
            .table_name(app.store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        out.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => return out,
        }
    }
}

pub fn sk_of(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> String {
    item.get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
        + "|"
        + item
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .unwrap_or_default()
}

/// The table without the rate limiter's counters: the alert and incident
/// state, for "accepted but changed nothing" checks (an accepted request
/// still counts toward its integration's rate limit).
pub async fn state_dump(app: &App) -> Vec<String> {
    let mut rows: Vec<String> = scan_all(app)
        .await
        .iter()
        .filter(|i| {
            !i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk.starts_with("RL#"))
        })
        .map(canonical)
        .collect();
    rows.sort();
    rows
}

/// A canonical dump of the whole table, for "nothing was written" checks.
pub async fn table_dump(app: &App) -> Vec<String> {
    let mut rows: Vec<String> = scan_all(app).await.iter().map(canonical).collect();
    rows.sort();
    rows
}

fn canonical_value(v: &aws_sdk_dynamodb::types::AttributeValue) -> String {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::M(m) => canonical(m),
        A::L(l) => format!(
            "[{}]",
            l.iter().map(canonical_value).collect::<Vec<_>>().join(",")
        ),
        A::Ss(s) => {
            let mut s = s.clone();
            s.sort();
            format!("SS{s:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Attribute maps with sorted keys, so two dumps of the same items compare equal.
pub fn canonical(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> String {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}={}", canonical_value(&item[*k])))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Feeds the notify core with the table's stream, as Lambda would (tests).
pub struct Pump {
    pub stream: shared::outbound::stream::LocalStream,
    pub notifier: shared::outbound::notify::Notifier,
}

impl Pump {
    /// From the table's first record; the production delivery policy with a
    /// short backoff (50 ms, 100 ms).
    pub async fn new(app: &App) -> Pump {
        let stream = shared::outbound::stream::LocalStream::open(
            app.store.client(),
            app.store.table(),
            true,
        )
        .await
        .expect("the table has a stream");
        let policy = shared::outbound::service::Policy {
            backoff: std::time::Duration::from_millis(50),
            ..Default::default()
        };
        let notifier = shared::outbound::notify::Notifier {
            store: iam::as_function(app, iam::Function::Notify).store,
            // The receivers of the tests listen on 127.0.0.1.
            sender: shared::outbound::service::Sender::new(
                policy,
                shared::outbound::target::Targets::PublicAndPrivate,
            ),
            ctx: shared::outbound::kinds::Context {
                public_base_url: Some("https://alerts.example".into()),
            },
            // SPEC 11's schedule 100,000 times faster (30 s -> 0.3 ms, an
            // hour -> 36 ms, 24 h -> 0.86 s): the value
            // `DELIVERY_RETRY_SPEEDUP=100000` would set.
            schedule: shared::outbound::retry::RetrySchedule { speedup: 100_000 },
        };
        Pump { stream, notifier }
    }

    /// The records written since the last call.
    pub async fn records(&mut self) -> Vec<aws_lambda_events::event::dynamodb::EventRecord> {
        let values = self.stream.poll().await.expect("read the stream");
        shared::outbound::stream::records(&values)
    }

    /// One scheduled run: the deliveries due for a retry.
    pub async fn retry_due(&self) -> shared::outbound::notify::RunReport {
        self.notifier.retry_due().await.expect("the scheduled run")
    }

    /// Lanes with deliveries waiting, due or not (one Query of the due index).
    pub async fn waiting(&self) -> usize {
        self.notifier
            .store
            .due_lanes(i64::MAX / 1000, 1000)
            .await
            .expect("the due index")
            .len()
    }

    /// The stream and the scheduled runs, every `every`, until nothing waits
    /// or `within` has passed; returns whether nothing waits.
    pub async fn settle(
        &mut self,
        every: std::time::Duration,
        within: std::time::Duration,
    ) -> bool {
        let started = std::time::Instant::now();
        loop {
            self.run().await;
            self.retry_due().await;
            if self.waiting().await == 0 {
                return true;
            }
            if started.elapsed() > within {
                return false;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Process everything on the stream, round after round (a storm's record
    /// is itself a change), until it is quiet. Returns every batch's report.
    pub async fn run(&mut self) -> Vec<shared::outbound::notify::BatchReport> {
        let mut reports = Vec::new();
        for _ in 0..10 {
            let records = self.records().await;
            if records.is_empty() {
                break;
            }
            reports.push(self.notifier.process(&records).await);
        }
        reports
    }
}
