//! DingTalk custom robot: a `markdown` message; with a secret, signed in the
//! URL's query with its `timestamp` (ms) and URL-encoded `sign`. Paged
//! members (`i_assign`, `i_escalate`) are mentioned by mobile: listed in
//! `at.atMobiles`, and `@<mobile>` after their name in the text (DingTalk
//! shows the mention only where the text has it).

use serde_json::{json, Value};

use super::{json_request, neutralise_markdown, summary, Context, ImIds, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;
use crate::outbound::sign::dingtalk_sign;

pub struct DingTalk;

const MARKUP: Markup = Markup {
    bold: ("### ", ""),
    escape: neutralise_markdown,
    mention: dingtalk_mention,
};

fn dingtalk_mention(im: &ImIds) -> Option<String> {
    im.dingtalk_mobile
        .as_ref()
        .map(|mobile| format!("@{mobile}"))
}

impl Kind for DingTalk {
    fn request(&self, hook: &Webhook, body: &Value, now_ms: i64, ctx: &Context) -> OutRequest {
        let s = summary(body, ctx);
        let mut message = json!({
            "msgtype": "markdown",
            "markdown": { "title": s.headline(&MARKUP), "text": s.render(&MARKUP) },
        });
        let mobiles = s
            .paging
            .as_ref()
            .map(|p| p.mentioned(|im| im.dingtalk_mobile.as_ref()))
            .unwrap_or_default();
        if !mobiles.is_empty() {
            message["at"] = json!({ "atMobiles": mobiles, "isAtAll": false });
        }
        let mut url = hook.url.clone();
        if let Some(secret) = &hook.secret {
            let sign: String =
                form_urlencoded::byte_serialize(dingtalk_sign(secret, now_ms).as_bytes()).collect();
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}timestamp={now_ms}&sign={sign}");
        }
        json_request(&url, &message)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, hook};
    use super::*;
    use crate::outbound::config::WebhookKind;

    #[test]
    fn signed_markdown_message() {
        let h = hook(
            WebhookKind::Dingtalk,
            "https://oapi.dingtalk.com/robot/send?access_token=t",
            Some("SEC1"),
        );
        let req = DingTalk.request(&h, &body(), 1_700_000_000_999, &Context::default());
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["msgtype"], "markdown");
        assert_eq!(sent["markdown"]["title"], "[Triggered] Critical: disk full");
        let sign: String =
            form_urlencoded::byte_serialize(dingtalk_sign("SEC1", 1_700_000_000_999).as_bytes())
                .collect();
        assert_eq!(
            req.url,
            format!("https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1700000000999&sign={sign}")
        );
    }

    #[test]
    fn alert_text_cannot_mention_or_link() {
        use super::super::tests::{assert_inert, hostile_bodies, MARKDOWN_FORBIDDEN};
        for b in hostile_bodies() {
            let h = hook(WebhookKind::Dingtalk, "https://oapi.dingtalk.com/x", None);
            let req = DingTalk.request(&h, &b, 0, &Context::default());
            let sent: Value = serde_json::from_slice(&req.body).unwrap();
            assert_inert(
                sent["markdown"]["text"].as_str().unwrap(),
                4,
                MARKDOWN_FORBIDDEN,
            );
            assert_inert(
                sent["markdown"]["title"].as_str().unwrap(),
                1,
                MARKDOWN_FORBIDDEN,
            );
            assert!(
                sent.get("at").is_none(),
                "never asks DingTalk to mention anyone"
            );
        }
    }

    fn sent(b: &Value) -> Value {
        let h = hook(WebhookKind::Dingtalk, "https://oapi.dingtalk.com/x", None);
        let req = DingTalk.request(&h, b, 0, &Context::default());
        serde_json::from_slice(&req.body).unwrap()
    }

    #[test]
    fn a_paged_member_is_mentioned_by_mobile_in_at_and_in_the_text() {
        use super::super::tests::paging_body;
        let m = sent(&paging_body("i_assign", &["email", "im"]));
        assert_eq!(m["msgtype"], "markdown");
        assert_eq!(
            m["at"],
            json!({"atMobiles": ["13800000000"], "isAtAll": false})
        );
        assert_eq!(
            m["markdown"]["text"].as_str().unwrap().lines().nth(1),
            Some("Level 1: assigned to Alice Example @13800000000, Bob")
        );
        // Email only: no `at`, no mobile in the text.
        let m = sent(&paging_body("i_escalate", &["email"]));
        assert!(m.get("at").is_none());
        assert_eq!(
            m["markdown"]["text"].as_str().unwrap().lines().nth(1),
            Some("escalated to level 2: Alice Example, Bob")
        );
    }

    #[test]
    fn a_paged_name_or_id_cannot_mention_or_link() {
        use super::super::tests::hostile_paging_body;
        let m = sent(&hostile_paging_body());
        assert_eq!(m["at"]["atMobiles"], json!(["13800000002"]));
        assert_eq!(m["at"]["isAtAll"], false);
        let text = m["markdown"]["text"].as_str().unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        // The one `@` is the genuine member's mention.
        assert_eq!(text.matches('@').count(), 1, "{text}");
        assert!(text.contains("Bob @13800000002"));
        for forbidden in ["<", ">", "](", "**b"] {
            assert!(!text.contains(forbidden), "{forbidden} in {text}");
        }
    }
}
