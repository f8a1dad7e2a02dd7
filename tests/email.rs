//! Email pages (SPEC 14, "Email") against a real local SMTP server
//! (scripts/smtp_sink.py, aiosmtpd): what arrives, over which protection,
//! and how each kind of failure is reported.

use std::collections::BTreeMap;

use std::sync::{Arc, Mutex};

use integration_tests::smtp::{SinkTls, SmtpSink};
use shared::outbound::email::{
    password_from_env, Mailer, PageEmail, PageKind, SmtpConfig, NOT_CONFIGURED, SEND_TIMEOUT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FROM: &str = "On-call <oncall@example.com>";

fn page(to: &str) -> PageEmail {
    PageEmail {
        to: to.into(),
        member_name: "Alice Example".into(),
        incident_id: "inc-42".into(),
        title: "CPU high on web-01".into(),
        severity: "Critical".into(),
        channel_name: "Payments".into(),
        labels: BTreeMap::from([
            ("service".to_string(), "checkout".to_string()),
            ("cluster".to_string(), "prod-east".to_string()),
        ]),
        console_url: "http://localhost:9000/console#/incidents/inc-42".into(),
        ack_url: "http://localhost:9000/ack/tok-123".into(),
        kind: PageKind::Assign,
        level: 1,
    }
}

fn plain_mailer(sink: &SmtpSink) -> Mailer {
    Mailer::new(SmtpConfig::from_url(&sink.url(), None).unwrap(), FROM).unwrap()
}

#[tokio::test]
async fn a_page_arrives_with_its_headers_body_and_links() {
    let sink = SmtpSink::start();
    plain_mailer(&sink)
        .send(&page("alice@example.com"))
        .await
        .expect("sent");
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.mail_from, "oncall@example.com");
    assert_eq!(m.rcpt_tos, ["alice@example.com"]);
    assert!(!m.tls);
    assert_eq!(m.header("From").unwrap(), "On-call <oncall@example.com>");
    assert_eq!(
        m.header("To").unwrap(),
        "\"Alice Example\" <alice@example.com>"
    );
    assert_eq!(
        m.header("Subject").unwrap(),
        "[Critical] CPU high on web-01"
    );
    assert!(m
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(m.header("Message-ID").is_some() && m.header("Date").is_some());
    for needle in [
        "Content-Type: text/plain; charset=utf-8",
        "Content-Type: text/html; charset=utf-8",
        "Severity: Critical",
        "Channel:  Payments",
        "  cluster = prod-east\r\n  service = checkout",
        "http://localhost:9000/console#/incidents/inc-42",
        "http://localhost:9000/ack/tok-123",
        "<a href=\"http://localhost:9000/ack/tok-123\">Acknowledge it</a>",
    ] {
        assert!(
            m.decoded().contains(needle),
            "{needle:?} missing from:\n{}",
            m.data
        );
    }
}

#[tokio::test]
async fn a_title_cannot_add_headers_or_recipients() {
    let sink = SmtpSink::start();
    let mut p = page("alice@example.com");
    p.title = "Disk full\r\nBcc: mallory@example.com\r\nX-Injected: yes".into();
    plain_mailer(&sink).send(&p).await.expect("sent");
    let m = &sink.wait_for(1).await[0];
    assert_eq!(m.rcpt_tos, ["alice@example.com"]);
    assert!(
        m.header("Bcc").is_none() && m.header("X-Injected").is_none(),
        "{}",
        m.data
    );
    let subject = m.header("Subject").unwrap();
    assert!(subject.starts_with("[Critical] Disk full"), "{subject}");
}

#[tokio::test]
async fn starttls_with_credentials_from_the_url() {
    let sink = SmtpSink::start_with(SinkTls::StartTls, Some(("AKIATEST", "p@ss/word")));
    let url = format!(
        "smtp+starttls://AKIATEST:p%40ss%2Fword@127.0.0.1:{}",
        sink.port
    );
    let config = SmtpConfig::from_url(&url, None).unwrap();
    let mailer = Mailer::new_trusting(config, FROM, sink.cert_pem.as_deref().unwrap()).unwrap();
    mailer.send(&page("alice@example.com")).await.expect("sent");
    let m = &sink.wait_for(1).await[0];
    assert!(m.tls, "the message came over STARTTLS");
    assert_eq!(m.login.as_deref(), Some("AKIATEST"));
    assert_eq!(
        m.header("Subject").unwrap(),
        "[Critical] CPU high on web-01"
    );
}

#[tokio::test]
async fn implicit_tls_with_the_password_from_the_secret() {
    let sink = SmtpSink::start_with(SinkTls::Implicit, Some(("AKIATEST", "from-the-secret")));
    // The URL's password is stale; the secret's value wins.
    let url = format!("smtps://AKIATEST:stale@127.0.0.1:{}", sink.port);
    let config = SmtpConfig::from_url(&url, Some("from-the-secret".into())).unwrap();
    let mailer = Mailer::new_trusting(config, FROM, sink.cert_pem.as_deref().unwrap()).unwrap();
    mailer.send(&page("alice@example.com")).await.expect("sent");
    let m = &sink.wait_for(1).await[0];
    assert!(m.tls);
    assert_eq!(m.login.as_deref(), Some("AKIATEST"));
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_not_in_the_reason() {
    let sink = SmtpSink::start_with(SinkTls::StartTls, Some(("AKIATEST", "right")));
    let url = format!(
        "smtp+starttls://AKIATEST:wrong-pw-8812@127.0.0.1:{}",
        sink.port
    );
    let config = SmtpConfig::from_url(&url, None).unwrap();
    let mailer = Mailer::new_trusting(config, FROM, sink.cert_pem.as_deref().unwrap()).unwrap();
    let failure = mailer.send(&page("alice@example.com")).await.unwrap_err();
    assert!(!failure.transient, "{failure}");
    assert!(failure.reason.contains("535"), "{failure}");
    assert!(!failure.reason.contains("wrong-pw-8812"), "{failure}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn starttls_required_but_not_offered_sends_nothing() {
    // A server without STARTTLS: the client must not fall back to clear text.
    let sink = SmtpSink::start_with(SinkTls::None, None);
    let url = format!("smtp+starttls://u:never-in-clear@127.0.0.1:{}", sink.port);
    let mailer = Mailer::new(SmtpConfig::from_url(&url, None).unwrap(), FROM).unwrap();
    let failure = mailer.send(&page("alice@example.com")).await.unwrap_err();
    assert!(failure.transient, "{failure}");
    assert!(!failure.reason.contains("never-in-clear"), "{failure}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_send() {
    let sink = SmtpSink::start_with(SinkTls::Implicit, None);
    let url = format!("smtps://127.0.0.1:{}", sink.port);
    // No extra root: the self-signed certificate is not trusted.
    let mailer = Mailer::new(SmtpConfig::from_url(&url, None).unwrap(), FROM).unwrap();
    let failure = mailer.send(&page("alice@example.com")).await.unwrap_err();
    assert!(failure.transient, "{failure}");
    assert!(failure.reason.contains("certificate"), "{failure}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_refused_recipient_is_permanent_and_a_deferred_one_transient() {
    let sink = SmtpSink::start();
    let mailer = plain_mailer(&sink);
    let refused = mailer
        .send(&page("reject-bob@example.com"))
        .await
        .unwrap_err();
    assert!(!refused.transient, "{refused}");
    assert!(refused.reason.contains("550"), "{refused}");
    let deferred = mailer
        .send(&page("defer-bob@example.com"))
        .await
        .unwrap_err();
    assert!(deferred.transient, "{deferred}");
    assert!(deferred.reason.contains("451"), "{deferred}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_failure_with_a_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}");
    let mailer = Mailer::new(SmtpConfig::from_url(&url, None).unwrap(), FROM).unwrap();
    let failure = mailer.send(&page("alice@example.com")).await.unwrap_err();
    assert!(failure.transient, "{failure}");
    assert!(
        failure.reason.contains(&format!("127.0.0.1:{port}")),
        "{failure}"
    );
    assert!(failure.reason.len() <= 250, "{failure}");
}

#[tokio::test]
async fn a_silent_server_is_given_up_on_in_bounded_time() {
    // Accepts connections and never says a word (not even the greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("smtp://127.0.0.1:{port}");
    let mailer = Mailer::new(SmtpConfig::from_url(&url, None).unwrap(), FROM).unwrap();
    let started = std::time::Instant::now();
    let failure = mailer.send(&page("alice@example.com")).await.unwrap_err();
    assert!(failure.transient, "{failure}");
    assert!(
        started.elapsed() <= SEND_TIMEOUT + std::time::Duration::from_secs(2),
        "gave up after {:?}",
        started.elapsed()
    );
}

/// The tests that change the environment take turns.
static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn from_env_reads_smtp_url_and_smtp_from() {
    let _env = ENV.lock().await;
    std::env::remove_var("SMTP_PASSWORD_SECRET");
    std::env::remove_var("SMTP_URL");
    std::env::remove_var("SMTP_FROM");
    assert!(Mailer::from_env().await.unwrap().is_none());
    assert_eq!(
        NOT_CONFIGURED,
        "email is not configured: SMTP_URL is not set"
    );

    std::env::set_var(
        "SMTP_URL",
        "smtps://user:env-secret-77@mail.example.com:99999",
    );
    std::env::set_var("SMTP_FROM", FROM);
    let err = Mailer::from_env().await.unwrap_err();
    assert_eq!(err.code(), "InvalidParameter");
    assert!(err.message().starts_with("SMTP_URL "), "{err}");
    assert!(
        !err.message().contains("env-secret-77") && !err.message().contains("mail.example.com"),
        "{err}"
    );

    let sink = SmtpSink::start();
    std::env::set_var("SMTP_URL", sink.url());
    std::env::remove_var("SMTP_FROM");
    let err = Mailer::from_env().await.unwrap_err();
    assert!(err.message().starts_with("SMTP_FROM "), "{err}");

    std::env::set_var("SMTP_FROM", "alerts@example.com");
    let mailer = Mailer::from_env().await.unwrap().expect("configured");
    mailer.send(&page("alice@example.com")).await.expect("sent");
    assert_eq!(sink.wait_for(1).await[0].mail_from, "alerts@example.com");
    std::env::remove_var("SMTP_URL");
    std::env::remove_var("SMTP_FROM");
}

/// A stand-in for the Secrets Manager endpoint (AWS JSON 1.1 over HTTP):
/// answers every GetSecretValue with `secret_string` and records each
/// request's `X-Amz-Target` and body. It proves the wiring (endpoint, the
/// request, reading the answer, once per process), not AWS itself.
async fn secrets_manager_stub(secret_string: &str) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = serde_json::json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbCdEf",
        "Name": "smtp",
        "SecretString": secret_string,
        "VersionId": "v1",
    })
    .to_string();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, answer) = (Arc::clone(&log), answer.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let target = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-amz-target:"))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
                log.lock().unwrap().push((target, body));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn the_password_is_read_from_the_secret_once_per_process() {
    let _env = ENV.lock().await;
    let (endpoint, seen) =
        secrets_manager_stub(r#"{"username":"AKIATEST","password":"from-the-secret"}"#).await;
    integration_tests::ensure_local_credentials();
    std::env::set_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint);
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbCdEf";
    std::env::set_var("SMTP_PASSWORD_SECRET", arn);
    let first = password_from_env().await.expect("read the secret");
    let second = password_from_env().await.expect("from memory");
    std::env::remove_var("SMTP_PASSWORD_SECRET");
    std::env::remove_var("AWS_ENDPOINT_URL_SECRETS_MANAGER");
    assert_eq!(first.as_deref(), Some("from-the-secret"));
    assert_eq!(second, first);
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        1,
        "one GetSecretValue per process: {requests:?}"
    );
    assert_eq!(requests[0].0, "secretsmanager.getsecretvalue");
    let body: serde_json::Value = serde_json::from_str(&requests[0].1).unwrap();
    assert_eq!(body["SecretId"], arn);

    // And that password is the one the server accepts.
    let sink = SmtpSink::start_with(SinkTls::StartTls, Some(("AKIATEST", "from-the-secret")));
    let url = format!("smtp+starttls://AKIATEST@127.0.0.1:{}", sink.port);
    let config = SmtpConfig::from_url(&url, first).unwrap();
    let mailer = Mailer::new_trusting(config, FROM, sink.cert_pem.as_deref().unwrap()).unwrap();
    mailer.send(&page("alice@example.com")).await.expect("sent");
    assert_eq!(sink.wait_for(1).await[0].login.as_deref(), Some("AKIATEST"));
}
