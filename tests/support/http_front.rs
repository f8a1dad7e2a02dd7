//! A tiny HTTP/1.1 front for real clients in tests (Alertmanager, the Zabbix
//! media type under Node and Duktape, a headless browser on the console): it
//! reads one request per connection (`Content-Length` bodies), hands
//! `/event/push/alert/{slug}` to the real push handler and everything else
//! (`/api/...`, `/console`) to the management handler, as API Gateway routes
//! them, writes the answer and closes. Every request it served is kept, so
//! tests can see what the client posted, and every answer is checked against
//! the OpenAPI document: a mismatch fails the test when the front is dropped.

use std::sync::{Arc, Mutex};

use shared::app::App;
use shared::intake::http::Inbound;
use shared::intake::integrations::IntegrationKind;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the front served: path with query, body, answer status and body.
#[derive(Clone, Debug)]
pub struct Served {
    pub path: String,
    pub body: String,
    pub status: u16,
    pub answer: String,
}

pub struct HttpFront {
    pub base_url: String,
    pub served: Arc<Mutex<Vec<Served>>>,
    /// Answers that did not fit the OpenAPI document.
    pub mismatches: Arc<Mutex<Vec<String>>>,
}

impl HttpFront {
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().expect("served lock").clone()
    }
}

impl Drop for HttpFront {
    fn drop(&mut self) {
        let mismatches = self
            .mismatches
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        if !mismatches.is_empty() && !std::thread::panicking() {
            panic!(
                "answers that do not fit the OpenAPI document:\n{}",
                mismatches.join("\n")
            );
        }
    }
}

/// Listen on a free port of 127.0.0.1 for as long as the test runs.
pub async fn start(app: App) -> HttpFront {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    let served: Arc<Mutex<Vec<Served>>> = Arc::default();
    let mismatches: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Arc::new(app);
    let (log, wrong) = (Arc::clone(&served), Arc::clone(&mismatches));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (app, log, wrong) = (Arc::clone(&app), Arc::clone(&log), Arc::clone(&wrong));
            tokio::spawn(async move {
                let _ = serve_one(&app, stream, &log, &wrong).await;
            });
        }
    });
    HttpFront {
        base_url,
        served,
        mismatches,
    }
}

async fn serve_one(
    app: &App,
    stream: tokio::net::TcpStream,
    log: &Mutex<Vec<Served>>,
    mismatches: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        // A connection opened ahead of need (browsers do) and closed unused.
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut req = Inbound::new(&method, &target);
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            req = req.header(name.trim(), value.trim());
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    req.body = body;
    let push_slug = req
        .path
        .strip_prefix(shared::intake::push::PUSH_PATH_PREFIX)
        .map(|slug| slug.trim_end_matches('/').to_string());
    let push_kind = push_slug.as_deref().map(IntegrationKind::from_slug);
    let out = match push_kind {
        Some(Some(kind)) => {
            let app = &crate::iam::as_function(app, crate::iam::Function::Push);
            shared::intake::push::handle_push(app, kind, req.clone()).await
        }
        Some(None) => shared::intake::http::Outbound {
            status: 404,
            headers: Vec::new(),
            body: "{}".into(),
        },
        None => {
            let app = &crate::iam::as_function(app, crate::iam::Function::Management);
            shared::api::handle_api(app, req.clone()).await
        }
    };
    // The front's own 404 (no function has that slug) is not the service's answer.
    if !matches!(push_kind, Some(None)) {
        if let Err(problem) = crate::openapi::check(&crate::openapi::Exchange::of(&req, &out)) {
            mismatches
                .lock()
                .expect("mismatch lock")
                .push(format!("{} {}: {problem}", req.method, req.path));
        }
    }
    log.lock().expect("served lock").push(Served {
        path: target,
        body: String::from_utf8_lossy(&req.body).into_owned(),
        status: out.status,
        answer: out.body.clone(),
    });
    let reason = if out.status < 300 { "OK" } else { "Error" };
    let mut stream = reader.into_inner();
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        out.status,
        out.content_type(),
        out.body.len()
    );
    for (name, value) in out.headers.iter().filter(|(n, _)| n != "content-type") {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(out.body.as_bytes()).await?;
    stream.shutdown().await
}
