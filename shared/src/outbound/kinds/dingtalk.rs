//! DingTalk custom robot: a `markdown` message; with a secret, signed in the
//! URL's query with its `timestamp` (ms) and URL-encoded `sign`.

use serde_json::{json, Value};

use super::{json_request, summary, Context, Kind, OutRequest};
use crate::outbound::config::Webhook;
use crate::outbound::sign::dingtalk_sign;

pub struct DingTalk;

impl Kind for DingTalk {
    fn request(&self, hook: &Webhook, body: &Value, now_ms: i64, ctx: &Context) -> OutRequest {
        let s = summary(body, ctx);
        let message = json!({
            "msgtype": "markdown",
            "markdown": { "title": s.headline, "text": s.markdown(("### ", "")) },
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
}
