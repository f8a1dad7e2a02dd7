//! Email notifications over SMTP (SPEC 14, "Email"): who is paged gets a
//! message with the incident's title, severity, channel, labels, its console
//! link and its acknowledgement link. One connection per message (no pool:
//! a Lambda instance is frozen between ticks, and an idle SMTP connection
//! would not survive that), on the one rustls + ring stack of the tree with
//! the system's root certificates.
//!
//! Configuration comes from the environment: `SMTP_URL` (`smtp://host:port`,
//! `smtp+starttls://user:password@host:587`, `smtps://user:password@host:465`),
//! `SMTP_FROM`, and in AWS `SMTP_PASSWORD_SECRET`, a Secrets Manager secret
//! holding the password, read once per process. Neither the password nor the
//! URL that may hold it is ever logged or put in an error.
//!
//! The caller (the escalation tick) records each send: `Ok` as `sent`, a
//! [`SendFailure`] as `failed` with its reason, retried when transient.
//!
//! Why one file of about 600 lines before its tests: the configuration, the
//! message and the send share the rule that no secret reaches a log or an
//! error, which is easier to check in one place.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;

use crate::error::{ApiError, ApiResult};

/// The reason recorded for an email notification when no server is configured.
pub const NOT_CONFIGURED: &str = "email is not configured: SMTP_URL is not set";

/// Each SMTP command (connect, TLS, AUTH, each reply) may take this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole send (connect to QUIT) may take this long: one slow server cannot
/// hold a tick (a function of 15 s) for long.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A failure's reason is cut to this many characters.
const MAX_REASON_CHARS: usize = 200;
/// The title in the subject is cut to this many characters.
const MAX_SUBJECT_TITLE_CHARS: usize = 200;

/// How the connection to the server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no TLS at all (a local server). No password is allowed.
    None,
    /// `smtp+starttls://`: plain connect, then STARTTLS, required before
    /// anything else is sent (a server without it fails the send).
    StartTls,
    /// `smtps://`: TLS from the first byte (port 465).
    ImplicitTls,
}

/// Where and how to send: what `SMTP_URL` (and the secret) say.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub security: SmtpSecurity,
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    password: Option<String>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

fn url_error(rule: &str) -> ApiError {
    ApiError::invalid(format!("SMTP_URL {rule}"))
}

impl SmtpConfig {
    /// Reads an `SMTP_URL`. `password_override` (the secret's value) replaces
    /// any password in the URL. Errors name `SMTP_URL` and the rule, never
    /// the URL itself: it may hold a password.
    pub fn from_url(url: &str, password_override: Option<String>) -> ApiResult<SmtpConfig> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| url_error("must start with smtp://, smtp+starttls:// or smtps://"))?;
        let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => (SmtpSecurity::None, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::ImplicitTls, 465),
            _ => {
                return Err(url_error(
                    "must start with smtp://, smtp+starttls:// or smtps://",
                ))
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(url_error("must have no path, query or fragment"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let decode = |part: &str, what: &str| -> ApiResult<String> {
            percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| url_error(&format!("{what} must be percent-encoded UTF-8")))
        };
        let (mut user, mut password) = (None, None);
        if let Some(userinfo) = userinfo {
            let (u, p) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            let u = decode(u, "the user name")?;
            if u.is_empty() {
                return Err(url_error("has an empty user name before '@'"));
            }
            user = Some(u);
            password = p.map(|p| decode(p, "the password")).transpose()?;
        }
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| url_error("must have a port between 1 and 65535"))?,
        };
        if password_override.is_some() {
            password = password_override;
        }
        match (&user, &password, security) {
            (Some(_), None, _) => {
                return Err(url_error(
                    "names a user but no password (put it in the URL or in the secret SMTP_PASSWORD_SECRET names)",
                ))
            }
            (None, Some(_), _) => {
                return Err(url_error(
                    "must name the user the password belongs to (smtp+starttls://user@host:587)",
                ))
            }
            (Some(_), Some(_), SmtpSecurity::None) => {
                return Err(url_error(
                    "must use smtp+starttls:// or smtps:// with a password (smtp:// would send it in clear)",
                ))
            }
            _ => {}
        }
        Ok(SmtpConfig {
            security,
            host,
            port,
            user,
            password,
        })
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the host checked for shape.
fn split_host_port(hostport: &str) -> ApiResult<(String, Option<&str>)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| url_error("has an IPv6 host without its closing ']'"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(url_error("has an IPv6 host that is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| url_error("must have ':' between the host and the port"))?,
            ),
        };
        (v6.to_string(), port)
    } else {
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        let shaped = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !shaped {
            return Err(url_error(
                "must have a host: a DNS name or an IP address (letters, digits, '-', '.', '_')",
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    Ok((host, port))
}

/// Why a message did not go out. `transient`: worth trying again later (no
/// connection, a timeout, TLS trouble, a 4xx reply); otherwise the server
/// refused it for good (a 5xx reply: bad recipient, bad credentials) or it
/// could not be built (an invalid address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    pub transient: bool,
    /// Short, for the notification's history; never holds the password.
    pub reason: String,
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.transient {
            "transient"
        } else {
            "permanent"
        };
        write!(f, "{kind}: {}", self.reason)
    }
}

/// Why someone is paged: the engine's page kind (`i_assign`, `i_escalate`).
pub use crate::engine::escalation::PageKind;

/// One page by email: one member, one incident, one level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageEmail {
    /// The member's address.
    pub to: String,
    pub member_name: String,
    pub incident_id: String,
    pub title: String,
    pub severity: String,
    pub channel_name: String,
    pub labels: BTreeMap<String, String>,
    /// The incident's page in the console.
    pub console_url: String,
    /// `{PUBLIC_BASE_URL}/ack/{token}`.
    pub ack_url: String,
    pub kind: PageKind,
    /// 1-based.
    pub level: usize,
}

/// A page's subject and bodies, before they become MIME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One line: CR, LF and every other control character become a space, so
/// that alert text can neither add a header nor fake a line of the body.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn cut(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl PageEmail {
    /// Subject `[<severity>] <title>`, a plain-text body and its HTML twin
    /// (every value escaped; no external resources).
    pub fn compose(&self) -> ComposedEmail {
        let title = one_line(&self.title);
        let severity = one_line(&self.severity);
        let channel = one_line(&self.channel_name);
        let name = one_line(&self.member_name);
        let subject = format!(
            "[{}] {}",
            severity.trim(),
            cut(title.trim(), MAX_SUBJECT_TITLE_CHARS)
        );
        let why = match self.kind {
            PageKind::Assign => format!("you are on call for this incident (level {})", self.level),
            PageKind::Escalate => format!(
                "this incident was escalated to you (level {}): nobody acted in time",
                self.level
            ),
        };
        let labels: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(k, v)| (one_line(k), one_line(v)))
            .collect();

        let mut text = format!("{name}, {why}.\n\n");
        text.push_str(&format!("Title:    {title}\n"));
        text.push_str(&format!("Severity: {severity}\n"));
        text.push_str(&format!("Channel:  {channel}\n"));
        if labels.is_empty() {
            text.push_str("Labels:   (none)\n");
        } else {
            text.push_str("Labels:\n");
            for (k, v) in &labels {
                text.push_str(&format!("  {k} = {v}\n"));
            }
        }
        text.push_str(&format!(
            "\nOpen the incident:\n{}\n\nAcknowledge it (the page asks you to confirm):\n{}\n",
            one_line(&self.console_url),
            one_line(&self.ack_url)
        ));
        text.push_str(&format!("\nIncident {}\n", one_line(&self.incident_id)));

        let e = |s: &str| crate::html::escape(s);
        let mut html = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif\">\n",
        );
        html.push_str(&format!("<p>{}, {}.</p>\n", e(&name), e(&why)));
        html.push_str("<table>\n");
        for (k, v) in [
            ("Title", &title),
            ("Severity", &severity),
            ("Channel", &channel),
        ] {
            html.push_str(&format!(
                "<tr><th align=\"left\">{k}</th><td>{}</td></tr>\n",
                e(v)
            ));
        }
        html.push_str("</table>\n");
        if !labels.is_empty() {
            html.push_str("<p>Labels:</p>\n<ul>\n");
            for (k, v) in &labels {
                html.push_str(&format!(
                    "<li><code>{}</code> = <code>{}</code></li>\n",
                    e(k),
                    e(v)
                ));
            }
            html.push_str("</ul>\n");
        }
        html.push_str(&format!(
            "<p><a href=\"{}\">Open the incident</a></p>\n<p><a href=\"{}\">Acknowledge it</a> (the page asks you to confirm)</p>\n",
            e(&one_line(&self.console_url)),
            e(&one_line(&self.ack_url))
        ));
        html.push_str(&format!(
            "<p style=\"color:#666\">Incident {}</p>\n</body></html>\n",
            e(&one_line(&self.incident_id))
        ));
        ComposedEmail {
            subject,
            text,
            html,
        }
    }
}

/// Sends pages over one configured SMTP server. Build it once per cold
/// start: building loads the system's root certificates.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    config: SmtpConfig,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.config)
            .field("from", &self.from.email.to_string())
            .finish()
    }
}

impl Mailer {
    /// From `SMTP_URL`, `SMTP_FROM` and `SMTP_PASSWORD_SECRET`; `None` when
    /// `SMTP_URL` is unset or empty (record [`NOT_CONFIGURED`]).
    pub async fn from_env() -> ApiResult<Option<Mailer>> {
        let Some(url) = std::env::var("SMTP_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        let from = std::env::var("SMTP_FROM").unwrap_or_default();
        if from.trim().is_empty() {
            return Err(ApiError::invalid(
                "SMTP_FROM must be set when SMTP_URL is: the sender, e.g. alerts@example.com or On-call <alerts@example.com>",
            ));
        }
        let config = SmtpConfig::from_url(&url, password_from_env().await?)?;
        Mailer::new(config, &from).map(Some)
    }

    /// A mailer for this server, sending as `from` (`addr` or `Name <addr>`).
    pub fn new(config: SmtpConfig, from: &str) -> ApiResult<Mailer> {
        Mailer::build(config, from, None)
    }

    /// [`Mailer::new`], also trusting this root certificate (PEM): a relay
    /// with a private CA, or a test server's self-signed certificate.
    pub fn new_trusting(config: SmtpConfig, from: &str, root_pem: &[u8]) -> ApiResult<Mailer> {
        Mailer::build(config, from, Some(root_pem))
    }

    fn build(config: SmtpConfig, from: &str, root_pem: Option<&[u8]>) -> ApiResult<Mailer> {
        let from: Mailbox = from.trim().parse().map_err(|_| {
            ApiError::invalid(
                "SMTP_FROM must be an email address, optionally with a name: Name <alerts@example.com>",
            )
        })?;
        let tls = |host: &str| -> ApiResult<TlsParameters> {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(pem) = root_pem {
                let cert = Certificate::from_pem(pem).map_err(|_| {
                    ApiError::invalid("the extra root certificate must be a PEM certificate")
                })?;
                params = params.add_root_certificate(cert);
            }
            params
                .build_rustls()
                .map_err(|e| ApiError::internal(format!("could not set up TLS for SMTP: {e}")))
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port)
                .timeout(Some(COMMAND_TIMEOUT));
        builder = match config.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls(&config.host)?)),
            SmtpSecurity::ImplicitTls => builder.tls(Tls::Wrapper(tls(&config.host)?)),
        };
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            config,
        })
    }

    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    /// The message as it goes out: From, To (with the member's name),
    /// Subject, and a multipart/alternative of the text and HTML bodies.
    pub fn message(&self, page: &PageEmail) -> Result<Message, SendFailure> {
        let permanent = |reason: &str| SendFailure {
            transient: false,
            reason: reason.to_string(),
        };
        let address = page
            .to
            .trim()
            .parse()
            .map_err(|_| permanent("the member's email address is not a valid address"))?;
        let name = one_line(&page.member_name).trim().to_string();
        let to = Mailbox::new((!name.is_empty()).then_some(name), address);
        let composed = page.compose();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(composed.subject)
            // `<random@this host>`: some servers refuse or score down mail without one.
            .message_id(None)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(composed.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(composed.html),
                    ),
            )
            .map_err(|_| permanent("the message could not be built"))
    }

    /// Sends one page: connect, (STARTTLS,) (AUTH,) MAIL, RCPT, DATA, QUIT,
    /// within [`SEND_TIMEOUT`].
    pub async fn send(&self, page: &PageEmail) -> Result<(), SendFailure> {
        let message = self.message(page)?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Err(_) => Err(SendFailure {
                transient: true,
                reason: format!(
                    "the mail server did not finish within {} s",
                    SEND_TIMEOUT.as_secs()
                ),
            }),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.failure(&e)),
        }
    }

    fn failure(&self, e: &lettre::transport::smtp::Error) -> SendFailure {
        let transient = !e.is_permanent();
        let what = if e.is_permanent() || e.is_transient() {
            "the mail server refused the message"
        } else if e.is_timeout() {
            "the mail server did not answer in time"
        } else if e.is_tls() {
            "TLS with the mail server failed"
        } else {
            "could not talk to the mail server"
        };
        // lettre nests a connection error in another ("Connection error: Connection error: ...").
        let detail = e
            .to_string()
            .replace("Connection error: Connection error: ", "Connection error: ");
        let mut reason = format!(
            "{what} ({}:{}): {detail}",
            self.config.host, self.config.port
        );
        if let Some(password) = self.config.password.as_deref().filter(|p| !p.is_empty()) {
            reason = reason.replace(password, "***");
        }
        SendFailure {
            transient,
            reason: cut(&one_line(&reason), MAX_REASON_CHARS),
        }
    }
}

/// The SMTP password, read from Secrets Manager once per process.
static SECRET_PASSWORD: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// The SMTP password from the secret `SMTP_PASSWORD_SECRET` names (`None`
/// when it is unset or empty), read from Secrets Manager on the first call
/// and kept for the life of the process. A failed read is not kept: the
/// next call tries again.
pub async fn password_from_env() -> ApiResult<Option<String>> {
    let Some(secret_id) = std::env::var("SMTP_PASSWORD_SECRET")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let password = SECRET_PASSWORD
        .get_or_try_init(|| read_secret_password(secret_id.trim().to_string()))
        .await?;
    Ok(Some(password.clone()))
}

/// The password in a secret's value: the whole string, or the `password`
/// member when it is a JSON object (as the console's "key/value" secrets are).
pub fn password_from_secret(value: &str) -> ApiResult<String> {
    let missing = || {
        ApiError::invalid(
            "the secret SMTP_PASSWORD_SECRET names must hold the password, or a JSON object with \"password\"",
        )
    };
    let value = value.trim();
    if value.starts_with('{') {
        let parsed: serde_json::Value = serde_json::from_str(value).map_err(|_| missing())?;
        return parsed
            .get("password")
            .and_then(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .ok_or_else(missing);
    }
    if value.is_empty() {
        return Err(missing());
    }
    Ok(value.to_string())
}

/// GetSecretValue on the secret `SMTP_PASSWORD_SECRET` names (ARN or name),
/// over the same rustls + ring HTTP client as the table's.
async fn read_secret_password(secret_id: String) -> ApiResult<String> {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(8))
        .build();
    let config = crate::aws::sdk_config(timeouts).await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            // The error names the failure (AccessDenied, ResourceNotFound), never the value.
            let detail = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
            tracing::error!(error = %detail, "could not read the SMTP password secret");
            ApiError::internal("could not read the secret SMTP_PASSWORD_SECRET names; see the log")
        })?;
    let value = out.secret_string().ok_or_else(|| {
        ApiError::invalid(
            "the secret SMTP_PASSWORD_SECRET names must be a string secret, not binary",
        )
    })?;
    password_from_secret(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> PageEmail {
        PageEmail {
            to: "alice@example.com".into(),
            member_name: "Alice".into(),
            incident_id: "inc-1".into(),
            title: "CPU high on web-01".into(),
            severity: "Critical".into(),
            channel_name: "Payments".into(),
            labels: BTreeMap::from([
                ("service".to_string(), "checkout".to_string()),
                ("cluster".to_string(), "prod".to_string()),
                ("az".to_string(), "eu-1a".to_string()),
            ]),
            console_url: "https://alerts.example.com/console#/incidents/inc-1".into(),
            ack_url: "https://alerts.example.com/ack/abc".into(),
            kind: PageKind::Assign,
            level: 1,
        }
    }

    #[test]
    fn url_forms_map_to_transports() {
        let c = SmtpConfig::from_url("smtp://127.0.0.1:2525", None).unwrap();
        assert_eq!(
            (
                c.security,
                c.host.as_str(),
                c.port,
                c.user.clone(),
                c.has_password()
            ),
            (SmtpSecurity::None, "127.0.0.1", 2525, None, false)
        );
        let c = SmtpConfig::from_url(
            "smtp+starttls://AKIAEXAMPLE:p%40ss%2Fw%3Ard@email-smtp.eu-west-1.amazonaws.com:587",
            None,
        )
        .unwrap();
        assert_eq!(c.security, SmtpSecurity::StartTls);
        assert_eq!(c.host, "email-smtp.eu-west-1.amazonaws.com");
        assert_eq!(c.port, 587);
        assert_eq!(c.user.as_deref(), Some("AKIAEXAMPLE"));
        assert_eq!(c.password.as_deref(), Some("p@ss/w:rd"));
        let c = SmtpConfig::from_url("SMTPS://u:p@Mail.Example.com/", None).unwrap();
        assert_eq!(
            (c.security, c.host.as_str(), c.port),
            (SmtpSecurity::ImplicitTls, "mail.example.com", 465)
        );
        let c = SmtpConfig::from_url(
            "smtp+starttls://u@mail.example.com",
            Some("from-secret".into()),
        )
        .unwrap();
        assert_eq!((c.port, c.password.as_deref()), (587, Some("from-secret")));
        let c = SmtpConfig::from_url("smtps://u:in-url@[::1]:4650", Some("wins".into())).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.password.as_deref()),
            ("::1", 4650, Some("wins"))
        );
        assert_eq!(
            SmtpConfig::from_url("smtp://localhost", None).unwrap().port,
            25
        );
    }

    #[test]
    fn bad_urls_name_the_variable_and_the_rule_but_never_the_value() {
        let secret = "s3cr3t-pw";
        for (url, rule) in [
            ("http://u:s3cr3t-pw@host", "must start with"),
            ("s3cr3t-pw", "must start with"),
            ("smtps://u:s3cr3t-pw@host:99999", "port between 1 and 65535"),
            ("smtps://u:s3cr3t-pw@host:0", "port between 1 and 65535"),
            ("smtps://u:s3cr3t-pw@host/path", "no path"),
            ("smtps://u:s3cr3t-pw@host?x=1", "no path"),
            ("smtps://u:s3cr3t-pw@", "must have a host"),
            ("smtps://u:s3cr3t-pw@ho st", "must have a host"),
            ("smtp://u:s3cr3t-pw@host", "smtp:// would send it in clear"),
            ("smtps://:s3cr3t-pw@host", "empty user name"),
            ("smtps://u:s3cr3t-pw%ff@host", "percent-encoded UTF-8"),
            ("smtps://u@host", "names a user but no password"),
            ("smtps://u:s3cr3t-pw@[::1", "closing ']'"),
        ] {
            let err = SmtpConfig::from_url(url, None).unwrap_err();
            let m = err.message();
            assert!(m.starts_with("SMTP_URL "), "{url}: {m}");
            assert!(m.contains(rule), "{url}: {m}");
            assert!(!m.contains(secret), "{url}: {m}");
            assert_eq!(err.code(), "InvalidParameter");
        }
        let err = SmtpConfig::from_url("smtps://host", Some(secret.into())).unwrap_err();
        assert!(err.message().contains("must name the user"));
        assert!(!err.message().contains(secret));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = SmtpConfig::from_url("smtps://user:hunter2-pw@host", None).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-pw"), "{shown}");
        assert!(shown.contains("***") && shown.contains("user"), "{shown}");
        let m = Mailer::new(c, "Alerts <alerts@example.com>").unwrap();
        assert!(!format!("{m:?}").contains("hunter2-pw"));
    }

    #[test]
    fn subject_is_severity_and_title_on_one_line() {
        let mut p = page();
        p.title = "Disk full\r\nBcc: victim@example.com\nX-Evil: 1".into();
        let c = p.compose();
        assert_eq!(
            c.subject,
            "[Critical] Disk full  Bcc: victim@example.com X-Evil: 1"
        );
        assert!(!c.subject.contains(['\r', '\n']));
        // The built message has exactly one Bcc-free header block.
        let mailer = Mailer::new(
            SmtpConfig::from_url("smtp://127.0.0.1:25", None).unwrap(),
            "alerts@example.com",
        )
        .unwrap();
        let raw = String::from_utf8(mailer.message(&p).unwrap().formatted()).unwrap();
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(
            !headers
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Evil:")),
            "{headers}"
        );
        let long = "x".repeat(500);
        p.title = long;
        let subject = p.compose().subject;
        assert_eq!(
            subject.chars().count(),
            "[Critical] ".len() + MAX_SUBJECT_TITLE_CHARS
        );
        assert!(subject.ends_with('…'));
    }

    #[test]
    fn text_body_has_every_field_labels_in_key_order_and_no_forged_lines() {
        let mut p = page();
        p.labels.insert(
            "note".into(),
            "ok\nAcknowledge it:\nhttps://evil.example".into(),
        );
        let c = p.compose();
        let t = &c.text;
        for needle in [
            "Alice, you are on call for this incident (level 1).",
            "Title:    CPU high on web-01",
            "Severity: Critical",
            "Channel:  Payments",
            "https://alerts.example.com/console#/incidents/inc-1",
            "https://alerts.example.com/ack/abc",
        ] {
            assert!(t.contains(needle), "{needle} missing from:\n{t}");
        }
        let az = t.find("  az = eu-1a").unwrap();
        let cluster = t.find("  cluster = prod").unwrap();
        let note = t
            .find("  note = ok Acknowledge it: https://evil.example")
            .unwrap();
        let service = t.find("  service = checkout").unwrap();
        assert!(az < cluster && cluster < note && note < service, "{t}");
        // The forged link stays inside its label's line: no line is just a URL but ours.
        let url_lines: Vec<&str> = t.lines().filter(|l| l.starts_with("https://")).collect();
        assert_eq!(
            url_lines,
            [
                "https://alerts.example.com/console#/incidents/inc-1",
                "https://alerts.example.com/ack/abc"
            ]
        );
        p.kind = PageKind::Escalate;
        p.level = 2;
        assert!(p.compose().text.contains("escalated to you (level 2)"));
    }

    #[test]
    fn html_body_escapes_every_value() {
        let mut p = page();
        p.title = "<script>alert(1)</script> & \"quotes\"".into();
        p.labels
            .insert("<b>k</b>".into(), "<img src=x onerror=y>".into());
        p.member_name = "Eve <eve@x>".into();
        let h = p.compose().html;
        assert!(
            !h.contains("<script>") && !h.contains("<img") && !h.contains("<b>k"),
            "{h}"
        );
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
        assert!(h.contains("&lt;b&gt;k&lt;/b&gt;"));
        assert!(h.contains("href=\"https://alerts.example.com/ack/abc\""));
        assert!(
            !h.contains("http://") && !h.contains("src=\""),
            "no external resources: {h}"
        );
    }

    #[test]
    fn from_and_recipient_addresses_are_checked() {
        let config = SmtpConfig::from_url("smtp://127.0.0.1:25", None).unwrap();
        let err = Mailer::new(config.clone(), "not an address").unwrap_err();
        assert!(err.message().starts_with("SMTP_FROM "));
        let mailer = Mailer::new(config, "On-call <oncall@example.com>").unwrap();
        let mut p = page();
        p.to = "bob@".into();
        let failure = mailer.message(&p).unwrap_err();
        assert!(!failure.transient);
        assert!(failure.reason.contains("not a valid address"));
    }

    #[test]
    fn secret_value_is_the_string_or_its_password_member() {
        assert_eq!(password_from_secret("pw\n").unwrap(), "pw");
        assert_eq!(
            password_from_secret(r#"{"username":"AKIA","password":"pw"}"#).unwrap(),
            "pw"
        );
        assert!(password_from_secret(r#"{"user":"x"}"#).is_err());
        assert!(password_from_secret("  ").is_err());
    }
}
