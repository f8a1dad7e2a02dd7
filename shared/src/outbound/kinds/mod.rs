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

/// The short readable text of a change that IM kinds send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `[Triggered] Critical: disk full`
    pub headline: String,
    /// `incident opened`, `alert joined`, ...
    pub what: String,
    pub channel: String,
    pub labels: String,
    pub link: Option<String>,
}

fn what_happened(event_type: &str, detail: &Value) -> String {
    match event_type {
        "i_new" => "incident opened".into(),
        "a_merge" => "an alert joined the incident".into(),
        "i_ack" => "incident acknowledged".into(),
        "i_unack" => "incident unacknowledged".into(),
        "i_rslv" => match detail["by"].as_str() {
            Some("auto") => "incident resolved (all alerts recovered)".into(),
            _ => "incident resolved by hand".into(),
        },
        "i_reopen" => "incident reopened".into(),
        "i_comm" => format!("comment: {}", detail["text"].as_str().unwrap_or_default()),
        "i_storm" => format!(
            "alert storm: {} alerts",
            detail["threshold"].as_i64().unwrap_or_default()
        ),
        "i_m_flapping" => "flapping: its alerts keep opening and closing; muted".into(),
        "a_new" => "alert opened".into(),
        "a_update" => "alert changed".into(),
        "a_close" => "alert closed".into(),
        other => other.to_string(),
    }
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
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let incident_id = object["incident_id"].as_str().unwrap_or_default();
    let link = ctx
        .public_base_url
        .as_deref()
        .filter(|_| !incident_id.is_empty())
        .map(|base| {
            format!(
                "{}/console#/incidents/{incident_id}",
                base.trim_end_matches('/')
            )
        });
    Summary {
        headline: format!(
            "[{status}] {}: {}",
            object["severity"].as_str().unwrap_or_default(),
            object["title"].as_str().unwrap_or_default()
        ),
        what: what_happened(event_type, &body["detail"]),
        channel: object["channel_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        labels,
        link,
    }
}

impl Summary {
    /// Markdown lines: bold headline, then what happened, channel, labels, link.
    pub fn markdown(&self, bold: (&str, &str)) -> String {
        let mut lines = vec![
            format!("{}{}{}", bold.0, self.headline, bold.1),
            self.what.clone(),
            format!("channel: {}", self.channel),
        ];
        if !self.labels.is_empty() {
            lines.push(format!("labels: {}", self.labels));
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

    #[test]
    fn summary_reads_the_generic_body() {
        let ctx = Context {
            public_base_url: Some("https://x.example/".into()),
        };
        let s = summary(&body(), &ctx);
        assert_eq!(s.headline, "[Triggered] Critical: disk full");
        assert_eq!(s.what, "incident opened");
        assert_eq!(s.labels, "host=db1");
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
