//! DingTalk custom robot: a `markdown` message; with a secret, signed in the
//! URL's query with its `timestamp` (ms) and URL-encoded `sign`.

use serde_json::{json, Value};

use super::{json_request, neutralise_markdown, summary, Context, Kind, Markup, OutRequest};
use crate::outbound::config::Webhook;
use crate::outbound::sign::dingtalk_sign;

pub struct DingTalk;

const MARKUP: Markup = Markup {
    bold: ("### ", ""),
    escape: neutralise_markdown,
};

impl Kind for DingTalk {
    fn request(&self, hook: &Webhook, body: &Value, now_ms: i64, ctx: &Context) -> OutRequest {
        let s = summary(body, ctx);
        let message = json!({
            "msgtype": "markdown",
            "markdown": { "title": s.headline(&MARKUP), "text": s.render(&MARKUP) },
        });
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
}
