//! A real local SMTP server for the email tests: scripts/smtp_sink.py
//! (aiosmtpd, installed into .cache/venv by scripts/setup.sh) on a free
//! port, optionally with STARTTLS or implicit TLS under a self-signed
//! certificate made for the test (the `openssl` command), optionally
//! requiring a user and password. Every message it accepts is read back as
//! a [`SinkMessage`]. Dropping the sink stops the server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkTls {
    None,
    /// STARTTLS required before MAIL.
    StartTls,
    /// TLS from the first byte (port 465's way).
    Implicit,
}

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct SinkMessage {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The raw message: headers, a blank line, the body (CRLF line ends).
    pub data: String,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The user it authenticated as, if it did.
    pub login: Option<String>,
}

impl SinkMessage {
    /// The header block, unfolded, one header per line.
    pub fn headers(&self) -> Vec<String> {
        let block = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for line in block.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.push_str(line);
                    continue;
                }
            }
            out.push(line.to_string());
        }
        out
    }

    /// The raw message with quoted-printable undone (soft line breaks
    /// joined, `=XX` decoded): the HTML part goes out that way.
    pub fn decoded(&self) -> String {
        let b = self.data.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && b[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if b[i] == b'=' && i + 2 < b.len() {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first header of this name (case-insensitive), its value trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers().into_iter().find_map(|h| {
            h.to_ascii_lowercase()
                .starts_with(&prefix)
                .then(|| h[prefix.len()..].trim().to_string())
        })
    }
}

pub struct SmtpSink {
    pub port: u16,
    pub tls: SinkTls,
    /// The self-signed certificate (PEM) of a TLS sink, for the client to trust.
    pub cert_pem: Option<Vec<u8>>,
    dir: PathBuf,
    child: Child,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The venv's python, checked for aiosmtpd.
fn python() -> PathBuf {
    let python = workspace().join(".cache/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import aiosmtpd: run scripts/setup.sh (make test does)",
        python.display()
    );
    python
}

/// A port where nothing listens yet (connections to it are refused).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A P-256 key and a one-day certificate for 127.0.0.1 and localhost.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA (webpki refuses a CA as the end entity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command (it makes the test server's certificate)");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

impl SmtpSink {
    /// A server without TLS or authentication.
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(SinkTls::None, None)
    }

    /// A plain server on this port: a mail server coming back where it was.
    pub fn start_at(port: u16) -> SmtpSink {
        SmtpSink::start_on(port, SinkTls::None, None)
    }

    /// A server with this TLS mode, requiring `auth` (user, password) if given.
    pub fn start_with(tls: SinkTls, auth: Option<(&str, &str)>) -> SmtpSink {
        SmtpSink::start_on(free_port(), tls, auth)
    }

    fn start_on(port: u16, tls: SinkTls, auth: Option<(&str, &str)>) -> SmtpSink {
        let python = python();
        let dir = std::env::temp_dir().join(format!(
            "smtp-sink-{}",
            shared::hashing::random_hex(8).expect("randomness")
        ));
        std::fs::create_dir_all(&dir).expect("the sink's folder");
        let mut cmd = Command::new(python);
        cmd.arg(workspace().join("scripts/smtp_sink.py"))
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(dir.join("messages.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut cert_pem = None;
        if tls != SinkTls::None {
            let (cert, key) = self_signed(&dir);
            cert_pem = Some(std::fs::read(&cert).expect("the certificate"));
            cmd.arg(if tls == SinkTls::StartTls {
                "--starttls"
            } else {
                "--tls"
            })
            .arg(cert)
            .arg(key);
        }
        if let Some((user, password)) = auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        let mut child = cmd.spawn().expect("start scripts/smtp_sink.py");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("scripts/smtp_sink.py exited at start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP sink did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            port,
            tls,
            cert_pem,
            dir,
            child,
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<SinkMessage> {
        let text = std::fs::read_to_string(self.dir.join("messages.jsonl")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a JSON line from the sink");
                SinkMessage {
                    mail_from: v["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|r| r.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    data: v["data"].as_str().unwrap_or_default().to_string(),
                    tls: v["tls"].as_bool().unwrap_or(false),
                    login: v["login"].as_str().map(String::from),
                }
            })
            .collect()
    }

    /// The messages once there are at least `n` (the server writes each
    /// before it answers 250, so after a successful send they are there).
    pub async fn wait_for(&self, n: usize) -> Vec<SinkMessage> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
