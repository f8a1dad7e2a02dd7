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
    /// Who an `i_assign` / `i_escalate` pages; it replaces `what`.
    pub paging: Option<Paging>,
}

/// Who a level of an escalation chain pages (the `detail` of `i_assign` /
/// `i_escalate`, SPEC 14). Names are raw here, escaped when rendered; an id
/// is kept only when it has its platform's form, so no id can carry markup
/// or a mention of everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    /// `i_escalate` (else `i_assign`).
    pub escalated: bool,
    pub level: i64,
    /// How many times the chain started again from level 1 (0: the first pass).
    pub round: i64,
    /// `via` names `im`: mention each member by the platform's own syntax.
    pub mention: bool,
    pub members: Vec<Paged>,
}

/// One paged member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paged {
    pub name: String,
    pub im: ImIds,
}

/// A member's ids on the IM platforms (members' `im`), each present only
/// when well formed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImIds {
    pub slack_user_id: Option<String>,
    pub feishu_open_id: Option<String>,
    pub dingtalk_mobile: Option<String>,
    pub wecom_user_id: Option<String>,
}

/// Members named in one message, at most (a level's targets are bounded
/// far below this; a detail is not trusted to be).
const MAX_PAGED: usize = 50;
/// A name is cut to this many characters (members' names are 1 to 100).
const MAX_NAME_CHARS: usize = 100;

fn all_bytes(id: &str, len: std::ops::RangeInclusive<usize>, ok: impl Fn(u8) -> bool) -> bool {
    len.contains(&id.len()) && id.bytes().all(ok)
}

/// Slack: `U` or `W` and upper-case letters and digits.
fn slack_user_id(id: &str) -> bool {
    matches!(id.as_bytes().first(), Some(b'U' | b'W'))
        && all_bytes(id, 3..=32, |b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Feishu: an open id, `ou_` and letters and digits.
fn feishu_open_id(id: &str) -> bool {
    id.strip_prefix("ou_")
        .is_some_and(|rest| all_bytes(rest, 1..=64, |b| b.is_ascii_alphanumeric()))
}

/// DingTalk: a mobile number, digits only (as `atMobiles` takes it).
fn dingtalk_mobile(id: &str) -> bool {
    all_bytes(id, 5..=20, |b| b.is_ascii_digit())
}

/// WeCom: a user id, letters, digits and `_-@.`, starting with a letter or
/// digit (so never `@all`).
fn wecom_user_id(id: &str) -> bool {
    id.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && all_bytes(id, 1..=64, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b'.')
        })
}

impl ImIds {
    fn of(im: &Value) -> ImIds {
        let id = |field: &str, valid: fn(&str) -> bool| {
            im[field]
                .as_str()
                .filter(|id| valid(id))
                .map(str::to_string)
        };
        ImIds {
            slack_user_id: id("slack_user_id", slack_user_id),
            feishu_open_id: id("feishu_open_id", feishu_open_id),
            dingtalk_mobile: id("dingtalk_mobile", dingtalk_mobile),
            wecom_user_id: id("wecom_user_id", wecom_user_id),
        }
    }
}

/// The paging of an `i_assign` / `i_escalate` detail: `level`, `round`,
/// `via`, and `members` (`[{"member_id", "name", "im"}]`; without them,
/// `member_ids` named by their ids).
fn paging_of(event_type: &str, detail: &Value) -> Option<Paging> {
    let escalated = match event_type {
        "i_assign" => false,
        "i_escalate" => true,
        _ => return None,
    };
    let members = match detail["members"].as_array() {
        Some(members) => members
            .iter()
            .take(MAX_PAGED)
            .map(|m| {
                let name = m["name"]
                    .as_str()
                    .filter(|n| !n.trim().is_empty())
                    .or_else(|| m["member_id"].as_str())
                    .unwrap_or_default();
                Paged {
                    name: name.chars().take(MAX_NAME_CHARS).collect(),
                    im: ImIds::of(&m["im"]),
                }
            })
            .collect(),
        None => detail["member_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .take(MAX_PAGED)
            .filter_map(Value::as_str)
            .map(|id| Paged {
                name: id.chars().take(MAX_NAME_CHARS).collect(),
                im: ImIds::default(),
            })
            .collect(),
    };
    let mention = detail["via"]
        .as_array()
        .is_some_and(|via| via.iter().any(|v| v == "im"));
    Some(Paging {
        escalated,
        level: detail["level"].as_i64().unwrap_or(1),
        round: detail["round"].as_i64().unwrap_or(0),
        mention,
        members,
    })
}

impl Paging {
    /// The ids a platform's mention list takes (`field` of each member
    /// that has one), when this paging mentions at all.
    pub fn mentioned(&self, field: fn(&ImIds) -> Option<&String>) -> Vec<String> {
        if !self.mention {
            return Vec::new();
        }
        self.members
            .iter()
            .filter_map(|m| field(&m.im).cloned())
            .collect()
    }

    /// `Level 1: assigned to Alice Example <@U1>, Bob` or `escalated to
    /// level 2: ...`: each name escaped, followed by the platform's mention
    /// when it has one for that member.
    pub fn line(&self, markup: &Markup) -> String {
        let names: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let name = (markup.escape)(&m.name);
                match (markup.mention)(&m.im).filter(|_| self.mention) {
                    Some(mention) => format!("{name} {mention}"),
                    None => name,
                }
            })
            .collect();
        let who = if names.is_empty() {
            "nobody (no one on call)".to_string()
        } else {
            names.join(", ")
        };
        let repeat = match self.round {
            0 => String::new(),
            n => format!(" (repeat {n})"),
        };
        if self.escalated {
            format!("escalated to level {}{repeat}: {who}", self.level)
        } else {
            format!("Level {}{repeat}: assigned to {who}", self.level)
        }
    }
}

/// How one platform marks up a message: its bold markers, and how text that
/// came from an alert is made inert there (SPEC 15: it cannot mention
/// everyone, add links or change the message's structure).
#[derive(Clone, Copy, Debug)]
pub struct Markup {
    pub bold: (&'static str, &'static str),
    pub escape: fn(&str) -> String,
    /// How a member is mentioned inline, if the platform does it in the
    /// text (ids are already checked: see [`ImIds`]).
    pub mention: fn(&ImIds) -> Option<String>,
}

/// For a platform that mentions nobody in the text.
pub fn no_mention(_: &ImIds) -> Option<String> {
    None
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
        // The line is [`Paging::line`]'s.
        "i_assign" => "assigned".into(),
        "i_escalate" => "escalated".into(),
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
    let paging = paging_of(event_type, &body["detail"]);
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
        paging,
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
        let mut what = match &self.paging {
            Some(paging) => paging.line(markup),
            None => self.what.clone(),
        };
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

    /// An `i_assign` as the escalation tick records it (SPEC 14): Alice has
    /// an id on every platform, Bob on none.
    pub(super) fn paging_body(event_type: &str, via: &[&str]) -> Value {
        let mut b = body();
        b["event_type"] = json!(event_type);
        b["detail"] = json!({
            "level": if event_type == "i_escalate" { 2 } else { 1 }, "round": 0,
            "member_ids": ["m_a", "m_b"], "via": via,
            "members": [
                {"member_id": "m_a", "name": "Alice Example",
                 "im": {"slack_user_id": "U024BE7LH",
                        "feishu_open_id": "ou_7d8a6e6df7621556ce0d21922b676706",
                        "dingtalk_mobile": "13800000000", "wecom_user_id": "alice"}},
                {"member_id": "m_b", "name": "Bob", "im": {}}]});
        b
    }

    /// A paging whose first member's name and ids try to mention everyone,
    /// add markup or start a line; the second member's ids are genuine.
    pub(super) fn hostile_paging_body() -> Value {
        let mut b = paging_body("i_assign", &["email", "im"]);
        b["detail"]["members"][0] = json!({
            "member_id": "m_a",
            "name": "<!channel> <@U999> <at user_id=\"all\"></at> @all @13900000000 [Open runbook](https://evil.example) **b**\n# heading",
            "im": {"slack_user_id": "U1> <!here", "feishu_open_id": "all\"></at><at user_id=\"all",
                   "dingtalk_mobile": "@all", "wecom_user_id": "@all"}});
        b["detail"]["members"][1]["im"] = json!({
            "slack_user_id": "W0B2", "feishu_open_id": "ou_b0b",
            "dingtalk_mobile": "13800000002", "wecom_user_id": "bob.w"});
        b
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
            mention: no_mention,
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
    fn paging_reads_the_detail_and_names_everyone() {
        let plain = Markup {
            bold: ("", ""),
            escape: one_line,
            mention: |im| im.slack_user_id.clone(),
        };
        let s = summary(
            &paging_body("i_assign", &["email", "im"]),
            &Context::default(),
        );
        let paging = s.paging.clone().unwrap();
        assert_eq!(
            (paging.escalated, paging.level, paging.round),
            (false, 1, 0)
        );
        assert!(paging.mention);
        assert_eq!(
            paging.members[1],
            Paged {
                name: "Bob".into(),
                im: ImIds::default()
            }
        );
        assert_eq!(
            paging.line(&plain),
            "Level 1: assigned to Alice Example U024BE7LH, Bob"
        );
        assert_eq!(
            s.render(&plain).lines().nth(1),
            Some("Level 1: assigned to Alice Example U024BE7LH, Bob")
        );
        assert_eq!(paging.mentioned(|im| im.wecom_user_id.as_ref()), ["alice"]);

        // Email only: named, not mentioned.
        let mut b = paging_body("i_escalate", &["email"]);
        b["detail"]["round"] = json!(1);
        let paging = summary(&b, &Context::default()).paging.unwrap();
        assert_eq!(
            paging.line(&plain),
            "escalated to level 2 (repeat 1): Alice Example, Bob"
        );
        assert!(paging.mentioned(|im| im.wecom_user_id.as_ref()).is_empty());

        // Without `members`, the ids name them; nobody at all is said so.
        let mut b = paging_body("i_assign", &["im"]);
        b["detail"].as_object_mut().unwrap().remove("members");
        let paging = summary(&b, &Context::default()).paging.unwrap();
        assert_eq!(paging.line(&plain), "Level 1: assigned to m_a, m_b");
        b["detail"]["member_ids"] = json!([]);
        let paging = summary(&b, &Context::default()).paging.unwrap();
        assert_eq!(
            paging.line(&plain),
            "Level 1: assigned to nobody (no one on call)"
        );
        // Other events page nobody.
        assert_eq!(summary(&body(), &Context::default()).paging, None);
    }

    #[test]
    fn only_ids_of_the_platforms_form_are_kept() {
        assert!(slack_user_id("U024BE7LH") && slack_user_id("W0B2"));
        for bad in ["", "U1", "u024be7lh", "U1> <!here", "C024BE7LH", "U024 BE7"] {
            assert!(!slack_user_id(bad), "{bad}");
        }
        assert!(feishu_open_id("ou_7d8a6e6df7621556ce0d21922b676706"));
        for bad in ["all", "ou_", "ou_a\"b", "on_7d8a", "ou_7d8a></at>"] {
            assert!(!feishu_open_id(bad), "{bad}");
        }
        assert!(dingtalk_mobile("13800000000"));
        for bad in [
            "@all",
            "1380",
            "+8613800000000",
            "138 0000 0000",
            "138000000001380000000",
        ] {
            assert!(!dingtalk_mobile(bad), "{bad}");
        }
        assert!(wecom_user_id("alice") && wecom_user_id("a.b-c_d@x"));
        for bad in ["@all", "", ".alice", "alice bob", "al<ice", &"a".repeat(65)] {
            assert!(!wecom_user_id(bad), "{bad}");
        }
        let ids = ImIds::of(&json!({"slack_user_id": "U1> <!here", "feishu_open_id": 7,
                                    "dingtalk_mobile": "13800000000"}));
        assert_eq!(
            ids,
            ImIds {
                dingtalk_mobile: Some("13800000000".into()),
                ..Default::default()
            }
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
