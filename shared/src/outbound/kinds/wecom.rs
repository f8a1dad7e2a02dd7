//! WeCom (WeChat Work) group robot: a `markdown` message; the robot's key
//! is in its URL, there is no signing scheme.
//!
//! `i_assign` and `i_escalate` go as a `text` message instead, whose
//! `mentioned_list` (user ids) is how the robot mentions people: a markdown
//! message has no such field (it takes `<@userid>` in its content, which
//! SPEC 14 does not name). The text is escaped the same way, and each
//! member is named in it; WeCom adds the mentions.

use serde_json::{json, Value};

use super::{
    json_request, neutralise_markdown, no_mention, summary, Context, Kind, Markup, OutRequest,
};
use crate::outbound::config::Webhook;

pub struct WeCom;

const MARKUP: Markup = Markup {
    bold: ("**", "**"),
    escape: neutralise_markdown,
    mention: no_mention,
};

/// A text message shows no markup; mentions go in `mentioned_list`.
const TEXT: Markup = Markup {
    bold: ("", ""),
    escape: neutralise_markdown,
    mention: no_mention,
};

impl Kind for WeCom {
    fn request(&self, hook: &Webhook, body: &Value, _: i64, ctx: &Context) -> OutRequest {
        let s = summary(body, ctx);
        let message = match &s.paging {
            Some(paging) => {
                let mut text = json!({ "content": s.render(&TEXT) });
                let ids = paging.mentioned(|im| im.wecom_user_id.as_ref());
                if !ids.is_empty() {
                    text["mentioned_list"] = json!(ids);
                }
                json!({ "msgtype": "text", "text": text })
            }
            None => json!({ "msgtype": "markdown", "markdown": { "content": s.render(&MARKUP) } }),
        };
        json_request(&hook.url, &message)
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

    fn sent(b: &Value) -> Value {
        let h = hook(
            WebhookKind::Wecom,
            "https://qyapi.weixin.qq.com/x?key=k",
            None,
        );
        let req = WeCom.request(&h, b, 0, &Context::default());
        serde_json::from_slice(&req.body).unwrap()
    }

    #[test]
    fn a_paging_is_a_text_message_with_mentioned_list() {
        use super::super::tests::paging_body;
        let m = sent(&paging_body("i_assign", &["email", "im"]));
        assert_eq!(m["msgtype"], "text");
        assert_eq!(m["text"]["mentioned_list"], json!(["alice"]));
        let content = m["text"]["content"].as_str().unwrap();
        assert!(
            content.starts_with("[Triggered] Critical: disk full\n"),
            "{content}"
        );
        assert_eq!(
            content.lines().nth(1),
            Some("Level 1: assigned to Alice Example, Bob")
        );
        // Email only: named, nobody mentioned.
        let m = sent(&paging_body("i_escalate", &["email"]));
        assert_eq!(m["msgtype"], "text");
        assert!(m["text"].get("mentioned_list").is_none());
        assert_eq!(
            m["text"]["content"].as_str().unwrap().lines().nth(1),
            Some("escalated to level 2: Alice Example, Bob")
        );
    }

    #[test]
    fn a_paged_name_or_id_cannot_mention_or_link() {
        use super::super::tests::hostile_paging_body;
        let m = sent(&hostile_paging_body());
        assert_eq!(m["text"]["mentioned_list"], json!(["bob.w"]));
        let content = m["text"]["content"].as_str().unwrap();
        assert_eq!(content.lines().count(), 4, "{content}");
        for forbidden in ["<", ">", "@", "](", "**b"] {
            assert!(!content.contains(forbidden), "{forbidden} in {content}");
        }
    }
}
