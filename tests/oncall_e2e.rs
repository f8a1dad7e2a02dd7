//! SPEC 14 end to end against DynamoDB Local, a real SMTP server
//! (scripts/smtp_sink.py) and a receiver of Slack, Feishu, DingTalk and WeCom
//! webhooks fed by the table's stream: a push opens an incident; the tick
//! emails level 1's member at once and mentions them on each platform; a minute later level 2 pages the schedule's
//! on-call member; the link in the first email, POSTed, acknowledges as
//! that member and the chain pages nobody more. A second test: a mail server that
//! is down when the page goes out gets it when it comes back.

use integration_tests::iam::{self, Function};
use integration_tests::receiver::{Behaviour, Receiver};
use integration_tests::smtp::{free_port, SinkMessage, SmtpSink};
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::intake::http::Inbound;
use shared::outbound::email::{Mailer, SmtpConfig};
use shared::outbound::escalate::{Escalator, TickReport};
use shared::store::now_ms;

const MINUTE: i64 = 60_000;
const HOUR_S: i64 = 3_600;
const BASE: &str = "https://oncall.example";

fn escalator(smtp_url: &str) -> Escalator {
    let config = SmtpConfig::from_url(smtp_url, None).expect("an SMTP URL");
    Escalator {
        mailer: Some(std::sync::Arc::new(
            Mailer::new(config, "On-call <oncall@example.com>").expect("a mailer"),
        )),
        public_base_url: BASE.into(),
    }
}

async fn tick(escalator: &Escalator, app: &App, at_ms: i64) -> TickReport {
    let app = iam::as_function(app, Function::Escalate);
    escalator.tick(&app, at_ms).await.expect("tick")
}

/// A member with an id on each IM platform: `n` tells them apart.
async fn member(app: &App, name: &str, n: u8) -> String {
    let lower = name.to_lowercase();
    let made = api_ok(
        app,
        "POST",
        "/api/members",
        Some(
            json!({"name": name, "email": format!("{lower}@example.com"),
                    "im": {"slack_user_id": format!("U0{}", name.to_uppercase()),
                           "feishu_open_id": format!("ou_{lower}"),
                           "dingtalk_mobile": format!("1380000000{n}"),
                           "wecom_user_id": format!("{lower}.w")}}),
        ),
    )
    .await;
    made["member_id"].as_str().expect("member_id").to_string()
}

/// A schedule with one daily rotation of `member`, started an hour ago.
async fn schedule_of(app: &App, member_id: &str) -> String {
    let start = now_ms() / 1000 - HOUR_S;
    let made = api_ok(
        app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "UTC", "layers": [{
            "name": "daily", "start": start, "shift": {"unit": "days", "length": 1},
            "member_ids": [member_id]}]})),
    )
    .await;
    made["schedule_id"]
        .as_str()
        .expect("schedule_id")
        .to_string()
}

/// The ack link in an email's body, as a path the management handler takes.
fn ack_path(message: &SinkMessage) -> String {
    let body = message.decoded();
    let start = body
        .find(&format!("{BASE}/ack/"))
        .unwrap_or_else(|| panic!("no ack link in:\n{body}"));
    let link: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/:._-~".contains(*c))
        .collect();
    link[BASE.len()..].to_string()
}

/// The bodies each IM kind's webhook received, in order.
fn bodies_of(rx: &Receiver, kind: &str) -> Vec<Value> {
    rx.received()
        .iter()
        .filter(|r| r.target.ends_with(&format!("/{kind}")))
        .map(|r| r.json())
        .collect()
}

/// Each IM kind mentions the paged member in its own syntax, and only them.
fn assert_mentioned(rx: &Receiver, page: usize, name: &str, n: u8, other: &str) {
    let lower = name.to_lowercase();
    let slack = &bodies_of(rx, "slack")[page];
    let text = slack["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("<@U0{}>", name.to_uppercase())),
        "{text}"
    );
    assert!(!text.contains(&format!("<@U0{}>", other.to_uppercase())));
    let feishu = &bodies_of(rx, "feishu")[page];
    let text = feishu["content"]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("<at user_id=\"ou_{lower}\"></at>")),
        "{text}"
    );
    let dingtalk = &bodies_of(rx, "dingtalk")[page];
    assert_eq!(
        dingtalk["at"],
        json!({"atMobiles": [format!("1380000000{n}")], "isAtAll": false})
    );
    let wecom = &bodies_of(rx, "wecom")[page];
    assert_eq!(
        wecom["text"]["mentioned_list"],
        json!([format!("{lower}.w")])
    );
}

/// A channel whose one level emails `member`, then waits 30 minutes.
async fn emailing(app: &App, member: &str) -> Setup {
    let s = standard_setup(app).await;
    api_ok(
        app,
        "PUT",
        &format!("/api/channels/{}/escalation", s.channel_id),
        Some(json!({"rules": [{"name": "default", "levels": [
            {"targets": {"member_ids": [member]}, "notify": ["email"], "escalate_after_minutes": 30}
        ]}]})),
    )
    .await;
    s
}

async fn notifications(app: &App, id: &str) -> Vec<Value> {
    api_ok(
        app,
        "GET",
        &format!("/api/incidents/{id}/notifications"),
        None,
    )
    .await["items"]
        .as_array()
        .expect("items")
        .clone()
}

#[tokio::test]
async fn a_page_by_email_and_im_escalates_to_the_schedule_and_is_acked_from_an_email() {
    let app = test_app_with_stream().await;
    let sink = SmtpSink::start();
    let im = Receiver::start(Behaviour::Status(200)).await;
    let mut pump = Pump::new(&app).await;
    let escalator = escalator(&sink.url());

    let alice = member(&app, "Alice", 1).await;
    let bob = member(&app, "Bob", 2).await;
    let primary = schedule_of(&app, &bob).await;
    let s = standard_setup(&app).await;
    for kind in ["slack", "feishu", "dingtalk", "wecom"] {
        api_ok(
            &app,
            "POST",
            "/api/webhooks",
            Some(
                json!({"name": kind, "kind": kind, "url": format!("{}/{kind}", im.url),
                        "event_types": ["i_assign", "i_escalate"]}),
            ),
        )
        .await;
    }
    api_ok(
        &app,
        "PUT",
        &format!("/api/channels/{}/escalation", s.channel_id),
        Some(json!({"rules": [{"name": "default", "levels": [
            {"targets": {"member_ids": [alice]}, "notify": ["email", "im"], "escalate_after_minutes": 1},
            {"targets": {"schedule_ids": [primary]}, "notify": ["email", "im"], "escalate_after_minutes": 10}
        ]}]})),
    )
    .await;
    let pushed = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "checkout errors", "event_status": "Critical", "alert_key": "co"}),
    )
    .await;
    let id = pushed["incident_id"]
        .as_str()
        .expect("incident_id")
        .to_string();
    let t0 = now_ms();

    // Level 1 at once: Alice by email and by name in Slack.
    let first = tick(&escalator, &app, t0).await;
    assert_eq!((first.pages, first.emails_sent), (1, 1), "{first:?}");
    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].rcpt_tos, ["alice@example.com"]);
    assert!(mail[0]
        .header("Subject")
        .is_some_and(|s| s.contains("checkout errors")));
    pump.run().await;
    assert_eq!(im.received().len(), 4, "one message per IM webhook");
    assert_mentioned(&im, 0, "Alice", 1, "Bob");

    // Not before the level's minute is up.
    let early = tick(&escalator, &app, t0 + 30_000).await;
    assert_eq!(early.pages, 0);

    // Level 2: the schedule's on-call member, Bob.
    let second = tick(&escalator, &app, t0 + MINUTE + 1_000).await;
    assert_eq!((second.pages, second.emails_sent), (1, 1), "{second:?}");
    let mail = sink.wait_for(2).await;
    assert_eq!(mail.len(), 2);
    assert_eq!(mail[1].rcpt_tos, ["bob@example.com"]);
    pump.run().await;
    assert_eq!(im.received().len(), 8);
    assert_mentioned(&im, 1, "Bob", 2, "Alice");

    // Alice acknowledges from her email: the incident is hers, the chain
    // stops. (Bob's link was signed at the simulated minute, 61 s ahead of
    // the handler's real clock, which a link may not be.)
    let path = ack_path(&mail[0]);
    let out = call_api(
        &app,
        Inbound::new("POST", &path).header("content-type", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{id}"), None).await;
    assert_eq!(incident["status"], "Processing");
    let timeline = api_ok(
        &app,
        "GET",
        &format!("/api/incidents/{id}/timeline?limit=100"),
        None,
    )
    .await;
    let acks: Vec<&Value> = timeline["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "i_ack")
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["detail"]["actor"], json!({"member_id": alice}));

    let later = tick(&escalator, &app, t0 + 30 * MINUTE).await;
    assert_eq!(later.pages, 0);
    assert_eq!(sink.messages().len(), 2, "nobody else is paged");

    // Every notification is in the history, each sent once.
    let notes = notifications(&app, &id).await;
    let seen: Vec<(String, String, String)> = notes
        .iter()
        .map(|n| {
            (
                n["member_id"].as_str().unwrap_or_default().to_string(),
                n["via"].as_str().unwrap_or_default().to_string(),
                n["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut want = vec![
        (alice.clone(), "email".to_string(), "sent".to_string()),
        (alice.clone(), "im".to_string(), "sent".to_string()),
        (bob.clone(), "email".to_string(), "sent".to_string()),
        (bob.clone(), "im".to_string(), "sent".to_string()),
    ];
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    want.sort();
    assert_eq!(seen_sorted, want, "{notes:?}");
}

#[tokio::test]
async fn an_email_that_finds_the_mail_server_down_is_sent_when_it_comes_back() {
    let app = test_app().await;
    let port = free_port();
    let escalator = escalator(&format!("smtp://127.0.0.1:{port}"));
    let alice = member(&app, "Alice", 1).await;
    let s = emailing(&app, &alice).await;
    let pushed = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "queue stuck", "event_status": "Warning", "alert_key": "q"}),
    )
    .await;
    let id = pushed["incident_id"]
        .as_str()
        .expect("incident_id")
        .to_string();
    let t0 = now_ms();

    // Nothing listens: the email waits for a retry, and says why.
    let first = tick(&escalator, &app, t0).await;
    assert_eq!((first.pages, first.emails_retrying), (1, 1), "{first:?}");
    let notes = notifications(&app, &id).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["status"], "pending", "{notes:?}");
    assert_eq!(notes[0]["attempts"], 1, "{notes:?}");
    assert!(notes[0]["error"].as_str().is_some_and(|e| !e.is_empty()));

    // The server is back where it was; the retry a minute later delivers it once.
    let sink = SmtpSink::start_at(port);
    let not_yet = tick(&escalator, &app, t0 + 30_000).await;
    assert_eq!(not_yet.emails_sent, 0, "not before its retry time");
    let retried = tick(&escalator, &app, t0 + MINUTE + 1_000).await;
    assert_eq!((retried.pages, retried.emails_sent), (0, 1), "{retried:?}");
    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].rcpt_tos, ["alice@example.com"]);
    let notes = notifications(&app, &id).await;
    assert_eq!(notes[0]["status"], "sent", "{notes:?}");
    assert_eq!(notes[0]["attempts"], 2, "{notes:?}");

    let again = tick(&escalator, &app, t0 + 10 * MINUTE).await;
    assert_eq!(again.emails_sent, 0);
    assert_eq!(sink.messages().len(), 1);
}

/// An email waiting for its retry pages nobody once the incident is
/// acknowledged (the chain stops at an ack): it is recorded `failed` with
/// the reason, and nothing is sent.
#[tokio::test]
async fn a_retry_after_the_ack_sends_nothing_and_says_why() {
    let app = test_app().await;
    let port = free_port();
    let escalator = escalator(&format!("smtp://127.0.0.1:{port}"));
    let alice = member(&app, "Alice", 1).await;
    let s = emailing(&app, &alice).await;
    let pushed = push_ok(
        &app,
        &s.integration_key,
        &json!({"title_rule": "queue stuck", "event_status": "Warning", "alert_key": "q"}),
    )
    .await;
    let id = pushed["incident_id"]
        .as_str()
        .expect("incident_id")
        .to_string();
    let t0 = now_ms();
    assert_eq!(tick(&escalator, &app, t0).await.emails_retrying, 1);
    api_ok(&app, "POST", &format!("/api/incidents/{id}/ack"), None).await;

    let sink = SmtpSink::start_at(port);
    let retried = tick(&escalator, &app, t0 + MINUTE + 1_000).await;
    assert_eq!(
        (retried.emails_sent, retried.emails_failed),
        (0, 1),
        "{retried:?}"
    );
    let notes = notifications(&app, &id).await;
    assert_eq!(notes[0]["status"], "failed", "{notes:?}");
    assert!(notes[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("acknowledged")));
    assert!(sink.messages().is_empty());
}

/// Two instances run the same ticks while the mail server is down, then
/// again when it is back: each email goes out once.
#[tokio::test]
async fn racing_ticks_send_each_retried_email_once() {
    let app = test_app().await;
    let other = another_instance(&app).await;
    let port = free_port();
    let escalator = escalator(&format!("smtp://127.0.0.1:{port}"));
    let alice = member(&app, "Alice", 1).await;
    let s = emailing(&app, &alice).await;
    let incidents = 10;
    for i in 0..incidents {
        push_ok(
            &app,
            &s.integration_key,
            &json!({"title_rule": format!("disk {i}"), "event_status": "Warning", "alert_key": format!("d{i}")}),
        )
        .await;
    }
    let t0 = now_ms();
    let (a, b) = tokio::join!(tick(&escalator, &app, t0), tick(&escalator, &other, t0));
    assert_eq!(a.pages + b.pages, incidents);
    assert_eq!(a.emails_retrying + b.emails_retrying, incidents);

    let sink = SmtpSink::start_at(port);
    let at = t0 + MINUTE + 1_000;
    let (a, b) = tokio::join!(tick(&escalator, &app, at), tick(&escalator, &other, at));
    assert_eq!(a.emails_sent + b.emails_sent, incidents, "{a:?} {b:?}");
    let again = tick(&escalator, &app, at + 10 * MINUTE).await;
    assert_eq!(again.emails_sent, 0);
    assert_eq!(sink.wait_for(incidents).await.len(), incidents);
    assert_eq!(sink.messages().len(), incidents, "each email once");
}
