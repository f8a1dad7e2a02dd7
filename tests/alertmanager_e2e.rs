//! The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`,
//! which scripts/setup.sh installs) posting to the real push handler behind
//! a local HTTP front: its `webhook_configs` to `prometheus`, its
//! `pagerduty_configs` (`url` + `routing_key`) to `pagerduty`. Alerts are
//! fired and resolved through Alertmanager's own API; incidents must open
//! and close in both channels.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::*;
use serde_json::{json, Value};

/// Stops Alertmanager however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.0 request to Alertmanager; (status, body).
async fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let text = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, text))
}

fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Civil from days (Howard Hinnant), the inverse of the parser's days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn incidents_of(app: &shared::app::App, channel_id: &str) -> Vec<Value> {
    incidents(app, &format!("channel_id={channel_id}")).await
}

/// Poll until `check` holds for the channel's incidents, or fail after `limit`.
async fn wait_for(
    app: &shared::app::App,
    channel_id: &str,
    what: &str,
    limit: Duration,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let items = incidents_of(app, channel_id).await;
        if check(&items) {
            return items;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; incidents: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_fires_and_resolves_through_webhook_and_pagerduty() {
    let app = test_app().await;
    let webhook = channel_with_integration(&app, "prometheus", json!({"name": "am-webhook"})).await;
    let pagerduty =
        channel_with_integration(&app, "pagerduty", json!({"name": "am-pagerduty"})).await;
    let front = http_front::start(another_instance(&app).await).await;

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("alertmanager-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        r#"global:
  resolve_timeout: 5s
route:
  receiver: intake
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: intake
    webhook_configs:
      - url: '{base}/event/push/alert/prometheus?integration_key={webhook_key}'
        send_resolved: true
    pagerduty_configs:
      - url: '{base}/event/push/alert/pagerduty'
        routing_key: '{pagerduty_key}'
        send_resolved: true
"#,
        base = front.base_url,
        webhook_key = webhook.integration_key,
        pagerduty_key = pagerduty.integration_key,
    );
    std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
    let _alertmanager = Running(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus-alertmanager (scripts/setup.sh installs the Debian package)"),
    );
    let start = Instant::now();
    while !matches!(http(port, "GET", "/-/ready", "").await, Ok((200, _))) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Alertmanager did not start; see {}",
            dir.join("alertmanager.log").display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let alert = |ends: u64| {
        json!([{
            "labels": {"alertname": "DiskFull", "instance": "db-01:9100", "severity": "critical"},
            "annotations": {"summary": "Disk full on db-01"},
            "startsAt": rfc3339(now_secs() - 5),
            "endsAt": rfc3339(ends),
            "generatorURL": "http://prometheus:9090/graph"
        }])
        .to_string()
    };
    let (status, body) = http(port, "POST", "/api/v2/alerts", &alert(now_secs() + 3600))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    let limit = Duration::from_secs(20);
    let opened = wait_for(
        &app,
        &webhook.channel_id,
        "webhook incident opens",
        limit,
        |items| items.iter().any(|i| i["status"] == "Triggered"),
    )
    .await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["severity"], "Critical");
    assert_eq!(opened[0]["title"], "DiskFull: Disk full on db-01");
    assert_eq!(opened[0]["labels"]["instance"], "db-01:9100");
    let paged = wait_for(
        &app,
        &pagerduty.channel_id,
        "pagerduty incident opens",
        limit,
        |items| items.iter().any(|i| i["status"] == "Triggered"),
    )
    .await;
    assert_eq!(paged.len(), 1);
    // Alertmanager's pagerduty_configs default severity is `error`.
    assert_eq!(paged[0]["severity"], "Critical");
    assert!(paged[0]["title"].as_str().unwrap().contains("DiskFull"));

    // Resolved through Alertmanager's API: an end time in the past.
    let (status, body) = http(port, "POST", "/api/v2/alerts", &alert(now_secs() - 1))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for(
        &app,
        &webhook.channel_id,
        "webhook incident closes",
        limit,
        |items| items.len() == 1 && items[0]["status"] == "Closed",
    )
    .await;
    wait_for(
        &app,
        &pagerduty.channel_id,
        "pagerduty incident closes",
        limit,
        |items| items.len() == 1 && items[0]["status"] == "Closed",
    )
    .await;

    // Every post Alertmanager made was accepted; PagerDuty ones in PagerDuty's shape.
    let served = front.served();
    assert!(served.len() >= 4, "{served:?}");
    for s in &served {
        assert!(s.status == 200 || s.status == 202, "{s:?}");
        if s.path.contains("/pagerduty") {
            assert_eq!(s.status, 202);
            let answer: Value = serde_json::from_str(&s.answer).unwrap();
            assert_eq!(answer["status"], "success");
        }
    }
}
