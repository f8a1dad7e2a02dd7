//! WeCom (WeChat Work) group robot: a `markdown` message; the robot's key
//! is in its URL, there is no signing scheme.

use serde_json::{json, Value};

use super::{json_request, neutralise_markdown, summary, Context, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;

pub struct WeCom;

const MARKUP: Markup = Markup {
    bold: ("**", "**"),
    escape: neutralise_markdown,
};

impl Kind for WeCom {
    fn request(&self, hook: &Webhook, body: &Value, _: i64, ctx: &Context) -> OutRequest {
        let content = summary(body, ctx).render(&MARKUP);
        json_request(
            &hook.url,
            &json!({ "msgtype": "markdown", "markdown": { "content": content } }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, hook};
    use super::*;
    use crate::outbound::config::WebhookKind;

    #[test]
    fn markdown_message() {
        let h = hook(
            WebhookKind::Wecom,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            None,
        );
        let req = WeCom.request(&h, &body(), 0, &Context::default());
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["msgtype"], "markdown");
        assert!(sent["markdown"]["content"]
            .as_str()
            .unwrap()
            .starts_with("**[Triggered]"));
    }

    #[test]
    fn alert_text_cannot_mention_or_link() {
        use super::super::tests::{assert_inert, hostile_bodies, MARKDOWN_FORBIDDEN};
        for b in hostile_bodies() {
            let h = hook(
                WebhookKind::Wecom,
                "https://qyapi.weixin.qq.com/x?key=k",
                None,
            );
            let req = WeCom.request(&h, &b, 0, &Context::default());
            let sent: Value = serde_json::from_slice(&req.body).unwrap();
            let content = sent["markdown"]["content"].as_str().unwrap();
            assert_inert(content, 4, MARKDOWN_FORBIDDEN);
            assert!(!content.contains("<@") && !content.contains("<font"));
        }
    }
}
