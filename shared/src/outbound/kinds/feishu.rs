//! Feishu/Lark custom bot: a `text` message; with a secret, signed in the
//! body with its `timestamp` (seconds) and `sign` scheme. A paged member
//! (`i_assign`, `i_escalate`) is mentioned after their name with the text
//! message's tag `<at user_id="ou_…"></at>` (the custom bot's documented
//! form: the attribute is `user_id` and takes an open id; Feishu fills in
//! the name).

use serde_json::{json, Value};

use super::{json_request, neutralise_markdown, summary, Context, ImIds, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;
use crate::outbound::sign::feishu_sign;

pub struct Feishu;

const MARKUP: Markup = Markup {
    bold: ("", ""),
    escape: neutralise_markdown,
    mention: feishu_mention,
};

fn feishu_mention(im: &ImIds) -> Option<String> {
    im.feishu_open_id
        .as_ref()
        .map(|id| format!("<at user_id=\"{id}\"></at>"))
}

impl Kind for Feishu {
    fn request(&self, hook: &Webhook, body: &Value, now_ms: i64, ctx: &Context) -> OutRequest {
        let text = summary(body, ctx).render(&MARKUP);
        let mut message = json!({ "msg_type": "text", "content": { "text": text } });
        if let Some(secret) = &hook.secret {
            let timestamp = now_ms / 1000;
            message["timestamp"] = json!(timestamp.to_string());
            message["sign"] = json!(feishu_sign(secret, timestamp));
        }
        json_request(&hook.url, &message)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, hook};
    use super::*;
    use crate::outbound::config::WebhookKind;

    #[test]
    fn signed_text_message() {
        let h = hook(
            WebhookKind::Feishu,
            "https://open.feishu.cn/open-apis/bot/v2/hook/x",
            Some("sec"),
        );
        let req = Feishu.request(&h, &body(), 1_700_000_000_999, &Context::default());
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["msg_type"], "text");
        assert!(sent["content"]["text"]
            .as_str()
            .unwrap()
            .contains("disk full"));
        assert_eq!(sent["timestamp"], "1700000000");
        assert_eq!(sent["sign"], feishu_sign("sec", 1_700_000_000));
    }

    #[test]
    fn alert_text_cannot_mention_or_link() {
        use super::super::tests::{assert_inert, hostile_bodies, MARKDOWN_FORBIDDEN};
        for b in hostile_bodies() {
            let h = hook(WebhookKind::Feishu, "https://open.feishu.cn/x", None);
            let req = Feishu.request(&h, &b, 0, &Context::default());
            let sent: Value = serde_json::from_slice(&req.body).unwrap();
            let text = sent["content"]["text"].as_str().unwrap();
            assert_inert(text, 4, MARKDOWN_FORBIDDEN);
            assert!(!text.contains("<at"));
        }
    }

    fn sent_text(b: &Value) -> String {
        let h = hook(WebhookKind::Feishu, "https://open.feishu.cn/x", None);
        let req = Feishu.request(&h, b, 0, &Context::default());
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["msg_type"], "text");
        sent["content"]["text"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_paged_member_is_mentioned_by_open_id() {
        use super::super::tests::paging_body;
        let text = sent_text(&paging_body("i_assign", &["email", "im"]));
        assert_eq!(
            text.lines().nth(1),
            Some("Level 1: assigned to Alice Example <at user_id=\"ou_7d8a6e6df7621556ce0d21922b676706\"></at>, Bob")
        );
        let text = sent_text(&paging_body("i_escalate", &["email"]));
        assert_eq!(
            text.lines().nth(1),
            Some("escalated to level 2: Alice Example, Bob")
        );
    }

    #[test]
    fn a_paged_name_or_id_cannot_mention_or_link() {
        use super::super::tests::hostile_paging_body;
        let text = sent_text(&hostile_paging_body());
        assert_eq!(text.lines().count(), 4, "{text}");
        assert_eq!(text.matches("<at").count(), 1, "{text}");
        assert!(text.contains("Bob <at user_id=\"ou_b0b\"></at>"));
        assert!(!text.contains("<at user_id=\"all") && !text.contains("@all"));
        assert!(!text.contains("]("));
    }
}
