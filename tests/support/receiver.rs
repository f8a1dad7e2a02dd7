//! A local HTTP receiver for webhook tests: records every request and
//! answers as scripted (a status, a hang, a connection reset).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Behaviour {
    Status(u16),
    /// Wait this long, then answer 200 (the sender has given up by then).
    Hang(Duration),
    /// Close the connection with a reset, answering nothing.
    Reset,
}

#[derive(Clone, Debug)]
pub struct Received {
    /// Path and query.
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Received>,
    script: VecDeque<Behaviour>,
    default: Option<Behaviour>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start(default: Behaviour) -> Receiver {
        Receiver::start_at(0, default).await
    }

    /// A port where nothing listens yet: connections to it are refused until
    /// [`Receiver::start_at`] listens there.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// A receiver on this port (0: any free one).
    pub async fn start_at(port: u16, default: Behaviour) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            default: Some(default),
            ..Default::default()
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move { serve(socket, state).await });
            }
        });
        Receiver { url, state }
    }

    /// The next requests get these answers, in order; then the default.
    pub fn script(&self, answers: Vec<Behaviour>) {
        self.state.lock().unwrap().script = answers.into();
    }

    pub fn set_default(&self, b: Behaviour) {
        self.state.lock().unwrap().default = Some(b);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.received().iter().map(Received::json).collect()
    }

    /// `event_type`s of the generic bodies received, in order.
    pub fn types(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["event_type"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Headers.
        let header_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head.split("\r\n");
        let target = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        while buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[header_end..header_end + length].to_vec();
        buf.drain(..header_end + length);
        let behaviour = {
            let mut s = state.lock().unwrap();
            s.requests.push(Received {
                target,
                headers,
                body,
                at: Instant::now(),
            });
            s.script
                .pop_front()
                .or_else(|| s.default.clone())
                .unwrap_or(Behaviour::Status(200))
        };
        let status = match behaviour {
            Behaviour::Status(s) => s,
            Behaviour::Hang(d) => {
                tokio::time::sleep(d).await;
                200
            }
            Behaviour::Reset => {
                let _ = socket.set_zero_linger();
                return;
            }
        };
        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
        if socket.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
