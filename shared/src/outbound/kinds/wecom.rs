//! WeCom (WeChat Work) group robot: a `markdown` message; the robot's key
//! is in its URL, there is no signing scheme.

use serde_json::{json, Value};

use super::{json_request, summary, Context, Kind, OutRequest};
use crate::outbound::config::Webhook;

pub struct WeCom;

impl Kind for WeCom {
    fn request(&self, hook: &Webhook, body: &Value, _: i64, ctx: &Context) -> OutRequest {
        let content = summary(body, ctx).markdown(("**", "**"));
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
}
