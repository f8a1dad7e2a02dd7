//! Slack incoming webhook: `{"text": ...}` in Slack's mrkdwn (bold is `*x*`).
//! Slack's own escaping (`&amp;`, `&lt;`, `&gt;`) keeps alert text from
//! forming `<!channel>`, `<!here>`, `<!everyone>`, `<@U..>` or `<url|text>`.
//! A paged member (`i_assign`, `i_escalate`) is mentioned as `<@U…>` after
//! their name.

use serde_json::{json, Value};

use super::{json_request, one_line, summary, Context, ImIds, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;

pub struct Slack;

const MARKUP: Markup = Markup {
    bold: ("*", "*"),
    escape: slack_escape,
    mention: slack_mention,
};

/// `<@U024BE7LH>`: Slack shows the member's display name and notifies them.
fn slack_mention(im: &ImIds) -> Option<String> {
    im.slack_user_id.as_ref().map(|id| format!("<@{id}>"))
}

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

    fn sent_text(b: &Value) -> String {
        let req = Slack.request(
            &hook(WebhookKind::Slack, "https://hooks.slack.com/x", None),
            b,
            0,
            &Context::default(),
        );
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        sent["text"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_paged_member_is_mentioned_by_user_id() {
        use super::super::tests::paging_body;
        let text = sent_text(&paging_body("i_assign", &["email", "im"]));
        assert!(text.starts_with("*[Triggered] Critical: disk full*\n"));
        assert_eq!(
            text.lines().nth(1),
            Some("Level 1: assigned to Alice Example <@U024BE7LH>, Bob")
        );
        let text = sent_text(&paging_body("i_escalate", &["im"]));
        assert_eq!(
            text.lines().nth(1),
            Some("escalated to level 2: Alice Example <@U024BE7LH>, Bob")
        );
        // Email only: named, nobody mentioned.
        let text = sent_text(&paging_body("i_assign", &["email"]));
        assert_eq!(
            text.lines().nth(1),
            Some("Level 1: assigned to Alice Example, Bob")
        );
        assert!(!text.contains("<@"));
    }

    #[test]
    fn a_paged_name_or_id_cannot_mention_or_link() {
        use super::super::tests::hostile_paging_body;
        let text = sent_text(&hostile_paging_body());
        assert_eq!(text.lines().count(), 4, "{text}");
        // The only tag is the genuine member's mention.
        assert_eq!(text.matches('<').count(), 1, "{text}");
        assert!(text.contains("Bob <@W0B2>"));
        assert!(text.contains("&lt;!channel&gt; &lt;@U999&gt;"));
        assert!(!text.contains("<!here") && !text.contains("<@U1"));
    }
}
