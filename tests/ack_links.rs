//! Acknowledgement links (SPEC 14) against DynamoDB Local, through the
//! management handler: `GET /ack/{token}` shows and changes nothing (mail
//! scanners open links), `POST` acknowledges as the link's member, and
//! every bad link is the same 404 that names nothing and writes nothing.
//! Also: the signing key is made once, whichever instances race to make it.
//! Every test logs to a subscriber of its own ([`capture_logs`]): one test
//! reads the API span's fields.

use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::intake::http::{Inbound, Outbound};
use shared::outbound::ack_link::ack_url;
use shared::store::{now_ms, Store};

const BASE: &str = "https://oncall.example";
const MEMBER: &str = "m_alice";

/// A fresh incident (pushed, as any other) and its id.
async fn incident(app: &App, title: &str) -> String {
    let s = standard_setup(app).await;
    push_ok(
        app,
        &s.integration_key,
        &json!({"title_rule": title, "event_status": "Critical", "alert_key": "k1"}),
    )
    .await;
    let found = incidents(app, &format!("channel_id={}", s.channel_id)).await;
    assert_eq!(found.len(), 1);
    found[0]["incident_id"].as_str().unwrap().to_string()
}

/// The path of a link for `member` to acknowledge `incident`, issued at `at_ms`.
async fn link_at(app: &App, incident: &str, member: &str, at_ms: i64) -> String {
    let secret = app.store.ack_link_secret().await.unwrap();
    let url = ack_url(BASE, &secret, incident, member, at_ms).unwrap();
    url.strip_prefix(BASE).unwrap().to_string()
}

async fn link(app: &App, incident: &str) -> String {
    link_at(app, incident, MEMBER, now_ms()).await
}

/// The link as a browser opens it: no app key.
async fn open(app: &App, method: &str, path: &str) -> Outbound {
    let mut req = Inbound::new(method, path);
    if method == "POST" {
        // What the page's form sends: no fields.
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    call_api(app, req).await
}

fn header<'a>(out: &'a Outbound, name: &str) -> &'a str {
    out.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header"))
}

async fn timeline_types(app: &App, incident: &str) -> Vec<Value> {
    api_ok(
        app,
        "GET",
        &format!("/api/incidents/{incident}/timeline?limit=100"),
        None,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn status(app: &App, incident: &str) -> String {
    api_ok(app, "GET", &format!("/api/incidents/{incident}"), None).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn get_shows_the_incident_and_changes_nothing() {
    let _logs = capture_logs();
    let app = test_app().await;
    let id = incident(&app, "disk full on db1").await;
    let path = link(&app, &id).await;
    let before = table_dump(&app).await;

    for _ in 0..2 {
        let out = open(&app, "GET", &path).await;
        assert_eq!(out.status, 200, "{}", out.body);
        assert_eq!(header(&out, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&out, "cache-control"), "no-store");
        assert_eq!(header(&out, "referrer-policy"), "no-referrer");
        let csp = header(&out, "content-security-policy");
        assert!(csp.starts_with("default-src 'none'") && csp.contains("form-action 'self'"));
        for shown in [
            "disk full on db1",
            "Critical",
            "Triggered",
            "<form method=\"post\">",
        ] {
            assert!(out.body.contains(shown), "{shown} missing: {}", out.body);
        }
        for external in ["<script", "src=", "href="] {
            assert!(!out.body.contains(external), "{external}: {}", out.body);
        }
    }
    // Nothing written: the incident, its timeline, every item as it was.
    assert_eq!(table_dump(&app).await, before);
    assert_eq!(status(&app, &id).await, "Triggered");
}

#[tokio::test]
async fn post_acknowledges_as_the_member_and_again_is_fine() {
    let _logs = capture_logs();
    let app = test_app().await;
    let id = incident(&app, "api latency").await;
    let path = link(&app, &id).await;

    let out = open(&app, "POST", &path).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.body.contains("You acknowledged this incident."),
        "{}",
        out.body
    );
    assert!(out.body.contains("Processing"));
    assert_eq!(status(&app, &id).await, "Processing");
    let acks = |items: Vec<Value>| -> Vec<Value> {
        items.into_iter().filter(|i| i["type"] == "i_ack").collect()
    };
    let first = acks(timeline_types(&app, &id).await);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["detail"]["actor"], json!({"member_id": MEMBER}));

    // Again: fine, says so, records nothing more.
    let again = open(&app, "POST", &path).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(
        again.body.contains("already acknowledged"),
        "{}",
        again.body
    );
    assert_eq!(acks(timeline_types(&app, &id).await), first);
    // The page now offers no button.
    let shown = open(&app, "GET", &path).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("already acknowledged") && !shown.body.contains("<form"));

    // Unacknowledged through the API, the same link works again.
    api_ok(&app, "POST", &format!("/api/incidents/{id}/unack"), None).await;
    let out = open(&app, "POST", &path).await;
    assert!(
        out.body.contains("You acknowledged this incident."),
        "{}",
        out.body
    );
    assert_eq!(acks(timeline_types(&app, &id).await).len(), 2);
}

/// Everything a bad link can be: the same 404 page, the incident not named,
/// nothing written, for GET and POST alike.
#[tokio::test]
async fn bad_links_are_one_404_that_names_nothing_and_writes_nothing() {
    let _logs = capture_logs();
    let app = test_app().await;
    let title = "payments down";
    let id = incident(&app, title).await;
    let good = link(&app, &id).await;
    let token = good.strip_prefix("/ack/").unwrap();

    // One character of the token changed (in the middle: the tag and the body
    // are both covered; the last character may carry only padding bits).
    let mut tampered: Vec<char> = token.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    // Genuine, but for an incident that does not exist.
    let other = link(&app, "0123456789abcdef").await;
    // Issued 8 days ago: expired.
    let expired = link_at(&app, &id, MEMBER, now_ms() - 8 * 86_400_000).await;
    // Genuine shape, another key.
    let foreign_key = ack_url(BASE, &[7u8; 32], &id, MEMBER, now_ms()).unwrap();
    let foreign_key = foreign_key.strip_prefix(BASE).unwrap().to_string();

    let before = table_dump(&app).await;
    let bad = [
        format!("/ack/{tampered}"),
        other,
        expired,
        foreign_key,
        "/ack/not-a-token".to_string(),
        format!("/ack/{token}extra"),
        format!("/ack/{}", "A".repeat(5000)),
    ];
    let mut pages = Vec::new();
    for path in &bad {
        for method in ["GET", "POST"] {
            let out = open(&app, method, path).await;
            assert_eq!(out.status, 404, "{method} {path}: {}", out.body);
            assert_eq!(header(&out, "content-type"), "text/html; charset=utf-8");
            assert_eq!(header(&out, "cache-control"), "no-store");
            assert!(!out.body.contains(title) && !out.body.contains(&id));
            assert!(!out.body.contains(MEMBER));
            pages.push(out.body);
        }
    }
    pages.dedup();
    assert_eq!(pages.len(), 1, "every bad link gets the same page");
    assert_eq!(table_dump(&app).await, before);
    assert_eq!(status(&app, &id).await, "Triggered");
    // The genuine link still works.
    assert_eq!(open(&app, "GET", &good).await.status, 200);
}

#[tokio::test]
async fn a_closed_incidents_link_is_404() {
    let _logs = capture_logs();
    let app = test_app().await;
    let id = incident(&app, "queue backlog").await;
    let path = link(&app, &id).await;
    api_ok(&app, "POST", &format!("/api/incidents/{id}/resolve"), None).await;
    assert_eq!(status(&app, &id).await, "Closed");
    let before = table_dump(&app).await;
    for method in ["GET", "POST"] {
        let out = open(&app, method, &path).await;
        assert_eq!(out.status, 404, "{method}: {}", out.body);
        assert!(!out.body.contains("queue backlog"));
    }
    assert_eq!(table_dump(&app).await, before);
    assert!(timeline_types(&app, &id)
        .await
        .iter()
        .all(|i| i["type"] != "i_ack"));
}

#[tokio::test]
async fn the_page_escapes_the_incident() {
    let _logs = capture_logs();
    let app = test_app().await;
    let id = incident(&app, "<script>alert('x')</script> & \"quoted\"").await;
    let path = link(&app, &id).await;
    for method in ["GET", "POST"] {
        let out = open(&app, method, &path).await;
        assert_eq!(out.status, 200, "{}", out.body);
        assert!(!out.body.contains("<script"), "{}", out.body);
        assert!(
            out.body.contains(
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"
            ),
            "{}",
            out.body
        );
    }
}

#[tokio::test]
async fn other_methods_are_refused_and_the_token_is_never_logged() {
    let app = test_app().await;
    let id = incident(&app, "cpu hot").await;
    let path = link(&app, &id).await;
    let token = path.strip_prefix("/ack/").unwrap().to_string();
    let logs = CapturedLogs::default();
    {
        let _guard = logs.install();
        let out = open(&app, "PUT", &path).await;
        assert_eq!(out.status, 400);
        assert_eq!(out.json()["error"]["code"], "MethodNotAllowed");
        assert_eq!(open(&app, "GET", &path).await.status, 200);
        assert_eq!(open(&app, "POST", &path).await.status, 200);
        assert_eq!(open(&app, "GET", &format!("{path}x")).await.status, 404);
    }
    let text = logs.text();
    assert!(text.contains("/ack/{token}"), "the route is logged: {text}");
    assert!(text.contains(&id), "the verified incident is logged");
    assert!(!text.contains(&token), "the token leaked into the logs");
    assert!(!text.contains(&token[..20]), "part of the token leaked");
}

/// The signing key: made once, whichever instances race to make it first;
/// then read once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_agree_on_one_signing_key() {
    let _logs = capture_logs();
    let app = test_app().await;
    let mut instances = Vec::new();
    for _ in 0..6 {
        instances.push(another_instance(&app).await);
    }
    // All first calls at once, each on its own instance (its own client and cache).
    let tasks: Vec<_> = instances
        .iter()
        .map(|i| {
            let store = i.store.clone();
            tokio::spawn(async move { store.ack_link_secret().await })
        })
        .collect();
    let mut secrets = Vec::new();
    for task in tasks {
        secrets.push(task.await.unwrap().unwrap());
    }
    assert_eq!(secrets[0].len(), 32);
    assert!(
        secrets.iter().all(|s| *s == secrets[0]),
        "instances disagree"
    );
    assert_ne!(secrets[0], vec![0u8; 32]);

    // One item holds it, and a later instance reads the same.
    let stored: Vec<_> = scan_all(&app)
        .await
        .into_iter()
        .filter(|i| sk_of(i) == "CONFIG|ACK_LINK_SECRET")
        .collect();
    assert_eq!(stored.len(), 1);
    let late = Store::new(shared::store::client_from_env().await, app.store.table());
    assert_eq!(late.ack_link_secret().await.unwrap(), secrets[0]);

    // Once read, an instance asks DynamoDB no more.
    let requests = |s: &Store| s.meter.snapshot().0;
    let before = requests(&late);
    late.ack_link_secret().await.unwrap();
    assert_eq!(requests(&late), before);

    // A link one instance issues, another honours.
    let id = incident(&app, "two instances").await;
    let path = link(&instances[0], &id).await;
    let out = open(&instances[5], "POST", &path).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(status(&app, &id).await, "Processing");
}
