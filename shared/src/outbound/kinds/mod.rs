//! One file per webhook kind, behind one interface: each turns the generic
//! body of a change into the request its receiver expects (URL, headers,
//! body, signature). Sending, retries and history are written once, in
//! [`super::service`] and [`super::notify`].

mod dingtalk;
mod feishu;
mod generic;
mod slack;
mod wecom;

use serde_json::Value;

use super::config::{Webhook, WebhookKind};

/// An HTTP POST, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What differs between kinds: the request a change becomes.
pub trait Kind {
    /// `body`: the generic body of SPEC 11; `now_ms`: the send time (signatures).
    fn request(&self, hook: &Webhook, body: &Value, now_ms: i64, ctx: &Context) -> OutRequest;
}

/// What the messages may link to.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The console's base URL (`PUBLIC_BASE_URL`), for links to incidents.
    pub public_base_url: Option<String>,
}

pub fn kind_of(kind: WebhookKind) -> &'static dyn Kind {
    match kind {
        WebhookKind::Generic => &generic::Generic,
        WebhookKind::Slack => &slack::Slack,
        WebhookKind::Feishu => &feishu::Feishu,
        WebhookKind::Dingtalk => &dingtalk::DingTalk,
        WebhookKind::Wecom => &wecom::WeCom,
    }
}

/// The request for `body` to `hook`: its kind's shape, then the user's headers.
pub fn build(hook: &Webhook, body: &Value, now_ms: i64, ctx: &Context) -> OutRequest {
    let mut req = kind_of(hook.kind).request(hook, body, now_ms, ctx);
    for (name, value) in &hook.headers {
        req.headers.push((name.clone(), value.clone()));
    }
    req
}

fn json_request(url: &str, body: &Value) -> OutRequest {
    OutRequest {
        url: url.to_string(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// The short readable text of a change that IM kinds send. Alert-controlled
/// parts (title, severity, labels, comment, channel) are kept raw here and
/// escaped by [`Summary::render`] with the receiving platform's [`Markup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `Triggered`, `Firing`, ...
    pub status: String,
    pub severity: String,
    pub title: String,
    /// `incident opened`, `alert joined`, ... (our words)
    pub what: String,
    /// Text a person or a source wrote, shown after `what` (a comment).
    pub what_text: Option<String>,
    pub channel: String,
    pub labels: Vec<(String, String)>,
    pub link: Option<String>,
}

/// How one platform marks up a message: its bold markers, and how text that
/// came from an alert is made inert there (SPEC 15: it cannot mention
/// everyone, add links or change the message's structure).
#[derive(Clone, Copy, Debug)]
pub struct Markup {
    pub bold: (&'static str, &'static str),
    pub escape: fn(&str) -> String,
}

/// One line, no control characters: a title cannot start a line of its own
/// (a fake `channel:` line, a markdown heading or quote).
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// For platforms without an escape syntax for their mention tags and links
/// (Feishu text, DingTalk and WeCom markdown): the characters that open a
/// tag (`<at user_id="all">`, `<@userid>`, `<font>`), a link (`[text](url)`), a mention (`@all`), emphasis or a code span
/// become their full-width look-alikes, which read the same and mean
/// nothing. Headings and quotes need a line start, which [`one_line`]
/// already took away.
pub fn neutralise_markdown(text: &str) -> String {
    one_line(text)
        .chars()
        .map(|c| match c {
            '<' => '\u{FF1C}',
            '>' => '\u{FF1E}',
            '[' => '\u{FF3B}',
            ']' => '\u{FF3D}',
            '@' => '\u{FF20}',
            '*' => '\u{FF0A}',
            '`' => '\u{FF40}',
            c => c,
        })
        .collect()
}

fn what_happened(event_type: &str, detail: &Value) -> (String, Option<String>) {
    let fixed = match event_type {
        "i_new" => "incident opened".into(),
        "a_merge" => "an alert joined the incident".into(),
        "i_ack" => "incident acknowledged".into(),
        "i_unack" => "incident unacknowledged".into(),
        "i_rslv" => match detail["by"].as_str() {
            Some("auto") => "incident resolved (all alerts recovered)".into(),
            _ => "incident resolved by hand".into(),
        },
        "i_reopen" => "incident reopened".into(),
        "i_comm" => {
            let text = detail["text"].as_str().unwrap_or_default().to_string();
            return ("comment".into(), Some(text));
        }
        "i_storm" => format!(
            "alert storm: {} alerts",
            detail["threshold"].as_i64().unwrap_or_default()
        ),
        "i_m_flapping" => "flapping: its alerts keep opening and closing; muted".into(),
        "a_new" => "alert opened".into(),
        "a_update" => "alert changed".into(),
        "a_close" => "alert closed".into(),
        other => other.to_string(),
    };
    (fixed, None)
}

pub fn summary(body: &Value, ctx: &Context) -> Summary {
    let event_type = body["event_type"].as_str().unwrap_or_default();
    let (object, status) = match body.get("incident") {
        Some(i) => (i, i["status"].as_str().unwrap_or_default().to_string()),
        None => {
            let a = &body["alert"];
            let status = if a["active"].as_bool().unwrap_or(false) {
                "Firing"
            } else {
                "Closed"
            };
            (a, status.to_string())
        }
    };
    let labels = object["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .take(10)
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let incident_id = object["incident_id"].as_str().unwrap_or_default();
    let link = ctx
        .public_base_url
        .as_deref()
        .filter(|_| !incident_id.is_empty())
        .map(|base| {
            // The id is ours, but it is placed in a URL: keep it URL-safe.
            let id: String = form_urlencoded::byte_serialize(incident_id.as_bytes()).collect();
            format!("{}/console#/incidents/{id}", base.trim_end_matches('/'))
        });
    let (what, what_text) = what_happened(event_type, &body["detail"]);
    Summary {
        status,
        severity: object["severity"].as_str().unwrap_or_default().to_string(),
        title: object["title"].as_str().unwrap_or_default().to_string(),
        what,
        what_text,
        channel: object["channel_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        labels,
        link,
    }
}

impl Summary {
    /// `[Triggered] Critical: disk full`, the alert's parts escaped.
    pub fn headline(&self, markup: &Markup) -> String {
        let e = markup.escape;
        format!(
            "[{}] {}: {}",
            e(&self.status),
            e(&self.severity),
            e(&self.title)
        )
    }

    /// Lines: bold headline, then what happened, channel, labels, link.
    pub fn render(&self, markup: &Markup) -> String {
        let e = markup.escape;
        let mut what = self.what.clone();
        if let Some(text) = &self.what_text {
            what = format!("{what}: {}", e(text));
        }
        let mut lines = vec![
            format!(
                "{}{}{}",
                markup.bold.0,
                self.headline(markup),
                markup.bold.1
            ),
            what,
            format!("channel: {}", e(&self.channel)),
        ];
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", e(k), e(v)))
                .collect();
            lines.push(format!("labels: {}", labels.join(", ")));
        }
        if let Some(link) = &self.link {
            lines.push(link.clone());
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::config::default_event_types;
    use serde_json::json;
    use std::collections::BTreeMap;

    pub(super) fn hook(kind: WebhookKind, url: &str, secret: Option<&str>) -> Webhook {
        Webhook {
            webhook_id: "w1".into(),
            name: "n".into(),
            url: url.into(),
            kind,
            channel_ids: vec![],
            event_types: default_event_types(),
            headers: BTreeMap::from([("X-Team".to_string(), "ops".to_string())]),
            secret: secret.map(str::to_string),
            enabled: true,
            created_at: 0,
        }
    }

    pub(super) fn body() -> Value {
        json!({"event_id": "e1", "event_type": "i_new", "event_time": 1_700_000_000_000i64,
               "incident": {"incident_id": "i1", "channel_id": "c1", "title": "disk full",
                            "severity": "Critical", "status": "Triggered",
                            "labels": {"host": "db1"}}, "detail": {}})
    }

    /// Changes whose alert-controlled text tries every trick SPEC 15 names:
    /// mentions of everyone, disguised links, tags, a new line that starts a
    /// heading or a fake `channel:` line. In the title, labels and a comment.
    pub(super) fn hostile_bodies() -> Vec<Value> {
        let evil = "<!channel> <!here> <!everyone> <@U123> <at user_id=\"all\">all</at> \
                    <@all> @all [Open runbook](https://evil.example) \
                    ![x](https://evil.example/i.png) <https://evil.example|Open runbook> \
                    <font color=\"warning\">x</font> **bold** `code`\n# heading\nchannel: fake\r\n> quote";
        let object = json!({"incident_id": "i1", "channel_id": "c1", "title": evil,
                            "severity": "Critical", "status": "Triggered",
                            "labels": {"team": evil, "<!here>": "<@U999>"}});
        vec![
            json!({"event_id": "e1", "event_type": "i_new", "event_time": 0,
                   "incident": object, "detail": {}}),
            json!({"event_id": "e2", "event_type": "i_comm", "event_time": 0,
                   "incident": object, "detail": {"text": evil}}),
        ]
    }

    /// `text` (one rendered message) has exactly `lines` lines and none of
    /// the `forbidden` pieces of markup.
    pub(super) fn assert_inert(text: &str, lines: usize, forbidden: &[&str]) {
        assert_eq!(text.lines().count(), lines, "a new line got in: {text}");
        for f in forbidden {
            assert!(!text.contains(f), "{f:?} survived in: {text}");
        }
        assert!(text.contains("Open runbook"), "the text is still readable");
    }

    /// What no markdown-like platform (Feishu, DingTalk, WeCom) may receive.
    pub(super) const MARKDOWN_FORBIDDEN: &[&str] = &[
        "<",
        ">",
        "](",
        "[Open",
        "@all",
        "**bold",
        "`code",
        "\n#",
        "\n>",
        "\nchannel: fake",
    ];

    #[test]
    fn one_line_and_neutralise_markdown() {
        assert_eq!(one_line("a\nb\r\u{2028}c\u{7}"), "a b  c ");
        assert_eq!(
            neutralise_markdown("[a](http://x) <at user_id=\"all\"> @all"),
            "\u{FF3B}a\u{FF3D}(http://x) \u{FF1C}at user_id=\"all\"\u{FF1E} \u{FF20}all"
        );
        assert_eq!(
            neutralise_markdown("disk (90%) on db_1 #42"),
            "disk (90%) on db_1 #42"
        );
    }

    #[test]
    fn summary_reads_the_generic_body() {
        let ctx = Context {
            public_base_url: Some("https://x.example/".into()),
        };
        let s = summary(&body(), &ctx);
        let plain = Markup {
            bold: ("", ""),
            escape: one_line,
        };
        assert_eq!(s.headline(&plain), "[Triggered] Critical: disk full");
        assert_eq!(s.what, "incident opened");
        assert_eq!(s.labels, vec![("host".to_string(), "db1".to_string())]);
        assert_eq!(
            s.link.as_deref(),
            Some("https://x.example/console#/incidents/i1")
        );
    }

    #[test]
    fn user_headers_are_added() {
        let req = build(
            &hook(WebhookKind::Slack, "http://h/x", None),
            &body(),
            0,
            &Context::default(),
        );
        assert!(req
            .headers
            .contains(&("X-Team".to_string(), "ops".to_string())));
    }
}
