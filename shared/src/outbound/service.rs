//! Sending one delivery (SPEC 11): a 5 s budget per attempt, at most 3
//! attempts, backoff between them; a timeout, a connection error, 429 or 5xx
//! is retried, any other answer is final (2xx succeeded, else failed).
//! The client is the hyper/rustls (ring) stack the AWS SDK already brings.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::kinds::OutRequest;
use super::target::{literal_ip, refusal_in, CheckedResolver, Targets};

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Per attempt: connecting, sending and the answer's status line.
    pub timeout: Duration,
    pub attempts: u32,
    /// Before the second attempt; doubled before each later one.
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Answered(u16),
    TimedOut,
    /// Could not connect, or the connection broke (reset, closed early).
    ConnectionFailed,
    /// The request could not be built (a header the receiver would never get).
    Unsendable,
    /// Its address is not a webhook target here (SPEC 15), literally or
    /// once resolved: final, never retried.
    Refused(&'static str),
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        matches!(self, Attempt::Answered(s) if (200..300).contains(s))
    }

    /// Worth another attempt: the receiver may answer later.
    pub fn retryable(&self) -> bool {
        match self {
            Attempt::Answered(s) => *s == 429 || (500..600).contains(s),
            Attempt::TimedOut | Attempt::ConnectionFailed => true,
            Attempt::Unsendable | Attempt::Refused(_) => false,
        }
    }

    /// In words, for the history; never the URL (it may hold a token).
    pub fn error(&self, timeout: Duration) -> Option<String> {
        match self {
            a if a.succeeded() => None,
            Attempt::Answered(s) => Some(format!("the receiver answered HTTP {s}")),
            Attempt::TimedOut => Some(format!("no answer within {} ms", timeout.as_millis())),
            Attempt::ConnectionFailed => Some("connection failed or was reset".into()),
            Attempt::Unsendable => {
                Some("the request could not be built (check the headers)".into())
            }
            Attempt::Refused(why) => Some(format!("not sent: {why}")),
        }
    }
}

pub use crate::domain::delivery::Sent;

/// The one outbound HTTP client: redirects are not followed (the legacy
/// client never follows them), and every name is resolved through
/// [`CheckedResolver`].
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>,
    pub policy: Policy,
    targets: Targets,
}

impl Sender {
    /// `targets`: where it may connect ([`Targets::from_env`] for webhooks).
    pub fn new(policy: Policy, targets: Targets) -> Sender {
        let provider = rustls::crypto::ring::default_provider();
        let builder = HttpsConnectorBuilder::new();
        let builder = match builder.with_provider_and_native_roots(provider) {
            Ok(b) => b,
            Err(e) => {
                // No system roots: https receivers fail, http ones still work.
                tracing::warn!(error = %e, "no native root certificates; https webhooks will fail");
                let config = rustls::ClientConfig::builder_with_provider(
                    rustls::crypto::ring::default_provider().into(),
                )
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
                match config {
                    Ok(c) => HttpsConnectorBuilder::new().with_tls_config(c),
                    Err(_) => HttpsConnectorBuilder::new().with_tls_config(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    ),
                }
            }
        };
        let mut http = HttpConnector::new_with_resolver(CheckedResolver::new(targets));
        http.enforce_http(false);
        http.set_connect_timeout(Some(policy.timeout));
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Sender {
            client,
            policy,
            targets,
        }
    }

    /// One attempt within the policy's timeout.
    pub async fn attempt(&self, req: &OutRequest) -> Attempt {
        // A literal address never reaches the resolver: check it here (a
        // webhook saved before the rule, or under another setting).
        let uri: Result<hyper::Uri, _> = req.url.parse();
        let Ok(uri) = uri else {
            return Attempt::Unsendable;
        };
        if let Some(why) = uri
            .host()
            .and_then(literal_ip)
            .and_then(|ip| self.targets.refusal(ip))
        {
            return Attempt::Refused(why);
        }
        let mut builder = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(uri)
            .header("user-agent", "alert-intake-webhooks/1");
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let Ok(request) = builder.body(Full::new(Bytes::from(req.body.clone()))) else {
            return Attempt::Unsendable;
        };
        match tokio::time::timeout(self.policy.timeout, self.client.request(request)).await {
            Err(_) => Attempt::TimedOut,
            Ok(Err(e)) => match refusal_in(&e) {
                Some(why) => Attempt::Refused(why),
                None => Attempt::ConnectionFailed,
            },
            Ok(Ok(response)) => Attempt::Answered(response.status().as_u16()),
        }
    }

    /// A delivery: attempts until one is final or the policy's are used up.
    pub async fn send(&self, req: &OutRequest) -> Sent {
        self.send_attempts(req, self.policy.attempts).await
    }

    /// Up to `max_attempts` attempts (a scheduled retry makes one).
    pub async fn send_attempts(&self, req: &OutRequest, max_attempts: u32) -> Sent {
        let started = Instant::now();
        let mut attempts = 0;
        let mut delay = self.policy.backoff;
        loop {
            attempts += 1;
            let result = self.attempt(req).await;
            if result.succeeded() || !result.retryable() || attempts >= max_attempts {
                return Sent {
                    succeeded: result.succeeded(),
                    attempts,
                    http_status: match result {
                        Attempt::Answered(s) => Some(s),
                        _ => None,
                    },
                    duration_ms: started.elapsed().as_millis() as i64,
                    error: result.error(self.policy.timeout),
                    unreachable: matches!(result, Attempt::TimedOut | Attempt::ConnectionFailed),
                    retryable: !result.succeeded() && result.retryable(),
                };
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        assert!(Attempt::Answered(200).succeeded());
        assert!(Attempt::Answered(204).succeeded());
        for retried in [
            Attempt::Answered(429),
            Attempt::Answered(500),
            Attempt::Answered(503),
            Attempt::TimedOut,
            Attempt::ConnectionFailed,
        ] {
            assert!(retried.retryable(), "{retried:?}");
        }
        for final_ in [
            Attempt::Answered(400),
            Attempt::Answered(404),
            Attempt::Answered(301),
            Attempt::Unsendable,
            Attempt::Refused("x"),
        ] {
            assert!(!final_.retryable(), "{final_:?}");
        }
    }
}
