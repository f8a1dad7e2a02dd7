//! A tiny HTTP/1.1 front for real senders in tests (Alertmanager, the Zabbix
//! media type under Node and Duktape): it reads one request per connection
//! (`Content-Length` bodies), hands `/event/push/alert/{slug}` to the real
//! push handler, writes the answer and closes. Every request it served is
//! kept, so tests can see what the sender posted.

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
}

impl HttpFront {
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().expect("served lock").clone()
    }
}

/// Listen on a free port of 127.0.0.1 for as long as the test runs.
pub async fn start(app: App) -> HttpFront {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    let served: Arc<Mutex<Vec<Served>>> = Arc::default();
    let app = Arc::new(app);
    let log = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (app, log) = (Arc::clone(&app), Arc::clone(&log));
            tokio::spawn(async move {
                let _ = serve_one(&app, stream, &log).await;
            });
        }
    });
    HttpFront { base_url, served }
}

async fn serve_one(
    app: &App,
    stream: tokio::net::TcpStream,
    log: &Mutex<Vec<Served>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
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
    let slug = req
        .path
        .strip_prefix(shared::intake::push::PUSH_PATH_PREFIX)
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let out = match IntegrationKind::from_slug(&slug) {
        Some(kind) => shared::intake::push::handle_push(app, kind, req.clone()).await,
        None => shared::intake::http::Outbound {
            status: 404,
            headers: Vec::new(),
            body: "{}".into(),
        },
    };
    log.lock().expect("served lock").push(Served {
        path: target,
        body: String::from_utf8_lossy(&req.body).into_owned(),
        status: out.status,
        answer: out.body.clone(),
    });
    let reason = if out.status < 300 { "OK" } else { "Error" };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        out.status,
        out.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(out.body.as_bytes()).await?;
    stream.shutdown().await
}
