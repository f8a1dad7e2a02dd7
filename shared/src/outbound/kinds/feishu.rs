//! Feishu/Lark custom bot: a `text` message; with a secret, signed in the
//! body with its `timestamp` (seconds) and `sign` scheme.

use serde_json::{json, Value};

use super::{json_request, neutralise_markdown, summary, Context, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;
use crate::outbound::sign::feishu_sign;

pub struct Feishu;

const MARKUP: Markup = Markup {
    bold: ("", ""),
    escape: neutralise_markdown,
};

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
}
