//! The console (SPEC 12) in a real headless browser: Debian's `chromium`,
//! driven through `chromium-driver`'s WebDriver HTTP API, against the real
//! management and push handlers on DynamoDB Local, served by the tests' HTTP
//! front (`/console`, `/api/...`, `/event/push/alert/...`, as API Gateway
//! routes them). It signs in (a wrong key first: the refusal is shown in
//! words), sees an incident a push created, opens it and its alert's events,
//! acknowledges, quick-silences, comments and resolves it, checks each step in
//! the table, creates an integration and pushes to the URL the page shows.
//! Every answer the page received is checked against the OpenAPI document.
//!
//! `CONSOLE_SCREENSHOTS=docs cargo test -p integration-tests --test
//! console_browser` saves the screenshots of the README and docs/api.md into docs/.
//!
//! Without chromium and chromedriver the test says so and passes, unless
//! `CONSOLE_BROWSER_REQUIRED` is set: `make test` installs both
//! (scripts/setup.sh test) and sets it, so there it always runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use integration_tests::*;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(20);
/// The flags that run this machine's chromium headless and quiet (no
/// sandbox as root in a container, no GPU, no calls home).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1300",
];

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`):
/// status and body. Enough for chromedriver and for a push to the front.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("send {method} {path}: {e}"))?;
    // Read the head, then exactly Content-Length bytes: chromedriver answers
    // `Connection: close` but may keep the socket open.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (head_len, length) = loop {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("read {method} {path}: {e}"))?;
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            break (end + 4, length);
        }
        if n == 0 {
            return Err(format!(
                "{method} {path}: the connection closed before an HTTP head"
            ));
        }
    };
    loop {
        if length.is_some_and(|len| raw.len() >= head_len + len) {
            break;
        }
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("read {method} {path}: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..head_len]).into_owned();
    let rest = String::from_utf8_lossy(&raw[head_len..]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    Ok((status, if chunked { unchunk(&rest) } else { rest }))
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// chromedriver and the chromium session it drives; both end with the test,
/// whichever way it ends.
struct Browser {
    port: u16,
    driver: Child,
    session: String,
    profile: PathBuf,
    screenshots: Option<PathBuf>,
}

impl Browser {
    fn start(chromedriver: &Path, chromium: Option<&Path>) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let profile = std::env::temp_dir().join(format!("console-browser-{}", random_hex(8)));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let log = profile.join("chromedriver.log");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser {
            port,
            driver,
            session: String::new(),
            profile,
            screenshots: std::env::var_os("CONSOLE_SCREENSHOTS").map(|dir| {
                let root = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .expect("workspace");
                root.join(dir)
            }),
        };
        let deadline = Instant::now() + WAIT;
        while !matches!(http(port, "GET", "/status", None), Ok((200, ref body)) if body.contains("\"ready\":true"))
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser.profile.join("chromium").display()
        ));
        let mut options = json!({ "args": args });
        if let Some(binary) = chromium {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let session = browser.command("POST", "/session", Some(capabilities)).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
            panic!("chromium did not start: {e}\nchromedriver log (last lines, newest first):\n{tail}")
        });
        browser.session = session["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        browser
    }

    /// A WebDriver command; `value` of the answer, or the driver's error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (status, text) = http(self.port, method, path, body.as_ref())?;
        let answer: Value =
            serde_json::from_str(&text).map_err(|e| format!("{path}: {e}: {text}"))?;
        let value = answer["value"].clone();
        if status >= 400 {
            return Err(format!(
                "{method} {path}: HTTP {status}: {} {}",
                value["error"], value["message"]
            ));
        }
        Ok(value)
    }

    fn session_command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        self.command(method, &full, body)
            .unwrap_or_else(|e| panic!("{e}\npage text:\n{}", self.page_text()))
    }

    fn page_text(&self) -> String {
        let full = format!("/session/{}/execute/sync", self.session);
        self.command(
            "POST",
            &full,
            Some(json!({"script": "return document.body.innerText", "args": []})),
        )
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
    }

    fn script(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Waits until `script` returns something truthy, and returns it.
    fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.script(script, args.clone());
            let truthy =
                !matches!(value, Value::Null | Value::Bool(false)) && value.as_str() != Some("");
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {WAIT:?} for {what}; page text:\n{}",
                    self.page_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the element's text contains `text`.
    fn wait_text(&self, css: &str, text: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); return e && e.textContent.includes(arguments[1]) ? e.textContent : null";
        self.wait_for(
            &format!("{css} to show {text:?}"),
            script,
            json!([css, text]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    fn element(&self, css: &str) -> String {
        self.wait_for(
            &format!("{css} to appear"),
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        );
        let found = self.session_command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT_KEY].as_str().expect("element id").to_string()
    }

    /// Clicks the element `css` names. A list the page re-renders after an
    /// action (a rule moved, then the rules read again) can replace the
    /// element between finding and clicking it: find it again then.
    fn click(&self, css: &str) {
        for _ in 0..20 {
            let id = self.element(css);
            let path = format!("/session/{}/element/{id}/click", self.session);
            match self.command("POST", &path, Some(json!({}))) {
                Ok(_) => return,
                Err(e) if e.contains("stale element reference") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{e}\npage text:\n{}", self.page_text()),
            }
        }
        panic!("{css} went stale 20 times in a row");
    }

    /// Types into a field as a keyboard would (`\u{E007}` is Enter).
    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.session_command("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.session_command(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    fn goto(&self, url: &str) {
        self.session_command("POST", "/url", Some(json!({"url": url})));
    }

    /// Every form control has a name a screen reader can say, and nothing
    /// clickable is a bare element without a role.
    fn assert_accessible(&self, page: &str) {
        let unlabelled = self.script(
            "return [...document.querySelectorAll('input, select, textarea')].filter(e => !e.closest('[hidden]') && !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id || e.outerHTML)",
            json!([]),
        );
        assert_eq!(unlabelled, json!([]), "{page}: controls without a label");
        let fake_buttons = self.script("return document.querySelectorAll('[onclick], a:not([href]), div[tabindex], span[tabindex]').length", json!([]));
        assert_eq!(
            fake_buttons,
            json!(0),
            "{page}: clickable elements that are not buttons or links"
        );
    }

    /// Saves the viewport, scrolled to `from` (a selector) or to the top.
    fn screenshot(&self, name: &str, from: Option<&str>) {
        let Some(dir) = &self.screenshots else {
            return;
        };
        // No focus ring in the picture; the part of the page worth showing.
        self.script(
            "document.activeElement && document.activeElement.blur(); const e = arguments[0] && document.querySelector(arguments[0]); if (e) e.scrollIntoView(); else window.scrollTo(0, 0)",
            json!([from]),
        );
        let png = self.session_command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 screenshot"))
            .expect("PNG");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(name), bytes).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn random_hex(bytes: usize) -> String {
    shared::hashing::random_hex(bytes).expect("randomness")
}

/// chromedriver and chromium, or `None` (the test then skips, saying why)
/// when they are missing and `CONSOLE_BROWSER_REQUIRED` is not set.
fn browser_tools(test: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    let Some(chromedriver) = on_path(&["chromedriver"]) else {
        assert!(
            std::env::var_os("CONSOLE_BROWSER_REQUIRED").is_none(),
            "CONSOLE_BROWSER_REQUIRED is set but chromedriver is not on PATH: scripts/setup.sh test installs Debian's chromium and chromium-driver"
        );
        eprintln!("SKIPPED {test}: chromedriver is not on PATH (scripts/setup.sh test installs Debian's chromium and chromium-driver; make test does)");
        return None;
    };
    Some((
        chromedriver,
        on_path(&["chromium", "chromium-browser", "google-chrome"]),
    ))
}

/// Signs in on a fresh page of the console.
fn sign_in(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/console"));
    browser.type_into("#app-key", &format!("{APP_KEY}\u{E007}"));
    browser.wait_for(
        "the incident list",
        "return document.querySelector('#incidents') !== null",
        json!([]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let started = Instant::now();
    let Some((chromedriver, chromium)) = browser_tools("the_console_in_a_real_browser") else {
        return;
    };

    // A streamed table: the webhook the page creates is fed by the notify core.
    let app = test_app_with_stream().await;
    let setup = channel_with_integration(&app, "standard", json!({"name": "payments"})).await;
    let title = "Checkout p99 latency above 2s";
    let pushed = push_ok(
        &app,
        &setup.integration_key,
        &json!({"title_rule": title, "event_status": "Critical", "alert_key": "checkout-latency",
                "description": "p99 of POST /checkout at 2.4s for 5 minutes",
                "labels": {"service": "checkout", "host": "web-01", "env": "prod"}}),
    )
    .await;
    push_ok(
        &app,
        &setup.integration_key,
        &json!({"title_rule": "Disk 91% full on db-02", "event_status": "Warning", "alert_key": "db-02-disk",
                "labels": {"service": "orders-db", "host": "db-02", "env": "prod"}}),
    )
    .await;
    let incident_id = pushed["incident_id"]
        .as_str()
        .expect("incident")
        .to_string();
    let front = http_front::start(app.clone()).await;
    let base = front.base_url.clone();
    let front_port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("front port");
    let slack = receiver::Receiver::start(receiver::Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    pump.notifier.ctx.public_base_url = Some(base.clone());

    let browser = Browser::start(&chromedriver, chromium.as_deref());
    browser.goto(&format!("{base}/console"));

    // Sign in with the keyboard; a wrong key first, refused in words.
    browser.type_into("#app-key", "not-the-key-0123456789abcdef\u{E007}");
    browser.wait_text(
        "#flash",
        "The app key was not accepted: Authorization: unknown app key",
    );
    browser.assert_accessible("sign-in");
    browser.type_into("#app-key", &format!("{APP_KEY}\u{E007}"));
    browser.wait_text("#incidents tbody", title);
    browser.wait_text("#incidents tbody", "Disk 91% full on db-02");
    let stored = browser.script(
        "return sessionStorage.length === 1 && localStorage.length === 0",
        json!([]),
    );
    assert_eq!(
        stored,
        json!(true),
        "the app key lives in sessionStorage only"
    );
    browser.assert_accessible("incidents");
    browser.screenshot("console-incidents.png", None);

    // A Slack webhook, made in the page, before the incident changes.
    browser.click("#nav a[data-section='webhooks']");
    browser.type_into("#webhook-name", "On-call Slack");
    browser.type_into("#webhook-url", &slack.url);
    browser.click("#webhook-kind option[value='slack']");
    browser.click("#webhook-create button[type=submit]");
    browser.wait_text("#notice", "Webhook On-call Slack created.");
    browser.wait_text("#deliveries", "No deliveries");
    browser.assert_accessible("webhook");
    let webhook_page = browser.script("return location.hash", json!([]));

    // The incident page: its alert, the alert's events, the timeline.
    browser.click("#nav a[data-section='incidents']");
    browser.click(&format!(
        "a.incident-link[href='#/incidents/{incident_id}']"
    ));
    browser.wait_text("#incident-title", title);
    browser.wait_text("#timeline", "Incident opened");
    browser.click("#alerts .events-toggle");
    browser.wait_text("#alerts", "Events of alert checkout-latency");
    browser.assert_accessible("incident");

    let status_of = |app: &shared::app::App| {
        let app = app.clone();
        let id = incident_id.clone();
        async move { api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await["status"].clone() }
    };
    browser.click("#ack");
    browser.wait_text("#incident-status", "Processing");
    browser.wait_text("#timeline", "Acknowledged");
    assert_eq!(status_of(&app).await, "Processing");

    browser.type_into("#silence-minutes", "30");
    browser.click("#silence");
    browser.wait_text("#notice", "Silenced for 30 minutes");
    let rules = api_ok(
        &app,
        "GET",
        &format!("/api/channels/{}/silence-rules", setup.channel_id),
        None,
    )
    .await;
    let quick = rules["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|r| r["rule_id"] == format!("qs-{incident_id}"))
        })
        .expect("the quick silence rule");
    assert_eq!(quick["active"], true);
    assert_eq!(
        quick["time"]["end"].as_i64().unwrap() - quick["time"]["start"].as_i64().unwrap(),
        30 * 60
    );

    browser.type_into("#comment-text", "Rolling back the 14:02 deploy");
    browser.click("#comment-add");
    browser.wait_text("#timeline", "Comment: Rolling back the 14:02 deploy");
    browser.click("#alerts .events-toggle");
    browser.wait_text("#alerts", "Events of alert checkout-latency");
    browser.screenshot("console-incident.png", None);

    browser.click("#resolve");
    browser.wait_text("#incident-status", "Closed");
    browser.wait_text("#timeline", "Resolved by hand");
    assert_eq!(status_of(&app).await, "Closed");

    // The notify core delivers the changes; the Slack message links to the
    // console's incident page, and that link opens it.
    pump.run().await;
    let messages: Vec<String> = slack
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let marker = format!("{base}/console#/incidents/{incident_id}");
    assert!(
        messages.iter().any(|m| m.contains(&marker)),
        "no Slack message links to {marker}: {messages:?}"
    );
    browser.goto(&marker);
    browser.wait_text("#incident-title", title);
    browser.wait_text("#incident-status", "Closed");

    // Delivery history and resend.
    browser.goto(&format!(
        "{base}/console{}",
        webhook_page.as_str().expect("hash")
    ));
    browser.wait_text("#deliveries", "i_rslv");
    browser.wait_text("#deliveries", "succeeded");
    browser.click("#deliveries tbody button");
    browser.wait_text("#notice", "Resend queued as delivery");
    browser.screenshot("console-webhook.png", None);
    let before = slack.received().len();
    pump.run().await;
    assert_eq!(
        slack.received().len(),
        before + 1,
        "the resend was delivered"
    );

    // A channel's settings and rule lists.
    browser.click("#nav a[data-section='channels']");
    browser.click(&format!("a[href='#/channels/{}']", setup.channel_id));
    browser.wait_text("#silence-rules", "Quick silence");
    browser.assert_accessible("channel");
    browser.screenshot("console-channel.png", Some("#drop-h"));

    // Integrations: a refusal in words, then the push URL, shown once, that works.
    browser.click("#nav a[data-section='integrations']");
    browser.click("#integration-create button[type=submit]");
    browser.wait_text(
        "#flash",
        "The service refused the request: name: must be 1 to 100 characters",
    );
    browser.type_into("#integration-name", "Checkout synthetic checks");
    browser.click("#integration-create button[type=submit]");
    let push_url = browser
        .wait_for(
            "the push URL",
            "const e = document.getElementById('push-url'); return e && e.value",
            json!([]),
        )
        .as_str()
        .expect("push URL")
        .to_string();
    let prefix = format!("{base}/event/push/alert/standard?integration_key=");
    assert!(push_url.starts_with(&prefix), "{push_url}");
    browser.wait_text("#push-curl", &format!("curl -sS -X POST '{push_url}'"));
    browser.assert_accessible("integrations");
    browser.screenshot("console-integration.png", None);
    let (status, answer) = http(
        front_port,
        "POST",
        &push_url[base.len()..],
        Some(&json!({"title_rule": "Test alert from the console", "event_status": "Warning", "alert_key": "console-test"})),
    )
    .expect("push to the URL the console showed");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"outcome\":\"new_incident\""), "{answer}");

    // Everything the page loaded came from this origin.
    let foreign = browser.script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(arguments[0]))",
        json!([base]),
    );
    assert_eq!(
        foreign,
        json!([]),
        "the console loaded something from elsewhere"
    );
    drop(browser);
    drop(front);
    eprintln!("console_browser: {:.1} s", started.elapsed().as_secs_f64());
}

/// The administration pages beyond the walk above: a channel made and set
/// up in the page (settings, a rule added, disabled, moved, edited, refused
/// in words, deleted), an integration's key rotated and its pipeline saved,
/// and an incident unacknowledged and reopened; each change checked in the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_pages_in_a_real_browser() {
    let Some((chromedriver, chromium)) = browser_tools("the_admin_pages_in_a_real_browser") else {
        return;
    };
    let app = test_app().await;
    let setup = standard_setup(&app).await;
    let pushed = push_ok(
        &app,
        &setup.integration_key,
        &json!({"title_rule": "queue backlog", "event_status": "Warning", "alert_key": "q"}),
    )
    .await;
    let incident_id = pushed["incident_id"]
        .as_str()
        .expect("incident")
        .to_string();
    let front = http_front::start(app.clone()).await;
    let base = front.base_url.clone();
    let browser = Browser::start(&chromedriver, chromium.as_deref());
    sign_in(&browser, &base);

    // A channel made in the page, then its settings.
    browser.click("#nav a[data-section='channels']");
    browser.type_into("#channel-name", "search");
    browser.click("#channel-create button[type=submit]");
    browser.wait_text("#notice", "Channel created.");
    browser.wait_text("h2", "Channel search");
    let channel_id = browser
        .script("return location.hash.split('/')[2]", json!([]))
        .as_str()
        .expect("channel id in the hash")
        .to_string();
    browser.click("#channel-settings select option[value='rules']");
    browser.type_into(
        "#channel-settings textarea",
        "labels.service, title\nseverity",
    );
    browser.type_into(
        "#channel-settings input[aria-describedby$='-hint']:not([type=checkbox])",
        "100, 10",
    );
    browser.click("#flapping-enabled");
    browser.click("#channel-settings button[type=submit]");
    browser.wait_text("#notice", "Channel saved.");
    let channel = api_ok(&app, "GET", &format!("/api/channels/{channel_id}"), None).await;
    assert_eq!(
        channel["grouping"]["equals"],
        json!([["labels.service", "title"], ["severity"]])
    );
    assert_eq!(channel["storm_thresholds"], json!([10, 100]));
    assert_eq!(channel["flapping"]["enabled"], true);

    // Drop rules: the prefilled example added, a second one, disabled,
    // moved, edited, refused in words, deleted.
    browser.click("#drop-rules + form button[type=submit]");
    browser.wait_text("#drop-rules", "Drop test hosts");
    browser.type_into("#drop-rule-json", r#"{"name": "drop canaries", "if": [[{"key": "labels.canary", "oper": "IN", "vals": ["*"]}]]}"#);
    browser.click("#drop-rules + form button[type=submit]");
    browser.wait_text("#drop-rules", "drop canaries");
    let rules_path = format!("/api/channels/{channel_id}/drop-rules");
    browser.click("#drop-rules tbody tr:nth-child(2) button:nth-child(3)");
    browser.wait_text("#notice", "moved up");
    let names = |rules: &Value| -> Vec<String> {
        rules["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&api_ok(&app, "GET", &rules_path, None).await),
        ["drop canaries", "Drop test hosts"]
    );
    browser.click("#drop-rules tbody tr:nth-child(1) button:nth-child(2)");
    browser.wait_text("#drop-rules tbody tr:nth-child(1)", "disabled");
    assert_eq!(
        api_ok(&app, "GET", &rules_path, None).await["items"][0]["enabled"],
        false
    );
    browser.click("#drop-rules tbody tr:nth-child(1) button:nth-child(1)");
    browser.type_into("#drop-rule-json", r#"{"name": "drop canaries", "if": [[{"key": "labels.canary", "oper": "IN", "vals": ["/([/"]}]]}"#);
    browser.click("#drop-rules + form button[type=submit]");
    browser.wait_text(
        "#flash",
        "The service refused the request: if[0][0].vals[0]:",
    );
    browser.type_into("#drop-rule-json", "{not json");
    browser.click("#drop-rules + form button[type=submit]");
    browser.wait_text("#flash", "Check the form: Rule (JSON): not valid JSON");
    browser.type_into(
        "#drop-rule-json",
        r#"{"name": "drop canary hosts", "enabled": true}"#,
    );
    browser.click("#drop-rules + form button[type=submit]");
    browser.wait_text("#drop-rules", "drop canary hosts");
    browser.click("#drop-rules tbody tr:nth-child(2) button.danger");
    browser.wait_text("#notice", "Rule Drop test hosts deleted.");
    assert_eq!(
        names(&api_ok(&app, "GET", &rules_path, None).await),
        ["drop canary hosts"]
    );

    // An integration's page: the key rotated (asked twice) and shown once,
    // the pipeline saved.
    let listed = api_ok(&app, "GET", "/api/integrations", None).await;
    let integration_id = listed["items"][0]["integration_id"]
        .as_str()
        .expect("listed")
        .to_string();
    browser.click("#nav a[data-section='integrations']");
    browser.click(&format!(
        "#integrations a[href='#/integrations/{integration_id}']"
    ));
    browser.click("#rotate-key");
    browser.wait_text("#rotate-key", "Really rotate");
    browser.click("#rotate-key");
    let url = browser
        .wait_for(
            "the new push URL",
            "const e = document.getElementById('push-url'); return e && e.value",
            json!([]),
        )
        .as_str()
        .expect("push URL")
        .to_string();
    let new_key = url.rsplit('=').next().expect("key").to_string();
    assert_ne!(new_key, setup.integration_key);
    assert_eq!(
        push(
            &app,
            &setup.integration_key,
            &json!({"title_rule": "x", "event_status": "Info"})
        )
        .await
        .status,
        401
    );
    push_ok(
        &app,
        &new_key,
        &json!({"title_rule": "x", "event_status": "Info"}),
    )
    .await;
    browser.type_into(
        "#pipeline-json",
        r#"[{"kind": "severity_reset", "severity": "Critical"}]"#,
    );
    browser.click(
        "#pipeline-json ~ div button[type=submit], form:has(#pipeline-json) button[type=submit]",
    );
    browser.wait_text("#notice", "Pipeline saved.");
    let pipeline = api_ok(
        &app,
        "GET",
        &format!("/api/integrations/{integration_id}/pipeline"),
        None,
    )
    .await;
    assert_eq!(pipeline["rules"][0]["severity"], "Critical");
    browser.assert_accessible("integration");

    // Unacknowledge and reopen.
    browser.goto(&format!("{base}/console#/incidents/{incident_id}"));
    browser.click("#ack");
    browser.click("#unack");
    browser.wait_text("#incident-status", "Triggered");
    browser.click("#resolve");
    browser.wait_text("#incident-status", "Closed");
    browser.type_into("#reopen-reason", "came back");
    browser.click("#reopen");
    browser.wait_text("#incident-status", "Triggered");
    browser.wait_text("#timeline", "Reopened: came back");
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(incident["status"], "Triggered");

    // Signing out forgets the key.
    browser.click("#sign-out");
    browser.wait_text("#notice", "Signed out");
    assert_eq!(
        browser.script("return sessionStorage.length", json!([])),
        json!(0)
    );
}

/// SPEC 15 in the console: an admin makes a viewer key on the App keys page
/// (role chosen there, the key shown once); signed in with it, the page
/// offers nothing the role may not do (no App keys, no incident actions, no
/// forms that change settings), and says which role the key has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_in_a_real_browser() {
    let Some((chromedriver, chromium)) = browser_tools("roles_in_a_real_browser") else {
        return;
    };
    let app = test_app().await;
    let setup = standard_setup(&app).await;
    let pushed = push_ok(
        &app,
        &setup.integration_key,
        &json!({"title_rule": "wallboard check", "event_status": "Warning", "alert_key": "w"}),
    )
    .await;
    let incident_id = pushed["incident_id"]
        .as_str()
        .expect("incident")
        .to_string();
    let front = http_front::start(app.clone()).await;
    let base = front.base_url.clone();
    let browser = Browser::start(&chromedriver, chromium.as_deref());
    sign_in(&browser, &base);
    browser.wait_text("#whoami", "admin key");

    // The admin makes a viewer key.
    browser.click("#nav a[data-section='keys']");
    browser.type_into("#key-name", "lobby wallboard");
    browser.click("#key-role option[value='viewer']");
    browser.click("#key-create button[type=submit]");
    browser.wait_text("#notice", "App key lobby wallboard (viewer) made");
    let key = browser
        .wait_for(
            "the new key",
            "const e = document.querySelector('#new-app-key'); return e && e.value",
            json!([]),
        )
        .as_str()
        .expect("the key")
        .to_string();
    let listed = api_ok(&app, "GET", "/api/app-keys", None).await;
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["name"] == "lobby wallboard" && k["role"] == "viewer"));

    // Signed in with it: reads, and nothing else is offered.
    browser.click("#sign-out");
    browser.goto(&format!("{base}/console"));
    browser.type_into("#app-key", &format!("{key}\u{E007}"));
    browser.wait_for(
        "the incident list",
        "return document.querySelector('#incidents') !== null",
        json!([]),
    );
    browser.wait_text("#whoami", "viewer key");
    let shown = |css: &str| {
        browser.script(
            "const e = document.querySelector(arguments[0]); return e !== null && e.offsetParent !== null",
            json!([css]),
        )
    };
    assert_eq!(shown("#nav a[data-section='keys']"), json!(false));
    assert_eq!(shown("#nav a[data-section='channels']"), json!(true));
    browser.goto(&format!("{base}/console#/incidents/{incident_id}"));
    browser.wait_text("#incident-title", "wallboard check");
    browser.element("#ack");
    assert_eq!(
        shown("#ack"),
        json!(false),
        "a viewer is offered Acknowledge"
    );
    assert_eq!(shown("#comment-add"), json!(false));
    assert_eq!(shown("#timeline"), json!(true));
    browser.goto(&format!("{base}/console#/channels"));
    browser.element("#channels");
    browser.element("#channel-create");
    assert_eq!(shown("#channel-create"), json!(false));
    browser.goto(&format!("{base}/console#/webhooks"));
    browser.element("#webhook-create");
    assert_eq!(shown("#webhook-create"), json!(false));
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(incident["status"], "Triggered", "nothing changed");
}

/// SPEC 14's console pages: members added in the page (a refused address
/// shown in words), a schedule created from JSON with its feed URL shown
/// once and serving the calendar, the 14-day picture (a row per layer and
/// one for the final schedule, each bar named, one colour per member), the
/// feed URL rotated, and a member still named by the schedule refused
/// deletion with the place in words, then deleted once the schedule is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_call_pages_in_a_real_browser() {
    let Some((chromedriver, chromium)) = browser_tools("the_on_call_pages_in_a_real_browser")
    else {
        return;
    };
    let app = test_app().await;
    let front = http_front::start(app.clone()).await;
    let base = front.base_url.clone();
    let browser = Browser::start(&chromedriver, chromium.as_deref());
    sign_in(&browser, &base);

    // Members: one added, one refused in words and then added.
    browser.click("#nav a[data-section='members']");
    browser.type_into("#member-name", "Alice");
    browser.type_into("#member-email", "alice@example.org");
    browser.type_into("#member-time_zone", "Europe/Berlin");
    browser.type_into("#member-slack_user_id", "U024BE7LH");
    browser.click("#member-create button[type=submit]");
    browser.wait_text("#notice", "Member Alice added.");
    browser.wait_text("#members", "alice@example.org");
    browser.type_into("#member-name", "Bob");
    browser.type_into("#member-email", "bob-at-example");
    browser.click("#member-create button[type=submit]");
    browser.wait_text(
        "#flash",
        "The service refused the request: email: must be an address",
    );
    browser.type_into("#member-email", "bob@example.org");
    browser.click("#member-create button[type=submit]");
    browser.wait_text("#notice", "Member Bob added.");
    browser.wait_text("#members", "bob@example.org");
    browser.assert_accessible("members");
    let members = api_ok(&app, "GET", "/api/members", None).await;
    let items = members["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // By name: two members made in the same second list in either order.
    let named = |name: &str| {
        items
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no member {name}: {members}"))
    };
    assert_eq!(named("Alice")["im"]["slack_user_id"], "U024BE7LH");
    let alice = &named("Alice")["member_id"].as_str().unwrap().to_string();
    let bob = &named("Bob")["member_id"].as_str().unwrap().to_string();

    // A schedule from JSON: daily Alice/Bob, Bob alone on a restricted
    // second layer, an override of Alice.
    let day = 86_400;
    let today = shared::domain::time::now_ms() / 1000 / day * day;
    let schedule = json!({"name": "Database primary", "time_zone": "Europe/Berlin",
        "layers": [
            {"name": "daily", "member_ids": [alice, bob], "start": today - day, "shift": {"unit": "days", "length": 1}},
            {"name": "evenings", "member_ids": [bob], "start": today - day, "shift": {"unit": "weeks", "length": 1},
             "restrictions": [{"weekdays": [1, 2, 3, 4, 5], "from": "18:00", "to": "22:00"}]}],
        "overrides": [{"member_id": alice, "from": today + 3 * day, "to": today + 3 * day + 6 * 3600}]});
    browser.click("#nav a[data-section='schedules']");
    browser.type_into("#schedule-json", &schedule.to_string());
    browser.click("#schedule-create button[type=submit]");
    browser.wait_text("#notice", "Schedule Database primary created");
    let url = browser
        .wait_for(
            "the feed URL",
            "const e = document.getElementById('new-ical-url'); return e && e.value",
            json!([]),
        )
        .as_str()
        .expect("feed URL")
        .to_string();
    let feed_path = |url: &str| url[url.find("/ical/").expect("an /ical/ URL")..].to_string();
    let feed = call_api(
        &app,
        shared::intake::http::Inbound::new("GET", &feed_path(&url)),
    )
    .await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    assert!(feed.body.contains("SUMMARY:On call: Alice"));
    let schedules = api_ok(&app, "GET", "/api/schedules", None).await;
    let sid = schedules["items"][0]["schedule_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Its page: the picture, its rows named, one colour per member.
    browser.click("#schedule-made a");
    browser.wait_text("h2", "Schedule Database primary");
    browser.wait_for(
        "the picture",
        "return document.querySelectorAll('#schedule-picture .pic-bar').length > 0",
        json!([]),
    );
    let rows = browser.script(
        "return [...document.querySelectorAll('#schedule-picture .pic-row:not(.pic-days) .pic-label')].map(e => e.textContent)",
        json!([]),
    );
    assert_eq!(
        rows,
        json!(["Layer 1: daily", "Layer 2: evenings", "Final schedule"])
    );
    let bars = browser.script(
        "return [...document.querySelectorAll('#schedule-picture .pic-row:not(.pic-days)')].map(r => [...r.querySelectorAll('.pic-bar')].map(b => [b.textContent, b.dataset.memberId, getComputedStyle(b).backgroundColor, b.classList.contains('override')]))",
        json!([]),
    );
    let rows = bars.as_array().unwrap();
    let named = |row: &Value, name: &str| row.as_array().unwrap().iter().any(|b| b[0] == name);
    assert!(named(&rows[0], "Alice") && named(&rows[0], "Bob"), "{bars}");
    assert!(
        named(&rows[1], "Bob") && !named(&rows[1], "Alice"),
        "{bars}"
    );
    assert!(named(&rows[2], "Alice") && named(&rows[2], "Bob"), "{bars}");
    assert!(
        rows[2].as_array().unwrap().iter().any(|b| b[3] == true),
        "the override is drawn: {bars}"
    );
    // Each member has one colour everywhere, and the two differ.
    let colour_of = |id: &str| -> Vec<String> {
        let mut colours: Vec<String> = rows
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter())
            .filter(|b| b[1] == id)
            .map(|b| b[2].as_str().unwrap().to_string())
            .collect();
        colours.dedup();
        colours.sort();
        colours.dedup();
        colours
    };
    let (alice_colour, bob_colour) = (colour_of(alice), colour_of(bob));
    assert_eq!(alice_colour.len(), 1, "{bars}");
    assert_eq!(bob_colour.len(), 1, "{bars}");
    assert_ne!(alice_colour, bob_colour);
    browser.wait_text("#final-shifts", "override");
    browser.assert_accessible("schedule");
    browser.screenshot("console-schedule.png", Some("#schedule-picture"));

    // The feed URL rotated (asked twice): the old one stops, the new one works.
    browser.click("#rotate-ical");
    browser.wait_text("#rotate-ical", "Really rotate");
    browser.click("#rotate-ical");
    let new_url = browser
        .wait_for(
            "the new feed URL",
            "const e = document.getElementById('ical-url'); return e && e.value",
            json!([]),
        )
        .as_str()
        .expect("new feed URL")
        .to_string();
    assert_ne!(new_url, url);
    let old = call_api(
        &app,
        shared::intake::http::Inbound::new("GET", &feed_path(&url)),
    )
    .await;
    assert_eq!(old.status, 404);
    let new = call_api(
        &app,
        shared::intake::http::Inbound::new("GET", &feed_path(&new_url)),
    )
    .await;
    assert_eq!(new.status, 200);

    // Alice is still named: her delete is refused, saying where.
    browser.click("#nav a[data-section='members']");
    let delete_alice = format!("#members tr[data-member-id='{alice}'] button.danger");
    browser.click(&delete_alice);
    browser.wait_text(&delete_alice, "Really delete Alice");
    browser.click(&delete_alice);
    browser.wait_text(
        "#flash",
        &format!("member_id: still used at schedules/{sid}.layers[0].member_ids[0]"),
    );
    assert_eq!(
        api_ok(&app, "GET", "/api/members", None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The schedule deleted in its page, then Alice goes.
    browser.goto(&format!("{base}/console#/schedules/{sid}"));
    browser.click("#delete-schedule");
    browser.wait_text("#delete-schedule", "Really delete");
    browser.click("#delete-schedule");
    browser.wait_text("#notice", "Schedule Database primary deleted.");
    browser.wait_text("#schedules", "No schedules yet.");
    browser.click("#nav a[data-section='members']");
    browser.click(&delete_alice);
    browser.click(&delete_alice);
    browser.wait_text("#notice", "Member Alice deleted.");
    let left = api_ok(&app, "GET", "/api/members", None).await;
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    assert_eq!(left["items"][0]["name"], "Bob");
}

/// A channel's escalation rules saved from its page (a refusal in words
/// first), then an incident's page: who is paged now and the notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_rules_responders_and_notifications_in_a_real_browser() {
    let Some((chromedriver, chromium)) =
        browser_tools("escalation_rules_responders_and_notifications_in_a_real_browser")
    else {
        return;
    };
    let app = test_app().await;
    let bob = api_ok(
        &app,
        "POST",
        "/api/members",
        Some(json!({"name": "Bob", "email": "bob@example.org"})),
    )
    .await["member_id"]
        .as_str()
        .expect("member_id")
        .to_string();
    let setup = standard_setup(&app).await;
    let front = http_front::start(app.clone()).await;
    let base = front.base_url.clone();
    let browser = Browser::start(&chromedriver, chromium.as_deref());
    sign_in(&browser, &base);

    browser.goto(&format!("{base}/console#/channels/{}", setup.channel_id));
    browser.wait_text("#escalation-h", "Escalation");
    let rules = |member: &str| {
        json!({"rules": [{"name": "day shift", "levels": [
            {"targets": {"member_ids": [member]}, "notify": ["email"], "escalate_after_minutes": 5}]}]})
        .to_string()
    };
    browser.type_into("#escalation-json", &rules("m_nobody"));
    browser.click("#escalation-save");
    browser.wait_text(
        "#flash",
        "rules[0].levels[0].targets.member_ids[0]: no such member",
    );
    browser.type_into("#escalation-json", &rules(&bob));
    browser.click("#escalation-save");
    browser.wait_text("#notice", "Escalation rules saved");
    browser.wait_text(
        "#escalation-rules",
        &format!("level 1: member {bob} by email, next after 5 min"),
    );
    browser.assert_accessible("channel with escalation rules");

    let pushed = push_ok(
        &app,
        &setup.integration_key,
        &json!({"title_rule": "disk full", "event_status": "Critical", "alert_key": "disk"}),
    )
    .await;
    let incident = pushed["incident_id"].as_str().expect("incident_id");
    let escalator = shared::outbound::escalate::Escalator {
        mailer: None,
        public_base_url: base.clone(),
    };
    let report = escalator
        .tick(&app, shared::domain::time::now_ms())
        .await
        .expect("tick");
    assert_eq!(report.pages, 1);

    browser.goto(&format!("{base}/console#/incidents/{incident}"));
    browser.wait_text("#responders", &format!("{bob} level 1"));
    browser.wait_text("#notifications", "email is not configured");
    browser.wait_text("#timeline", "Level 1 paged: Bob");
    browser.assert_accessible("incident with notifications");
}
