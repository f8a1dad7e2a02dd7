//! The Zabbix media type the repository ships (`infra/zabbix/`), its script
//! run as Zabbix runs it, against the real push handler behind a local HTTP
//! front: under Node, and under Duktape itself (Debian's libduktape, through
//! a small C harness built here with the system `cc`), so that ES5-only
//! syntax is proven. Both of Zabbix's HTTP objects are exercised:
//! `CurlHttpRequest` (5.0) and `HttpRequest` (5.4+).

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::*;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn script_path() -> PathBuf {
    root().join("infra/zabbix/alert-intake.js")
}

/// The `script: |` block of the export, dedented.
fn exported_script() -> String {
    let yaml = std::fs::read_to_string(root().join("infra/zabbix/alert_intake_media_type.yaml"))
        .expect("media type export");
    let mut lines = yaml.lines().skip_while(|l| *l != "      script: |").skip(1);
    let mut out = String::new();
    for line in lines.by_ref() {
        if !line.is_empty() && !line.starts_with("        ") {
            break;
        }
        out.push_str(line.strip_prefix("        ").unwrap_or(""));
        out.push('\n');
    }
    out
}

#[test]
fn the_export_is_format_5_0_and_embeds_the_script() {
    let yaml =
        std::fs::read_to_string(root().join("infra/zabbix/alert_intake_media_type.yaml")).unwrap();
    assert!(yaml.starts_with("zabbix_export:\n  version: '5.0'\n"));
    assert!(yaml.contains("      type: WEBHOOK\n"));
    for mode in ["PROBLEM", "RECOVERY", "UPDATE"] {
        assert!(yaml.contains(&format!("operation_mode: {mode}")), "{mode}");
    }
    let script = std::fs::read_to_string(script_path()).unwrap();
    assert_eq!(exported_script(), script, "run infra/zabbix/build.py");
    // What Duktape would refuse, caught early with a readable message (the
    // Duktape run below is the proof).
    for es6 in ["=>", "let ", "const ", "`", ".includes("] {
        assert!(!script.contains(es6), "ES5 only: found {es6:?}");
    }
}

/// The C harness, built once per test binary into the target folder.
fn duktape_harness() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("duktape-harness");
    let status = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(root().join("infra/zabbix/test/duktape-harness.c"))
        .args(["-lduktape", "-lm"])
        .status()
        .expect("cc (scripts/setup.sh installs duktape-dev)");
    assert!(
        status.success(),
        "building the Duktape harness failed: is duktape-dev installed? (scripts/setup.sh)"
    );
    out
}

/// Zabbix's macros as a Zabbix server would resolve them for one operation.
fn params(url: &str, value: &str, update: &str) -> Value {
    json!({
        "URL": url,
        "alert_message": "Problem started at 08:20:00 on 2026.11.20\r\nHost: web-01",
        "alert_subject": "Problem: High CPU utilization",
        "event_date": "2026.11.20",
        "event_time": "08:20:00",
        "event_id": "12877",
        "event_name": "High CPU utilization (over 90% for 5m)",
        "event_nseverity": "4",
        "event_severity": "High",
        "event_recovery_date": if value == "0" { "2026.11.20" } else { "{EVENT.RECOVERY.DATE}" },
        "event_recovery_time": if value == "0" { "08:50:00" } else { "{EVENT.RECOVERY.TIME}" },
        "event_tags": "[{\"tag\":\"scope\",\"value\":\"performance\"},{\"tag\":\"component\",\"value\":\"cpu\"}]",
        "event_update_status": update,
        "event_value": value,
        "host_ip": "10.0.1.7",
        "host_name": "web-01",
        "item_value": "97.3 %",
        "trigger_id": "23641",
        "zabbix_url": "{$ZABBIX.URL}",
    })
}

/// Run the script under `engine` (node or the Duktape harness); its stdout.
fn run(engine: &[&str], params: &Value, flavour: &str) -> (bool, String) {
    let file = tempfile_path(&format!("zabbix-params-{}.json", std::process::id()));
    std::fs::write(&file, params.to_string()).unwrap();
    let out = Command::new(engine[0])
        .args(&engine[1..])
        .arg(script_path())
        .arg(&file)
        .arg(flavour)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", engine[0]));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn tempfile_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_type_script_pushes_problem_update_recovery() {
    let app = test_app().await;
    let s = channel_with_integration(&app, "zabbix", json!({"name": "dc"})).await;
    let front = http_front::start(another_instance(&app).await).await;
    let url = format!(
        "{}/event/push/alert/zabbix?integration_key={}",
        front.base_url, s.integration_key
    );
    let harness = duktape_harness();
    let duktape = [harness.to_str().unwrap()];
    let node_harness = root().join("infra/zabbix/test/node-harness.js");
    let node = ["node", node_harness.to_str().unwrap()];

    // Each run blocks on its sender; the front answers on the runtime's other thread.
    let problem = params(&url, "1", "0");
    let (ok, out) = tokio::task::block_in_place(|| run(&node, &problem, "curl"));
    assert!(ok && out == "OK", "node, CurlHttpRequest: {out}");
    let (ok, out) = tokio::task::block_in_place(|| run(&duktape, &problem, "http"));
    assert!(ok && out == "OK", "duktape, HttpRequest: {out}");
    let served = front.served();
    let first: Value = serde_json::from_str(&served[0].answer).unwrap();
    assert_eq!(
        first["data"]["outcome"], "new_incident",
        "{}",
        served[0].answer
    );
    assert_eq!(first["data"]["alert_key"], "zabbix:12877");
    // The same problem again: the same event time, a retry.
    let again: Value = serde_json::from_str(&served[1].answer).unwrap();
    assert_eq!(again["data"]["outcome"], "already_applied");
    // Unresolved macros never reach the payload.
    assert!(
        !served[0].body.contains("{EVENT.RECOVERY"),
        "{}",
        served[0].body
    );
    assert!(!served[0].body.contains("ZABBIX.URL"), "{}", served[0].body);
    let incident_id = first["data"]["incident_id"].as_str().unwrap().to_string();
    let inc = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(inc["severity"], "Critical");
    assert_eq!(inc["labels"]["component"], "cpu");

    let update = params(&url, "1", "1");
    let (ok, out) = tokio::task::block_in_place(|| run(&duktape, &update, "curl"));
    assert!(ok, "duktape update: {out}");
    let recovery = params(&url, "0", "0");
    let (ok, out) = tokio::task::block_in_place(|| run(&node, &recovery, "http"));
    assert!(ok, "node recovery: {out}");
    let served = front.served();
    let outcomes: Vec<Value> = served
        .iter()
        .map(|s| serde_json::from_str::<Value>(&s.answer).unwrap()["data"]["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            json!("new_incident"),
            json!("already_applied"),
            json!("ignored"),
            json!("recovered")
        ]
    );
    let inc = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(inc["status"], "Closed");

    // A refused push makes the script throw, so Zabbix shows the failure.
    let bad = params(
        &url.replace(&s.integration_key, "0".repeat(32).as_str()),
        "1",
        "0",
    );
    for engine in [&duktape[..], &node[..]] {
        let (ok, out) = tokio::task::block_in_place(|| run(engine, &bad, "curl"));
        assert!(!ok && out.contains("HTTP 401"), "{engine:?}: {out}");
    }
}
