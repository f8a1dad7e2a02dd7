//! Slack incoming webhook: `{"text": ...}` in Slack's mrkdwn (bold is `*x*`).
//! Slack's own escaping (`&amp;`, `&lt;`, `&gt;`) keeps alert text from
//! forming `<!channel>`, `<!here>`, `<!everyone>`, `<@U..>` or `<url|text>`.

use serde_json::{json, Value};

use super::{json_request, one_line, summary, Context, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;

pub struct Slack;

const MARKUP: Markup = Markup {
    bold: ("*", "*"),
    escape: slack_escape,
};

/// Slack's documented escaping of the three control characters.
fn slack_escape(text: &str) -> String {
    one_line(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Kind for Slack {
    fn request(&self, hook: &Webhook, body: &Value, _: i64, ctx: &Context) -> OutRequest {
        let text = summary(body, ctx).render(&MARKUP);
        json_request(&hook.url, &json!({ "text": text }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, hook};
    use super::*;
    use crate::outbound::config::WebhookKind;

    #[test]
    fn text_message() {
        let req = Slack.request(
            &hook(WebhookKind::Slack, "https://hooks.slack.com/x", None),
            &body(),
            0,
            &Context::default(),
        );
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert!(sent["text"]
            .as_str()
            .unwrap()
            .starts_with("*[Triggered] Critical: disk full*"));
        assert_eq!(req.url, "https://hooks.slack.com/x");
    }

    #[test]
    fn alert_text_cannot_mention_or_link() {
        use super::super::tests::{assert_inert, hostile_bodies};
        for b in hostile_bodies() {
            let req = Slack.request(
                &hook(WebhookKind::Slack, "https://hooks.slack.com/x", None),
                &b,
                0,
                &Context::default(),
            );
            let sent: Value = serde_json::from_slice(&req.body).unwrap();
            let text = sent["text"].as_str().unwrap();
            assert_inert(text, 4, &["<", ">", "\nchannel: fake"]);
            assert!(text.contains("&lt;!channel&gt;"));
            assert!(text.contains("&lt;https://evil.example|Open runbook&gt;"));
        }
    }
}
